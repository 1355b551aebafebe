-- Full-text search over local history, for Chinese as well as English, for queries of any length.
-- Two contentless FTS5 indexes keyed by messages.local_id, each used for what it is fast at:
--  * search_tri: trigram over the raw text — substring search for terms of 3+ characters
--    (case- and accent-insensitive). It cannot answer 1–2 character terms.
--  * search_word: unicode61 over the text with every CJK character spaced apart, so each CJK
--    character is its own token — 1–2 character terms as phrases (说, 说话) and short English
--    prefixes. unicode61 alone would treat a whole Chinese sentence as one token.
-- The spacing is done in Rust (natter-core store.rs), which is why no trigger fills these.
CREATE VIRTUAL TABLE search_tri USING fts5(
    text, content = '', contentless_delete = 1,
    tokenize = 'trigram case_sensitive 0 remove_diacritics 1'
);
CREATE VIRTUAL TABLE search_word USING fts5(
    text, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
