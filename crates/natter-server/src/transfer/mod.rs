//! File transfers (issue 7, PROTOCOL.md §5.7) apart from their requests: the rules of who may
//! do what ([`role`]), transfer ids, the suggested chunk size, the bytes on disk ([`blobs`]),
//! the held ranges ([`ranges`]), streaming fetches inside a connection ([`fetch`]), the
//! SHA-256 check once every byte is stored, and deleting transfers (cancel, expiry, erase).
//! The requests themselves are `handlers/files.rs`; the SQL is `store/transfers.rs`.

pub mod blobs;
pub mod fetch;
pub mod upload;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use natter_proto::{FileKind, ServerMessage};
use rand::RngCore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::hub::Hub;
use crate::store::{RemovedTransfer, Store, TransferRecord, UserId};
use blobs::{BlobError, Blobs};
use upload::Upload;

/// SHA-256 of no bytes: a transfer of size 0 is complete when it is offered.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Length of a transfer id: 128 random bits in base64url without padding.
const FILE_ID_LEN: usize = 22;

/// A new transfer id: 128 random bits, base64url, so ids cannot be guessed or enumerated.
pub fn new_file_id() -> String {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Whether `id` has the shape of an id this server makes (anything else names no transfer).
pub fn is_file_id(id: &str) -> bool {
    id.len() == FILE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The suggested chunk size (§5.7 `file_offer`): it grows with the file, as Telegram's parts
/// do, so small files are not one huge frame and big ones are not a million tiny ones; never
/// above the frame limit.
pub fn suggest_chunk_size(size: u64, max_frame_bytes: usize) -> u32 {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    let by_size = match size {
        s if s < MIB => 64 * KIB,
        s if s < 64 * MIB => 256 * KIB,
        s if s < 1024 * MIB => 512 * KIB,
        _ => MIB,
    };
    by_size.min(max_frame_bytes as u64) as u32
}

/// How a session stands to a transfer (§5.7 rule 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Offered it: uploads, may always fetch, may cancel.
    Sender,
    /// The user it is for (for a square image: any signed-in user).
    Receiver,
    /// Sees nothing of it: every request on it is `not_found`, so ids cannot be probed.
    Stranger,
}

/// The role of `user` in `transfer`.
pub fn role(transfer: &TransferRecord, user: UserId) -> Role {
    if transfer.owner_id == user {
        Role::Sender
    } else if transfer.target_id == Some(user)
        || (transfer.kind == FileKind::Image && transfer.target_id.is_none())
    {
        Role::Receiver
    } else {
        Role::Stranger
    }
}

/// The outcome of checking a fully stored transfer against its offered SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The bytes match; the transfer is complete.
    Verified,
    /// They do not; every stored byte was discarded.
    Mismatch {
        /// What the stored bytes hashed to.
        actual: String,
    },
    /// The transfer was deleted meanwhile.
    Gone,
    /// The disk or database failed; a re-sent chunk tries again.
    Failed,
}

/// Transfer state shared by every connection: the bytes, the uploads under way and the hash
/// checks. Clones share it.
#[derive(Debug, Clone)]
pub struct Transfers {
    /// The bytes on disk.
    pub blobs: Blobs,
    verifying: Arc<Mutex<HashSet<String>>>,
    /// Uploads under way, so their chunks share one open file, one running hash and one group
    /// commit. Memory only: after a restart the first chunk opens it again (and the check at
    /// completion reads the file, as the running hash starts over).
    uploads: Arc<Mutex<HashMap<String, Arc<Upload>>>>,
    tasks: TaskTracker,
}

/// Most uploads kept open at once (each holds a file descriptor). An abandoned one is closed
/// when a new one needs its place.
const UPLOADS_OPEN_MAX: usize = 256;

impl Transfers {
    /// Transfer state over the bytes in `blobs`.
    pub fn new(blobs: Blobs) -> Self {
        Self {
            blobs,
            verifying: Arc::default(),
            uploads: Arc::default(),
            tasks: TaskTracker::new(),
        }
    }

    /// The upload of `file_id` under way here, if any.
    pub fn live_upload(&self, file_id: &str) -> Option<Arc<Upload>> {
        lock(&self.uploads).get(file_id).cloned()
    }

    /// Opens the upload of a transfer for its chunks (or joins the one already open).
    pub async fn open_upload(&self, t: &TransferRecord) -> Result<Arc<Upload>, BlobError> {
        let fresh = Arc::new(Upload::open(&self.blobs, &t.file_id, t.owner_id, t.size).await?);
        let mut uploads = lock(&self.uploads);
        if let Some(open) = uploads.get(&t.file_id) {
            return Ok(open.clone());
        }
        if uploads.len() >= UPLOADS_OPEN_MAX {
            // Close one nobody is writing to; if all are busy, this one simply goes uncached.
            let idle = uploads
                .iter()
                .find(|(_, u)| Arc::strong_count(u) == 1)
                .map(|(id, _)| id.clone());
            match idle {
                Some(id) => {
                    uploads.remove(&id);
                }
                None => return Ok(fresh),
            }
        }
        uploads.insert(t.file_id.clone(), fresh.clone());
        Ok(fresh)
    }

    /// Closes the upload of `file_id` (it completed, failed its check, or was deleted).
    pub fn forget_upload(&self, file_id: &str) {
        lock(&self.uploads).remove(file_id);
    }

    /// Whether the SHA-256 check of `file_id` is running.
    pub fn is_verifying(&self, file_id: &str) -> bool {
        lock(&self.verifying).contains(file_id)
    }

    /// Starts checking a fully stored transfer's SHA-256, unless a check of it is already
    /// under way (then `None`). Hashing gigabytes takes a while, so it runs as a task of its own
    /// that a dropped connection does not cancel; the handle resolves with the verdict.
    pub fn verify(
        &self,
        store: &Store,
        file_id: &str,
        size: u64,
        sha256: &str,
    ) -> Option<JoinHandle<Verdict>> {
        if !lock(&self.verifying).insert(file_id.to_owned()) {
            return None;
        }
        let streamed = self
            .live_upload(file_id)
            .filter(|u| u.size == size)
            .and_then(|u| u.streamed_hash());
        let (store, blobs, verifying) = (store.clone(), self.blobs.clone(), self.verifying.clone());
        let uploads = self.uploads.clone();
        let (file_id, expected) = (file_id.to_owned(), sha256.to_owned());
        Some(self.tasks.spawn(async move {
            let verdict = check(&store, &blobs, &file_id, &expected, streamed).await;
            if verdict != Verdict::Failed {
                // Verified, discarded or gone: the upload is over (a new one starts afresh).
                lock(&uploads).remove(&file_id);
            }
            lock(&verifying).remove(&file_id);
            tracing::info!(%file_id, ?verdict, "transfer checked");
            verdict
        }))
    }

    /// After a start: deletes bytes no transfer owns (a crash between deleting a row and its
    /// file) and checks transfers whose bytes were all stored but not yet verified.
    pub async fn recover(&self, store: &Store) {
        match store.transfer_ids().await {
            Ok(ids) => match self.blobs.remove_orphans(ids.into_iter().collect()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "removed bytes of deleted transfers"),
                Err(e) => tracing::warn!(error = %e, "could not sweep transfer files"),
            },
            Err(e) => tracing::warn!(error = %e, "could not list transfers"),
        }
        match store.unverified_transfers().await {
            Ok(transfers) => {
                // Those still waiting for their hash are checked when the sender names it.
                for t in transfers
                    .iter()
                    .filter(|t| t.have.covers(t.size) && !t.sha256.is_empty())
                {
                    drop(self.verify(store, &t.file_id, t.size, &t.sha256));
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list unverified transfers"),
        }
    }

    /// Waits (at most `limit`) for hash checks under way; for shutdown.
    pub async fn finish(&self, limit: std::time::Duration) {
        self.tasks.close();
        if tokio::time::timeout(limit, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "hash checks still running at shutdown; they are redone at the next start"
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock leaves a plain set behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn check(
    store: &Store,
    blobs: &Blobs,
    file_id: &str,
    expected: &str,
    streamed: Option<String>,
) -> Verdict {
    let actual = match streamed {
        Some(hash) => Ok(hash),
        None => blobs.sha256(file_id).await,
    };
    match actual {
        Ok(actual) if actual == expected => match store.mark_complete(file_id).await {
            Ok(true) => Verdict::Verified,
            Ok(false) => Verdict::Gone,
            Err(e) => {
                tracing::error!(error = %e, file_id, "could not record a verified transfer");
                Verdict::Failed
            }
        },
        Ok(actual) => {
            // Ranges before bytes: a crash in between leaves bytes nobody claims, which the
            // re-upload overwrites; the other order could claim bytes that are gone.
            if let Err(e) = store.reset_ranges(file_id).await {
                tracing::error!(error = %e, file_id, "could not discard a mismatching transfer");
                return Verdict::Failed;
            }
            if let Err(e) = blobs.truncate(file_id).await {
                tracing::warn!(error = %e, file_id, "could not truncate a mismatching transfer");
            }
            Verdict::Mismatch { actual }
        }
        Err(e) => {
            tracing::error!(error = %e, file_id, "could not hash a transfer");
            Verdict::Failed
        }
    }
}

/// After transfers' rows were deleted: deletes their bytes and tells the parties who are
/// online (`file_cancelled`), except `except` (who deleted it and knows).
pub async fn discard(
    blobs: &Blobs,
    hub: &Hub,
    removed: &[RemovedTransfer],
    except: Option<UserId>,
) {
    for t in removed {
        if let Err(e) = blobs.remove(&t.file_id).await {
            // The row is gone, so the next start's orphan sweep deletes the file.
            tracing::warn!(error = %e, file_id = %t.file_id, "could not delete transfer bytes");
        }
        let cancelled = ServerMessage::FileCancelled {
            file_id: t.file_id.clone(),
        };
        for party in [Some(t.owner_id), t.target_id].into_iter().flatten() {
            if Some(party) != except {
                hub.push_to(party, &cancelled);
            }
        }
    }
}

/// Deletes transfers whose `file_ttl` ran out (housekeeping).
pub async fn expire(store: &Store, blobs: &Blobs, hub: &Hub, now: i64) {
    match store.expire_transfers(now).await {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => {
            tracing::info!(transfers = removed.len(), "transfers expired");
            discard(blobs, hub, &removed, None).await;
        }
        Err(e) => tracing::warn!(error = %e, "transfer expiry failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_proto::RangeSet;

    #[test]
    fn chunk_sizes_grow_with_the_file_and_respect_the_frame_limit() {
        const MIB: u64 = 1024 * 1024;
        let big = 16 * 1024 * 1024;
        assert_eq!(suggest_chunk_size(0, big), 64 * 1024);
        assert_eq!(suggest_chunk_size(MIB - 1, big), 64 * 1024);
        assert_eq!(suggest_chunk_size(MIB, big), 256 * 1024);
        assert_eq!(suggest_chunk_size(64 * MIB, big), 512 * 1024);
        assert_eq!(suggest_chunk_size(1024 * MIB, big), 1024 * 1024);
        assert_eq!(suggest_chunk_size(8 * 1024 * MIB, 100_000), 100_000);
    }

    #[test]
    fn ids_are_unguessable_and_checkable() {
        let a = new_file_id();
        assert!(is_file_id(&a), "{a}");
        assert_ne!(a, new_file_id());
        assert!(!is_file_id("../../../../etc/passwd"));
        assert!(!is_file_id("f-8c1d2e"));
        assert!(!is_file_id(&"A".repeat(23)));
    }

    #[test]
    fn roles_follow_rule_7() {
        let t = |kind, target_id| TransferRecord {
            file_id: new_file_id(),
            owner_id: 1,
            owner_name: "alice".into(),
            kind,
            target_id,
            target_name: None,
            name: "x".into(),
            size: 1,
            sha256: EMPTY_SHA256.into(),
            chunk_size: 1,
            accepted: None,
            complete: false,
            created_at: 0,
            expires_at: 1,
            have: RangeSet::new(),
        };
        let file = t(FileKind::File, Some(2));
        assert_eq!(role(&file, 1), Role::Sender);
        assert_eq!(role(&file, 2), Role::Receiver);
        assert_eq!(role(&file, 3), Role::Stranger);
        let image_to_bob = t(FileKind::Image, Some(2));
        assert_eq!(role(&image_to_bob, 3), Role::Stranger);
        let square_image = t(FileKind::Image, None);
        assert_eq!(role(&square_image, 1), Role::Sender);
        assert_eq!(role(&square_image, 3), Role::Receiver);
    }
}
