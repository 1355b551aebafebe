//! Streaming `file_fetch` answers inside one connection (PROTOCOL.md §5.7 rule 5).
//!
//! A connection serves one fetch at a time and queues the rest in order. The active fetch has
//! at most one piece (≤ `chunk_size`) being read from disk; the connection's select loop takes
//! each piece when it is ready and writes it as `file_data` + binary frame between its other
//! replies, pushes and heartbeats, so a large download neither blocks the loop nor sits in
//! memory, and the socket's backpressure paces the reads.

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;

use bytes::Bytes;
use natter_proto::{ErrorCode, ServerMessage};
use tokio::task::JoinHandle;

use super::blobs::{read_piece, BlobError};

/// Most fetches one connection may have waiting behind the active one.
pub const MAX_QUEUED: usize = 64;

/// One accepted `file_fetch`: permission and range were checked when it was queued.
#[derive(Debug)]
pub struct FetchJob {
    /// The request id every `file_data` echoes.
    pub id: String,
    /// The transfer.
    pub file_id: String,
    /// Where the bytes are.
    pub path: PathBuf,
    /// Next byte to send.
    pub offset: u64,
    /// One past the last byte to send.
    pub end: u64,
    /// Largest piece per `file_data`.
    pub piece: u32,
}

impl FetchJob {
    fn next_len(&self) -> usize {
        (self.end - self.offset).min(u64::from(self.piece)) as usize
    }
}

type PieceRead = JoinHandle<Result<(File, Bytes), BlobError>>;

struct Active {
    job: FetchJob,
    read: PieceRead,
}

/// What the connection writes next for the active fetch.
#[derive(Debug)]
pub enum Piece {
    /// A `file_data` header and the payload of the binary frame that must follow it at once.
    Data {
        /// The `file_data` header.
        header: ServerMessage,
        /// The bytes.
        bytes: Bytes,
    },
    /// The fetch could not go on; this `error` ends it.
    Failed(ServerMessage),
}

/// Too many fetches are waiting on this connection.
#[derive(Debug, thiserror::Error)]
#[error("{MAX_QUEUED} fetches are already waiting on this connection")]
pub struct QueueFull;

/// A connection's fetches: the active one and those waiting.
#[derive(Default)]
pub struct Fetches {
    queue: VecDeque<FetchJob>,
    active: Option<Active>,
}

impl Fetches {
    /// Queues a fetch; it starts at once when nothing else is being sent.
    pub fn push(&mut self, job: FetchJob) -> Result<(), QueueFull> {
        if self.queue.len() >= MAX_QUEUED {
            return Err(QueueFull);
        }
        self.queue.push_back(job);
        if self.active.is_none() {
            self.start_next();
        }
        Ok(())
    }

    /// Whether a piece is on its way ([`Self::next`] has something to wait for).
    pub fn is_busy(&self) -> bool {
        self.active.is_some()
    }

    /// Forgets every fetch (the session that asked for them ended).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.active = None;
    }

    fn start_next(&mut self) {
        if let Some(job) = self.queue.pop_front() {
            let read = read_piece(job.path.clone(), None, job.offset, job.next_len());
            self.active = Some(Active { job, read });
        }
    }

    /// Waits for the active fetch's next piece and starts reading the one after it.
    /// Cancel-safe: the only await is on the read's handle, which stays in place when a
    /// `select!` drops this future, and the state changes after it do not await.
    pub async fn next(&mut self) -> Option<Piece> {
        let active = self.active.as_mut()?;
        let result = (&mut active.read).await;
        let Active { mut job, .. } = self.active.take()?;
        match result.map_err(BlobError::from).and_then(|r| r) {
            Ok((file, bytes)) => {
                let header = ServerMessage::FileData {
                    id: job.id.clone(),
                    file_id: job.file_id.clone(),
                    offset: job.offset,
                    // A piece is at most `piece` (a u32) long.
                    len: bytes.len() as u32,
                };
                job.offset += bytes.len() as u64;
                if job.offset < job.end {
                    let read = read_piece(job.path.clone(), Some(file), job.offset, job.next_len());
                    self.active = Some(Active { job, read });
                } else {
                    self.start_next();
                }
                Some(Piece::Data { header, bytes })
            }
            Err(e) => {
                let (code, message) = if e.is_missing() {
                    (
                        ErrorCode::NotFound,
                        "the transfer's bytes are gone (cancelled, expired or discarded)",
                    )
                } else {
                    tracing::error!(error = %e, file_id = %job.file_id, "fetch read failed");
                    (ErrorCode::Internal, "the server could not read the file")
                };
                self.start_next();
                Some(Piece::Failed(ServerMessage::error(
                    Some(&job.id),
                    code,
                    message,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fetch_comes_in_pieces_and_the_next_waits_its_turn() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        let job = |id: &str, offset, end| FetchJob {
            id: id.into(),
            file_id: "f".into(),
            path: path.clone(),
            offset,
            end,
            piece: 4,
        };
        let mut fetches = Fetches::default();
        fetches.push(job("a", 1, 10)).expect("room");
        fetches.push(job("b", 0, 2)).expect("room");
        let mut got = Vec::new();
        while fetches.is_busy() {
            match fetches.next().await.expect("busy") {
                Piece::Data {
                    header:
                        ServerMessage::FileData {
                            id, offset, len, ..
                        },
                    bytes,
                } => {
                    assert_eq!(len as usize, bytes.len());
                    got.push((
                        id,
                        offset,
                        String::from_utf8(bytes.to_vec()).expect("ascii"),
                    ));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let want = [
            ("a", 1, "1234"),
            ("a", 5, "5678"),
            ("a", 9, "9"),
            ("b", 0, "01"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(i, o, s)| (i.to_string(), *o, s.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_vanished_file_ends_the_fetch_with_not_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut fetches = Fetches::default();
        fetches
            .push(FetchJob {
                id: "x".into(),
                file_id: "f".into(),
                path: dir.path().join("missing"),
                offset: 0,
                end: 5,
                piece: 4,
            })
            .expect("room");
        match fetches.next().await {
            Some(Piece::Failed(ServerMessage::Error { code, .. })) => {
                assert_eq!(code, ErrorCode::NotFound)
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!fetches.is_busy());
    }
}
