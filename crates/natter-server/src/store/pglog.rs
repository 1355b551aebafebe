//! The message log on PostgreSQL: the cluster backend of [`MessageLog`].
//!
//! The writer thread is not a runtime thread, so a batch runs on the server's runtime through its
//! [`Handle`]: the connection's socket stays registered with that runtime's reactor. A batch is a
//! handful of round trips whatever its size: one multi-row `INSERT … SELECT FROM UNNEST`, one
//! locking read of every acked row and one `UPDATE` per kind of change. Rows are locked in id
//! order, so two nodes acking overlapping messages wait for each other instead of deadlocking.

use std::collections::HashMap;

use natter_proto::MsgId;
use sqlx::{Connection, PgConnection, Row};
use tokio::runtime::Handle;

use super::log::{
    ack_effect, body_json, duplicate, fresh, placement, AckEffect, Committed, MessageLog, Original,
};
use super::{AckedMessage, NewMessage, StoreResult, UserId};

/// The message log over one PostgreSQL connection.
pub struct PgLog {
    conn: PgConnection,
    runtime: Handle,
    url: String,
}

impl std::fmt::Debug for PgLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLog").finish_non_exhaustive()
    }
}

const INSERT: &str = "INSERT INTO messages (sender_id, sender_name, sender_guest, client_msg_id, \
     conv_key, recipient_id, recipient_name, body, created_at) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
     $6::bigint[], $7::text[], $8::text[], $9::bigint[]) \
     ON CONFLICT (sender_id, client_msg_id) DO NOTHING \
     RETURNING id, sender_id, client_msg_id";
const EXISTING: &str = "SELECT id, sender_name, sender_guest, recipient_id, recipient_name, \
     created_at, body FROM messages WHERE sender_id = $1 AND client_msg_id = $2";
const ACK_LOOKUP: &str = "SELECT id, sender_id, recipient_id, delivered_at IS NULL AS pending, \
     client_msg_id, recipient_name FROM messages \
     WHERE id = ANY($1) AND recipient_id IS NOT NULL ORDER BY id FOR UPDATE";
const DELIVER: &str = "UPDATE messages SET delivered_at = $2 WHERE id = ANY($1)";
const RECEIPT_SEEN: &str =
    "UPDATE messages SET receipt_seen = 1 WHERE id = ANY($1) AND receipt_seen = 0";

/// An acked row as the lookup found it, updated as the batch's own acks change it.
struct AckRow {
    sender_id: UserId,
    recipient_id: Option<UserId>,
    pending: bool,
    client_msg_id: String,
    recipient_name: Option<String>,
}

impl PgLog {
    /// Connects to the database at `url` (its schema must exist: [`super::Store::connect`]
    /// migrates it). Must be called on the runtime that serves the server.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Ok(Self {
            conn: PgConnection::connect(url).await?,
            runtime: Handle::current(),
            url: url.to_owned(),
        })
    }

    async fn commit_async(
        &mut self,
        saves: &[&NewMessage],
        acks: &[(UserId, &[MsgId])],
        now: i64,
    ) -> StoreResult<Committed> {
        let mut tx = self.conn.begin().await?;
        let mut out = Committed {
            stored: Vec::with_capacity(saves.len()),
            acked: Vec::with_capacity(acks.len()),
        };

        if !saves.is_empty() {
            let mut cols = Columns::with_capacity(saves.len());
            for msg in saves {
                cols.push(msg, now);
            }
            let rows = sqlx::query(INSERT)
                .bind(cols.sender_id)
                .bind(cols.sender_name)
                .bind(cols.sender_guest)
                .bind(cols.client_msg_id)
                .bind(cols.conv_key)
                .bind(cols.recipient_id)
                .bind(cols.recipient_name)
                .bind(cols.body)
                .bind(cols.created_at)
                .fetch_all(&mut *tx)
                .await?;
            // RETURNING promises no order; a key resent within the batch comes back once.
            let mut inserted: HashMap<(UserId, String), MsgId> = HashMap::with_capacity(rows.len());
            for row in rows {
                inserted.insert(
                    (row.try_get("sender_id")?, row.try_get("client_msg_id")?),
                    row.try_get("id")?,
                );
            }
            for msg in saves {
                let key = (msg.sender_id, msg.client_msg_id.clone());
                if let Some(id) = inserted.remove(&key) {
                    out.stored.push(fresh(msg, id, now));
                    continue;
                }
                // Stored before, or earlier in this batch: the original, as stored.
                let row = sqlx::query(EXISTING)
                    .bind(msg.sender_id)
                    .bind(&msg.client_msg_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let original = Original {
                    msg_id: row.try_get("id")?,
                    from: row.try_get("sender_name")?,
                    from_guest: row.try_get::<i64, _>("sender_guest")? != 0,
                    recipient_id: row.try_get("recipient_id")?,
                    recipient_name: row.try_get("recipient_name")?,
                    ts: row.try_get("created_at")?,
                    body: row.try_get("body")?,
                };
                out.stored.push(duplicate(msg, original));
            }
        }

        let ids: Vec<MsgId> = acks
            .iter()
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        if !ids.is_empty() {
            let mut found: HashMap<MsgId, AckRow> = HashMap::with_capacity(ids.len());
            for row in sqlx::query(ACK_LOOKUP)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
            {
                found.insert(
                    row.try_get("id")?,
                    AckRow {
                        sender_id: row.try_get("sender_id")?,
                        recipient_id: row.try_get("recipient_id")?,
                        pending: row.try_get("pending")?,
                        client_msg_id: row.try_get("client_msg_id")?,
                        recipient_name: row.try_get("recipient_name")?,
                    },
                );
            }
            // Applied in order against the rows as the batch leaves them, exactly as one
            // statement per ack would.
            let (mut deliver, mut receipts) = (Vec::new(), Vec::new());
            for (user, ids) in acks {
                let mut acked = Vec::new();
                for id in ids.iter() {
                    let Some(row) = found.get_mut(id) else {
                        continue;
                    };
                    match ack_effect(*user, row.sender_id, row.recipient_id, row.pending) {
                        AckEffect::Deliver => {
                            row.pending = false;
                            deliver.push(*id);
                            acked.push(AckedMessage {
                                msg_id: *id,
                                sender_id: row.sender_id,
                                client_msg_id: row.client_msg_id.clone(),
                                recipient_name: row.recipient_name.clone().unwrap_or_default(),
                            });
                        }
                        AckEffect::ReceiptSeen => receipts.push(*id),
                        AckEffect::Ignore => {}
                    }
                }
                acked.sort_by_key(|a| a.msg_id);
                out.acked.push(acked);
            }
            if !deliver.is_empty() {
                sqlx::query(DELIVER)
                    .bind(&deliver)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if !receipts.is_empty() {
                sqlx::query(RECEIPT_SEEN)
                    .bind(&receipts)
                    .execute(&mut *tx)
                    .await?;
            }
        } else {
            out.acked.extend(acks.iter().map(|_| Vec::new()));
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// A batch's messages as one array per column, for `UNNEST`.
struct Columns {
    sender_id: Vec<i64>,
    sender_name: Vec<String>,
    sender_guest: Vec<i64>,
    client_msg_id: Vec<String>,
    conv_key: Vec<String>,
    recipient_id: Vec<Option<i64>>,
    recipient_name: Vec<Option<String>>,
    body: Vec<String>,
    created_at: Vec<i64>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            sender_id: Vec::with_capacity(n),
            sender_name: Vec::with_capacity(n),
            sender_guest: Vec::with_capacity(n),
            client_msg_id: Vec::with_capacity(n),
            conv_key: Vec::with_capacity(n),
            recipient_id: Vec::with_capacity(n),
            recipient_name: Vec::with_capacity(n),
            body: Vec::with_capacity(n),
            created_at: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, msg: &NewMessage, now: i64) {
        let (conv_key, recipient_id, recipient_name) = placement(msg);
        self.sender_id.push(msg.sender_id);
        self.sender_name.push(msg.sender_name.clone());
        self.sender_guest.push(i64::from(msg.sender_guest));
        self.client_msg_id.push(msg.client_msg_id.clone());
        self.conv_key.push(conv_key);
        self.recipient_id.push(recipient_id);
        self.recipient_name.push(recipient_name.map(str::to_owned));
        self.body.push(body_json(msg));
        self.created_at.push(now);
    }
}

impl MessageLog for PgLog {
    fn commit(
        &mut self,
        saves: &[&NewMessage],
        acks: &[(UserId, &[MsgId])],
        now: i64,
    ) -> StoreResult<Committed> {
        let runtime = self.runtime.clone();
        let result = runtime.block_on(self.commit_async(saves, acks, now));
        if let Err(e) = &result {
            // A batch that failed is refused as a whole (its senders try again); a connection
            // that broke (the database restarted, a network blip, an administrator's kill) is
            // replaced for the next one.
            if runtime.block_on(self.conn.ping()).is_err() {
                tracing::warn!(error = %e, "message log connection lost; reconnecting");
                match runtime.block_on(PgConnection::connect(&self.url)) {
                    Ok(conn) => self.conn = conn,
                    Err(e) => tracing::warn!(error = %e, "message log reconnect failed"),
                }
            }
        }
        result
    }
}
