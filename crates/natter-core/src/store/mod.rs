//! The client store: one SQLite file per account and server, holding local history, the outbox
//! and the friend cache. Every SQL statement of the client lives here: `outbox` (what waits to be
//! sent), `history` (messages and search), `transfers` (file transfers and their chunk maps).

mod history;
mod outbox;
mod reads;
mod transfers;

pub use history::SearchHit;
pub use reads::Unread;
pub use transfers::TransferRecord;

use history::SEARCH_INDEX_VERSION;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use natter_proto::{Friend, MessageBody, MsgId, Target};

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
}
