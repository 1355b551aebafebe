//! Transfers: one row per file transfer, with its chunk map, so a restart resumes where it was.

use natter_proto::{MessageBody, RangeSet};

use sqlx::Row;

use super::{json, Store, StoreResult};
use crate::transfer::{TransferInfo, TransferState};

impl Store {
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
            // recorded meanwhile. The hash, named once the upload has it, is never unset.
            "UPDATE transfers SET state = ?, ranges = ?, path = ?, accepted = MAX(accepted, ?), error = ?, chunk_size = ?, message = ?, \
             sha256 = CASE WHEN ? = '' THEN sha256 ELSE ? END WHERE file_id = ?",
        )
        .bind(i.state.as_str())
        .bind(json(&t.ranges))
        .bind(&i.path)
        .bind(i.accepted as i64)
        .bind(&i.error)
        .bind(t.chunk_size as i64)
        .bind(t.message.as_ref().map(json))
        .bind(&i.sha256)
        .bind(&i.sha256)
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
