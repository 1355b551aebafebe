//! File transfers from a test client (PROTOCOL.md §5.7): offers, answers, status, chunks with
//! their binary frames, fetches that collect `file_data` + binary frames, cancel, and waiting
//! for the transfer pushes. Also the byte-level helpers scenarios need: deterministic content
//! and its SHA-256.

use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use natter_proto::{
    encode, ClientMessage, ErrorCode, FileKind, FileOfferInfo, Frame, ServerMessage, Target,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::client::{
    describe_request, server_log_note, PendingReply, StreamItem, TestClient, REPLY_TIMEOUT,
};
use super::replies::{show, Reply};
use super::server::TestServer;

impl TestServer {
    /// Where the server keeps the bytes of transfer `file_id`.
    pub fn stored_file(&self, file_id: &str) -> std::path::PathBuf {
        self.data_dir().join("files").join(file_id)
    }
}

/// Lowercase hex SHA-256, as the protocol writes it.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `len` bytes that differ from one `seed` to the next and from one offset to the next, so a
/// byte written at the wrong place shows.
pub fn file_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes a file of `size` pseudo-random bytes (xorshift: incompressible, fast to make, a
/// megabyte at a time however large the file).
pub fn random_file(path: &std::path::Path, size: u64, seed: u64) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Lowercase hex SHA-256 of a file, read a megabyte at a time.
pub fn sha256_file(path: &std::path::Path) -> Result<String> {
    Ok(natter_core::sha256_file(path)?)
}

/// The reply to `file_offer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// The new transfer.
    pub file_id: String,
    /// Suggested chunk size.
    pub chunk_size: u32,
}

/// The reply to `file_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// Size in bytes.
    pub size: u64,
    /// Suggested chunk size.
    pub chunk_size: u32,
    /// Stored ranges as `(start, end)`.
    pub have: Vec<(u64, u64)>,
    /// All bytes stored and the hash verified.
    pub complete: bool,
    /// The receiver accepted (images: always).
    pub accepted: bool,
    /// The SHA-256 the file was offered with.
    pub sha256: String,
}

/// What one `file_fetch` brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Each `file_data` as `(offset, len)`, in arrival order.
    pub pieces: Vec<(u64, usize)>,
    /// The bytes, in order.
    pub bytes: Vec<u8>,
}

impl TestClient {
    /// `file_offer` → `file_offer_created`.
    pub async fn file_offer(
        &self,
        to: Target,
        name: &str,
        size: u64,
        sha256: &str,
        kind: FileKind,
    ) -> Result<Offered> {
        self.offer_with(to, name, size, Some(sha256), kind).await
    }

    /// Offers a file of `size` bytes to `to` without its hash (named later by `file_complete`).
    pub async fn offer_file_unhashed(&self, to: &str, name: &str, size: u64) -> Result<Offered> {
        let to = Target::User {
            username: to.into(),
        };
        self.offer_with(to, name, size, None, FileKind::File).await
    }

    async fn offer_with(
        &self,
        to: Target,
        name: &str,
        size: u64,
        sha256: Option<&str>,
        kind: FileKind,
    ) -> Result<Offered> {
        let reply = self
            .request_with(|id| ClientMessage::FileOffer {
                id,
                to,
                name: name.into(),
                size,
                sha256: sha256.map(str::to_owned),
                kind,
            })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::FileOfferCreated {
                file_id,
                chunk_size,
                ..
            } => Ok(Offered {
                file_id,
                chunk_size,
            }),
            other => bail!("expected file_offer_created, got {}", show(&other)),
        }
    }

    /// `file_complete` → its reply (`ok`, or the verdict of the hash check).
    pub async fn file_complete(&self, file_id: &str, sha256: &str) -> Result<ServerMessage> {
        self.request_with(|id| ClientMessage::FileComplete {
            id,
            file_id: file_id.into(),
            sha256: sha256.into(),
        })
        .await
    }

    /// Offers `data` as a file to `to` (its true size and hash).
    pub async fn offer_file(&self, to: &str, name: &str, data: &[u8]) -> Result<Offered> {
        let to = Target::User {
            username: to.into(),
        };
        self.file_offer(
            to,
            name,
            data.len() as u64,
            &sha256_hex(data),
            FileKind::File,
        )
        .await
    }

    /// Opens an image transfer of `data` to `to` (a user or the square).
    pub async fn offer_image(&self, to: Target, name: &str, data: &[u8]) -> Result<Offered> {
        self.file_offer(
            to,
            name,
            data.len() as u64,
            &sha256_hex(data),
            FileKind::Image,
        )
        .await
    }

    /// `file_answer` → `ok`.
    pub async fn file_answer(&self, file_id: &str, accept: bool) -> Result<()> {
        self.request_with(|id| ClientMessage::FileAnswer {
            id,
            file_id: file_id.into(),
            accept,
        })
        .await?
        .expect_ok()
    }

    /// `file_status` → `file_status_reply`.
    pub async fn file_status(&self, file_id: &str) -> Result<FileStatus> {
        let reply = self
            .request_with(|id| ClientMessage::FileStatus {
                id,
                file_id: file_id.into(),
            })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::FileStatusReply {
                file_id: echoed,
                size,
                chunk_size,
                have,
                complete,
                accepted,
                sha256,
                ..
            } => {
                ensure!(
                    echoed == file_id,
                    "file_status_reply names {echoed}, not {file_id}"
                );
                Ok(FileStatus {
                    size,
                    chunk_size,
                    have: have.iter().map(|r| (r.start, r.end)).collect(),
                    complete,
                    accepted,
                    sha256,
                })
            }
            other => bail!("expected file_status_reply, got {}", show(&other)),
        }
    }

    /// `file_cancel` → `ok`.
    pub async fn file_cancel(&self, file_id: &str) -> Result<()> {
        self.request_with(|id| ClientMessage::FileCancel {
            id,
            file_id: file_id.into(),
        })
        .await?
        .expect_ok()
    }

    /// Sends `file_chunk` and its binary frame back to back; the reply is awaited through the
    /// handle, so several chunks can be in flight.
    pub async fn submit_chunk(
        &self,
        file_id: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<PendingReply> {
        let message = ClientMessage::FileChunk {
            id: self.new_id(),
            file_id: file_id.into(),
            offset,
            len: u32::try_from(data.len()).context("a chunk is at most 4 GiB")?,
        };
        let what = format!("{} at offset {offset}", describe_request(&message));
        self.shared
            .submit_frames(
                message.id().unwrap_or_default(),
                vec![
                    encode(&message),
                    Frame::Binary(Bytes::copy_from_slice(data)),
                ],
                what,
            )
            .await
    }

    /// One chunk, waiting for its `ok`.
    pub async fn file_chunk(&self, file_id: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.submit_chunk(file_id, offset, data)
            .await?
            .wait()
            .await?
            .expect_ok()
    }

    /// Uploads `data[range]` in chunks of `chunk_size`, all in flight at once, and checks every
    /// chunk got `ok` (the last one's answer waits for the server's hash check).
    pub async fn upload_range(
        &self,
        file_id: &str,
        data: &[u8],
        range: std::ops::Range<usize>,
        chunk_size: u32,
    ) -> Result<()> {
        let mut pending = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let end = (at + chunk_size as usize).min(range.end);
            pending.push((
                at,
                self.submit_chunk(file_id, at as u64, &data[at..end])
                    .await?,
            ));
            at = end;
        }
        for (at, reply) in pending {
            reply
                .wait()
                .await?
                .expect_ok()
                .with_context(|| format!("chunk at offset {at}"))?;
        }
        Ok(())
    }

    /// Uploads all of `data`.
    pub async fn upload(&self, file_id: &str, data: &[u8], chunk_size: u32) -> Result<()> {
        self.upload_range(file_id, data, 0..data.len(), chunk_size)
            .await
    }

    /// Uploads `data[range]` of the transfer `offer` opened, in its chunk size.
    pub async fn upload_part(
        &self,
        offer: &Offered,
        data: &[u8],
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        self.upload_range(&offer.file_id, data, range, offer.chunk_size)
            .await
    }

    /// Offers `data` as a file to `to` and uploads all of it.
    pub async fn offer_and_upload(&self, to: &str, name: &str, data: &[u8]) -> Result<Offered> {
        let offer = self.offer_file(to, name, data).await?;
        self.upload(&offer.file_id, data, offer.chunk_size).await?;
        Ok(offer)
    }

    /// Writes frames back to back without expecting a reply (forged uploads).
    pub async fn send_frames(&self, frames: Vec<Frame>) -> Result<()> {
        self.shared.send_frames(frames).await
    }

    /// Writes frames back to back and expects one reply with `id` (forged uploads).
    pub async fn submit_frames(&self, id: &str, frames: Vec<Frame>) -> Result<PendingReply> {
        self.shared
            .submit_frames(id, frames, format!("forged frames (id {id})"))
            .await
    }

    /// `file_fetch` of `[offset, offset + len)` (to `size`, the file's size, when `len` is
    /// `None`): collects `file_data` + binary frames until they cover the range, checking they
    /// come in ascending, gapless order. An `error` reply is returned as a refusal.
    pub async fn file_fetch(
        &self,
        file_id: &str,
        offset: u64,
        len: Option<u64>,
        size: u64,
    ) -> Result<Fetched> {
        let id = self.new_id();
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.shared
            .streams
            .lock()
            .expect("stream map lock is never poisoned")
            .insert(id.clone(), tx);
        let message = ClientMessage::FileFetch {
            id: id.clone(),
            file_id: file_id.into(),
            offset,
            len,
        };
        let what = describe_request(&message);
        let result = async {
            self.shared.send_frames(vec![encode(&message)]).await?;
            let end = len.map_or(size, |len| offset + len);
            let mut fetched = Fetched::default();
            let mut next = offset;
            loop {
                let item = tokio::time::timeout(REPLY_TIMEOUT, rx.recv())
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "{}: {what}: no file_data for bytes from {next} within {REPLY_TIMEOUT:?}{}",
                            self.shared.label,
                            server_log_note(self.shared.server_log.as_deref())
                        )
                    })?
                    .ok_or_else(|| anyhow!("{}: {what}: the reader stopped", self.shared.label))?;
                match item {
                    StreamItem::Data {
                        header:
                            ServerMessage::FileData {
                                file_id: got_id,
                                offset: at,
                                len,
                                ..
                            },
                        bytes,
                    } => {
                        ensure!(got_id == file_id, "file_data names {got_id}, the fetch asked for {file_id}");
                        ensure!(at == next, "file_data at offset {at}, expected the next piece at {next}");
                        ensure!(
                            len as usize == bytes.len(),
                            "file_data announces {len} bytes, its binary frame has {}",
                            bytes.len()
                        );
                        next += u64::from(len);
                        fetched.pieces.push((at, bytes.len()));
                        fetched.bytes.extend_from_slice(&bytes);
                        if next >= end {
                            return Ok(fetched);
                        }
                    }
                    StreamItem::Data { header, .. } => {
                        bail!("expected file_data, got {}", show(&header))
                    }
                    StreamItem::Reply(reply) => {
                        let reply = reply.into_result()?;
                        bail!("expected file_data, got {}", show(&reply));
                    }
                    StreamItem::Broken(reason) => bail!("{}: {what}: {reason}", self.shared.label),
                }
            }
        }
        .await;
        self.shared
            .streams
            .lock()
            .expect("stream map lock is never poisoned")
            .remove(&id);
        result
    }

    /// Fetches the whole file of `size` bytes.
    pub async fn fetch_all(&self, file_id: &str, size: u64) -> Result<Vec<u8>> {
        Ok(self.file_fetch(file_id, 0, None, size).await?.bytes)
    }

    // ---- pushes -------------------------------------------------------------------------

    /// Waits for `file_offered` from `from`.
    pub async fn expect_file_offered(&mut self, from: &str) -> Result<FileOfferInfo> {
        self.expect_push_map(&format!("file_offered from {from}"), |m| match m {
            ServerMessage::FileOffered { offer } if offer.from == from => Some(offer.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for `file_answered` about `file_id`; returns whether it was accepted.
    pub async fn expect_file_answered(&mut self, file_id: &str) -> Result<bool> {
        self.expect_push_map(&format!("file_answered for {file_id}"), |m| match m {
            ServerMessage::FileAnswered {
                file_id: f,
                accepted,
            } if f == file_id => Some(*accepted),
            _ => None,
        })
        .await
    }

    /// Waits for `file_cancelled` about `file_id`, at most `timeout`.
    pub async fn expect_file_cancelled_within(
        &mut self,
        file_id: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.expect_push_map_within(&format!("file_cancelled for {file_id}"), timeout, |m| {
            matches!(m, ServerMessage::FileCancelled { file_id: f } if f == file_id).then_some(())
        })
        .await
    }

    /// Waits for `file_cancelled` about `file_id`.
    pub async fn expect_file_cancelled(&mut self, file_id: &str) -> Result<()> {
        self.expect_file_cancelled_within(file_id, super::client::PUSH_TIMEOUT)
            .await
    }

    /// Waits for an `error` that answers no request (`id` null) with `code`.
    pub async fn expect_connection_error(&mut self, code: ErrorCode) -> Result<String> {
        self.expect_push_map(&format!("error {code} with id null"), |m| match m {
            ServerMessage::Error {
                id: None,
                code: c,
                message,
                ..
            } if *c == code => Some(message.clone()),
            _ => None,
        })
        .await
    }
}
