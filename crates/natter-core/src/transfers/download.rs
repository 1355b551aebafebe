//! A download: fetch the ranges the server has and we lack into `<dest>.natterpart`, record each
//! piece only after writing it, check the SHA-256, then rename into place.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use natter_proto::{ClientMessage, RangeSet};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hash::{sha256_file_async, InOrderHash};
use super::progress::Meter;
use super::{invalid, Transfers};
use crate::engine::{request_id, Command, Piece};
use crate::store::{Store, TransferRecord};
use crate::transfer::TransferState;
use crate::ClientError;

/// Pieces a download may buffer between the socket and the disk.
const FETCH_BUFFER: usize = 8;
/// How often a download looks again while the sender is still uploading.
const WAIT_FOR_SENDER: Duration = Duration::from_secs(1);
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
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&part)
            .await
            .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", part.display())))?;
        // The chunk map only holds if the part file does: someone may have deleted it.
        let on_disk = file.metadata().await?.len();
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
        let mut hashed = InOrderHash::new(t.ranges.total() == 0);
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
                // The sender is still uploading (or offline): show what we have, look again in
                // a moment.
                t.info.rate = 0;
                self.progress(&t.info, cancel);
                tokio::time::sleep(WAIT_FOR_SENDER).await;
                continue;
            }
            for (start, end) in available {
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
                let mut got = 0;
                while got < end - start {
                    let Some(piece) = pieces.recv().await else {
                        return Err(ClientError::Offline);
                    };
                    let Piece { offset, data } = piece?;
                    if offset < start || offset + data.len() as u64 > end {
                        return Err(ClientError::Protocol(format!(
                            "file_data at {offset} outside the range asked for"
                        )));
                    }
                    file.seek(SeekFrom::Start(offset)).await?;
                    file.write_all(&data).await?;
                    hashed.feed(offset, &data);
                    got += data.len() as u64;
                    // Recorded only once written: a restart re-fetches at most this piece.
                    t.ranges.insert(offset, offset + data.len() as u64);
                    t.info.done = t.ranges.total();
                    store.update_ranges(&t.info.file_id, &t.ranges).await?;
                    if let Some(rate) = meter.tick(t.info.done) {
                        t.info.rate = rate;
                        self.progress(&t.info, cancel);
                    }
                }
            }
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if !t.info.sha256.is_empty() {
            let actual = match hashed.finish(t.info.size) {
                Some(hash) => hash,
                None => sha256_file_async(&part).await?,
            };
            if actual != t.info.sha256 {
                let _ = tokio::fs::remove_file(&part).await;
                t.ranges = RangeSet::default();
                store.update_transfer(&t).await?;
                return Err(ClientError::Io(format!(
                    "the received file does not match its checksum (expected {}, got {actual})",
                    t.info.sha256
                )));
            }
        }
        // Windows will not rename over an existing file; the user chose to replace it.
        if tokio::fs::metadata(&dest).await.is_ok() {
            let _ = tokio::fs::remove_file(&dest).await;
        }
        tokio::fs::rename(&part, &dest).await?;
        t.info.state = TransferState::Done;
        t.info.done = t.info.size;
        t.info.rate = 0;
        self.save(store, &t).await
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
