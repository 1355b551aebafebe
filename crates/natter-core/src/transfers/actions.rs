//! What the user does with a transfer: offer a file or image, accept or reject an offer, pause,
//! resume, cancel, and open an image (downloading it first if needed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use natter_proto::{
    validate, ClientMessage, ErrorCode, FileKind, MessageBody, RangeSet, ServerMessage, Target,
};

use super::download::part_path;
use super::{invalid, Transfers};
use crate::engine::{request_id, Command};
use crate::store::{OutboxEntry, Store, TransferRecord};
use crate::transfer::{Direction, TransferInfo, TransferState};
use crate::{now_ms, ClientError};

impl Transfers {
    /// Offers a file (or an image's full file) and starts uploading it.
    pub(crate) async fn offer(
        self: &Arc<Self>,
        to: Target,
        path: &Path,
        name: Option<&str>,
        kind: FileKind,
        image: Option<MessageBody>,
    ) -> Result<TransferInfo, ClientError> {
        let store = self.local_store()?;
        let meta = tokio::fs::metadata(path).await?;
        if !meta.is_file() {
            return Err(ClientError::Invalid {
                code: ErrorCode::InvalidField,
                message: format!("{} is not a file", path.display()),
            });
        }
        let raw_name = match name {
            Some(name) => name.to_owned(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let name = validate::sanitize_file_name(&raw_name)?;
        let size = meta.len();
        if image.is_none() {
            if let Some(info) = self.resume_unfinished(&store, &to, path, size).await? {
                return Ok(info);
            }
        }
        // No hash yet: the offer goes out at once, and the upload computes the SHA-256 while
        // the bytes flow and names it with `file_complete` (a first pass over a big file would
        // hold the offer up for seconds).
        let reply = self
            .request(ClientMessage::FileOffer {
                id: request_id(),
                to: to.clone(),
                name: name.clone(),
                size,
                sha256: None,
                kind,
            })
            .await?;
        let ServerMessage::FileOfferCreated {
            file_id,
            chunk_size,
            ..
        } = reply
        else {
            return Err(ClientError::Protocol(format!(
                "unexpected reply to file_offer: {reply:?}"
            )));
        };
        let peer = match &to {
            Target::User { username } => username.clone(),
            Target::Square => String::new(),
        };
        // The image message names the transfer now that it exists (and its hash once the
        // upload has it; the server writes the verified one anyway).
        let message = image.map(|mut body| {
            if let MessageBody::Image {
                file_id: id,
                name: n,
                ..
            } = &mut body
            {
                id.clone_from(&file_id);
                n.clone_from(&name);
            }
            body
        });
        let record = TransferRecord {
            info: TransferInfo {
                file_id: file_id.clone(),
                direction: Direction::Up,
                kind,
                chat: to.clone(),
                peer,
                name: name.clone(),
                size,
                sha256: String::new(),
                state: TransferState::Uploading,
                done: 0,
                rate: 0,
                path: Some(path.to_string_lossy().into_owned()),
                accepted: kind == FileKind::Image,
                error: None,
                ts: now_ms(),
            },
            chunk_size,
            ranges: RangeSet::default(),
            message,
        };
        store.insert_transfer(&record).await?;
        if kind == FileKind::File {
            // The offer card in the conversation, sent like any message (outbox, retries). Its
            // hash is left empty: the server fills in the one the sender names.
            let entry = OutboxEntry {
                client_msg_id: request_id(),
                to,
                body: MessageBody::File {
                    file_id: file_id.clone(),
                    name,
                    size,
                    sha256: String::new(),
                },
            };
            store.enqueue(&entry, now_ms()).await?;
            let _ = self.commands.send(Command::FlushOutbox).await;
        }
        self.emit(&record.info);
        self.spawn(&file_id);
        Ok(record.info)
    }

    /// The same file sent to the same user again while an earlier upload of it is unfinished
    /// (the app or the CLI was killed, or it was paused) continues that upload from what the
    /// server holds, instead of offering it twice.
    async fn resume_unfinished(
        self: &Arc<Self>,
        store: &Store,
        to: &Target,
        path: &Path,
        size: u64,
    ) -> Result<Option<TransferInfo>, ClientError> {
        let path = path.to_string_lossy();
        let unfinished = store.transfers().await?.into_iter().find(|t| {
            let i = &t.info;
            i.direction == Direction::Up
                && i.kind == FileKind::File
                && &i.chat == to
                && i.size == size
                && i.path.as_deref() == Some(&*path)
                && matches!(i.state, TransferState::Uploading | TransferState::Paused)
        });
        let Some(mut t) = unfinished else {
            return Ok(None);
        };
        if t.info.state == TransferState::Paused {
            t.info.state = TransferState::Uploading;
            self.save(store, &t).await?;
        }
        tracing::info!(file_id = %t.info.file_id, "continuing an unfinished upload of the same file");
        self.spawn(&t.info.file_id);
        Ok(Some(t.info))
    }

    /// Accepts an offered file and downloads it to `dest`.
    pub(crate) async fn accept(
        self: &Arc<Self>,
        file_id: &str,
        dest: &Path,
    ) -> Result<TransferInfo, ClientError> {
        let store = self.local_store()?;
        let mut t = self.record(&store, file_id).await?;
        if t.info.direction != Direction::Down || t.info.kind != FileKind::File {
            return Err(invalid("only a file offered to you can be accepted"));
        }
        if t.info.state != TransferState::Offered {
            return Err(invalid("this offer was already answered"));
        }
        self.expect_ok(ClientMessage::FileAnswer {
            id: request_id(),
            file_id: file_id.to_owned(),
            accept: true,
        })
        .await?;
        t.info.accepted = true;
        t.info.state = TransferState::Downloading;
        t.info.path = Some(dest.to_string_lossy().into_owned());
        self.save(&store, &t).await?;
        self.spawn(file_id);
        Ok(t.info)
    }

    /// Declines an offered file.
    pub(crate) async fn reject(&self, file_id: &str) -> Result<(), ClientError> {
        let store = self.local_store()?;
        let mut t = self.record(&store, file_id).await?;
        if t.info.direction != Direction::Down || t.info.state != TransferState::Offered {
            return Err(invalid("only an unanswered offer can be declined"));
        }
        self.expect_ok(ClientMessage::FileAnswer {
            id: request_id(),
            file_id: file_id.to_owned(),
            accept: false,
        })
        .await?;
        t.info.state = TransferState::Rejected;
        self.save(&store, &t).await
    }

    /// Stops moving bytes; [`Self::resume`] continues from where it stopped.
    pub(crate) async fn pause(&self, file_id: &str) -> Result<TransferInfo, ClientError> {
        let store = self.local_store()?;
        let mut t = self.record(&store, file_id).await?;
        if !matches!(
            t.info.state,
            TransferState::Uploading | TransferState::Downloading
        ) {
            return Err(invalid("only a moving transfer can be paused"));
        }
        self.stop(file_id);
        t.info.state = TransferState::Paused;
        t.info.rate = 0;
        self.save(&store, &t).await?;
        Ok(t.info)
    }

    /// Continues a paused (or failed) transfer.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        file_id: &str,
    ) -> Result<TransferInfo, ClientError> {
        let store = self.local_store()?;
        let mut t = self.record(&store, file_id).await?;
        if !matches!(t.info.state, TransferState::Paused | TransferState::Failed) {
            return Err(invalid("only a paused or failed transfer can be resumed"));
        }
        t.info.state = match t.info.direction {
            Direction::Up => TransferState::Uploading,
            Direction::Down => TransferState::Downloading,
        };
        t.info.error = None;
        self.save(&store, &t).await?;
        self.spawn(file_id);
        Ok(t.info)
    }

    /// Ends a transfer for good on both sides.
    pub(crate) async fn cancel(&self, file_id: &str) -> Result<(), ClientError> {
        let store = self.local_store()?;
        let mut t = self.record(&store, file_id).await?;
        if t.info.state.is_final() {
            return Ok(());
        }
        self.stop(file_id);
        match self
            .expect_ok(ClientMessage::FileCancel {
                id: request_id(),
                file_id: file_id.to_owned(),
            })
            .await
        {
            // Already gone on the server: cancelled either way.
            Ok(())
            | Err(ClientError::Server {
                code: ErrorCode::NotFound,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        self.cancelled(&store, &mut t).await
    }

    pub(super) async fn cancelled(
        &self,
        store: &Store,
        t: &mut TransferRecord,
    ) -> Result<(), ClientError> {
        t.info.state = TransferState::Cancelled;
        t.info.rate = 0;
        if t.info.direction == Direction::Down {
            if let Some(dest) = &t.info.path {
                let _ = tokio::fs::remove_file(part_path(Path::new(dest))).await;
            }
            t.ranges = RangeSet::default();
        }
        self.save(store, t).await
    }

    /// The full image behind an image message, downloading it into `media_dir` first if needed.
    pub(crate) async fn image(
        self: &Arc<Self>,
        file_id: &str,
        media_dir: &Path,
    ) -> Result<PathBuf, ClientError> {
        let store = self.local_store()?;
        if store.transfer(file_id).await?.is_none() {
            let status = self.status(file_id).await?;
            let record = TransferRecord {
                info: TransferInfo {
                    file_id: file_id.to_owned(),
                    direction: Direction::Down,
                    kind: FileKind::Image,
                    chat: Target::Square,
                    peer: String::new(),
                    name: file_id.to_owned(),
                    size: status.size,
                    // What the sender named and the server verified: bytes changed on the server
                    // since (a bad disk, a meddling admin) fail the check before it is shown.
                    sha256: status.sha256,
                    state: TransferState::Downloading,
                    done: 0,
                    rate: 0,
                    path: Some(media_dir.join(file_id).to_string_lossy().into_owned()),
                    accepted: true,
                    error: None,
                    ts: now_ms(),
                },
                chunk_size: status.chunk_size,
                ranges: RangeSet::default(),
                message: None,
            };
            tokio::fs::create_dir_all(media_dir).await?;
            store.insert_transfer(&record).await?;
            self.spawn(file_id);
        }
        let mut changed = self.changed.subscribe();
        self.spawn(file_id);
        loop {
            let t = self.record(&store, file_id).await?;
            match t.info.state {
                TransferState::Done
                | TransferState::Uploading
                | TransferState::Uploaded
                | TransferState::Paused
                    if t.info.direction == Direction::Up =>
                {
                    return t
                        .info
                        .path
                        .map(PathBuf::from)
                        .ok_or_else(|| invalid("this image has no local file"));
                }
                TransferState::Done => {
                    return t
                        .info
                        .path
                        .map(PathBuf::from)
                        .ok_or_else(|| invalid("this image has no local file"));
                }
                TransferState::Failed => {
                    if let Some(why) = self.failure(file_id) {
                        return Err(why);
                    }
                    return Err(ClientError::Io(
                        t.info
                            .error
                            .unwrap_or_else(|| "the image could not be downloaded".into()),
                    ));
                }
                TransferState::Cancelled | TransferState::Rejected => {
                    return Err(ClientError::Server {
                        code: ErrorCode::NotFound,
                        message: "the image is no longer on the server".into(),
                        retry_after_ms: None,
                    })
                }
                TransferState::Paused => {
                    self.resume(file_id).await?;
                }
                _ => {}
            }
            if changed.changed().await.is_err() {
                return Err(ClientError::Closed);
            }
        }
    }
}
