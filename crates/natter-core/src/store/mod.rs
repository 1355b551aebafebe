//! The client store: one SQLite file per account and server, holding local history, the outbox
//! and the friend cache. Every SQL statement of the client lives here.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use natter_proto::{ChatMessage, Friend, MessageBody, MsgId, RangeSet, Target};

use crate::search::{searchable_text, space_cjk, SearchPlan};
use crate::transfer::{TransferInfo, TransferState};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("local database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("local database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// Where a message stands, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// In the outbox, not yet stored by the server.
    Sending,
    /// Stored by the server.
    Sent,
    /// The recipient's device has it.
    Delivered,
    /// The server refused it (see `error`).
    Failed,
    /// Received from someone else.
    Received,
}

impl MessageState {
    fn parse(s: &str) -> Self {
        match s {
            "sending" => MessageState::Sending,
            "sent" => MessageState::Sent,
            "delivered" => MessageState::Delivered,
            "failed" => MessageState::Failed,
            _ => MessageState::Received,
        }
    }
}

/// A message in local history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LocalMessage {
    /// Server id, once the server stored it.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub msg_id: Option<MsgId>,
    /// The sender's id for it.
    pub client_msg_id: String,
    /// Sender.
    pub from: String,
    /// Sender is a guest.
    pub from_guest: bool,
    /// The square or the recipient.
    pub to: Target,
    /// Server time (local time while sending).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ts: i64,
    /// Content.
    pub body: MessageBody,
    /// Delivery state.
    pub state: MessageState,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// An outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Idempotency key.
    pub client_msg_id: String,
    /// Destination.
    pub to: Target,
    /// Content.
    pub body: MessageBody,
}

/// Conversation key: the square, or the other participant in lowercase.
pub fn conv_key(me: &str, message_from: &str, to: &Target) -> String {
    match to {
        Target::Square => "square".to_owned(),
        Target::User { username } => {
            let peer = if message_from.eq_ignore_ascii_case(me) {
                username
            } else {
                message_from
            };
            format!("u:{}", peer.to_ascii_lowercase())
        }
    }
}

/// Bumped when the way text is indexed changes; stores re-index themselves on open.
const SEARCH_INDEX_VERSION: &str = "2";

/// A search result: the message and the conversation to open to show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchHit {
    /// The message (its text is the context to show).
    pub message: LocalMessage,
    /// The square, or the other participant.
    pub with: Target,
}

/// Puts a message in the outbox (once: a retry of a queued message changes nothing).
async fn outbox_in(
    conn: &mut sqlx::SqliteConnection,
    entry: &OutboxEntry,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT OR IGNORE INTO outbox (client_msg_id, target, body, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&entry.client_msg_id)
    .bind(json(&entry.to))
    .bind(json(&entry.body))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds one message to both search indexes.
async fn index_in(
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

/// Conversation key of a history request.
pub fn conv_of(with: &Target) -> String {
    match with {
        Target::Square => "square".to_owned(),
        Target::User { username } => format!("u:{}", username.to_ascii_lowercase()),
    }
}

/// The client's local database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    me: String,
}

const COLUMNS: &str =
    "msg_id, client_msg_id, sender, sender_guest, recipient, body, ts, state, error";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Option<LocalMessage>> {
    let body: String = row.try_get("body")?;
    let Ok(body) = serde_json::from_str::<MessageBody>(&body) else {
        tracing::warn!("skipping a locally stored message with an unreadable body");
        return Ok(None);
    };
    let recipient: Option<String> = row.try_get("recipient")?;
    let state: String = row.try_get("state")?;
    Ok(Some(LocalMessage {
        msg_id: row.try_get("msg_id")?,
        client_msg_id: row.try_get("client_msg_id")?,
        from: row.try_get("sender")?,
        from_guest: row.try_get::<i64, _>("sender_guest")? != 0,
        to: match recipient {
            Some(username) => Target::User { username },
            None => Target::Square,
        },
        ts: row.try_get("ts")?,
        body,
        state: MessageState::parse(&state),
        error: row.try_get("error")?,
    }))
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("protocol types serialise to JSON")
}

impl Store {
    /// Opens (creating and migrating) the store at `path` for user `me`.
    pub async fn open(path: &Path, me: &str) -> StoreResult<Self> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/client").run(&pool).await?;
        let store = Self {
            pool,
            me: me.to_owned(),
        };
        if store.get("search_index").await?.as_deref() != Some(SEARCH_INDEX_VERSION) {
            store.reindex().await?;
        }
        Ok(store)
    }

    /// Whose store this is.
    pub fn user(&self) -> &str {
        &self.me
    }

    /// Closes the database.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Reads a small value.
    pub async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query_as::<_, (String,)>("SELECT value FROM kv WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    /// Writes a small value.
    pub async fn set(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a small value.
    pub async fn remove(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM kv WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records an outgoing message in history and the outbox, in one transaction, so that it is
    /// sent after any crash or restart.
    pub async fn enqueue(&self, entry: &OutboxEntry, now: i64) -> StoreResult<LocalMessage> {
        let mut tx = self.pool.begin().await?;
        let recipient = match &entry.to {
            Target::Square => None,
            Target::User { username } => Some(username.clone()),
        };
        let inserted = sqlx::query(
            "INSERT INTO messages (client_msg_id, conv, sender, sender_guest, recipient, body, ts, state) \
             VALUES (?, ?, ?, 0, ?, ?, ?, 'sending')",
        )
        .bind(&entry.client_msg_id)
        .bind(conv_key(&self.me, &self.me, &entry.to))
        .bind(&self.me)
        .bind(&recipient)
        .bind(json(&entry.body))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        index_in(&mut tx, inserted.last_insert_rowid(), &entry.body).await?;
        outbox_in(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(LocalMessage {
            msg_id: None,
            client_msg_id: entry.client_msg_id.clone(),
            from: self.me.clone(),
            from_guest: false,
            to: entry.to.clone(),
            ts: now,
            body: entry.body.clone(),
            state: MessageState::Sending,
            error: None,
        })
    }

    /// The outbox in send order.
    pub async fn outbox(&self) -> StoreResult<Vec<OutboxEntry>> {
        let rows = sqlx::query_as::<_, (String, String, String)>(
            "SELECT client_msg_id, target, body FROM outbox ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(client_msg_id, target, body)| {
                Some(OutboxEntry {
                    client_msg_id,
                    to: serde_json::from_str(&target).ok()?,
                    body: serde_json::from_str(&body).ok()?,
                })
            })
            .collect())
    }

    /// The server stored an outgoing message: leave the outbox, take the server's id and time.
    pub async fn mark_sent(&self, client_msg_id: &str, msg_id: MsgId, ts: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM outbox WHERE client_msg_id = ?")
            .bind(client_msg_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE messages SET msg_id = ?, ts = ?, state = CASE WHEN state = 'delivered' THEN state ELSE 'sent' END \
             WHERE sender = ? AND client_msg_id = ?",
        )
        .bind(msg_id)
        .bind(ts)
        .bind(&self.me)
        .bind(client_msg_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The server refused an outgoing message for good.
    pub async fn mark_failed(&self, client_msg_id: &str, error: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM outbox WHERE client_msg_id = ?")
            .bind(client_msg_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE messages SET state = 'failed', error = ? WHERE sender = ? AND client_msg_id = ?")
            .bind(error)
            .bind(&self.me)
            .bind(client_msg_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts a failed message back in the outbox (the user pressed retry).
    pub async fn retry(&self, client_msg_id: &str, now: i64) -> StoreResult<Option<OutboxEntry>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE sender = ? AND client_msg_id = ? AND state = 'failed'"
        ))
        .bind(&self.me)
        .bind(client_msg_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(message) = row.as_ref().map(from_row).transpose()?.flatten() else {
            return Ok(None);
        };
        let entry = OutboxEntry {
            client_msg_id: message.client_msg_id,
            to: message.to,
            body: message.body,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE messages SET state = 'sending', error = NULL WHERE sender = ? AND client_msg_id = ?")
            .bind(&self.me)
            .bind(client_msg_id)
            .execute(&mut *tx)
            .await?;
        outbox_in(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(entry))
    }

    /// The recipient has the message.
    pub async fn mark_delivered(&self, client_msg_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE messages SET state = 'delivered' WHERE sender = ? AND client_msg_id = ? AND state != 'delivered'",
        )
        .bind(&self.me)
        .bind(client_msg_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

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
    async fn reindex(&self) -> StoreResult<()> {
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

    /// Replaces the friend cache.
    pub async fn save_friends(&self, friends: &[Friend]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM friends").execute(&mut *tx).await?;
        for f in friends {
            sqlx::query("INSERT OR REPLACE INTO friends (username, nickname, motto, is_guest, online) VALUES (?, ?, ?, ?, ?)")
                .bind(&f.username)
                .bind(&f.nickname)
                .bind(&f.motto)
                .bind(f.is_guest as i64)
                .bind(f.online as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The cached friends.
    pub async fn friends(&self) -> StoreResult<Vec<Friend>> {
        let rows = sqlx::query_as::<_, (String, String, String, i64, i64)>(
            "SELECT username, nickname, motto, is_guest, online FROM friends ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(username, nickname, motto, g, o)| Friend {
                username,
                nickname,
                motto,
                is_guest: g != 0,
                online: o != 0,
            })
            .collect())
    }

    // ---- transfers ------------------------------------------------------------------------

    /// Adds a transfer, or leaves an existing one alone (offers are pushed again at each login).
    /// Returns whether it was new.
    pub async fn insert_transfer(&self, t: &TransferRecord) -> StoreResult<bool> {
        let i = &t.info;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO transfers (file_id, direction, kind, chat, peer, name, size, sha256, chunk_size, state, ranges, path, accepted, error, message, ts) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&i.file_id)
        .bind(json(&i.direction).trim_matches('"'))
        .bind(json(&i.kind).trim_matches('"'))
        .bind(json(&i.chat))
        .bind(&i.peer)
        .bind(&i.name)
        .bind(i.size as i64)
        .bind(&i.sha256)
        .bind(t.chunk_size as i64)
        .bind(i.state.as_str())
        .bind(json(&t.ranges))
        .bind(&i.path)
        .bind(i.accepted as i64)
        .bind(&i.error)
        .bind(t.message.as_ref().map(json))
        .bind(i.ts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One transfer.
    pub async fn transfer(&self, file_id: &str) -> StoreResult<Option<TransferRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE file_id = ?"
        ))
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().and_then(transfer_from_row))
    }

    /// Every transfer, newest first.
    pub async fn transfers(&self) -> StoreResult<Vec<TransferRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers ORDER BY ts DESC, file_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(transfer_from_row).collect())
    }

    /// Saves a moving transfer's chunk map only, so progress never overwrites a state that a
    /// pause, answer or cancel recorded meanwhile.
    pub async fn update_ranges(&self, file_id: &str, ranges: &RangeSet) -> StoreResult<()> {
        sqlx::query("UPDATE transfers SET ranges = ? WHERE file_id = ?")
            .bind(json(ranges))
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Saves what changed as a transfer moves: state, chunk map, path, answer, error.
    pub async fn update_transfer(&self, t: &TransferRecord) -> StoreResult<()> {
        let i = &t.info;
        sqlx::query(
            // `accepted` only ever turns on: a worker's copy must not undo an answer that a push
            // recorded meanwhile.
            "UPDATE transfers SET state = ?, ranges = ?, path = ?, accepted = MAX(accepted, ?), error = ?, chunk_size = ?, message = ? WHERE file_id = ?",
        )
        .bind(i.state.as_str())
        .bind(json(&t.ranges))
        .bind(&i.path)
        .bind(i.accepted as i64)
        .bind(&i.error)
        .bind(t.chunk_size as i64)
        .bind(t.message.as_ref().map(json))
        .bind(&i.file_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A transfer as stored: what the UI sees plus what resuming needs.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    /// The UI's view (`rate` is never stored).
    pub info: TransferInfo,
    /// The server's suggested chunk size (0 until known).
    pub chunk_size: u32,
    /// The chunk map: bytes on disk (downloads) or confirmed by the server (uploads).
    pub ranges: RangeSet,
    /// For image uploads: the message to post once the image is on the server.
    pub message: Option<MessageBody>,
}

const TRANSFER_COLUMNS: &str = "file_id, direction, kind, chat, peer, name, size, sha256, chunk_size, state, ranges, path, accepted, error, message, ts";

fn transfer_from_row(row: &sqlx::sqlite::SqliteRow) -> Option<TransferRecord> {
    let parse = || -> Result<TransferRecord, Box<dyn std::error::Error>> {
        let quoted = |s: String| format!("\"{s}\"");
        let message: Option<String> = row.try_get("message")?;
        Ok(TransferRecord {
            info: TransferInfo {
                file_id: row.try_get("file_id")?,
                direction: serde_json::from_str(&quoted(row.try_get("direction")?))?,
                kind: serde_json::from_str(&quoted(row.try_get("kind")?))?,
                chat: serde_json::from_str(&row.try_get::<String, _>("chat")?)?,
                peer: row.try_get("peer")?,
                name: row.try_get("name")?,
                size: row.try_get::<i64, _>("size")?.max(0) as u64,
                sha256: row.try_get("sha256")?,
                state: TransferState::parse(&row.try_get::<String, _>("state")?)
                    .ok_or("unknown transfer state")?,
                done: 0,
                rate: 0,
                path: row.try_get("path")?,
                accepted: row.try_get::<i64, _>("accepted")? != 0,
                error: row.try_get("error")?,
                ts: row.try_get("ts")?,
            },
            chunk_size: row
                .try_get::<i64, _>("chunk_size")?
                .clamp(0, u32::MAX as i64) as u32,
            ranges: serde_json::from_str(&row.try_get::<String, _>("ranges")?)?,
            message: message.map(|m| serde_json::from_str(&m)).transpose()?,
        })
    };
    match parse() {
        Ok(mut t) => {
            t.info.done = t.ranges.total().min(t.info.size);
            Some(t)
        }
        Err(e) => {
            tracing::warn!(error = %e, "skipping an unreadable transfer row");
            None
        }
    }
}
