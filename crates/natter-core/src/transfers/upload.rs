//! An upload: ask the server what it holds, send only the missing ranges with a window of chunks
//! in flight sized from the measured rate, hash the file while it goes, name the hash with
//! `file_complete`, then post an image's message and settle on done or uploaded.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use natter_proto::{ClientMessage, ErrorCode, MessageBody, RangeSet, ServerMessage};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hash::sha256_file_async;
use super::progress::Meter;
use super::{invalid, Transfers};
use crate::engine::{request_id, Command};
use crate::store::{OutboxEntry, Store, TransferRecord};
use crate::transfer::TransferState;
use crate::{now_ms, ClientError};

/// Fewest chunks an upload keeps in flight: enough to overlap reading, sending and the
/// server's writing even before anything is measured.
const WINDOW_MIN: usize = 4;
/// Most chunks in flight (16 MiB at the largest chunk size): past this a faster link gains
/// little and a chat message would queue behind too much file data.
const WINDOW_MAX: usize = 16;

/// The `(offset, len)` chunks that send what `have` lacks of a `size`-byte file.
fn pieces_to_send(have: &RangeSet, size: u64, chunk: u64) -> Vec<(u64, u64)> {
    let mut pieces = Vec::new();
    for (start, end) in have.missing(size) {
        let mut at = start;
        while at < end {
            let len = chunk.min(end - at);
            pieces.push((at, len));
            at += len;
        }
    }
    pieces
}

/// Chunks to keep in flight: what the link carries during the shortest round trip seen (rate ×
/// min RTT, as BBR sizes its flight), doubled for jitter, within [`WINDOW_MIN`, `WINDOW_MAX`].
fn window(rate: u64, min_rtt: Option<Duration>, chunk: u64) -> usize {
    let Some(rtt) = min_rtt else {
        return WINDOW_MIN;
    };
    let in_flight = 2.0 * rate as f64 * rtt.as_secs_f64() / chunk.max(1) as f64;
    (in_flight.ceil() as usize).clamp(WINDOW_MIN, WINDOW_MAX)
}

/// Reads `len` bytes at `offset` on the blocking pool, in one hop and without a shared cursor.
async fn read_piece(
    file: &Arc<std::fs::File>,
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Bytes, ClientError> {
    let file = file.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut data = BytesMut::zeroed(len as usize);
        read_exact_at(&file, &mut data, offset).map(|()| data.freeze())
    })
    .await
    .map_err(|e| ClientError::Io(e.to_string()))?;
    read.map_err(|e| ClientError::Io(format!("cannot read {path} (did it change?): {e}")))
}

fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_exact_at(file, buf, offset);
    // Windows has only the one-call `seek_read`.
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// The SHA-256 of a fresh upload's pieces, which it reads in file order anyway: hashed on a
/// thread of its own while they are sent, so the file is read once and the offer never waits.
struct PieceHasher {
    pieces: mpsc::Sender<Bytes>,
    done: tokio::task::JoinHandle<(Sha256, u64)>,
}

impl PieceHasher {
    fn start(window: usize) -> Self {
        let (pieces, mut rx) = mpsc::channel::<Bytes>(window);
        let done = tokio::task::spawn_blocking(move || {
            let (mut hasher, mut hashed) = (Sha256::new(), 0u64);
            while let Some(piece) = rx.blocking_recv() {
                hasher.update(&piece);
                hashed += piece.len() as u64;
            }
            (hasher, hashed)
        });
        Self { pieces, done }
    }

    async fn feed(&self, piece: Bytes) {
        // A slower hash slows the reads down rather than piling pieces up in memory.
        let _ = self.pieces.send(piece).await;
    }

    /// The hash, if it covers all `size` bytes.
    async fn finish(self, size: u64) -> Option<String> {
        drop(self.pieces);
        let (hasher, hashed) = self.done.await.ok()?;
        (hashed == size).then(|| format!("{:x}", hasher.finalize()))
    }
}

/// A reply to `file_chunk` or `file_complete`: a hash mismatch means the file changed under us.
fn uploaded(reply: Result<ServerMessage, ClientError>, path: &str) -> Result<(), ClientError> {
    match reply {
        Ok(ServerMessage::Ok { .. }) => Ok(()),
        Ok(other) => Err(ClientError::Protocol(format!(
            "unexpected reply while uploading: {other:?}"
        ))),
        Err(ClientError::Server {
            code: ErrorCode::InvalidField,
            message,
            ..
        }) if message.contains("sha256") => Err(ClientError::Io(format!(
            "{path} changed while it was being sent ({message})"
        ))),
        Err(e) => Err(e),
    }
}

impl Transfers {
    pub(super) async fn upload(
        &self,
        store: &Store,
        mut t: TransferRecord,
        cancel: &CancellationToken,
    ) -> Result<(), ClientError> {
        let status = self.status(&t.info.file_id).await?;
        if cancel.is_cancelled() {
            // Paused or cancelled while asking: what was recorded then stands.
            return Ok(());
        }
        t.chunk_size = status.chunk_size.max(1);
        t.ranges = status.have;
        t.info.accepted = status.accepted;
        t.info.done = t.ranges.total();
        if t.info.sha256.is_empty() {
            // Named before a break (or offered with it).
            t.info.sha256 = status.sha256;
        }
        if !status.complete {
            t.info.state = TransferState::Uploading;
            self.save(store, &t).await?;
            let Some(path) = t.info.path.clone() else {
                return Err(invalid("the file to send is not known any more"));
            };
            let streamed = self.send_missing(store, &mut t, &path, cancel).await?;
            if t.info.sha256.is_empty() {
                t.info.sha256 = match streamed {
                    Some(hash) => hash,
                    // Resumed mid-file: the pieces sent were not the whole file.
                    None => sha256_file_async(std::path::Path::new(&path)).await?,
                };
                if let Some(MessageBody::Image { sha256, .. }) = t.message.as_mut() {
                    *sha256 = Some(t.info.sha256.clone());
                }
                self.save(store, &t).await?;
            }
            let reply = self
                .request(ClientMessage::FileComplete {
                    id: request_id(),
                    file_id: t.info.file_id.clone(),
                    sha256: t.info.sha256.clone(),
                })
                .await;
            uploaded(reply, &path)?;
            let status = self.status(&t.info.file_id).await?;
            if !status.complete {
                // The check was under way for an earlier connection: try again shortly.
                return Err(ClientError::Server {
                    code: ErrorCode::Internal,
                    message: "the server has not finished checking the file".into(),
                    retry_after_ms: None,
                });
            }
            // The receiver may have answered while we sent (the push updated the store, not
            // this copy).
            t.info.accepted = status.accepted;
        }
        t.info.done = t.info.size;
        t.info.rate = 0;
        if let Some(body) = t.message.take() {
            // The image is on the server: now its message can go.
            let entry = OutboxEntry {
                client_msg_id: request_id(),
                to: t.info.chat.clone(),
                body,
            };
            store.enqueue(&entry, now_ms()).await?;
            let _ = self.commands.send(Command::FlushOutbox).await;
        }
        t.info.state = if t.info.accepted {
            TransferState::Done
        } else {
            TransferState::Uploaded
        };
        self.save(store, &t).await
    }

    /// Sends what the server lacks; returns the file's SHA-256 when the pieces sent were the
    /// whole file, in order.
    async fn send_missing(
        &self,
        store: &Store,
        t: &mut TransferRecord,
        path: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, ClientError> {
        let file = std::fs::File::open(path)
            .map(Arc::new)
            .map_err(|e| ClientError::Io(format!("cannot read {path}: {e}")))?;
        let chunk = u64::from(t.chunk_size);
        let fresh = t.ranges.total() == 0 && t.info.sha256.is_empty();
        let hasher = fresh.then(|| PieceHasher::start(WINDOW_MAX));
        let mut meter = Meter::new(t.ranges.total());
        let mut min_rtt: Option<Duration> = None;
        let mut in_flight = FuturesOrdered::new();
        let mut pieces = pieces_to_send(&t.ranges, t.info.size, chunk).into_iter();
        loop {
            while in_flight.len() < window(t.info.rate, min_rtt, chunk) {
                let Some((offset, len)) = pieces.next() else {
                    break;
                };
                let data = read_piece(&file, path, offset, len).await?;
                if let Some(hasher) = &hasher {
                    hasher.feed(data.clone()).await;
                }
                let (reply, rx) = oneshot::channel();
                self.commands
                    .send(Command::Upload {
                        message: ClientMessage::FileChunk {
                            id: request_id(),
                            file_id: t.info.file_id.clone(),
                            offset,
                            len: len as u32,
                        },
                        data,
                        reply,
                    })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                let sent = Instant::now();
                in_flight.push_back(async move {
                    let reply = rx.await.unwrap_or(Err(ClientError::Closed));
                    (offset, len, reply, sent.elapsed())
                });
            }
            let Some((offset, len, reply, rtt)) = in_flight.next().await else {
                break;
            };
            uploaded(reply, path)?;
            min_rtt = Some(min_rtt.map_or(rtt, |m| m.min(rtt)));
            t.ranges.insert(offset, offset + len);
            t.info.done = t.ranges.total();
            // An upload resumes from what the server says it holds, so our own copy of the map
            // is only for showing progress after a restart: saved with the progress, not per
            // chunk (a database write per chunk held the pipeline up).
            if let Some(rate) = meter.tick(t.info.done) {
                store.update_ranges(&t.info.file_id, &t.ranges).await?;
                t.info.rate = rate;
                self.progress(&t.info, cancel);
            }
        }
        Ok(match hasher {
            Some(hasher) => hasher.finish(t.info.size).await,
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_covers_rate_times_round_trip_twice_within_bounds() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(window(0, None, MIB), WINDOW_MIN, "nothing measured yet");
        // 1 GB/s with a 5 ms round trip: 5 MB in flight, doubled, in 1 MiB chunks.
        let w = window(1_000_000_000, Some(Duration::from_millis(5)), MIB);
        assert_eq!(w, 10);
        // A slow link needs no more than the minimum, a long fat one is capped.
        assert_eq!(
            window(100_000, Some(Duration::from_millis(50)), MIB),
            WINDOW_MIN
        );
        assert_eq!(
            window(1_000_000_000, Some(Duration::from_secs(1)), MIB),
            WINDOW_MAX
        );
    }

    #[test]
    fn a_fresh_upload_is_cut_into_chunks_with_a_short_last_one() {
        let pieces = pieces_to_send(&RangeSet::default(), 10, 4);
        assert_eq!(pieces, [(0, 4), (4, 4), (8, 2)]);
    }

    #[test]
    fn a_resumed_upload_sends_only_the_gaps() {
        let mut have = RangeSet::default();
        have.insert(0, 4);
        have.insert(6, 8);
        assert_eq!(pieces_to_send(&have, 10, 4), [(4, 2), (8, 2)]);
    }

    #[test]
    fn a_complete_upload_sends_nothing() {
        let mut have = RangeSet::default();
        have.insert(0, 10);
        assert!(pieces_to_send(&have, 10, 4).is_empty());
    }
}
