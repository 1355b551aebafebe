//! The message log: where chat messages and acks are committed, one transaction per batch.
//!
//! This is the hot path's only contact with storage, so it sits behind its own small trait
//! ([`MessageLog`]): the writer ([`crate::persist`]) owns one on a dedicated thread and knows
//! nothing of SQL. [`SqliteLog`] is the embedded backend: a synchronous rusqlite handle with
//! cached prepared statements, so a batch costs no hand-off to another thread per statement
//! (sqlx's async SQLite driver does one per statement, and that hand-off was most of the
//! writer's time). Another backend (PostgreSQL) implements the same trait.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use natter_proto::{ChatMessage, MessageBody, MsgId, Target};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{
    private_conv_key, AckedMessage, NewMessage, StoreResult, StoredMessage, UserId, SQUARE_CONV,
};

/// What one committed batch produced, in the order of its inputs.
#[derive(Debug, Default)]
pub struct Committed {
    /// One per message saved: the stored message, or the original for a duplicate.
    pub stored: Vec<StoredMessage>,
    /// One per ack: the private messages it delivered (their senders are owed a receipt).
    pub acked: Vec<Vec<AckedMessage>>,
}

/// Durable storage for chat messages and their delivery state.
///
/// `commit` is synchronous and runs on the writer's own thread: it must return only once the
/// batch is durable (persist-before-ack), and it either stores all of it or none of it.
pub trait MessageLog: Send + 'static {
    /// Stores `saves` in order and applies `acks` in one transaction.
    ///
    /// A `(sender, client_msg_id)` already stored (earlier, or earlier in this batch) yields the
    /// original message with `duplicate` set. An acked id of a private message addressed to that
    /// user and not yet delivered is marked delivered and returned; an acked id of the user's own
    /// delivered message records that its receipt was seen; any other id is ignored, so nobody
    /// can fake a delivery or silence someone's receipt.
    fn commit(
        &mut self,
        saves: &[&NewMessage],
        acks: &[(UserId, &[MsgId])],
        now: i64,
    ) -> StoreResult<Committed>;
}

/// The embedded backend: the server's SQLite file through a second, synchronous connection.
pub struct SqliteLog {
    conn: rusqlite::Connection,
    checkpointer: Checkpointer,
}

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages (4 KiB each) past which the checkpointer also restarts the WAL from its start.
const RESTART_PAGES: i64 = 16_384;

/// Copies committed WAL frames into the database file on a thread of its own.
///
/// SQLite checkpoints inside the commit that crosses `wal_autocheckpoint`: on the writer's
/// thread that stalled every message behind it for 10–30 ms about twenty times a second at
/// 5,000 msgs/s (the commit p50 was 55 µs). A `PASSIVE` checkpoint on another connection takes
/// no lock that commits wait for. It cannot rewind the WAL while commits keep coming, though
/// (the file grew by 50 MB/s): only a writer that starts with every frame copied does. So once
/// the WAL is long, the checkpointer asks the writer to copy the frames written since its last
/// pass itself, after a commit: one stall of 10–20 ms about once a second at 5,000 msgs/s (a
/// `RESTART` from here made the writer sleep in SQLite's busy handler for 30–60 ms instead).
/// The thread ends when the log is dropped.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the WAL is long enough to start over.
    restart: Arc<AtomicBool>,
}

impl Checkpointer {
    fn spawn(path: &Path, restart_pages: i64) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let restart = Arc::new(AtomicBool::new(false));
        let wanted = restart.clone();
        let thread = std::thread::Builder::new()
            .name("natter-checkpoint".into())
            .spawn(move || loop {
                let last = matches!(
                    stopped.recv_timeout(CHECKPOINT_EVERY),
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                );
                match wal_checkpoint(&conn) {
                    Ok(pages) if pages > restart_pages => wanted.store(true, Ordering::Relaxed),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
                if last {
                    return;
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            restart,
        })
    }
}

/// Copies what it can of the WAL into the database file; returns the WAL's length in pages.
fn wal_checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLog").finish_non_exhaustive()
    }
}

const INSERT: &str = "INSERT INTO messages (sender_id, sender_name, sender_guest, client_msg_id, \
     conv_key, recipient_id, recipient_name, body, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
     ON CONFLICT (sender_id, client_msg_id) DO NOTHING";
const EXISTING: &str = "SELECT id, sender_name, sender_guest, recipient_id, recipient_name, \
     created_at, body FROM messages WHERE sender_id = ?1 AND client_msg_id = ?2";
const ACK_LOOKUP: &str = "SELECT sender_id, recipient_id, delivered_at IS NULL, client_msg_id, \
     recipient_name FROM messages WHERE id = ?1 AND recipient_id IS NOT NULL";
const DELIVER: &str = "UPDATE messages SET delivered_at = ?2 WHERE id = ?1";
const RECEIPT_SEEN: &str =
    "UPDATE messages SET receipt_seen = 1 WHERE id = ?1 AND receipt_seen = 0";

impl SqliteLog {
    /// Opens the message log on the database at `path`. The schema must exist already
    /// ([`super::Store::open`] migrates it first).
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, RESTART_PAGES)
    }

    fn open_with(path: &Path, restart_pages: i64) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path)?;
        // The same settings as the sqlx pools (see `Store::open`): WAL + NORMAL survives a
        // killed process; waiting on the other writer (logins, friends, files) instead of
        // failing keeps the two connections from ever refusing each other.
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "normal")?;
        conn.pragma_update(None, "foreign_keys", "on")?;
        conn.pragma_update(None, "cache_size", -16384)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        // Checkpoints happen on the checkpointer's thread, never inside a batch's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL that grew during a burst is cut back when it starts over.
        conn.pragma_update(None, "journal_size_limit", restart_pages * 4096)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Self {
            conn,
            checkpointer: Checkpointer::spawn(path, restart_pages)?,
        })
    }
}

fn target_of(recipient_name: Option<String>) -> Target {
    match recipient_name {
        Some(username) => Target::User { username },
        None => Target::Square,
    }
}

/// Where a message is filed: its conversation key, and its recipient's id and name.
pub(super) fn placement(msg: &NewMessage) -> (String, Option<UserId>, Option<&str>) {
    match &msg.recipient {
        Some((id, name)) => (
            private_conv_key(msg.sender_id, *id),
            Some(*id),
            Some(name.as_str()),
        ),
        None => (SQUARE_CONV.to_owned(), None, None),
    }
}

/// The stored form of a message body.
pub(super) fn body_json(msg: &NewMessage) -> String {
    serde_json::to_string(&msg.body).expect("MessageBody serialises to JSON")
}

/// A message just stored under `msg_id`.
pub(super) fn fresh(msg: &NewMessage, msg_id: MsgId, now: i64) -> StoredMessage {
    // Not `placement`: that formats the conversation key, which the insert already used.
    let (recipient_id, recipient_name) = match &msg.recipient {
        Some((id, name)) => (Some(*id), Some(name.as_str())),
        None => (None, None),
    };
    StoredMessage {
        message: ChatMessage {
            msg_id,
            client_msg_id: msg.client_msg_id.clone(),
            from: msg.sender_name.clone(),
            from_guest: msg.sender_guest,
            to: target_of(recipient_name.map(str::to_owned)),
            ts: now,
            body: msg.body.clone(),
        },
        recipient_id,
        duplicate: false,
    }
}

/// The stored row of a message sent again with the same `client_msg_id`.
pub(super) struct Original {
    pub msg_id: MsgId,
    pub from: String,
    pub from_guest: bool,
    pub recipient_id: Option<UserId>,
    pub recipient_name: Option<String>,
    pub ts: i64,
    pub body: String,
}

/// The original of a resent message, handed back as it was stored.
pub(super) fn duplicate(msg: &NewMessage, o: Original) -> StoredMessage {
    // A body we cannot read (hand-edited DB, future version) is answered with the resent body
    // rather than failing the whole batch.
    let body = serde_json::from_str::<MessageBody>(&o.body).unwrap_or_else(|e| {
        tracing::warn!(msg_id = o.msg_id, error = %e, "stored message body unreadable");
        msg.body.clone()
    });
    StoredMessage {
        message: ChatMessage {
            msg_id: o.msg_id,
            client_msg_id: msg.client_msg_id.clone(),
            from: o.from,
            from_guest: o.from_guest,
            to: target_of(o.recipient_name),
            ts: o.ts,
            body,
        },
        recipient_id: o.recipient_id,
        duplicate: true,
    }
}

/// What an acked id does, given the acking user and the message's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckEffect {
    /// The recipient received it: mark it delivered (its sender is owed a receipt).
    Deliver,
    /// The sender saw its receipt.
    ReceiptSeen,
    /// Anybody else's id, or nothing left to do: ignored, so nobody can fake a delivery or
    /// silence someone's receipt.
    Ignore,
}

/// The one rule for acks, shared by every backend.
pub(super) fn ack_effect(
    user: UserId,
    sender_id: UserId,
    recipient_id: Option<UserId>,
    pending: bool,
) -> AckEffect {
    if pending && recipient_id == Some(user) {
        AckEffect::Deliver
    } else if !pending && sender_id == user {
        AckEffect::ReceiptSeen
    } else {
        AckEffect::Ignore
    }
}

impl MessageLog for SqliteLog {
    fn commit(
        &mut self,
        saves: &[&NewMessage],
        acks: &[(UserId, &[MsgId])],
        now: i64,
    ) -> StoreResult<Committed> {
        // IMMEDIATE takes the write lock up front: a deferred transaction that read first could
        // fail with SQLITE_BUSY_SNAPSHOT when the other writer commits in between.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Committed {
            stored: Vec::with_capacity(saves.len()),
            acked: Vec::with_capacity(acks.len()),
        };
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let mut existing = tx.prepare_cached(EXISTING)?;
            for msg in saves {
                let (conv_key, recipient_id, recipient_name) = placement(msg);
                let inserted = insert.execute(params![
                    msg.sender_id,
                    msg.sender_name,
                    msg.sender_guest,
                    msg.client_msg_id,
                    conv_key,
                    recipient_id,
                    recipient_name,
                    body_json(msg),
                    now
                ])?;
                if inserted == 1 {
                    out.stored.push(fresh(msg, tx.last_insert_rowid(), now));
                    continue;
                }
                // Stored before (a resend): hand back the original as it was stored.
                let original =
                    existing.query_row(params![msg.sender_id, msg.client_msg_id], |row| {
                        Ok(Original {
                            msg_id: row.get(0)?,
                            from: row.get(1)?,
                            from_guest: row.get(2)?,
                            recipient_id: row.get(3)?,
                            recipient_name: row.get(4)?,
                            ts: row.get(5)?,
                            body: row.get(6)?,
                        })
                    })?;
                out.stored.push(duplicate(msg, original));
            }

            let mut lookup = tx.prepare_cached(ACK_LOOKUP)?;
            let mut deliver = tx.prepare_cached(DELIVER)?;
            let mut receipt_seen = tx.prepare_cached(RECEIPT_SEEN)?;
            for (user, ids) in acks {
                let mut acked = Vec::new();
                for &id in *ids {
                    let row = lookup
                        .query_row(params![id], |row| {
                            Ok((
                                row.get::<_, i64>(0)?,
                                row.get::<_, Option<i64>>(1)?,
                                row.get::<_, bool>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, Option<String>>(4)?,
                            ))
                        })
                        .optional()?;
                    let Some((sender_id, recipient_id, pending, client_msg_id, recipient_name)) =
                        row
                    else {
                        continue;
                    };
                    match ack_effect(*user, sender_id, recipient_id, pending) {
                        AckEffect::Deliver => {
                            deliver.execute(params![id, now])?;
                            acked.push(AckedMessage {
                                msg_id: id,
                                sender_id,
                                client_msg_id,
                                recipient_name: recipient_name.unwrap_or_default(),
                            });
                        }
                        AckEffect::ReceiptSeen => {
                            receipt_seen.execute(params![id])?;
                        }
                        AckEffect::Ignore => {}
                    }
                }
                acked.sort_by_key(|a| a.msg_id);
                out.acked.push(acked);
            }
        }
        tx.commit()?;
        if self.checkpointer.restart.swap(false, Ordering::Relaxed) {
            // Copies only what came since the checkpointer's last pass; the next commit then
            // starts the WAL over. Not copying now only means the WAL stays long a while.
            if let Err(e) = wal_checkpoint(&self.conn) {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn wal_bytes(db: &Path) -> u64 {
        let wal = db.with_extension("db-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test]
    async fn the_wal_starts_over_while_commits_keep_coming_and_nothing_is_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("natter.db");
        let (store, users) = Store::for_tests(&path, &["alice", "bobby"]).await;
        let (alice, bob) = (&users[0], &users[1]);
        // With no checkpoint in the commits, only the checkpointer keeps the WAL short.
        let mut log = SqliteLog::open_with(&path, 64).expect("log");
        let rounds = 600;
        let mut written = 0u64;
        for n in 0..rounds {
            let before = wal_bytes(&path);
            let message = NewMessage {
                sender_id: alice.id,
                sender_name: "alice".into(),
                sender_guest: false,
                client_msg_id: format!("c{n}"),
                recipient: Some((bob.id, "bobby".into())),
                body: MessageBody::Text {
                    text: format!("message {n}"),
                },
            };
            let done = log.commit(&[&message], &[], 1).expect("commit");
            assert_eq!(done.stored.len(), 1);
            written += wal_bytes(&path).saturating_sub(before);
            std::thread::sleep(Duration::from_millis(1));
        }
        let left = wal_bytes(&path);
        assert!(
            left * 3 < written,
            "the WAL started over: {left} bytes left of {written} written"
        );
        drop(log);
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&store.pool_for_tests())
            .await
            .expect("count");
        assert_eq!(total, rounds, "every committed message is in the database");
    }
}
