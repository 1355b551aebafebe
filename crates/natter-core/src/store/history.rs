//! History and search: messages from the server (pushes and history pages) merged into local
//! history without duplicates, pages back and forward, and the full-text search over it.

use natter_proto::{ChatMessage, MessageBody, MsgId, Target};
use serde::{Deserialize, Serialize};

use super::{conv_key, conv_of, from_row, json, LocalMessage, Store, StoreResult, COLUMNS};
use crate::search::{searchable_text, space_cjk, SearchPlan};

/// Bumped when the way text is indexed changes; stores re-index themselves on open.
pub(super) const SEARCH_INDEX_VERSION: &str = "2";

/// A search result: the message and the conversation to open to show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchHit {
    /// The message (its text is the context to show).
    pub message: LocalMessage,
    /// The square, or the other participant.
    pub with: Target,
}

/// Adds one message to both search indexes.
pub(super) async fn index_in(
    conn: &mut sqlx::SqliteConnection,
    local_id: i64,
    body: &MessageBody,
) -> StoreResult<()> {
    let text = searchable_text(body);
    sqlx::query("INSERT INTO search_tri (rowid, text) VALUES (?, ?)")
        .bind(local_id)
        .bind(text)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO search_word (rowid, text) VALUES (?, ?)")
        .bind(local_id)
        .bind(space_cjk(text))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Stores a message from the server (push or history); false if it was already here.
    pub async fn save_incoming(&self, message: &ChatMessage) -> StoreResult<bool> {
        Ok(self.import(std::slice::from_ref(message)).await? == 1)
    }

    /// Stores many messages from the server in one transaction (history imports, benchmarks);
    /// returns how many were new.
    pub async fn import(&self, messages: &[ChatMessage]) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await?;
        let mut new = 0;
        for message in messages {
            let mine = message.from.eq_ignore_ascii_case(&self.me);
            let recipient = match &message.to {
                Target::Square => None,
                Target::User { username } => Some(username.clone()),
            };
            let done = sqlx::query(
                "INSERT INTO messages (msg_id, client_msg_id, conv, sender, sender_guest, recipient, body, ts, state) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(message.msg_id)
            .bind(&message.client_msg_id)
            .bind(conv_key(&self.me, &message.from, &message.to))
            .bind(&message.from)
            .bind(message.from_guest as i64)
            .bind(&recipient)
            .bind(json(&message.body))
            .bind(message.ts)
            .bind(if mine { "sent" } else { "received" })
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                index_in(&mut tx, done.last_insert_rowid(), &message.body).await?;
                new += 1;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Messages matching `query` across all conversations, newest first (see [`SearchPlan`]):
    /// every whitespace-separated term must match, Chinese or English, of any length.
    pub async fn search(&self, query: &str, limit: u32) -> StoreResult<Vec<SearchHit>> {
        let Some(plan) = SearchPlan::new(query) else {
            return Ok(Vec::new());
        };
        let ids: Vec<(i64,)> = match (&plan.trigram, &plan.word) {
            (Some(tri), Some(_)) => {
                let filters = " AND instr(lower(json_extract(m.body, '$.text')), ?) > 0"
                    .repeat(plan.short_terms.len());
                let sql = format!(
                    "SELECT t.rowid FROM search_tri t JOIN messages m ON m.local_id = t.rowid \
                     WHERE t.search_tri MATCH ?{filters} ORDER BY t.rowid DESC LIMIT ?"
                );
                let mut q = sqlx::query_as(&sql).bind(tri);
                for term in &plan.short_terms {
                    q = q.bind(term);
                }
                q.bind(i64::from(limit)).fetch_all(&self.pool).await?
            }
            (Some(expr), None) | (None, Some(expr)) => {
                let table = if plan.trigram.is_some() {
                    "search_tri"
                } else {
                    "search_word"
                };
                sqlx::query_as(&format!(
                    "SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rowid DESC LIMIT ?"
                ))
                .bind(expr)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            (None, None) => Vec::new(),
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE local_id IN ({}) ORDER BY local_id DESC",
            vec!["?"; ids.len()].join(",")
        );
        let mut q = sqlx::query(&sql);
        for (id,) in &ids {
            q = q.bind(id);
        }
        let mut hits = Vec::with_capacity(ids.len());
        for row in q.fetch_all(&self.pool).await? {
            if let Some(message) = from_row(&row)? {
                let with = match &message.to {
                    Target::Square => Target::Square,
                    Target::User { username } if message.from.eq_ignore_ascii_case(&self.me) => {
                        Target::User {
                            username: username.clone(),
                        }
                    }
                    Target::User { .. } => Target::User {
                        username: message.from.clone(),
                    },
                };
                hits.push(SearchHit { message, with });
            }
        }
        Ok(hits)
    }

    /// Rebuilds both search indexes from the messages table (after the index format changed).
    pub(super) async fn reindex(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM search_tri")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM search_word")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query_as::<_, (i64, String)>("SELECT local_id, body FROM messages")
            .fetch_all(&mut *tx)
            .await?;
        for (local_id, body) in rows {
            if let Ok(body) = serde_json::from_str::<MessageBody>(&body) {
                index_in(&mut tx, local_id, &body).await?;
            }
        }
        sqlx::query(
            "INSERT INTO kv (key, value) VALUES ('search_index', ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(SEARCH_INDEX_VERSION)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of local history, oldest first: messages with a server id below `before` (all if
    /// `None`), then — on the newest page — those still sending.
    pub async fn history(
        &self,
        with: &Target,
        before: Option<MsgId>,
        limit: u32,
    ) -> StoreResult<Vec<LocalMessage>> {
        let conv = conv_of(with);
        // One read snapshot for both queries: a message that gets its `msg_id` between them
        // would otherwise be in neither.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE conv = ? AND msg_id IS NOT NULL AND msg_id < ? \
             ORDER BY msg_id DESC LIMIT ?"
        ))
        .bind(&conv)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut out: Vec<LocalMessage> = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            out.extend(from_row(row)?);
        }
        if before.is_none() {
            let pending = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM messages WHERE conv = ? AND msg_id IS NULL ORDER BY local_id"
            ))
            .bind(&conv)
            .fetch_all(&mut *tx)
            .await?;
            for row in &pending {
                out.extend(from_row(row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Stored messages of a conversation newer than `after`, oldest first: the other half of a
    /// window around a search hit (messages still sending come with the newest page).
    pub async fn history_after(
        &self,
        with: &Target,
        after: MsgId,
        limit: u32,
    ) -> StoreResult<Vec<LocalMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE conv = ? AND msg_id IS NOT NULL AND msg_id > ? \
             ORDER BY msg_id LIMIT ?"
        ))
        .bind(conv_of(with))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.extend(from_row(row)?);
        }
        Ok(out)
    }
}
