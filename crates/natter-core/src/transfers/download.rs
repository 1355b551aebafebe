//! A download: fetch the ranges the server has and we lack into `<dest>.natterpart`, record each
//! piece only after writing it, check the SHA-256, then rename into place.
//!
//! Three stages overlap: the engine reads pieces off the socket, a writer thread puts them into
//! the part file at their offsets and hashes them, and this task records the written ranges in
//! the chunk map, all that were written since the last record in one database write. At most
//! [`UNRECORDED_MAX`] pieces are ever written but unrecorded, which bounds what a killed app
//! fetches again.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use natter_proto::{ClientMessage, RangeSet};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hash::{sha256_file_async, InOrderHash};
use super::progress::Meter;
use super::{invalid, Transfers};
use crate::engine::{request_id, Command, Piece};
use crate::store::{Store, TransferRecord};
use crate::transfer::TransferState;
use crate::ClientError;

/// Pieces a download may buffer between the socket and the writer.
const FETCH_BUFFER: usize = 8;
/// Most pieces handed to the writer and not yet in the chunk map: a killed app fetches at most
/// this many pieces again (each at most `chunk_size`). Enough that the writer never waits for
/// a record of the chunk map, which runs alongside.
pub const UNRECORDED_MAX: usize = 8;
/// How soon a download that caught up with its sender looks again: it doubles while nothing new
/// arrives, up to [`WAIT_FOR_SENDER`], so a receiver keeps pace with a fast upload without
/// polling an idle one.
const WAIT_FIRST: Duration = Duration::from_millis(25);
/// Longest wait between looks while the sender is still uploading (or offline).
const WAIT_FOR_SENDER: Duration = Duration::from_secs(1);
/// Bytes of written pieces asked to go to the disk at a time.
const WRITEBACK_BATCH: u64 = 32 * 1024 * 1024;
/// Suffix of a download in progress, next to its destination.
const PART_SUFFIX: &str = ".natterpart";

/// Where a download to `dest` is written until it is complete and checked.
pub(super) fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(PART_SUFFIX);
    PathBuf::from(name)
}

/// Whether a part file of `on_disk` bytes still holds every range the chunk map records
/// (someone may have deleted or truncated it).
fn part_holds(ranges: &RangeSet, on_disk: u64) -> bool {
    ranges
        .as_slice()
        .last()
        .is_none_or(|&(_, end)| end <= on_disk)
}

/// Writes all of `buf` at `offset` without a shared cursor, so nothing else moves it.
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_all_at(file, buf, offset);
    // Windows has only the one-call `seek_write`.
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_write(file, buf, offset)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// Asks the OS to start writing a piece to the disk now, without waiting for it. The final
/// `fsync` then finds little left to do, instead of a gigabyte of dirty pages that the plain
/// write-then-sync of a copy leaves it. Only Linux has the call; elsewhere the final sync does
/// it all.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, start: u64, end: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(start), i64::try_from(end - start)) else {
        return;
    };
    // SAFETY: the descriptor belongs to `file`, open for the duration of the call; the call
    // reads no memory of ours. A failure only means the final sync does the work.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _start: u64, _end: u64) {}

/// The writer, plus a hasher and a flusher beside it, a thread each, so that the writer (the
/// page-cache copy, the download's limit) does nothing else: pieces in, written ranges out;
/// the writer and the hasher hand back what they hold when their input closes.
struct PartWriter {
    pieces: mpsc::Sender<(u64, Bytes)>,
    hashing: mpsc::Sender<(u64, Bytes)>,
    /// Ranges to start writing to the disk; a request that finds it full is dropped (the
    /// flusher may block on a busy disk, and the final sync does whatever it skipped).
    flushing: mpsc::Sender<(u64, u64)>,
    written: mpsc::UnboundedReceiver<std::io::Result<(u64, u64)>>,
    wrote: tokio::task::JoinHandle<File>,
    hashed: tokio::task::JoinHandle<InOrderHash>,
}

impl PartWriter {
    fn start(file: File, mut hash: InOrderHash) -> std::io::Result<Self> {
        let (pieces, mut rx) = mpsc::channel::<(u64, Bytes)>(UNRECORDED_MAX);
        let (written_tx, written) = mpsc::unbounded_channel();
        let flush_file = file.try_clone()?;
        let wrote = tokio::task::spawn_blocking(move || {
            while let Some((offset, data)) = rx.blocking_recv() {
                let result = write_all_at(&file, &data, offset)
                    .map(|()| (offset, offset + data.len() as u64));
                if written_tx.send(result).is_err() {
                    break;
                }
            }
            file
        });
        let (hashing, mut to_hash) = mpsc::channel::<(u64, Bytes)>(UNRECORDED_MAX);
        let hashed = tokio::task::spawn_blocking(move || {
            while let Some((offset, data)) = to_hash.blocking_recv() {
                hash.feed(offset, &data);
            }
            hash
        });
        let (flushing, mut to_flush) = mpsc::channel::<(u64, u64)>(UNRECORDED_MAX);
        tokio::task::spawn_blocking(move || {
            // Contiguous pieces are gathered into one request per WRITEBACK_BATCH: fewer calls,
            // larger writes to the disk, and the kernel's writeback stays clear of the pages
            // the writer is filling now.
            let mut pending: Option<(u64, u64)> = None;
            while let Some((start, end)) = to_flush.blocking_recv() {
                pending = match pending {
                    Some((a, b)) if b == start => Some((a, end)),
                    Some((a, b)) => {
                        start_writeback(&flush_file, a, b);
                        Some((start, end))
                    }
                    None => Some((start, end)),
                };
                if let Some((a, b)) = pending.filter(|(a, b)| b - a >= WRITEBACK_BATCH) {
                    start_writeback(&flush_file, a, b);
                    pending = None;
                }
            }
            if let Some((a, b)) = pending {
                start_writeback(&flush_file, a, b);
            }
        });
        Ok(Self {
            pieces,
            hashing,
            flushing,
            written,
            wrote,
            hashed,
        })
    }

    /// Hands a piece to the writer and the hasher; false if the writer stopped.
    async fn send(&self, offset: u64, data: Bytes) -> bool {
        // A hasher that stopped only means the final pass hashes the file.
        let _ = self.hashing.send((offset, data.clone())).await;
        self.pieces.send((offset, data)).await.is_ok()
    }

    /// Asks for a written range to go to the disk now, unless the flusher is behind.
    fn written(&self, start: u64, end: u64) {
        let _ = self.flushing.try_send((start, end));
    }

    async fn finish(self) -> Result<(File, InOrderHash), ClientError> {
        drop((self.pieces, self.hashing, self.flushing));
        let failed = |e: tokio::task::JoinError| {
            ClientError::Io(format!("the download's writer failed: {e}"))
        };
        let file = self.wrote.await.map_err(failed)?;
        let hash = self.hashed.await.map_err(failed)?;
        Ok((file, hash))
    }
}

impl Transfers {
    pub(super) async fn download(
        &self,
        store: &Store,
        mut t: TransferRecord,
        cancel: &CancellationToken,
    ) -> Result<(), ClientError> {
        let Some(dest) = t.info.path.clone().map(PathBuf::from) else {
            return Err(invalid("no destination chosen for this file"));
        };
        let part = part_path(&dest);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&part)
            .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", part.display())))?;
        // The chunk map only holds if the part file does: someone may have deleted it.
        let on_disk = file.metadata()?.len();
        if !part_holds(&t.ranges, on_disk) {
            tracing::info!(file_id = %t.info.file_id, "partial download lost; starting over");
            t.ranges = RangeSet::default();
        }
        t.info.done = t.ranges.total();
        if cancel.is_cancelled() {
            return Ok(());
        }
        self.save(store, &t).await?;
        let mut meter = Meter::new(t.info.done);
        // Bytes that arrive in order are hashed as they come, which spares reading the whole
        // file again at the end; after a resume or a gap the final pass does it instead.
        let mut writer = PartWriter::start(file, InOrderHash::new(t.ranges.total() == 0))?;
        let mut wait = WAIT_FIRST;
        loop {
            let missing = t.ranges.missing(t.info.size);
            if missing.is_empty() {
                break;
            }
            let status = self.status(&t.info.file_id).await?;
            if status.size != t.info.size {
                return Err(ClientError::Protocol(format!(
                    "the server says the file has {} bytes, the offer said {}",
                    status.size, t.info.size
                )));
            }
            t.chunk_size = status.chunk_size;
            let available = status.have.intersect(&missing);
            if available.is_empty() {
                // The sender is still uploading (or offline): show that nothing moves (once),
                // look again in a moment.
                if t.info.rate != 0 {
                    t.info.rate = 0;
                    self.progress(&t.info, cancel);
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(WAIT_FOR_SENDER);
                continue;
            }
            wait = WAIT_FIRST;
            for (start, end) in available {
                self.fetch_range(store, &mut t, &mut writer, &mut meter, start, end, cancel)
                    .await?;
            }
        }
        let (file, hashed) = writer.finish().await?;
        tokio::task::spawn_blocking(move || {
            let mut file = file;
            file.flush()?;
            file.sync_all()
        })
        .await
        .map_err(|e| ClientError::Io(e.to_string()))??;
        let expected = self.verified_hash(&t, cancel).await?;
        if !expected.is_empty() {
            let actual = match hashed.finish(t.info.size) {
                Some(hash) => hash,
                None => sha256_file_async(&part).await?,
            };
            if actual != expected {
                let _ = tokio::fs::remove_file(&part).await;
                t.ranges = RangeSet::default();
                store.update_transfer(&t).await?;
                return Err(ClientError::Checksum { expected, actual });
            }
        }
        // Windows will not rename over an existing file; the user chose to replace it.
        if tokio::fs::metadata(&dest).await.is_ok() {
            let _ = tokio::fs::remove_file(&dest).await;
        }
        tokio::fs::rename(&part, &dest).await?;
        t.info.sha256 = expected;
        t.info.state = TransferState::Done;
        t.info.done = t.info.size;
        t.info.rate = 0;
        self.save(store, &t).await
    }

    /// Fetches `[start, end)` through the writer, recording what it wrote in batches.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_range(
        &self,
        store: &Store,
        t: &mut TransferRecord,
        writer: &mut PartWriter,
        meter: &mut Meter,
        start: u64,
        end: u64,
        cancel: &CancellationToken,
    ) -> Result<(), ClientError> {
        let (sink, mut pieces) = mpsc::channel(FETCH_BUFFER);
        self.commands
            .send(Command::Fetch {
                message: ClientMessage::FileFetch {
                    id: request_id(),
                    file_id: t.info.file_id.clone(),
                    offset: start,
                    len: Some(end - start),
                },
                len: end - start,
                sink,
            })
            .await
            .map_err(|_| ClientError::Closed)?;
        // Pieces handed to the writer and not yet recorded, whether being written, written or
        // being recorded; and the record under way, which runs while pieces keep flowing.
        let (mut got, mut unrecorded) = (0, 0usize);
        let mut written: Vec<(u64, u64)> = Vec::new();
        let mut recording: Option<BoxFuture<'static, Result<usize, ClientError>>> = None;
        while got < end - start || unrecorded > 0 {
            if recording.is_none() && !written.is_empty() {
                // Everything written by now goes into one record: a restart fetches again only
                // what was written after it.
                let n = written.len();
                for (a, b) in written.drain(..) {
                    t.ranges.insert(a, b);
                }
                let (store, file_id, ranges) =
                    (store.clone(), t.info.file_id.clone(), t.ranges.clone());
                recording = Some(Box::pin(async move {
                    store.update_ranges(&file_id, &ranges).await?;
                    Ok(n)
                }));
            }
            tokio::select! {
                piece = pieces.recv(), if got < end - start && unrecorded < UNRECORDED_MAX => {
                    let Some(piece) = piece else {
                        return Err(ClientError::Offline);
                    };
                    let Piece { offset, data } = piece?;
                    if offset < start || offset + data.len() as u64 > end {
                        return Err(ClientError::Protocol(format!(
                            "file_data at {offset} outside the range asked for"
                        )));
                    }
                    got += data.len() as u64;
                    unrecorded += 1;
                    if !writer.send(offset, data).await {
                        return Err(ClientError::Io("the download's writer stopped".into()));
                    }
                }
                range = writer.written.recv() => match range {
                    Some(range) => {
                        let (a, b) = range?;
                        writer.written(a, b);
                        written.push((a, b));
                    }
                    None => return Err(ClientError::Io("the download's writer stopped".into())),
                },
                recorded = async { recording.as_mut().expect("guarded").await }, if recording.is_some() => {
                    recording = None;
                    unrecorded -= recorded?;
                    t.info.done = t.ranges.total();
                    if let Some(rate) = meter.tick(t.info.done) {
                        t.info.rate = rate;
                        self.progress(&t.info, cancel);
                    }
                }
            }
        }
        Ok(())
    }

    /// The SHA-256 the server verified the file against, once it has: the sender may still be
    /// working out its hash when the last byte arrives here. Empty from a server that names
    /// none.
    async fn verified_hash(
        &self,
        t: &TransferRecord,
        cancel: &CancellationToken,
    ) -> Result<String, ClientError> {
        let mut wait = WAIT_FIRST;
        loop {
            let status = self.status(&t.info.file_id).await?;
            if status.complete {
                if !t.info.sha256.is_empty() && t.info.sha256 != status.sha256 {
                    return Err(ClientError::Protocol(format!(
                        "the offer named sha256 {}, the server now says {}",
                        t.info.sha256, status.sha256
                    )));
                }
                return Ok(status.sha256);
            }
            if wait == WAIT_FIRST {
                self.progress(&t.info, cancel);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(WAIT_FOR_SENDER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_part_file_sits_next_to_the_destination() {
        assert_eq!(
            part_path(Path::new("/tmp/report.pdf")),
            Path::new("/tmp/report.pdf.natterpart")
        );
    }

    #[test]
    fn a_truncated_part_file_no_longer_holds_its_chunk_map() {
        let mut ranges = RangeSet::default();
        assert!(part_holds(&ranges, 0));
        ranges.insert(0, 100);
        assert!(part_holds(&ranges, 100));
        assert!(!part_holds(&ranges, 99));
    }
}
