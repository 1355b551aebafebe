//! SQL for file transfers (`migrations/server/*/0003_files.sql`). Byte ranges are recorded only
//! after their bytes are written, in one transaction on the single writing connection, so two
//! chunks of one transfer never lose each other's range.

use natter_proto::{FileKind, FileOfferInfo};
use sqlx::Row;

use super::{Store, StoreError, StoreResult, UserId};
use natter_proto::RangeSet;

/// What a transfer holds after recording ranges or its hash, read in the same transaction.
#[derive(Debug, Clone)]
pub struct Held {
    /// Byte ranges stored.
    pub have: RangeSet,
    /// The SHA-256 the bytes must match; empty while the sender has not named it.
    pub sha256: String,
}

/// A transfer as stored.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    /// Server-assigned id.
    pub file_id: String,
    /// The sender.
    pub owner_id: UserId,
    /// The sender's username.
    pub owner_name: String,
    /// File or image.
    pub kind: FileKind,
    /// The receiving user; `None` for an image to the square.
    pub target_id: Option<UserId>,
    /// The receiving user's username.
    pub target_name: Option<String>,
    /// Sanitised file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 named by the sender (with the offer or with `file_complete`), lowercase hex;
    /// empty until then.
    pub sha256: String,
    /// Suggested chunk size.
    pub chunk_size: u32,
    /// The receiver's answer; images are always accepted.
    pub accepted: Option<bool>,
    /// Every byte stored and the hash verified.
    pub complete: bool,
    /// When it was offered.
    pub created_at: i64,
    /// When it expires.
    pub expires_at: i64,
    /// Byte ranges stored.
    pub have: RangeSet,
}

impl TransferRecord {
    /// The offer as its receiver sees it (`file_offered`).
    pub fn offer_info(&self) -> FileOfferInfo {
        FileOfferInfo {
            file_id: self.file_id.clone(),
            from: self.owner_name.clone(),
            to: self.target_name.clone().unwrap_or_default(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            ts: self.created_at,
        }
    }
}

/// A transfer about to be created.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    /// New id.
    pub file_id: String,
    /// Sender.
    pub owner_id: UserId,
    /// File or image.
    pub kind: FileKind,
    /// Receiving user, `None` for the square.
    pub target_id: Option<UserId>,
    /// Sanitised name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Offered SHA-256.
    pub sha256: String,
    /// Suggested chunk size.
    pub chunk_size: u32,
    /// Already accepted (images).
    pub accepted: bool,
    /// Already complete (an empty file).
    pub complete: bool,
    /// Now.
    pub created_at: i64,
    /// When it expires.
    pub expires_at: i64,
}

/// A transfer whose row was just deleted: its bytes and its parties are left to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedTransfer {
    /// The id.
    pub file_id: String,
    /// The sender.
    pub owner_id: UserId,
    /// The receiving user, if any.
    pub target_id: Option<UserId>,
}

const TRANSFER_COLUMNS: &str = "t.file_id, t.owner_id, o.username AS owner_name, t.kind, \
     t.target_id, r.username AS target_name, t.name, t.size, t.sha256, t.chunk_size, \
     t.accepted, t.complete, t.created_at, t.expires_at, t.have";
const TRANSFER_FROM: &str =
    "transfers t JOIN users o ON o.id = t.owner_id LEFT JOIN users r ON r.id = t.target_id";

fn kind_str(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Image => "image",
    }
}

fn transfer_from_row(row: &sqlx::any::AnyRow) -> StoreResult<TransferRecord> {
    let file_id: String = row.try_get("file_id")?;
    let have: String = row.try_get("have")?;
    let have = serde_json::from_str::<RangeSet>(&have).unwrap_or_else(|e| {
        // Claiming nothing is safe: the sender uploads the bytes again.
        tracing::warn!(%file_id, error = %e, "unreadable ranges; treating them as empty");
        RangeSet::new()
    });
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "image" => FileKind::Image,
        _ => FileKind::File,
    };
    Ok(TransferRecord {
        file_id,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        kind,
        target_id: row.try_get("target_id")?,
        target_name: row.try_get("target_name")?,
        name: row.try_get("name")?,
        size: row.try_get::<i64, _>("size")?.max(0) as u64,
        sha256: row.try_get("sha256")?,
        chunk_size: row
            .try_get::<i64, _>("chunk_size")?
            .clamp(1, i64::from(u32::MAX)) as u32,
        accepted: row.try_get::<Option<i64>, _>("accepted")?.map(|a| a != 0),
        complete: row.try_get::<i64, _>("complete")? != 0,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        have,
    })
}

fn removed_from_rows(rows: Vec<(String, i64, Option<i64>)>) -> Vec<RemovedTransfer> {
    rows.into_iter()
        .map(|(file_id, owner_id, target_id)| RemovedTransfer {
            file_id,
            owner_id,
            target_id,
        })
        .collect()
}

impl Store {
    /// Creates a transfer unless the sizes of the owner's unexpired transfers plus this one
    /// would exceed `quota` ([`StoreError::QuotaExceeded`]). Check and insert are one
    /// statement, so two offers at once cannot both slip under the quota.
    pub async fn create_transfer(&self, t: &NewTransfer, quota: u64) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO transfers (file_id, owner_id, kind, target_id, name, size, sha256, \
             chunk_size, accepted, complete, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
             WHERE (SELECT COALESCE(SUM(size), 0) FROM transfers \
                    WHERE owner_id = $13 AND expires_at > $14) + $15 <= $16",
        )
        .bind(&t.file_id)
        .bind(t.owner_id)
        .bind(kind_str(t.kind))
        .bind(t.target_id)
        .bind(&t.name)
        .bind(t.size as i64)
        .bind(&t.sha256)
        .bind(i64::from(t.chunk_size))
        .bind(t.accepted.then_some(1i64))
        .bind(t.complete as i64)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.owner_id)
        .bind(t.created_at)
        .bind(t.size as i64)
        .bind(quota.min(i64::MAX as u64) as i64)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::QuotaExceeded);
        }
        Ok(())
    }

    /// A transfer that has not expired by `now`.
    pub async fn transfer(&self, file_id: &str, now: i64) -> StoreResult<Option<TransferRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM {TRANSFER_FROM} WHERE t.file_id = $1 AND t.expires_at > $2"
        ))
        .bind(file_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(transfer_from_row).transpose()
    }

    /// Offers to `user` still waiting for an answer, oldest first (pushed at every login).
    pub async fn offers_waiting_for(
        &self,
        user: UserId,
        now: i64,
    ) -> StoreResult<Vec<TransferRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM {TRANSFER_FROM} WHERE t.target_id = $1 \
             AND t.kind = 'file' AND t.accepted IS NULL AND t.expires_at > $2 ORDER BY t.created_at"
        ))
        .bind(user)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(transfer_from_row).collect()
    }

    /// Records the receiver's acceptance; false if it was already accepted or is gone.
    pub async fn accept_transfer(&self, file_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE transfers SET accepted = 1 WHERE file_id = $1 AND (accepted IS NULL OR accepted <> 1)",
        )
        .bind(file_id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes one transfer's row; `None` if there was none.
    pub async fn delete_transfer(&self, file_id: &str) -> StoreResult<Option<RemovedTransfer>> {
        let row = sqlx::query_as::<_, (String, i64, Option<i64>)>(
            "DELETE FROM transfers WHERE file_id = $1 RETURNING file_id, owner_id, target_id",
        )
        .bind(file_id)
        .fetch_optional(&self.write)
        .await?;
        Ok(removed_from_rows(row.into_iter().collect()).pop())
    }

    /// Deletes every transfer that expired by `now`.
    pub async fn expire_transfers(&self, now: i64) -> StoreResult<Vec<RemovedTransfer>> {
        let rows = sqlx::query_as::<_, (String, i64, Option<i64>)>(
            "DELETE FROM transfers WHERE expires_at <= $1 RETURNING file_id, owner_id, target_id",
        )
        .bind(now)
        .fetch_all(&self.write)
        .await?;
        Ok(removed_from_rows(rows))
    }

    /// Adds byte ranges to a transfer's stored ranges (after their bytes were written), in one
    /// transaction however many there are: chunks written meanwhile are recorded together.
    /// Returns what the transfer holds now; `None` if it is gone.
    pub async fn record_ranges(
        &self,
        file_id: &str,
        ranges: &[(u64, u64)],
    ) -> StoreResult<Option<Held>> {
        let mut tx = self.begin_write().await?;
        let Some(Held { mut have, sha256 }) = self.held_for_update(&mut tx, file_id).await? else {
            return Ok(None);
        };
        for &(start, end) in ranges {
            have.insert(start, end);
        }
        sqlx::query("UPDATE transfers SET have = $1 WHERE file_id = $2")
            .bind(serde_json::to_string(&have).expect("pairs of integers serialise to JSON"))
            .bind(file_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Held { have, sha256 }))
    }

    /// What a transfer holds, its row locked for the rest of the transaction.
    async fn held_for_update(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        file_id: &str,
    ) -> StoreResult<Option<Held>> {
        let row = sqlx::query_as::<_, (String, String)>(&format!(
            "SELECT have, sha256 FROM transfers WHERE file_id = $1{}",
            self.for_update()
        ))
        .bind(file_id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|(have, sha256)| Held {
            // Written by this server as JSON; anything unreadable counts as nothing held.
            have: serde_json::from_str::<RangeSet>(&have).unwrap_or_default(),
            sha256,
        }))
    }

    /// Sets the SHA-256 of a transfer offered without one. Returns what it holds and the hash
    /// it has now: the one given, or the one it already had (which the caller compares);
    /// `None` if the transfer is gone.
    pub async fn set_transfer_hash(
        &self,
        file_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<Held>> {
        let mut tx = self.begin_write().await?;
        let Some(Held {
            have,
            sha256: known,
        }) = self.held_for_update(&mut tx, file_id).await?
        else {
            return Ok(None);
        };
        if known.is_empty() {
            sqlx::query("UPDATE transfers SET sha256 = $1 WHERE file_id = $2")
                .bind(sha256)
                .bind(file_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(Held {
            have,
            sha256: if known.is_empty() {
                sha256.to_owned()
            } else {
                known
            },
        }))
    }

    /// Marks a transfer verified; false if it is gone.
    pub async fn mark_complete(&self, file_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE transfers SET complete = 1 WHERE file_id = $1")
            .bind(file_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets every stored range of a transfer (its bytes failed the hash check).
    pub async fn reset_ranges(&self, file_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE transfers SET have = '[]', complete = 0 WHERE file_id = $1")
            .bind(file_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Every transfer id (to find files no transfer owns).
    pub async fn transfer_ids(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query_as::<_, (String,)>("SELECT file_id FROM transfers")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Transfers not verified yet (at start, those fully stored are checked).
    pub async fn unverified_transfers(&self) -> StoreResult<Vec<TransferRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM {TRANSFER_FROM} WHERE t.complete = 0"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(transfer_from_row).collect()
    }
}

/// Deletes every transfer a user sent or was sent, inside the transaction deleting the user.
pub(super) async fn delete_user_transfers_in(
    conn: &mut sqlx::AnyConnection,
    user: UserId,
) -> StoreResult<Vec<RemovedTransfer>> {
    let rows = sqlx::query_as::<_, (String, i64, Option<i64>)>(
        "DELETE FROM transfers WHERE owner_id = $1 OR target_id = $2 \
         RETURNING file_id, owner_id, target_id",
    )
    .bind(user)
    .bind(user)
    .fetch_all(conn)
    .await?;
    Ok(removed_from_rows(rows))
}
