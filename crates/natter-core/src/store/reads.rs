//! Read marks: how far each conversation has been read, and the unread counts that follow from
//! them (received messages after the mark).

use natter_proto::{MsgId, Target};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{conv_of, Store, StoreResult};

/// A conversation with messages nobody has read yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Unread {
    /// The square, or the other participant.
    pub with: Target,
    /// Received messages after the read mark.
    pub count: u32,
    /// The newest message read (0: none), where a "new messages" divider goes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub read_up_to: MsgId,
    /// The newest message counted: a live message at or below it is already in `count`.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub newest: MsgId,
}

/// The conversation a store key names (`square` or `u:<peer>`).
fn target_of(conv: &str) -> Option<Target> {
    match conv {
        "square" => Some(Target::Square),
        _ => conv.strip_prefix("u:").map(|peer| Target::User {
            username: peer.to_owned(),
        }),
    }
}

impl Store {
    /// Every conversation with unread messages.
    pub async fn unread(&self) -> StoreResult<Vec<Unread>> {
        let rows = sqlx::query(
            "SELECT m.conv, COUNT(*) AS n, COALESCE(r.msg_id, 0) AS mark, MAX(m.msg_id) AS newest \
             FROM messages m LEFT JOIN read_marks r ON r.conv = m.conv \
             WHERE m.msg_id > COALESCE(r.msg_id, 0) AND m.state = 'received' \
             AND lower(m.sender) <> lower(?) \
             GROUP BY m.conv",
        )
        .bind(&self.me)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let conv: String = row.try_get("conv")?;
            let Some(with) = target_of(&conv) else {
                tracing::warn!(conv, "skipping messages of an unknown conversation");
                continue;
            };
            out.push(Unread {
                with,
                count: u32::try_from(row.try_get::<i64, _>("n")?).unwrap_or(u32::MAX),
                read_up_to: row.try_get("mark")?,
                newest: row.try_get("newest")?,
            });
        }
        Ok(out)
    }

    /// Marks a conversation read up to its newest stored message. A mark never moves back: an
    /// older page loaded later does not make read messages unread again.
    pub async fn mark_read(&self, with: &Target) -> StoreResult<MsgId> {
        let conv = conv_of(with);
        let row = sqlx::query(
            "INSERT INTO read_marks (conv, msg_id) \
             SELECT ?1, COALESCE(MAX(msg_id), 0) FROM messages WHERE conv = ?1 AND msg_id IS NOT NULL \
             ON CONFLICT(conv) DO UPDATE SET msg_id = MAX(read_marks.msg_id, excluded.msg_id) \
             RETURNING msg_id",
        )
        .bind(&conv)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("msg_id")?)
    }
}
