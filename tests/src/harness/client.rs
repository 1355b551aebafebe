//! A protocol-speaking test client: one socket (plain or TLS), a reader task that routes
//! replies to the request that is waiting for them and queues everything else as pushes
//! (waiting for those is in `pushes.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use natter_proto::{decode_server, encode, ClientMessage, Frame, FrameCodec, ServerMessage};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

use super::replies::{shorten, LoginOk};
use super::server::TestServer;
use super::tls;

/// How long a request waits for its reply: generous, for a loaded machine.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `expect_*` waits for a push by default.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long "nothing arrives" checks listen by default.
pub const QUIET_WINDOW: Duration = Duration::from_millis(300);

/// Anything that carries the byte stream: a TCP socket or a TLS stream over one.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

type Conn = Framed<Box<dyn Transport>, FrameCodec>;

/// Opens a TCP connection (and TLS over it when `cert` is given) and returns the stream plus a
/// duplicate of the socket handle, used to cut the connection abruptly.
pub(crate) async fn open_transport(
    addr: std::net::SocketAddr,
    cert: Option<&rustls::pki_types::CertificateDer<'_>>,
) -> Result<(Box<dyn Transport>, std::net::TcpStream)> {
    let tcp = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr} timed out"))?
        .with_context(|| format!("while connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let std_tcp = tcp.into_std()?;
    let control = std_tcp
        .try_clone()
        .context("while duplicating the socket")?;
    let tcp = TcpStream::from_std(std_tcp)?;
    let stream: Box<dyn Transport> = match cert {
        None => Box::new(tcp),
        Some(cert) => Box::new(
            tokio::time::timeout(REPLY_TIMEOUT, tls::handshake(tcp, cert, tls::SERVER_NAME))
                .await
                .context("TLS handshake timed out")??,
        ),
    };
    Ok((stream, control))
}

/// How many server log lines a harness failure quotes.
const LOG_LINES_IN_FAILURES: usize = 25;

/// The tail of the server's log, for a failure report.
pub(super) fn server_log_note(path: Option<&std::path::Path>) -> String {
    match path {
        Some(path) => format!(
            "\n---- server log, last {LOG_LINES_IN_FAILURES} lines ({}) ----\n{}",
            path.display(),
            super::server::log_tail(path, LOG_LINES_IN_FAILURES)
        ),
        None => String::new(),
    }
}

/// What the reader task hands to the push queue.
pub(super) enum Event {
    /// A push, or a reply nobody was waiting for.
    Push(Box<ServerMessage>),
    /// A JSON frame the protocol cannot decode: a server bug, reported as such.
    Undecodable(String),
    /// A binary frame of this many bytes that no awaited `file_data` announced.
    Binary(usize),
    /// The connection ended, for this reason.
    Closed(String),
}

type Waiters = Mutex<HashMap<String, oneshot::Sender<ServerMessage>>>;

/// What the reader hands a fetch waiting on its request id (see `files.rs`).
#[derive(Debug)]
pub(super) enum StreamItem {
    /// A `file_data` header and the binary frame that followed it.
    Data {
        /// The header.
        header: ServerMessage,
        /// The binary frame's payload.
        bytes: Bytes,
    },
    /// Any other frame with this id (an `error` ends the fetch).
    Reply(ServerMessage),
    /// The server broke the framing rules for this fetch, or the connection ended.
    Broken(String),
}

pub(super) type Streams = Mutex<HashMap<String, mpsc::UnboundedSender<StreamItem>>>;

/// The half shared with background tasks (keep-alive): the writer and the reply routing.
pub(super) struct Shared {
    pub(super) label: String,
    pub(super) server_log: Option<std::path::PathBuf>,
    writer: tokio::sync::Mutex<SplitSink<Conn, Frame>>,
    waiters: Arc<Waiters>,
    pub(super) streams: Arc<Streams>,
    pub(super) closed: Arc<AtomicBool>,
    next_id: AtomicU64,
}

/// A reply not yet received; see [`TestClient::submit`].
pub struct PendingReply {
    label: String,
    server_log: Option<std::path::PathBuf>,
    request: String,
    rx: oneshot::Receiver<ServerMessage>,
}

impl PendingReply {
    /// Waits for the reply.
    pub async fn wait(self) -> Result<ServerMessage> {
        self.wait_within(REPLY_TIMEOUT).await
    }

    /// Waits for the reply at most `timeout`.
    pub async fn wait_within(self, timeout: Duration) -> Result<ServerMessage> {
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => bail!(
                "{}: the connection closed before the reply to {} arrived{}",
                self.label,
                self.request,
                server_log_note(self.server_log.as_deref())
            ),
            Err(_) => bail!(
                "{}: no reply to {} within {timeout:?}{}",
                self.label,
                self.request,
                server_log_note(self.server_log.as_deref())
            ),
        }
    }
}

impl Shared {
    fn new_id(&self) -> String {
        format!("r{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    async fn submit_frame(&self, id: &str, frame: Frame, what: String) -> Result<PendingReply> {
        self.submit_frames(id, vec![frame], what).await
    }

    /// Sends frames back to back under one hold of the writer (so a keep-alive heartbeat can
    /// never slip between a `file_chunk` and its binary frame) and expects one reply.
    pub(super) async fn submit_frames(
        &self,
        id: &str,
        frames: Vec<Frame>,
        what: String,
    ) -> Result<PendingReply> {
        let (tx, rx) = oneshot::channel();
        let replaced = self
            .waiters
            .lock()
            .expect("waiter map lock is never poisoned")
            .insert(id.to_owned(), tx);
        if replaced.is_some() {
            bail!(
                "{}: request id {id} is already waiting for a reply",
                self.label
            );
        }
        // The reader sets `closed` before it drops every waiter, so either it drops ours or we
        // see the flag here.
        if self.closed.load(Ordering::SeqCst) {
            self.waiters
                .lock()
                .expect("waiter map lock is never poisoned")
                .remove(id);
            bail!(
                "{}: cannot send {what}: the connection is closed",
                self.label
            );
        }
        {
            let mut writer = self.writer.lock().await;
            for frame in frames {
                writer
                    .feed(frame)
                    .await
                    .with_context(|| format!("{}: while sending {what}", self.label))?;
            }
            writer
                .flush()
                .await
                .with_context(|| format!("{}: while sending {what}", self.label))?;
        }
        Ok(PendingReply {
            label: self.label.clone(),
            server_log: self.server_log.clone(),
            request: what,
            rx,
        })
    }

    async fn submit(&self, message: &ClientMessage) -> Result<PendingReply> {
        let what = describe_request(message);
        self.submit_frame(message.id().unwrap_or_default(), encode(message), what)
            .await
    }

    /// Writes frames back to back under one hold of the writer, expecting no reply.
    pub(super) async fn send_frames(&self, frames: Vec<Frame>) -> Result<()> {
        let mut writer = self.writer.lock().await;
        for frame in frames {
            writer
                .feed(frame)
                .await
                .with_context(|| format!("{}: while sending frames", self.label))?;
        }
        writer
            .flush()
            .await
            .with_context(|| format!("{}: while sending frames", self.label))
    }
}

pub(super) fn describe_request(message: &ClientMessage) -> String {
    let json = serde_json::to_value(message).unwrap_or_default();
    let kind = json.get("type").and_then(|t| t.as_str()).unwrap_or("?");
    format!("`{kind}` (id {})", message.id().unwrap_or("none"))
}

/// Keeps a session alive by sending `heartbeat` requests; stops when dropped.
pub struct KeepAlive(JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A test user's connection to the server.
pub struct TestClient {
    pub(super) shared: Arc<Shared>,
    pub(super) events: mpsc::UnboundedReceiver<Event>,
    pub(super) backlog: VecDeque<ServerMessage>,
    pub(super) heartbeats_skipped: u64,
    pub(super) closed: Option<String>,
    reader: Option<JoinHandle<()>>,
    control: Option<std::net::TcpStream>,
    session: Mutex<Option<LoginOk>>,
}

impl TestClient {
    /// Connects over plain TCP (no `hello` yet).
    pub async fn connect_plain(server: &TestServer) -> Result<TestClient> {
        let (stream, control) = open_transport(server.plain_addr(), None).await?;
        Ok(Self::over(
            stream,
            control,
            "plain",
            Some(server.log_path()),
        ))
    }

    /// Connects over TLS, trusting exactly the server's certificate (no `hello` yet).
    pub async fn connect_tls(server: &TestServer) -> Result<TestClient> {
        let (stream, control) =
            open_transport(server.tls_addr()?, Some(server.cert_der()?)).await?;
        Ok(Self::over(stream, control, "tls", Some(server.log_path())))
    }

    fn over(
        stream: Box<dyn Transport>,
        control: std::net::TcpStream,
        label: &str,
        server_log: Option<std::path::PathBuf>,
    ) -> TestClient {
        let (writer, reader) = Framed::new(stream, FrameCodec::default()).split();
        let (events_tx, events) = mpsc::unbounded_channel();
        let waiters: Arc<Waiters> = Arc::default();
        let streams: Arc<Streams> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_frames(
            reader,
            Arc::clone(&waiters),
            Arc::clone(&streams),
            Arc::clone(&closed),
            events_tx,
        ));
        TestClient {
            shared: Arc::new(Shared {
                label: label.to_owned(),
                server_log,
                writer: tokio::sync::Mutex::new(writer),
                waiters,
                streams,
                closed,
                next_id: AtomicU64::new(1),
            }),
            events,
            backlog: VecDeque::new(),
            heartbeats_skipped: 0,
            closed: None,
            reader: Some(reader),
            control: Some(control),
            session: Mutex::new(None),
        }
    }

    /// Names this client in failure messages (e.g. "alice").
    pub fn named(mut self, label: &str) -> TestClient {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.label = label.to_owned();
        }
        self
    }

    /// A fresh request id.
    pub fn new_id(&self) -> String {
        self.shared.new_id()
    }

    /// The session's username, once logged in.
    pub fn username(&self) -> Option<String> {
        self.session().map(|s| s.profile.username)
    }

    /// The last `login_ok` (login, guest login or resume) this client received.
    pub fn session(&self) -> Option<LoginOk> {
        self.session
            .lock()
            .expect("session lock is never poisoned")
            .clone()
    }

    pub(super) fn set_session(&self, session: LoginOk) {
        *self.session.lock().expect("session lock is never poisoned") = Some(session);
    }

    /// The session token, once logged in.
    pub fn token(&self) -> Result<String> {
        self.session()
            .map(|s| s.token)
            .ok_or_else(|| anyhow!("{} has no session token", self.shared.label))
    }

    /// Cuts the connection abruptly (TCP reset), the way a crashed client or a pulled cable
    /// would: no logout, no close_notify. Drop any [`KeepAlive`] of this client first: it
    /// holds the writing half open.
    pub async fn drop_connection(mut self) -> Result<()> {
        if let Some(control) = self.control.take() {
            let socket = TcpStream::from_std(control)?;
            socket.set_zero_linger()?;
            drop(socket);
        }
        if let Some(reader) = self.reader.take() {
            reader.abort();
            let _ = reader.await;
        }
        drop(self);
        Ok(())
    }

    // ---- requests -------------------------------------------------------------------------

    /// Sends a request and returns without waiting; the reply is awaited through the handle.
    pub async fn submit(&self, message: &ClientMessage) -> Result<PendingReply> {
        self.shared.submit(message).await
    }

    /// Sends a request and waits for its reply (which may be an `error`).
    pub async fn request(&self, message: ClientMessage) -> Result<ServerMessage> {
        self.submit(&message).await?.wait().await
    }

    /// Like [`request`](Self::request), building the message around a fresh id.
    pub async fn request_with(
        &self,
        build: impl FnOnce(String) -> ClientMessage,
    ) -> Result<ServerMessage> {
        self.request(build(self.new_id())).await
    }

    /// Sends any JSON object (an `id` is added if it has none) and waits for the reply with
    /// that id: for messages the typed enum cannot express, such as extra fields.
    pub async fn request_json(&self, mut json: serde_json::Value) -> Result<ServerMessage> {
        let object = json
            .as_object_mut()
            .ok_or_else(|| anyhow!("request_json needs a JSON object"))?;
        let id = match object.get("id").and_then(|v| v.as_str()) {
            Some(id) => id.to_owned(),
            None => {
                let id = self.new_id();
                object.insert("id".into(), id.clone().into());
                id
            }
        };
        let what = format!("raw JSON {}", shorten(&json.to_string(), 120));
        let frame = Frame::Json(Bytes::from(json.to_string()));
        self.shared
            .submit_frame(&id, frame, what)
            .await?
            .wait()
            .await
    }

    /// Writes a frame without expecting a reply.
    pub async fn send_frame(&self, frame: Frame) -> Result<()> {
        self.shared
            .writer
            .lock()
            .await
            .send(frame)
            .await
            .with_context(|| format!("{}: while sending a frame", self.shared.label))
    }

    /// Sends a `heartbeat` request every `every` until the guard is dropped, as a real client
    /// does to stay within the idle timeout.
    pub fn keep_alive(&self, every: Duration) -> KeepAlive {
        let shared = Arc::clone(&self.shared);
        KeepAlive(tokio::spawn(async move {
            loop {
                let message = ClientMessage::Heartbeat {
                    id: shared.new_id(),
                };
                match shared.submit(&message).await {
                    // The reply is awaited so it is routed here and never queued as a push.
                    Ok(pending) => {
                        let _ = pending.wait().await;
                    }
                    Err(_) => return,
                }
                tokio::time::sleep(every).await;
            }
        }))
    }
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("label", &self.shared.label)
            .field("username", &self.username())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

async fn read_frames(
    mut frames: SplitStream<Conn>,
    waiters: Arc<Waiters>,
    streams: Arc<Streams>,
    closed: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<Event>,
) {
    let stream_for = |id: &str| {
        streams
            .lock()
            .expect("stream map lock is never poisoned")
            .get(id)
            .cloned()
    };
    // A `file_data` header of a fetch someone waits for: its binary frame must come next.
    let mut announced: Option<(mpsc::UnboundedSender<StreamItem>, ServerMessage)> = None;
    let reason = loop {
        let frame = frames.next().await;
        if let Some((stream, header)) = announced.take() {
            match frame {
                Some(Ok(Frame::Binary(bytes))) => {
                    let _ = stream.send(StreamItem::Data { header, bytes });
                    continue;
                }
                _ => {
                    let _ = stream.send(StreamItem::Broken(format!(
                        "the server sent {} without the binary frame it announces",
                        shorten(&serde_json::to_string(&header).unwrap_or_default(), 200)
                    )));
                }
            }
        }
        match frame {
            Some(Ok(Frame::Json(payload))) => match decode_server(&payload) {
                Ok(message) => {
                    if let Some(id) = message.reply_id() {
                        if let Some(stream) = stream_for(id) {
                            if matches!(message, ServerMessage::FileData { .. }) {
                                announced = Some((stream, message));
                            } else {
                                let _ = stream.send(StreamItem::Reply(message));
                            }
                            continue;
                        }
                        let waiter = waiters
                            .lock()
                            .expect("waiter map lock is never poisoned")
                            .remove(id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(message);
                            continue;
                        }
                    }
                    let _ = events.send(Event::Push(Box::new(message)));
                }
                Err(e) => {
                    let _ = events.send(Event::Undecodable(format!(
                        "{e}: {}",
                        shorten(&String::from_utf8_lossy(&payload), 300)
                    )));
                }
            },
            Some(Ok(Frame::Binary(bytes))) => {
                let _ = events.send(Event::Binary(bytes.len()));
            }
            Some(Err(e)) => break e.to_string(),
            None => break "the server closed the connection".to_owned(),
        }
    };
    closed.store(true, Ordering::SeqCst);
    waiters
        .lock()
        .expect("waiter map lock is never poisoned")
        .clear();
    for (_, stream) in streams
        .lock()
        .expect("stream map lock is never poisoned")
        .drain()
    {
        let _ = stream.send(StreamItem::Broken(reason.clone()));
    }
    let _ = events.send(Event::Closed(reason));
}
