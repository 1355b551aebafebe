//! Storage: every SQL statement of the server lives here, behind named operations, so the handlers
//! never see SQL. Two backends run the same statements through sqlx's `Any` driver: the embedded
//! SQLite file (the default) and PostgreSQL (`--database-url postgres://…`, for clusters). The
//! statements are written in the dialect both accept (`$N` parameters, `RETURNING`,
//! `ON CONFLICT`); the few places that differ ask [`Backend`].
//!
//! Chat messages and acks do not come through here one by one: [`crate::persist`] commits them
//! in batches through the [`MessageLog`] in [`log`]. File transfers' statements are in
//! [`transfers`].

mod log;
mod pglog;
#[cfg(test)]
mod testing;
mod transfers;

pub use log::{Committed, MessageLog, SqliteLog};
pub use pglog::PgLog;
pub use transfers::{Held, NewTransfer, RemovedTransfer, TransferRecord};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use natter_proto::{ChatMessage, FriendRequestInfo, MessageBody, MsgId, Profile, Target};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row};

/// Database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (SQLite or PostgreSQL) failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The message log's SQLite handle failed.
    #[error("message log error: {0}")]
    Log(#[from] rusqlite::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A storage thread could not be started.
    #[error("cannot start a storage thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The username is taken (unique key conflict).
    #[error("username is taken")]
    UsernameTaken,
    /// A new transfer would take its sender over their storage quota.
    #[error("storage quota exceeded")]
    QuotaExceeded,
}

/// Result alias for the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// Row id of a user.
pub type UserId = i64;

/// A user row.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Row id.
    pub id: UserId,
    /// Display form of the username.
    pub username: String,
    /// Argon2 PHC string; `None` for guests.
    pub password_hash: Option<String>,
    /// Guest account.
    pub is_guest: bool,
    /// Nickname.
    pub nickname: String,
    /// Motto.
    pub motto: String,
    /// Phone.
    pub phone: String,
    /// Last time the user went offline or logged in (ms).
    pub last_seen: i64,
}

impl UserRecord {
    /// The profile as the user themself sees it.
    pub fn own_profile(&self) -> Profile {
        Profile {
            username: self.username.clone(),
            nickname: self.nickname.clone(),
            motto: self.motto.clone(),
            phone: self.phone.clone(),
            is_guest: self.is_guest,
        }
    }
}

/// A friend row joined with the friend's profile.
#[derive(Debug, Clone)]
pub struct FriendRecord {
    /// The friend's id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Nickname.
    pub nickname: String,
    /// Motto.
    pub motto: String,
    /// Guest flag.
    pub is_guest: bool,
}

/// Pending friend requests to and from one user.
#[derive(Debug, Default, Clone)]
pub struct PendingRequests {
    /// Requests to the user.
    pub incoming: Vec<FriendRequestInfo>,
    /// Requests from the user.
    pub outgoing: Vec<FriendRequestInfo>,
}

/// A chat message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Sender (the session's user).
    pub sender_id: UserId,
    /// Sender's username.
    pub sender_name: String,
    /// Sender is a guest.
    pub sender_guest: bool,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// Private recipient (id, username), or `None` for the square.
    pub recipient: Option<(UserId, String)>,
    /// Content.
    pub body: MessageBody,
}

/// The outcome of storing a message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// The message as handed out.
    pub message: ChatMessage,
    /// Private recipient, if any.
    pub recipient_id: Option<UserId>,
    /// The client message id was already stored: this is the original.
    pub duplicate: bool,
}

/// A private message whose recipient just acked it.
#[derive(Debug, Clone)]
pub struct AckedMessage {
    /// Message id.
    pub msg_id: MsgId,
    /// Who sent it (gets the receipt).
    pub sender_id: UserId,
    /// The sender's id for it.
    pub client_msg_id: String,
    /// Recipient's username.
    pub recipient_name: String,
}

/// Conversation key of a private chat; symmetric in its two users.
pub fn private_conv_key(a: UserId, b: UserId) -> String {
    format!("p:{}:{}", a.min(b), a.max(b))
}

/// Conversation key of the square.
pub const SQUARE_CONV: &str = "square";

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file in the data directory (one node).
    Sqlite,
    /// A PostgreSQL server that several nodes share.
    Postgres,
}

/// The server's database.
#[derive(Debug, Clone)]
pub struct Store {
    /// Readers (on SQLite, WAL lets them run beside the writer).
    pool: AnyPool,
    /// Where writes go. On SQLite this is one connection: SQLite has a single writer anyway, and
    /// funnelling every write through one connection means no write ever waits on, or fails
    /// against, another of ours (a read-then-write upgrade racing another writer fails at once
    /// with SQLITE_BUSY_SNAPSHOT). On PostgreSQL it is the same pool as `pool`: row locks and
    /// unique keys keep concurrent writers (and other nodes) apart.
    write: AnyPool,
    backend: Backend,
}

const USER_COLUMNS: &str =
    "id, username, password_hash, is_guest, nickname, motto, phone, last_seen";

fn user_from_row(row: &AnyRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        is_guest: row.try_get::<i64, _>("is_guest")? != 0,
        nickname: row.try_get("nickname")?,
        motto: row.try_get("motto")?,
        phone: row.try_get("phone")?,
        last_seen: row.try_get("last_seen")?,
    })
}

fn message_from_row(row: &AnyRow) -> StoreResult<Option<ChatMessage>> {
    let body: String = row.try_get("body")?;
    let msg_id: i64 = row.try_get("id")?;
    // A body we cannot read (hand-edited DB, future version) is skipped, not fatal.
    let body: MessageBody = match serde_json::from_str(&body) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(msg_id, error = %e, "skipping stored message with unreadable body");
            return Ok(None);
        }
    };
    let recipient_name: Option<String> = row.try_get("recipient_name")?;
    Ok(Some(ChatMessage {
        msg_id,
        client_msg_id: row.try_get("client_msg_id")?,
        from: row.try_get("sender_name")?,
        from_guest: row.try_get::<i64, _>("sender_guest")? != 0,
        to: match recipient_name {
            Some(username) => Target::User { username },
            None => Target::Square,
        },
        ts: row.try_get("created_at")?,
        body,
    }))
}

const MESSAGE_COLUMNS: &str =
    "id, client_msg_id, sender_name, sender_guest, recipient_name, created_at, body";

/// Per-connection settings of the SQLite backend (the message log sets the same, see
/// [`SqliteLog::open`]). WAL + NORMAL is durable against process crashes (kill -9), which is what
/// "persisted before acking" must survive; only an OS crash can lose the last commits. A larger
/// page cache and memory-mapped reads keep hot index pages out of read(2) calls.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -16384; \
     PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = 4000; PRAGMA temp_store = MEMORY;";

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and migrates it.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        // `mode=rwc` creates the file; the path goes in verbatim (percent-encoding would be
        // needed for `?` or `#` in it, which data directories do not have in practice).
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_with = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .after_connect(|conn, _| {
                    Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) })
                })
                .connect_with(options.clone())
        };
        let write = pool_with(1).await?;
        sqlx::migrate!("../../migrations/server/sqlite")
            .run(&write)
            .await?;
        let pool = pool_with(4).await?;
        Ok(Self {
            pool,
            write,
            backend: Backend::Sqlite,
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user@host:port/db`) and migrates
    /// it. Several nodes may do this at once: sqlx's migrator takes an advisory lock.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/server/postgres")
            .run(&pool)
            .await?;
        Ok(Self {
            write: pool.clone(),
            pool,
            backend: Backend::Postgres,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. On SQLite it holds the write lock from its first statement:
    /// the message log writes through its own connection, and a deferred transaction that read
    /// first would fail with SQLITE_BUSY_SNAPSHOT if the log committed before it wrote.
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// `FOR UPDATE` where the backend has it: a read-modify-write inside [`Self::begin_write`]
    /// needs it on PostgreSQL (SQLite's transaction already holds the only write lock).
    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The read pool, for tests that check rows directly.
    #[cfg(test)]
    pub(crate) fn pool_for_tests(&self) -> AnyPool {
        self.pool.clone()
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.pool.close().await;
        self.write.close().await;
    }

    // ---- users -------------------------------------------------------------------------------

    /// Looks a user up by username (case-insensitive).
    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let key = natter_proto::validate::username_key(username);
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Looks a user up by id.
    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Creates a registered user or a guest (`password_hash` `None`).
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        nickname: &str,
        motto: &str,
        phone: &str,
        now: i64,
    ) -> StoreResult<UserRecord> {
        let result = sqlx::query(
            "INSERT INTO users (username, username_key, password_hash, is_guest, nickname, motto, \
             phone, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING id",
        )
        .bind(username)
        .bind(natter_proto::validate::username_key(username))
        .bind(password_hash)
        .bind(password_hash.is_none() as i64)
        .bind(nickname)
        .bind(motto)
        .bind(phone)
        .bind(now)
        .bind(now)
        .fetch_one(&self.write)
        .await;
        match result {
            Ok(row) => Ok(UserRecord {
                id: row.try_get("id")?,
                username: username.to_owned(),
                password_hash: password_hash.map(str::to_owned),
                is_guest: password_hash.is_none(),
                nickname: nickname.to_owned(),
                motto: motto.to_owned(),
                phone: phone.to_owned(),
                last_seen: now,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::UsernameTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Updates profile fields that are `Some`.
    pub async fn update_profile(
        &self,
        id: UserId,
        nickname: Option<&str>,
        motto: Option<&str>,
        phone: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET nickname = COALESCE($1, nickname), motto = COALESCE($2, motto), \
             phone = COALESCE($3, phone) WHERE id = $4",
        )
        .bind(nickname)
        .bind(motto)
        .bind(phone)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records when a user was last seen (guests' grace period counts from it).
    pub async fn touch_user(&self, id: UserId, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Restarts every guest's grace period (after a server restart nobody is online yet).
    pub async fn touch_all_guests(&self, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen = $1 WHERE is_guest = 1")
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Deletes a user with everything hanging off them: sessions, friendships, requests,
    /// notices, private messages still queued for them, and every file transfer they sent or
    /// were sent (returned, so their bytes can be deleted and the other parties told). With
    /// `erase_sent_queue`, private messages they sent that nobody received yet go too (an erased
    /// account leaves nothing pending); delivered messages stay in the recipients' history
    /// either way.
    pub async fn delete_user(
        &self,
        id: UserId,
        erase_sent_queue: bool,
    ) -> StoreResult<Vec<RemovedTransfer>> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM messages WHERE recipient_id = $1 AND delivered_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if erase_sent_queue {
            sqlx::query(
                "DELETE FROM messages WHERE sender_id = $1 AND recipient_id IS NOT NULL \
                 AND delivered_at IS NULL",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        // Explicitly rather than by the foreign keys' cascade: the caller needs the ids.
        let removed = transfers::delete_user_transfers_in(&mut tx, id).await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Guests offline since before `cutoff`, for purging.
    pub async fn stale_guests(&self, cutoff: i64) -> StoreResult<Vec<(UserId, String)>> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, username FROM users WHERE is_guest = 1 AND last_seen < $1",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    // ---- sessions ----------------------------------------------------------------------------

    /// Stores a new session token hash for `user`.
    pub async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_used) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(now)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The user of a session token hash, marking the session used.
    pub async fn session_user(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<UserId>> {
        let row = sqlx::query_as::<_, (i64,)>(
            "UPDATE sessions SET last_used = $1 WHERE token_hash = $2 RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Revokes one session.
    pub async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Revokes every session of `user` except `keep`.
    pub async fn delete_other_sessions(&self, user: UserId, keep: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash != $2")
            .bind(user)
            .bind(keep)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- friends -----------------------------------------------------------------------------

    /// The user's friends.
    pub async fn friends(&self, user: UserId) -> StoreResult<Vec<FriendRecord>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.motto, u.is_guest FROM friendships f \
             JOIN users u ON u.id = f.friend_id WHERE f.user_id = $1 ORDER BY u.username_key",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FriendRecord {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    nickname: r.try_get("nickname")?,
                    motto: r.try_get("motto")?,
                    is_guest: r.try_get::<i64, _>("is_guest")? != 0,
                })
            })
            .collect()
    }

    /// Whether the two users are friends.
    pub async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM friendships WHERE user_id = $1 AND friend_id = $2")
            .bind(a)
            .bind(b)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Pending requests to and from `user`.
    pub async fn pending_requests(&self, user: UserId) -> StoreResult<PendingRequests> {
        let rows = sqlx::query(
            "SELECT fu.username AS from_name, tu.username AS to_name, r.message, r.created_at, \
             CAST(CASE WHEN r.to_id = $1 THEN 1 ELSE 0 END AS BIGINT) AS incoming FROM friend_requests r \
             JOIN users fu ON fu.id = r.from_id JOIN users tu ON tu.id = r.to_id \
             WHERE r.to_id = $2 OR r.from_id = $3 ORDER BY r.created_at",
        )
        .bind(user)
        .bind(user)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut pending = PendingRequests::default();
        for r in rows {
            let info = FriendRequestInfo {
                from: r.try_get("from_name")?,
                to: r.try_get("to_name")?,
                message: r.try_get("message")?,
                ts: r.try_get("created_at")?,
            };
            if r.try_get::<i64, _>("incoming")? != 0 {
                pending.incoming.push(info);
            } else {
                pending.outgoing.push(info);
            }
        }
        Ok(pending)
    }

    /// Whether `from` has a pending request to `to`.
    pub async fn has_request(&self, from: UserId, to: UserId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM friend_requests WHERE from_id = $1 AND to_id = $2")
            .bind(from)
            .bind(to)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Records a request.
    pub async fn create_request(
        &self,
        from: UserId,
        to: UserId,
        message: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO friend_requests (from_id, to_id, message, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(from)
        .bind(to)
        .bind(message)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Removes the request `from` → `to`; true if there was one.
    pub async fn delete_request(&self, from: UserId, to: UserId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM friend_requests WHERE from_id = $1 AND to_id = $2")
            .bind(from)
            .bind(to)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes two users friends and drops requests between them, in one transaction.
    pub async fn befriend(&self, a: UserId, b: UserId, now: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (x, y) in [(a, b), (b, a)] {
            sqlx::query(
                "INSERT INTO friendships (user_id, friend_id, since) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(x)
            .bind(y)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM friend_requests WHERE from_id = $1 AND to_id = $2")
                .bind(x)
                .bind(y)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a friendship; true if there was one.
    pub async fn unfriend(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM friendships WHERE (user_id = $1 AND friend_id = $2) OR (user_id = $3 AND friend_id = $4)",
        )
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- notices -----------------------------------------------------------------------------

    /// Queues a push (JSON) for a user's next login.
    pub async fn add_notice(&self, user: UserId, payload: &str, now: i64) -> StoreResult<()> {
        add_notice_in(&mut *self.write.acquire().await?, user, payload, now).await
    }

    /// Takes (reads and deletes) every queued notice of a user, oldest first.
    pub async fn take_notices(&self, user: UserId) -> StoreResult<Vec<String>> {
        // One statement: a read-then-write transaction would have to upgrade its lock and can
        // fail with SQLITE_BUSY_SNAPSHOT while the message writer commits.
        let mut rows = sqlx::query_as::<_, (i64, String)>(
            "DELETE FROM notices WHERE user_id = $1 RETURNING id, payload",
        )
        .bind(user)
        .fetch_all(&self.write)
        .await?;
        // RETURNING promises no order.
        rows.sort_by_key(|(id, _)| *id);
        Ok(rows.into_iter().map(|(_, p)| p).collect())
    }

    // ---- messages ----------------------------------------------------------------------------

    /// Private messages to `user` not yet acked, oldest first.
    pub async fn undelivered_for(&self, user: UserId) -> StoreResult<Vec<ChatMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE recipient_id = $1 AND delivered_at IS NULL ORDER BY id"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.extend(message_from_row(row)?);
        }
        Ok(out)
    }

    /// Receipts owed to `user`: their private messages that were delivered and whose receipt
    /// they have not acked yet, oldest first, as `(msg_id, client_msg_id, recipient, delivered_at)`.
    pub async fn pending_receipts(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<(MsgId, String, String, i64)>> {
        let rows = sqlx::query_as::<_, (i64, String, String, i64)>(
            "SELECT id, client_msg_id, recipient_name, delivered_at FROM messages \
             WHERE sender_id = $1 AND delivered_at IS NOT NULL AND receipt_seen = 0 \
             AND recipient_id IS NOT NULL ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// A page of a conversation, older than `before`, ascending; and whether more exist.
    pub async fn history(
        &self,
        conv_key: &str,
        before: Option<MsgId>,
        limit: u32,
    ) -> StoreResult<(Vec<ChatMessage>, bool)> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv_key = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(conv_key)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() > limit as usize;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            out.extend(message_from_row(row)?);
        }
        out.reverse();
        Ok((out, has_more))
    }
}

/// Queues a notice inside an open connection or transaction.
pub async fn add_notice_in(
    conn: &mut AnyConnection,
    user: UserId,
    payload: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO notices (user_id, payload, created_at) VALUES ($1, $2, $3)")
        .bind(user)
        .bind(payload)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
