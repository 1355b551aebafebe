//! Local history search on a real SQLite store in a temp dir: Chinese terms of every length,
//! English with case and accents, mixed queries, and no false friends.

use natter_core::store::Store;
use natter_proto::{ChatMessage, MessageBody, Target};

fn incoming(msg_id: i64, from: &str, to: Target, text: &str) -> ChatMessage {
    ChatMessage {
        msg_id,
        client_msg_id: format!("c{msg_id}"),
        from: from.to_owned(),
        from_guest: false,
        to,
        ts: 1_700_000_000_000 + msg_id,
        body: MessageBody::Text {
            text: text.to_owned(),
        },
    }
}

fn alice() -> Target {
    Target::User {
        username: "alice".into(),
    }
}

async fn store_with(texts: &[&str]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("alice.db"), "alice")
        .await
        .expect("store opens");
    for (i, text) in texts.iter().enumerate() {
        let m = incoming(i as i64 + 1, "bobby", alice(), text);
        assert!(store.save_incoming(&m).await.expect("stored"));
    }
    (dir, store)
}

async fn texts(store: &Store, query: &str) -> Vec<String> {
    store
        .search(query, 50)
        .await
        .expect("search runs")
        .into_iter()
        .map(|hit| match hit.message.body {
            MessageBody::Text { text } => text,
            other => panic!("unexpected body {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn chinese_terms_of_one_two_and_four_characters_find_the_message() {
    let (_dir, store) = store_with(&["我在说话", "今天天气很好", "说的话不算"]).await;
    assert_eq!(texts(&store, "说").await, vec!["说的话不算", "我在说话"]);
    assert_eq!(
        texts(&store, "说话").await,
        vec!["我在说话"],
        "说话 is a phrase: 说的话 is no match"
    );
    assert_eq!(texts(&store, "我在说话").await, vec!["我在说话"]);
    assert_eq!(texts(&store, "在说").await, vec!["我在说话"]);
    assert_eq!(texts(&store, "天气很").await, vec!["今天天气很好"]);
    assert!(texts(&store, "电脑").await.is_empty());
}

#[tokio::test]
async fn english_ignores_case_and_accents_and_short_terms_are_prefixes() {
    let (_dir, store) = store_with(&["Hello World", "Café au lait", "help me"]).await;
    assert_eq!(texts(&store, "hello").await, vec!["Hello World"]);
    assert_eq!(texts(&store, "WORLD").await, vec!["Hello World"]);
    assert_eq!(texts(&store, "cafe").await, vec!["Café au lait"]);
    assert_eq!(texts(&store, "he").await, vec!["help me", "Hello World"]);
    assert_eq!(
        texts(&store, "llo").await,
        vec!["Hello World"],
        "3+ characters match inside words"
    );
    assert!(texts(&store, "xyz").await.is_empty());
}

#[tokio::test]
async fn mixed_queries_need_every_term() {
    let (_dir, store) = store_with(&["我们说中文 and English", "只有中文", "only English"]).await;
    assert_eq!(
        texts(&store, "中文 English").await,
        vec!["我们说中文 and English"]
    );
    assert_eq!(
        texts(&store, "English").await,
        vec!["only English", "我们说中文 and English"]
    );
    assert_eq!(
        texts(&store, "中文").await,
        vec!["只有中文", "我们说中文 and English"]
    );
}

#[tokio::test]
async fn hits_name_their_conversation_and_odd_queries_are_harmless() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("alice.db"), "alice")
        .await
        .expect("store");
    store
        .save_incoming(&incoming(1, "bobby", alice(), "见面吧"))
        .await
        .expect("private");
    store
        .save_incoming(&incoming(2, "carol", Target::Square, "广场见面"))
        .await
        .expect("square");
    let hits = store.search("见面", 10).await.expect("search");
    let with: Vec<Target> = hits.iter().map(|h| h.with.clone()).collect();
    assert_eq!(
        with,
        vec![
            Target::Square,
            Target::User {
                username: "bobby".into()
            }
        ]
    );
    for odd in ["\"", "  ", "*", "AND", "NEAR(", "-", "'"] {
        store
            .search(odd, 10)
            .await
            .expect("odd queries do not error");
    }
}

#[tokio::test]
async fn an_existing_store_is_indexed_again_when_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alice.db");
    {
        let store = Store::open(&path, "alice").await.expect("store");
        store
            .save_incoming(&incoming(1, "bobby", alice(), "旧消息 old message"))
            .await
            .expect("stored");
        store
            .remove("search_index")
            .await
            .expect("forget the index version");
        store.close().await;
    }
    let store = Store::open(&path, "alice").await.expect("reopens");
    assert_eq!(texts(&store, "旧消").await, vec!["旧消息 old message"]);
    assert_eq!(texts(&store, "message").await, vec!["旧消息 old message"]);
}
