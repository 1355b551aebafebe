//! The transfer manager: uploads and downloads through the server's chunk store, each resumable
//! from what is already there — after a dropped connection, an app restart or a server restart.
//!
//! One worker task per moving transfer. Before moving bytes a worker asks the server what it
//! holds (`file_status`), so an upload sends only what is missing; a download keeps its own
//! chunk map in SQLite, recorded after each piece is written, so a restart re-fetches at most
//! the piece in flight. Workers park while the connection is down and start again when the
//! engine is back online.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use natter_proto::{
    validate, ClientMessage, ErrorCode, FileKind, MessageBody, RangeSet, ServerMessage, Target,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{request_id, Command, Piece};
use crate::store::{OutboxEntry, Store, TransferRecord};
use crate::transfer::{Direction, TransferInfo, TransferState};
use crate::{now_ms, ClientError, ConnectionState, Event, SharedStore};

/// Chunks an upload keeps in flight: enough to keep a loopback or LAN link busy while the
/// server writes, few enough that a chat message is never stuck behind much file data.
const UPLOAD_WINDOW: usize = 4;
/// Pieces a download may buffer between the socket and the disk.
const FETCH_BUFFER: usize = 8;
/// How often a transfer reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// How often a download looks again while the sender is still uploading.
const WAIT_FOR_SENDER: Duration = Duration::from_secs(1);
/// Suffix of a download in progress, next to its destination.
const PART_SUFFIX: &str = ".natterpart";

/// Errors after which a worker waits for the connection and tries again.
fn is_transient(e: &ClientError) -> bool {
    match e {
        ClientError::Offline | ClientError::Timeout | ClientError::NotLoggedIn => true,
        ClientError::Server { code, .. } => matches!(
            code,
            ErrorCode::RateLimited
                | ErrorCode::Internal
                | ErrorCode::ServerBusy
                | ErrorCode::NotAuthenticated
        ),
        _ => false,
    }
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(PART_SUFFIX);
    PathBuf::from(name)
}

/// Streams a file through SHA-256 off the async threads.
pub(crate) async fn sha256_file(path: &Path) -> Result<String, ClientError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> Result<String, ClientError> {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(format!("{:x}", hasher.finalize()))
    })
    .await
    .map_err(|e| ClientError::Io(e.to_string()))?
}

/// Throughput as the UI shows it, smoothed so the figure does not jump with every chunk.
struct Meter {
    last: Instant,
    last_done: u64,
    rate: f64,
}

impl Meter {
    fn new(done: u64) -> Self {
        Self {
            last: Instant::now(),
            last_done: done,
            rate: 0.0,
        }
    }

    /// `Some(rate)` when it is time to report.
    fn tick(&mut self, done: u64) -> Option<u64> {
        let elapsed = self.last.elapsed();
        if elapsed < PROGRESS_EVERY {
            return None;
        }
        let now = done.saturating_sub(self.last_done) as f64 / elapsed.as_secs_f64();
        self.rate = if self.rate == 0.0 {
            now
        } else {
            0.6 * self.rate + 0.4 * now
        };
        self.last = Instant::now();
        self.last_done = done;
        Some(self.rate as u64)
    }
}

pub(crate) struct Transfers {
    commands: mpsc::Sender<Command>,
    store: SharedStore,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<ConnectionState>,
    /// Workers by file id, with a generation so a finished worker never removes its successor.
    running: Mutex<HashMap<String, (u64, CancellationToken)>>,
    generation: std::sync::atomic::AtomicU64,
    /// Bumped when a transfer changes, so `wait_done` can sleep until something happens.
    changed: watch::Sender<u64>,
}

impl Transfers {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        store: SharedStore,
        events: broadcast::Sender<Event>,
        state: watch::Receiver<ConnectionState>,
    ) -> Arc<Self> {
        Arc::new(Self {
            commands,
            store,
            events,
            state,
            running: Mutex::new(HashMap::new()),
            generation: Default::default(),
            changed: watch::channel(0).0,
        })
    }

    /// Handles file pushes and restarts workers whenever the engine is back online.
    pub(crate) async fn run(self: Arc<Self>, mut pushes: mpsc::UnboundedReceiver<ServerMessage>) {
        // Every login, first or after a reconnect, is a `LoggedIn` event (the connection state
        // alone does not say when a session exists).
        let mut events = self.events.subscribe();
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => self.push(push).await,
                    None => break,
                },
                event = events.recv() => match event {
                    Ok(Event::LoggedIn(_)) => self.resume_all().await,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        self.stop_all();
    }

    fn local_store(&self) -> Result<Store, ClientError> {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(ClientError::NotLoggedIn)
    }

    /// Progress from a worker: a stopped worker (paused, cancelled) may still run until its next
    /// await, and must not report "uploading" after the pause was reported.
    fn progress(&self, info: &TransferInfo, cancel: &CancellationToken) {
        if !cancel.is_cancelled() {
            self.emit(info);
        }
    }

    fn emit(&self, info: &TransferInfo) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        let _ = self.events.send(Event::Transfer(info.clone()));
    }

    async fn save(&self, store: &Store, t: &TransferRecord) -> Result<(), ClientError> {
        store.update_transfer(t).await?;
        self.emit(&t.info);
        Ok(())
    }

    async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        crate::engine::request(&self.commands, message).await
    }

    async fn status(&self, file_id: &str) -> Result<Status, ClientError> {
        match self
            .request(ClientMessage::FileStatus {
                id: request_id(),
                file_id: file_id.to_owned(),
            })
            .await?
        {
            ServerMessage::FileStatusReply {
                size,
                chunk_size,
                have,
                complete,
                accepted,
                ..
            } => Ok(Status {
                size,
                chunk_size,
                have: RangeSet::from_wire(&have),
                complete,
                accepted,
            }),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to file_status: {other:?}"
            ))),
        }
    }

    // ---- starting transfers ------------------------------------------------------------------

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
        let sha256 = sha256_file(path).await?;
        let reply = self
            .request(ClientMessage::FileOffer {
                id: request_id(),
                to: to.clone(),
                name: name.clone(),
                size,
                sha256: sha256.clone(),
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
        let message = image.map(|body| match body {
            MessageBody::Image {
                name: _,
                mime,
                size,
                width,
                height,
                thumbnail,
                ..
            } => MessageBody::Image {
                file_id: file_id.clone(),
                name: name.clone(),
                mime,
                size,
                width,
                height,
                thumbnail,
            },
            other => other,
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
                sha256: sha256.clone(),
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
            // The offer card in the conversation, sent like any message (outbox, retries).
            let entry = OutboxEntry {
                client_msg_id: request_id(),
                to,
                body: MessageBody::File {
                    file_id: file_id.clone(),
                    name,
                    size,
                    sha256,
                },
            };
            store.enqueue(&entry, now_ms()).await?;
            let _ = self.commands.send(Command::FlushOutbox).await;
        }
        self.emit(&record.info);
        self.spawn(&file_id);
        Ok(record.info)
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

    async fn cancelled(&self, store: &Store, t: &mut TransferRecord) -> Result<(), ClientError> {
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
                    // Images carry no hash in their message; the server checked it on upload.
                    sha256: String::new(),
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
                    return Err(ClientError::Io(
                        t.info
                            .error
                            .unwrap_or_else(|| "the image could not be downloaded".into()),
                    ))
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

    async fn record(&self, store: &Store, file_id: &str) -> Result<TransferRecord, ClientError> {
        store
            .transfer(file_id)
            .await?
            .ok_or_else(|| ClientError::Server {
                code: ErrorCode::NotFound,
                message: format!("no transfer {file_id}"),
                retry_after_ms: None,
            })
    }

    async fn expect_ok(&self, message: ClientMessage) -> Result<(), ClientError> {
        match self.request(message).await? {
            ServerMessage::Ok { .. } => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply: {other:?}"
            ))),
        }
    }

    // ---- pushes ------------------------------------------------------------------------------

    async fn push(self: &Arc<Self>, push: ServerMessage) {
        let Ok(store) = self.local_store() else {
            return;
        };
        let result = match push {
            ServerMessage::FileOffered { offer } => {
                let name = validate::sanitize_file_name(&offer.name)
                    .unwrap_or_else(|_| format!("file-{}", offer.file_id));
                let record = TransferRecord {
                    info: TransferInfo {
                        file_id: offer.file_id,
                        direction: Direction::Down,
                        kind: FileKind::File,
                        chat: Target::User {
                            username: offer.from.clone(),
                        },
                        peer: offer.from,
                        name,
                        size: offer.size,
                        sha256: offer.sha256,
                        state: TransferState::Offered,
                        done: 0,
                        rate: 0,
                        path: None,
                        accepted: false,
                        error: None,
                        ts: offer.ts,
                    },
                    chunk_size: 0,
                    ranges: RangeSet::default(),
                    message: None,
                };
                match store.insert_transfer(&record).await {
                    Ok(true) => {
                        self.emit(&record.info);
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            ServerMessage::FileAnswered { file_id, accepted } => {
                match store.transfer(&file_id).await {
                    // The upload may have met the deleted transfer (`not_found` → cancelled)
                    // before this push arrived: a "no" is the truer ending.
                    Ok(Some(mut t))
                        if !t.info.state.is_final()
                            || (!accepted && t.info.state == TransferState::Cancelled) =>
                    {
                        t.info.accepted = accepted;
                        if !accepted {
                            self.stop(&file_id);
                            t.info.state = TransferState::Rejected;
                            t.info.rate = 0;
                        } else if t.info.state == TransferState::Uploaded {
                            t.info.state = TransferState::Done;
                        }
                        self.save(&store, &t).await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            ServerMessage::FileCancelled { file_id } => match store.transfer(&file_id).await {
                // A sent file counts as done once accepted; the receiver may still give up on
                // the download, and the sender should hear it did not arrive.
                Ok(Some(mut t))
                    if !t.info.state.is_final()
                        || (t.info.direction == Direction::Up
                            && t.info.state == TransferState::Done) =>
                {
                    self.stop(&file_id);
                    self.cancelled(&store, &mut t).await
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            },
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record a file push");
        }
    }

    // ---- workers -----------------------------------------------------------------------------

    /// Starts workers for every transfer that should be moving (after a login or reconnect).
    pub(crate) async fn resume_all(self: &Arc<Self>) {
        let Ok(store) = self.local_store() else {
            return;
        };
        match store.transfers().await {
            Ok(all) => {
                for t in all {
                    if matches!(
                        t.info.state,
                        TransferState::Uploading
                            | TransferState::Downloading
                            | TransferState::Uploaded
                    ) {
                        self.spawn(&t.info.file_id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list transfers"),
        }
    }

    fn spawn(self: &Arc<Self>, file_id: &str) {
        let cancel = CancellationToken::new();
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(file_id) {
                return;
            }
            running.insert(file_id.to_owned(), (generation, cancel.clone()));
        }
        let this = self.clone();
        let file_id = file_id.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = this.work(&file_id, &cancel) => {}
            }
            let mut running = this.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(&file_id).is_some_and(|(g, _)| *g == generation) {
                running.remove(&file_id);
            }
        });
    }

    fn stop(&self, file_id: &str) {
        if let Some((_, cancel)) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(file_id)
        {
            cancel.cancel();
        }
    }

    /// Stops every worker (logout, shutdown); their transfers resume at the next login.
    pub(crate) fn stop_all(&self) {
        for (_, (_, cancel)) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            cancel.cancel();
        }
    }

    async fn wait_online(&self) {
        let mut state = self.state.clone();
        let _ = state.wait_for(|s| *s == ConnectionState::Online).await;
    }

    async fn work(&self, file_id: &str, cancel: &CancellationToken) {
        let mut protocol_errors = 0;
        loop {
            self.wait_online().await;
            let Ok(store) = self.local_store() else {
                return;
            };
            let t = match store.transfer(file_id).await {
                Ok(Some(t)) => t,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, file_id, "cannot read a transfer");
                    return;
                }
            };
            let result = match (t.info.direction, t.info.state) {
                (Direction::Up, TransferState::Uploading | TransferState::Uploaded) => {
                    self.upload(&store, t, cancel).await
                }
                (Direction::Down, TransferState::Downloading) => {
                    self.download(&store, t, cancel).await
                }
                _ => return,
            };
            let error = match result {
                Ok(()) => return,
                Err(e) if is_transient(&e) => {
                    tracing::debug!(error = %e, file_id, "transfer interrupted; resuming");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
                Err(e @ ClientError::Protocol(_)) if protocol_errors < 3 => {
                    protocol_errors += 1;
                    tracing::warn!(error = %e, file_id, "transfer hiccup; resuming");
                    continue;
                }
                Err(e) => e,
            };
            let Ok(Some(mut t)) = store.transfer(file_id).await else {
                return;
            };
            t.info.rate = 0;
            if error.code() == Some(ErrorCode::NotFound) {
                // Cancelled, rejected or expired while we were away.
                let _ = self.cancelled(&store, &mut t).await;
            } else {
                tracing::warn!(error = %error, file_id, "transfer failed");
                t.info.state = TransferState::Failed;
                t.info.error = Some(error.to_string());
                let _ = self.save(&store, &t).await;
            }
            return;
        }
    }

    async fn upload(
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
        let chunk = u64::from(t.chunk_size);
        let mut pieces = Vec::new();
        for (start, end) in t.ranges.missing(t.info.size) {
            let mut at = start;
            while at < end {
                let len = chunk.min(end - at);
                pieces.push((at, len));
                at += len;
            }
        }
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

    async fn download(
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
        if t.ranges
            .as_slice()
            .last()
            .is_some_and(|&(_, end)| end > on_disk)
        {
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
        let mut hashed = (t.ranges.total() == 0).then(|| (Sha256::new(), 0u64));
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
                    hashed = hashed.and_then(|(mut h, upto)| {
                        (offset == upto).then(|| {
                            h.update(&data);
                            (h, upto + data.len() as u64)
                        })
                    });
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
            let actual = match hashed {
                Some((h, upto)) if upto == t.info.size => format!("{:x}", h.finalize()),
                _ => sha256_file(&part).await?,
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

struct Status {
    size: u64,
    chunk_size: u32,
    have: RangeSet,
    complete: bool,
    accepted: bool,
}

fn invalid(message: &str) -> ClientError {
    ClientError::Invalid {
        code: ErrorCode::InvalidField,
        message: message.to_owned(),
    }
}
