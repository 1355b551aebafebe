//! Turning text and queries into what the two FTS5 indexes of the client store understand
//! (see `migrations/client/0002_search.sql`). Pure functions; the SQL lives in `store.rs`.
//!
//! A query is split on whitespace into terms, and all terms must match (AND). A term of three or
//! more characters is a substring search in the trigram index; a shorter one is a phrase in the
//! word index, where every CJK character is a token of its own (so 说话 matches 我在说话 but
//! not 说的话), and a short Latin term is a prefix (`he` matches hello).

use natter_proto::MessageBody;

/// Characters written without spaces between words: Han, kana, Hangul.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x3400..=0x4DBF     // CJK Extension A
        | 0x4E00..=0x9FFF     // CJK Unified Ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK Compatibility Ideographs
        | 0x20000..=0x3134F   // CJK Extensions B–H
    )
}

/// The text of a message that search looks at: the text, or an image's or file's name.
pub fn searchable_text(body: &MessageBody) -> &str {
    match body {
        MessageBody::Text { text } => text,
        MessageBody::Image { name, .. } | MessageBody::File { name, .. } => name,
    }
}

/// `text` with a space on each side of every CJK character, for the word index.
pub fn space_cjk(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// FTS5 string literal: double quotes doubled inside double quotes.
fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// The MATCH expressions for a query: one for the trigram index, one for the word index (each
/// `None` when no term goes there). Both are required to match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPlan {
    /// For `search_tri`.
    pub trigram: Option<String>,
    /// For `search_word`.
    pub word: Option<String>,
    /// The short terms, lowercased: with a trigram term present they filter its hits by
    /// substring instead of a second index lookup (intersecting two FTS5 indexes row by row was
    /// orders of magnitude slower).
    pub short_terms: Vec<String>,
}

impl SearchPlan {
    /// Plans a user's query; `None` when it has no searchable term.
    pub fn new(query: &str) -> Option<Self> {
        let mut trigram = Vec::new();
        let mut word = Vec::new();
        let mut short_terms = Vec::new();
        for term in query.split_whitespace() {
            // Punctuation alone (a lone quote, a dash) is not worth a search term.
            if !term.chars().any(char::is_alphanumeric) {
                continue;
            }
            if term.chars().count() >= 3 {
                trigram.push(quoted(term));
                continue;
            }
            short_terms.push(term.to_lowercase());
            if term.chars().any(is_cjk) {
                let tokens: Vec<String> = space_cjk(term)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                word.push(quoted(&tokens.join(" ")));
            } else {
                word.push(format!("{}*", quoted(term)));
            }
        }
        if trigram.is_empty() && word.is_empty() {
            return None;
        }
        let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(" AND "));
        Some(Self {
            trigram: join(trigram),
            word: join(word),
            short_terms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_characters_become_tokens_latin_words_stay_whole() {
        assert_eq!(space_cjk("我在说话 ok"), " 我  在  说  话  ok");
        assert_eq!(space_cjk("hello"), "hello");
        assert!(is_cjk('说') && is_cjk('か') && is_cjk('한') && !is_cjk('a') && !is_cjk('。'));
    }

    #[test]
    fn each_term_goes_to_the_index_that_answers_it() {
        let plan = SearchPlan::new("说").expect("plan");
        assert_eq!(
            plan,
            SearchPlan {
                trigram: None,
                word: Some("\"说\"".into()),
                short_terms: vec!["说".into()],
            }
        );
        let plan = SearchPlan::new("说话").expect("plan");
        assert_eq!(plan.word.as_deref(), Some("\"说 话\""));
        let plan = SearchPlan::new("我在说话 he").expect("plan");
        assert_eq!(plan.trigram.as_deref(), Some("\"我在说话\""));
        assert_eq!(plan.word.as_deref(), Some("\"he\"*"));
        assert_eq!(plan.short_terms, vec!["he".to_owned()]);
        let plan = SearchPlan::new("hello world").expect("plan");
        assert_eq!(plan.trigram.as_deref(), Some("\"hello\" AND \"world\""));
    }

    #[test]
    fn quotes_and_empty_queries_are_safe() {
        assert_eq!(SearchPlan::new("   "), None);
        assert_eq!(SearchPlan::new("\" - !"), None);
        let plan = SearchPlan::new("say \"hi\"").expect("plan");
        assert_eq!(plan.trigram.as_deref(), Some("\"say\" AND \"\"\"hi\"\"\""));
    }
}
