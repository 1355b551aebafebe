//! The outbox: what the user sent, kept until the server has answered for it. Each entry is
//! written together with its history row, and leaves the outbox in the same transaction that
//! records the server's answer (sent, failed) in history.

use natter_proto::{MsgId, Target};

use super::history::index_in;
use super::{
    conv_key, from_row, json, LocalMessage, MessageState, OutboxEntry, Store, StoreResult, COLUMNS,
};

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

/// Takes an answered message out of the outbox.
async fn outbox_out(conn: &mut sqlx::SqliteConnection, client_msg_id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM outbox WHERE client_msg_id = ?")
        .bind(client_msg_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An `UPDATE messages` whose last two parameters are the sender and the client message id.
type AnswerUpdate<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl Store {
    /// The server answered for an outgoing message: it leaves the outbox and `update` records
    /// the answer in history, in one transaction.
    async fn answered<'q>(
        &'q self,
        client_msg_id: &'q str,
        update: AnswerUpdate<'q>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        outbox_out(&mut tx, client_msg_id).await?;
        update
            .bind(&self.me)
            .bind(client_msg_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let update = sqlx::query(
            "UPDATE messages SET msg_id = ?, ts = ?, state = CASE WHEN state = 'delivered' THEN state ELSE 'sent' END \
             WHERE sender = ? AND client_msg_id = ?",
        )
        .bind(msg_id)
        .bind(ts);
        self.answered(client_msg_id, update).await
    }

    /// The server refused an outgoing message for good.
    pub async fn mark_failed(&self, client_msg_id: &str, error: &str) -> StoreResult<()> {
        let update = sqlx::query(
            "UPDATE messages SET state = 'failed', error = ? WHERE sender = ? AND client_msg_id = ?",
        )
        .bind(error);
        self.answered(client_msg_id, update).await
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
}
