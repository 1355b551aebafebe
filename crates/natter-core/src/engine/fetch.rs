//! File bytes coming down: a `file_fetch` is answered by `file_data` headers, each followed by
//! one binary frame. The pieces go into the downloader's bounded channel; waiting on it is the
//! backpressure that keeps memory flat when the disk is slower than the socket.

use bytes::Bytes;
use natter_proto::ServerMessage;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{server_error, Engine, Pending};
use crate::ClientError;

/// Downloaded bytes at an offset.
pub(crate) struct Piece {
    pub offset: u64,
    pub data: Bytes,
}

/// Where a fetch's pieces go; dropped early when the fetch fails.
pub(crate) type PieceSink = mpsc::Sender<Result<Piece, ClientError>>;

/// A `file_data` header was read; its binary frame comes next.
pub(super) struct ExpectBinary {
    id: String,
    offset: u64,
    len: u32,
    remaining: u64,
    sink: PieceSink,
}

impl Engine {
    /// The answer to `file_fetch` (or its next part).
    pub(super) async fn fetch_reply(
        &mut self,
        remaining: u64,
        sink: PieceSink,
        message: ServerMessage,
    ) {
        match message {
            ServerMessage::FileData {
                id, offset, len, ..
            } => {
                self.expect_binary = Some(ExpectBinary {
                    id,
                    offset,
                    len,
                    remaining,
                    sink,
                });
            }
            ServerMessage::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => {
                let _ = sink
                    .send(Err(server_error(code, message, retry_after_ms)))
                    .await;
            }
            other => tracing::warn!(?other, "unexpected reply to file_fetch"),
        }
    }

    /// The bytes announced by the last `file_data` header.
    pub(super) async fn binary(&mut self, data: Bytes) {
        let Some(expect) = self.expect_binary.take() else {
            tracing::warn!("a binary frame no file_data announced; ignored");
            return;
        };
        if data.len() != expect.len as usize {
            let _ = expect
                .sink
                .send(Err(ClientError::Protocol(format!(
                    "file_data announced {} bytes, {} came",
                    expect.len,
                    data.len()
                ))))
                .await;
            return;
        }
        let remaining = expect.remaining.saturating_sub(data.len() as u64);
        let piece = Piece {
            offset: expect.offset,
            data,
        };
        // Waiting here is the backpressure: a slow disk slows the socket, not the memory.
        if expect.sink.send(Ok(piece)).await.is_err() || remaining == 0 {
            return;
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let pending = Pending::Fetch {
            remaining,
            sink: expect.sink,
        };
        self.pending.insert(expect.id, (pending, deadline));
    }
}
