//! An upload under way: what the chunks of one transfer share while they arrive, so that several
//! can be written at once (PROTOCOL.md §5.7 rule 1).
//!
//! - The file stays open and every chunk is a positioned write: no seek, no reopen, and chunks
//!   written concurrently never move each other's cursor.
//! - The SHA-256 of the bytes so far is kept in file order. Chunks that arrive ahead of a gap
//!   wait (as shared `Bytes`, no copy) until it fills, so the check at completion rarely has to
//!   read the file again.
//! - Ranges are recorded by group commit: a chunk's range joins the next batch, one transaction
//!   records a batch, and a chunk is answered only once its batch is committed. So an `ok`
//!   always means "recorded" (no confirmed byte is ever sent again after a crash) while a
//!   fast upload costs one transaction per batch rather than one per chunk.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::blobs::{write_all_at, BlobError, Blobs};
use super::lock;
use crate::store::{Held, Store, StoreResult, UserId};

/// Most bytes waiting ahead of a gap for the running hash. Past it (a resumed upload that
/// starts in the middle, say) the running hash gives up and the check reads the file instead.
const HASH_WAITING_MAX: usize = 64 * 1024 * 1024;

/// SHA-256 of a transfer's bytes in file order, fed by chunks in any order.
#[derive(Default)]
struct InOrder {
    /// `None` once given up (a resend, an overlap, too much waiting).
    hasher: Option<Sha256>,
    /// Bytes `[0, upto)` are hashed.
    upto: u64,
    /// Chunks beyond `upto`, by offset, disjoint.
    waiting: BTreeMap<u64, Bytes>,
    waiting_bytes: usize,
}

impl InOrder {
    fn new() -> Self {
        Self {
            hasher: Some(Sha256::new()),
            ..Self::default()
        }
    }

    fn give_up(&mut self) {
        self.hasher = None;
        self.waiting.clear();
        self.waiting_bytes = 0;
    }

    fn feed(&mut self, offset: u64, bytes: &Bytes) {
        let Some(hasher) = self.hasher.as_mut() else {
            return;
        };
        if offset == self.upto {
            hasher.update(bytes);
            self.upto += bytes.len() as u64;
            while let Some(next) = self.waiting.remove(&self.upto) {
                hasher.update(&next);
                self.upto += next.len() as u64;
                self.waiting_bytes -= next.len();
            }
            return;
        }
        let end = offset + bytes.len() as u64;
        let clear_before = self
            .waiting
            .range(..=offset)
            .next_back()
            .is_none_or(|(&at, b)| at + b.len() as u64 <= offset);
        let clear_after = self
            .waiting
            .range(offset..)
            .next()
            .is_none_or(|(&at, _)| at >= end);
        // Bytes written twice may differ from what was hashed: only a fresh read is sure.
        if offset < self.upto
            || !clear_before
            || !clear_after
            || self.waiting_bytes + bytes.len() > HASH_WAITING_MAX
        {
            self.give_up();
            return;
        }
        self.waiting_bytes += bytes.len();
        self.waiting.insert(offset, bytes.clone());
    }

    fn finish(&mut self, size: u64) -> Option<String> {
        let hasher = self.hasher.take()?;
        (self.upto == size).then(|| format!("{:x}", hasher.finalize()))
    }
}

/// The live state of one transfer's upload on this server.
pub struct Upload {
    /// The transfer.
    pub file_id: String,
    /// Its sender, the only one who may write.
    pub owner: UserId,
    /// Its size.
    pub size: u64,
    file: Arc<File>,
    path: std::path::PathBuf,
    hash: Arc<Mutex<InOrder>>,
    /// Ranges written and waiting for the next batch.
    pending: Mutex<Vec<(u64, u64)>>,
    /// Held while a batch is being recorded; tokio's mutex is fair, so every chunk gets a turn.
    recording: tokio::sync::Mutex<()>,
    /// What the last batch recorded said the transfer holds (`None`: it is gone).
    last: Mutex<Option<Held>>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("file_id", &self.file_id)
            .finish()
    }
}

impl Upload {
    /// Opens (creating it if needed) the transfer's file for positioned writes.
    pub async fn open(
        blobs: &Blobs,
        file_id: &str,
        owner: UserId,
        size: u64,
    ) -> Result<Self, BlobError> {
        let path = blobs.path(file_id)?;
        let file = blobs.open_for_writing(file_id).await?;
        Ok(Self {
            file_id: file_id.to_owned(),
            owner,
            size,
            file: Arc::new(file),
            path,
            hash: Arc::new(Mutex::new(InOrder::new())),
            pending: Mutex::default(),
            recording: tokio::sync::Mutex::new(()),
            last: Mutex::default(),
        })
    }

    /// Writes `bytes` at `offset` on the blocking pool, then feeds them to the running hash
    /// there too, so neither holds up the connection.
    pub async fn write(&self, offset: u64, bytes: Bytes) -> Result<(), BlobError> {
        let (file, hash) = (self.file.clone(), self.hash.clone());
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            write_all_at(&file, &bytes, offset).map_err(|source| BlobError::Io {
                op: "write",
                path,
                source,
            })?;
            lock(&hash).feed(offset, &bytes);
            Ok(())
        })
        .await?
    }

    /// Records `[start, end)` (already written) with whatever else was written meanwhile, and
    /// returns once it is committed. `None`: the transfer is gone.
    pub async fn record(&self, store: &Store, start: u64, end: u64) -> StoreResult<Option<Held>> {
        lock(&self.pending).push((start, end));
        let _turn = self.recording.lock().await;
        let batch = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            // A batch recorded before this turn took our range along.
            return Ok(lock(&self.last).clone());
        }
        match store.record_ranges(&self.file_id, &batch).await {
            Ok(held) => {
                lock(&self.last).clone_from(&held);
                Ok(held)
            }
            Err(e) => {
                // Back in line for the next turn: those waiting behind us wrote these too.
                lock(&self.pending).extend(batch);
                Err(e)
            }
        }
    }

    /// The SHA-256 of all `size` bytes if every one was hashed in order (and forgets it).
    pub fn streamed_hash(&self) -> Option<String> {
        lock(&self.hash).finish(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        format!("{:x}", Sha256::digest(data))
    }

    #[test]
    fn chunks_out_of_order_hash_like_the_file() {
        let mut h = InOrder::new();
        h.feed(4, &Bytes::from_static(b"efgh"));
        h.feed(8, &Bytes::from_static(b"ij"));
        h.feed(0, &Bytes::from_static(b"abcd"));
        assert_eq!(h.finish(10), Some(hex(b"abcdefghij")));
    }

    #[test]
    fn a_resend_or_an_overlap_gives_up_and_so_does_a_short_file() {
        let mut resend = InOrder::new();
        resend.feed(0, &Bytes::from_static(b"ab"));
        resend.feed(0, &Bytes::from_static(b"ab"));
        assert_eq!(resend.finish(2), None);

        let mut overlap = InOrder::new();
        overlap.feed(4, &Bytes::from_static(b"efgh"));
        overlap.feed(6, &Bytes::from_static(b"gh"));
        overlap.feed(0, &Bytes::from_static(b"abcd"));
        assert_eq!(overlap.finish(8), None);

        let mut short = InOrder::new();
        short.feed(0, &Bytes::from_static(b"ab"));
        assert_eq!(short.finish(3), None);
    }

    #[test]
    fn too_much_waiting_ahead_of_a_gap_gives_up() {
        let mut h = InOrder::new();
        let big = Bytes::from(vec![0u8; HASH_WAITING_MAX]);
        h.feed(1, &big);
        h.feed(1 + big.len() as u64, &Bytes::from_static(b"x"));
        h.feed(0, &Bytes::from_static(b"x"));
        assert_eq!(h.finish(big.len() as u64 + 2), None);
    }
}
