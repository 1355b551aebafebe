//! An upload: ask the server what it holds, send only the missing ranges with a few chunks in
//! flight, then post an image's message and settle on done or uploaded.

use std::io::SeekFrom;

use bytes::BytesMut;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use natter_proto::{ClientMessage, ErrorCode, RangeSet, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::progress::Meter;
use super::{invalid, Transfers};
use crate::engine::{request_id, Command};
use crate::store::{OutboxEntry, Store, TransferRecord};
use crate::transfer::TransferState;
use crate::{now_ms, ClientError};

/// Chunks an upload keeps in flight: enough to keep a loopback or LAN link busy while the
/// server writes, few enough that a chat message is never stuck behind much file data.
const UPLOAD_WINDOW: usize = 4;

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
        if !status.complete {
            t.info.state = TransferState::Uploading;
            self.save(store, &t).await?;
            self.send_missing(store, &mut t, cancel).await?;
            // The receiver may have answered while we sent (the push updated the store, not
            // this copy): ask once more.
            t.info.accepted = self.status(&t.info.file_id).await?.accepted;
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

    async fn send_missing(
        &self,
        store: &Store,
        t: &mut TransferRecord,
        cancel: &CancellationToken,
    ) -> Result<(), ClientError> {
        let Some(path) = t.info.path.clone() else {
            return Err(invalid("the file to send is not known any more"));
        };
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ClientError::Io(format!("cannot read {path}: {e}")))?;
        let pieces = pieces_to_send(&t.ranges, t.info.size, u64::from(t.chunk_size));
        let mut meter = Meter::new(t.ranges.total());
        let mut in_flight = FuturesOrdered::new();
        let mut pieces = pieces.into_iter();
        loop {
            while in_flight.len() < UPLOAD_WINDOW {
                let Some((offset, len)) = pieces.next() else {
                    break;
                };
                let mut data = BytesMut::zeroed(len as usize);
                file.seek(SeekFrom::Start(offset)).await?;
                file.read_exact(&mut data).await.map_err(|e| {
                    ClientError::Io(format!("cannot read {path} (did it change?): {e}"))
                })?;
                let (reply, rx) = oneshot::channel();
                self.commands
                    .send(Command::Upload {
                        message: ClientMessage::FileChunk {
                            id: request_id(),
                            file_id: t.info.file_id.clone(),
                            offset,
                            len: len as u32,
                        },
                        data: data.freeze(),
                        reply,
                    })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                in_flight.push_back(async move {
                    (offset, len, rx.await.unwrap_or(Err(ClientError::Closed)))
                });
            }
            let Some((offset, len, reply)) = in_flight.next().await else {
                return Ok(());
            };
            match reply {
                Ok(ServerMessage::Ok { .. }) => {}
                Ok(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected reply to file_chunk: {other:?}"
                    )))
                }
                Err(ClientError::Server {
                    code: ErrorCode::InvalidField,
                    message,
                    ..
                }) if message.contains("hash") || message.contains("sha") => {
                    return Err(ClientError::Io(format!(
                        "{path} changed while it was being sent ({message})"
                    )))
                }
                Err(e) => return Err(e),
            }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
