//! The engine: the one task that owns the connection.
//!
//! Callers talk to it through [`Command`]s; it answers through oneshots and publishes [`Event`]s.
//! It connects on demand, says `hello`, logs in, and once a session exists keeps it alive:
//! heartbeats when quiet, a dropped connection is re-dialled with exponential backoff and jitter
//! and the session resumed by token (or logged in again with the remembered credentials). Every
//! incoming message is stored before it is acked; the outbox is sent, in order, after every
//! login and whenever something new is queued.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use natter_proto::{
    decode_server, encode, ClientMessage, ErrorCode, Frame, FrameCodec, PresenceScope,
    ServerMessage, Target,
};
use rand::Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use crate::store::{MessageState, Store};
use crate::transport::{self, PinStore, ServerAddr, Stream};
use crate::{ClientError, ConnectionState, Event, SharedStore};

type Conn = Framed<Box<dyn Stream>, FrameCodec>;
type Reply = oneshot::Sender<Result<ServerMessage, ClientError>>;

/// How the engine logs in again after a reconnect, if the token no longer works.
#[derive(Clone)]
pub(crate) enum Credentials {
    Password { username: String, password: String },
    Guest { username: String },
}

impl Credentials {
    fn username(&self) -> &str {
        match self {
            Credentials::Password { username, .. } | Credentials::Guest { username } => username,
        }
    }
}

/// Requests to the engine.
pub(crate) enum Command {
    /// Send a request and return its reply (connects first if needed).
    Request {
        message: ClientMessage,
        reply: Reply,
    },
    /// Log in (password or guest); on success the engine keeps the session alive.
    Login {
        credentials: Credentials,
        reply: Reply,
    },
    /// Continue a saved session (app restart); falls back to `credentials` if given.
    Resume {
        token: String,
        credentials: Option<Credentials>,
        reply: Reply,
    },
    /// Keep a saved session and resume it whenever the server answers (the app was opened
    /// offline, see `Client::open_offline`).
    HoldSession { token: String },
    /// End the session (logout or erase already answered `ok`): stop reconnecting.
    SessionEnded,
    /// Something new is in the outbox.
    FlushOutbox,
    /// Send `file_chunk` and its binary frame back to back; the reply is `ok` or an error.
    Upload {
        message: ClientMessage,
        data: Bytes,
        reply: Reply,
    },
    /// Send `file_fetch` for `len` bytes; the pieces go to `sink` as they arrive. The sink is
    /// dropped early when the fetch fails (the receiver sees the channel close).
    Fetch {
        message: ClientMessage,
        len: u64,
        sink: mpsc::Sender<Result<Piece, ClientError>>,
    },
    /// Stop.
    Shutdown,
}

/// Downloaded bytes at an offset.
pub(crate) struct Piece {
    pub offset: u64,
    pub data: Bytes,
}

/// A `file_data` header was read; its binary frame comes next.
struct ExpectBinary {
    id: String,
    offset: u64,
    len: u32,
    remaining: u64,
    sink: mpsc::Sender<Result<Piece, ClientError>>,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The server.
    pub server: ServerAddr,
    /// Where stores and pins live.
    pub data_dir: PathBuf,
    /// How long a request may wait for its reply.
    pub request_timeout: Duration,
    /// Shortest reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Presence pushes wanted.
    pub presence: PresenceScope,
    /// Free-form name sent in `hello`.
    pub client_name: String,
}

enum Pending {
    /// The connection's `hello`: without an answer the connection is useless.
    Hello,
    User(Reply),
    Login {
        credentials: Option<Credentials>,
        reply: Option<Reply>,
    },
    Outbox {
        client_msg_id: String,
    },
    Ack,
    Heartbeat,
    Fetch {
        remaining: u64,
        sink: mpsc::Sender<Result<Piece, ClientError>>,
    },
}

struct Live {
    conn: Conn,
    heartbeat: Duration,
    idle: Duration,
    last_rx: Instant,
    last_tx: Instant,
    greeted: bool,
    logged_in: bool,
}

struct Session {
    token: Option<String>,
    credentials: Option<Credentials>,
}

pub(crate) struct Engine {
    config: EngineConfig,
    pins: Arc<PinStore>,
    store: SharedStore,
    events: broadcast::Sender<Event>,
    state: watch::Sender<ConnectionState>,
    live: Option<Live>,
    dialing: Option<BoxFuture<'static, Result<Conn, ClientError>>>,
    /// Requests waiting for a connection (only before the first login).
    waiting: Vec<Command>,
    pending: HashMap<String, (Pending, Instant)>,
    session: Option<Session>,
    /// Private messages stored locally and not yet acked to the server.
    to_ack: Vec<i64>,
    /// Outbox entries sent on this connection and not yet answered.
    in_flight: std::collections::HashSet<String>,
    /// An outbox entry met a timeout or a transient refusal: flush again on the next tick.
    outbox_retry: bool,
    attempts: u32,
    retry_at: Option<Instant>,
    expect_binary: Option<ExpectBinary>,
    /// File pushes go to the transfer manager.
    file_pushes: mpsc::UnboundedSender<ServerMessage>,
    /// Call pushes go to the call manager.
    call_pushes: mpsc::UnboundedSender<ServerMessage>,
}

/// A fresh request (or client message) id.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Sends one request through the engine and waits for its reply.
pub(crate) async fn request(
    commands: &mpsc::Sender<Command>,
    message: ClientMessage,
) -> Result<ServerMessage, ClientError> {
    let (reply, rx) = oneshot::channel();
    commands
        .send(Command::Request { message, reply })
        .await
        .map_err(|_| ClientError::Closed)?;
    rx.await.map_err(|_| ClientError::Closed)?
}

fn server_error(code: ErrorCode, message: String, retry_after_ms: Option<u64>) -> ClientError {
    ClientError::Server {
        code,
        message,
        retry_after_ms,
    }
}

impl Engine {
    pub(crate) fn new(
        config: EngineConfig,
        pins: Arc<PinStore>,
        store: SharedStore,
        events: broadcast::Sender<Event>,
        state: watch::Sender<ConnectionState>,
        file_pushes: mpsc::UnboundedSender<ServerMessage>,
        call_pushes: mpsc::UnboundedSender<ServerMessage>,
    ) -> Self {
        Self {
            config,
            pins,
            store,
            events,
            state,
            live: None,
            dialing: None,
            waiting: Vec::new(),
            pending: HashMap::new(),
            session: None,
            to_ack: Vec::new(),
            in_flight: Default::default(),
            outbox_retry: false,
            attempts: 0,
            retry_at: None,
            expect_binary: None,
            file_pushes,
            call_pushes,
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn set_state(&self, state: ConnectionState) {
        if *self.state.borrow() != state {
            self.state.send_replace(state);
            self.emit(Event::Connection(state));
        }
    }

    fn store(&self) -> Option<Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let reading = async {
                match self.live.as_mut() {
                    Some(live) => live.conn.next().await,
                    None => std::future::pending().await,
                }
            };
            let dialing = async {
                match self.dialing.as_mut() {
                    Some(d) => d.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.command(command).await,
                },
                frame = reading => self.frame(frame).await,
                dialed = dialing => {
                    self.dialing = None;
                    self.dialed(dialed).await;
                }
                _ = tick.tick() => self.tick().await,
            }
        }
        if let Some(mut live) = self.live.take() {
            let _ = live.conn.close().await;
        }
        for (_, (pending, _)) in self.pending.drain() {
            fail(pending, ClientError::Closed);
        }
        self.set_state(ConnectionState::Offline);
    }

    // ---- connecting ----------------------------------------------------------------------

    fn dial(&mut self) {
        if self.dialing.is_some() || self.live.is_some() {
            return;
        }
        self.set_state(ConnectionState::Connecting);
        let server = self.config.server.clone();
        let pins = self.pins.clone();
        let timeout = self.config.request_timeout;
        self.dialing = Some(
            async move {
                let stream = transport::connect(&server, &pins, timeout).await?;
                Ok(Framed::new(stream, FrameCodec::default()))
            }
            .boxed(),
        );
    }

    async fn dialed(&mut self, result: Result<Conn, ClientError>) {
        match result {
            Ok(conn) => {
                let now = Instant::now();
                self.live = Some(Live {
                    conn,
                    heartbeat: Duration::from_secs(15),
                    idle: Duration::from_secs(45),
                    last_rx: now,
                    last_tx: now,
                    greeted: false,
                    logged_in: false,
                });
                let id = request_id();
                let hello = ClientMessage::Hello {
                    id: id.clone(),
                    version: natter_proto::PROTOCOL_VERSION,
                    client: self.config.client_name.clone(),
                    presence: self.config.presence,
                };
                self.pending.insert(
                    id,
                    (Pending::Hello, Instant::now() + self.config.request_timeout),
                );
                self.write(hello).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                if matches!(e, ClientError::CertificateChanged { .. }) {
                    self.emit(Event::CertificateChanged(e.clone()));
                }
                for command in std::mem::take(&mut self.waiting) {
                    fail_command(command, e.clone());
                }
                self.schedule_retry();
            }
        }
    }

    fn schedule_retry(&mut self) {
        if self.session.is_none() {
            self.set_state(ConnectionState::Offline);
            return;
        }
        self.set_state(ConnectionState::Connecting);
        let exp = self.config.backoff_min.as_millis() as u64 * (1u64 << self.attempts.min(10));
        let cap = exp.min(self.config.backoff_max.as_millis() as u64).max(1);
        // Full jitter: many clients dropped by one server restart must not return in lockstep.
        let delay = rand::thread_rng().gen_range(cap / 2..=cap);
        self.attempts = self.attempts.saturating_add(1);
        self.retry_at = Some(Instant::now() + Duration::from_millis(delay));
    }

    fn drop_connection(&mut self, why: &str) {
        if self.live.take().is_some() {
            tracing::info!(why, "connection lost");
        }
        self.in_flight.clear();
        // Dropping the sink tells the downloader its fetch ended short.
        self.expect_binary = None;
        if self.session.is_none() {
            // Nothing will dial again on its own: whoever waited for this connection hears now.
            for command in std::mem::take(&mut self.waiting) {
                fail_command(command, ClientError::Offline);
            }
        }
        let pending: Vec<_> = self.pending.drain().collect();
        for (_, (p, _)) in pending {
            match p {
                Pending::Login { credentials, reply } => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(ClientError::Offline));
                    } else if credentials.is_some() {
                        // An internal re-login dropped: retry by the usual path.
                    }
                }
                other => fail(other, ClientError::Offline),
            }
        }
        self.schedule_retry();
    }

    /// After `hello_ok`: log the session back in, then run what waited for the connection.
    async fn greeted(&mut self) {
        if let Some(session) = &self.session {
            let message = match (&session.token, &session.credentials) {
                (Some(token), _) => ClientMessage::Resume {
                    id: request_id(),
                    token: token.clone(),
                },
                (None, Some(c)) => login_message(c),
                (None, None) => return,
            };
            let credentials = session.credentials.clone();
            self.send_pending(
                message,
                Pending::Login {
                    credentials,
                    reply: None,
                },
            )
            .await;
        }
        for command in std::mem::take(&mut self.waiting) {
            Box::pin(self.command(command)).await;
        }
    }

    // ---- commands ------------------------------------------------------------------------

    async fn command(&mut self, command: Command) {
        let greeted = self.live.as_ref().is_some_and(|l| l.greeted);
        match command {
            Command::Shutdown => {}
            Command::FlushOutbox => self.flush_outbox().await,
            Command::SessionEnded => {
                self.session = None;
                self.attempts = 0;
                self.retry_at = None;
                if let Some(live) = self.live.as_mut() {
                    live.logged_in = false;
                }
                *self.store.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            Command::HoldSession { token } => {
                if self.session.is_some() {
                    return;
                }
                self.session = Some(Session {
                    token: Some(token.clone()),
                    credentials: None,
                });
                if greeted {
                    let message = ClientMessage::Resume {
                        id: request_id(),
                        token,
                    };
                    let pending = Pending::Login {
                        credentials: None,
                        reply: None,
                    };
                    self.send_pending(message, pending).await;
                } else if self.retry_at.is_none() && self.live.is_none() {
                    self.schedule_retry();
                }
            }
            command if !greeted => {
                let logged_in = self.session.is_some();
                match command {
                    // With a session, the engine is already reconnecting; fail fast instead of
                    // letting the user wait on a dial that may take a while.
                    Command::Request { reply, .. } if logged_in => {
                        let _ = reply.send(Err(ClientError::Offline));
                    }
                    Command::Upload { reply, .. } => {
                        let _ = reply.send(Err(ClientError::Offline));
                    }
                    // Dropping the sink is the downloader's "offline".
                    Command::Fetch { .. } => {}
                    other => {
                        self.waiting.push(other);
                        if self.retry_at.is_none() || !logged_in {
                            self.retry_at = None;
                            self.dial();
                        }
                    }
                }
            }
            Command::Request { message, reply } => {
                self.send_pending(message, Pending::User(reply)).await;
            }
            Command::Upload {
                message,
                data,
                reply,
            } => {
                self.send_pending(message, Pending::User(reply)).await;
                self.write_frame(Frame::Binary(data)).await;
            }
            Command::Fetch { message, len, sink } => {
                self.send_pending(
                    message,
                    Pending::Fetch {
                        remaining: len,
                        sink,
                    },
                )
                .await;
            }
            Command::Login { credentials, reply } => {
                let message = login_message(&credentials);
                self.send_pending(
                    message,
                    Pending::Login {
                        credentials: Some(credentials),
                        reply: Some(reply),
                    },
                )
                .await;
            }
            Command::Resume {
                token,
                credentials,
                reply,
            } => {
                self.session = Some(Session {
                    token: Some(token.clone()),
                    credentials: credentials.clone(),
                });
                let message = ClientMessage::Resume {
                    id: request_id(),
                    token,
                };
                self.send_pending(
                    message,
                    Pending::Login {
                        credentials,
                        reply: Some(reply),
                    },
                )
                .await;
            }
        }
    }

    async fn send_pending(&mut self, message: ClientMessage, pending: Pending) {
        let id = message.id().to_owned();
        let deadline = Instant::now() + self.config.request_timeout;
        self.pending.insert(id, (pending, deadline));
        self.write(message).await;
    }

    async fn write(&mut self, message: ClientMessage) {
        self.write_frame(encode(&message)).await;
    }

    async fn write_frame(&mut self, frame: Frame) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.last_tx = Instant::now();
        if let Err(e) = live.conn.send(frame).await {
            tracing::debug!(error = %e, "write failed");
            self.drop_connection("write failed");
        }
    }

    // ---- incoming --------------------------------------------------------------------------

    async fn frame(&mut self, frame: Option<Result<Frame, natter_proto::FrameError>>) {
        let payload = match frame {
            Some(Ok(Frame::Json(payload))) => payload,
            Some(Ok(Frame::Binary(data))) => {
                if let Some(live) = self.live.as_mut() {
                    live.last_rx = Instant::now();
                }
                return self.binary(data).await;
            }
            Some(Err(e)) => return self.drop_connection(&e.to_string()),
            None => return self.drop_connection("server closed the connection"),
        };
        if let Some(live) = self.live.as_mut() {
            live.last_rx = Instant::now();
        }
        if self.expect_binary.take().is_some() {
            tracing::warn!("the server sent no bytes after a file_data header");
        }
        let message = match decode_server(&payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable frame from the server");
                return;
            }
        };
        match message.reply_id().map(str::to_owned) {
            Some(id) => self.reply(&id, message).await,
            None => self.push(message).await,
        }
        self.flush_acks().await;
    }

    /// The bytes announced by the last `file_data` header.
    async fn binary(&mut self, data: Bytes) {
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
        self.pending.insert(
            expect.id,
            (
                Pending::Fetch {
                    remaining,
                    sink: expect.sink,
                },
                deadline,
            ),
        );
    }

    async fn reply(&mut self, id: &str, message: ServerMessage) {
        let Some((pending, _)) = self.pending.remove(id) else {
            return;
        };
        match (pending, message) {
            (
                Pending::Fetch { remaining, sink },
                ServerMessage::FileData {
                    id, offset, len, ..
                },
            ) => {
                self.expect_binary = Some(ExpectBinary {
                    id,
                    offset,
                    len,
                    remaining,
                    sink,
                });
            }
            (
                Pending::Fetch { sink, .. },
                ServerMessage::Error {
                    code,
                    message,
                    retry_after_ms,
                    ..
                },
            ) => {
                let _ = sink
                    .send(Err(server_error(code, message, retry_after_ms)))
                    .await;
            }
            (Pending::Fetch { .. }, other) => {
                tracing::warn!(?other, "unexpected reply to file_fetch");
            }
            (
                _,
                ServerMessage::HelloOk {
                    heartbeat_interval_ms,
                    idle_timeout_ms,
                    ..
                },
            ) => {
                if let Some(live) = self.live.as_mut() {
                    live.greeted = true;
                    live.heartbeat = Duration::from_millis(heartbeat_interval_ms.max(100));
                    live.idle = Duration::from_millis(idle_timeout_ms.max(200));
                }
                if self.session.is_none() {
                    self.set_state(ConnectionState::Online);
                }
                self.greeted().await;
            }
            (Pending::Login { credentials, reply }, login @ ServerMessage::LoginOk { .. }) => {
                let ServerMessage::LoginOk {
                    token,
                    profile,
                    friends,
                    ..
                } = &login
                else {
                    unreachable!("matched LoginOk above");
                };
                let opened = self.logged_in(&profile.username, token, credentials).await;
                if let Err(e) = opened {
                    tracing::error!(error = %e, "cannot open the local store");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(e));
                    }
                    return;
                }
                if let Some(store) = self.store() {
                    if let Err(e) = store.save_friends(friends).await {
                        tracing::warn!(error = %e, "cannot cache friends");
                    }
                    // For starting offline next time (`Client::open_offline`).
                    if let Ok(json) = serde_json::to_string(profile) {
                        if let Err(e) = store.set("profile", &json).await {
                            tracing::warn!(error = %e, "cannot cache the profile");
                        }
                    }
                }
                self.emit(Event::LoggedIn(Box::new(login.clone())));
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(login));
                }
                self.flush_outbox().await;
            }
            (
                Pending::Login { credentials, reply },
                ServerMessage::Error {
                    code,
                    message,
                    retry_after_ms,
                    ..
                },
            ) => {
                let error = server_error(code, message, retry_after_ms);
                if let Some(reply) = reply {
                    // The caller decides; a failed resume with credentials falls back to them.
                    if code == ErrorCode::SessionExpired {
                        if let Some(c) = credentials.clone() {
                            let msg = login_message(&c);
                            self.send_pending(
                                msg,
                                Pending::Login {
                                    credentials: Some(c),
                                    reply: Some(reply),
                                },
                            )
                            .await;
                            return;
                        }
                        self.session = None;
                    }
                    let _ = reply.send(Err(error));
                    return;
                }
                match (code, credentials) {
                    (ErrorCode::SessionExpired, Some(c)) => {
                        if let Some(s) = self.session.as_mut() {
                            s.token = None;
                        }
                        let msg = login_message(&c);
                        self.send_pending(
                            msg,
                            Pending::Login {
                                credentials: Some(c),
                                reply: None,
                            },
                        )
                        .await;
                    }
                    // Transient on the server's side: a fresh connection, later, may work. The
                    // same connection may not: the server can already count the session there.
                    (ErrorCode::RateLimited | ErrorCode::Internal | ErrorCode::ServerBusy, _) => {
                        self.drop_connection("the server could not restore the session yet")
                    }
                    _ => {
                        tracing::warn!(error = %error, "the session could not be restored");
                        self.session = None;
                        self.emit(Event::SessionLost(error));
                        self.set_state(ConnectionState::Offline);
                    }
                }
            }
            (Pending::Outbox { client_msg_id }, reply) => {
                self.outbox_reply(&client_msg_id, reply).await
            }
            (Pending::Hello, other) => {
                tracing::warn!(?other, "the server refused hello");
                self.drop_connection("hello refused");
            }
            (Pending::Ack | Pending::Heartbeat, _) => {}
            (Pending::User(reply), message) => {
                let result = match message {
                    ServerMessage::Error {
                        code,
                        message,
                        retry_after_ms,
                        ..
                    } => Err(server_error(code, message, retry_after_ms)),
                    other => Ok(other),
                };
                let _ = reply.send(result);
            }
            (Pending::Login { reply, .. }, other) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(ClientError::Protocol(format!(
                        "unexpected reply to login: {other:?}"
                    ))));
                }
            }
        }
    }

    async fn logged_in(
        &mut self,
        username: &str,
        token: &str,
        credentials: Option<Credentials>,
    ) -> Result<(), ClientError> {
        let has_store = self
            .store()
            .is_some_and(|s| s.user().eq_ignore_ascii_case(username));
        if !has_store {
            let path = crate::store_path(&self.config.data_dir, &self.config.server, username);
            let store = Store::open(&path, username).await?;
            *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
        }
        let credentials = credentials.or_else(|| {
            self.session
                .as_ref()
                .and_then(|s| s.credentials.clone())
                .filter(|c| c.username().eq_ignore_ascii_case(username))
        });
        self.session = Some(Session {
            token: Some(token.to_owned()),
            credentials,
        });
        if let Some(store) = self.store() {
            store.set("token", token).await?;
        }
        if let Some(live) = self.live.as_mut() {
            live.logged_in = true;
        }
        self.attempts = 0;
        self.set_state(ConnectionState::Online);
        Ok(())
    }

    async fn push(&mut self, message: ServerMessage) {
        let store = self.store();
        match message {
            ServerMessage::Message { message } => {
                let Some(store) = store else { return };
                match store.save_incoming(&message).await {
                    Ok(is_new) => {
                        if matches!(message.to, Target::User { .. }) {
                            self.to_ack.push(message.msg_id);
                        }
                        if is_new {
                            self.emit(Event::Message(crate::store::LocalMessage {
                                msg_id: Some(message.msg_id),
                                client_msg_id: message.client_msg_id,
                                from: message.from,
                                from_guest: message.from_guest,
                                to: message.to,
                                ts: message.ts,
                                body: message.body,
                                state: MessageState::Received,
                                error: None,
                            }));
                        }
                    }
                    // Not stored, so not acked: the server pushes it again at the next login.
                    Err(e) => tracing::error!(error = %e, "cannot store an incoming message"),
                }
            }
            ServerMessage::Receipt {
                msg_id,
                client_msg_id,
                to,
                ..
            } => {
                if let Some(store) = store {
                    match store.mark_delivered(&client_msg_id).await {
                        // Acked once recorded: the server repeats unacked receipts at login.
                        Ok(_) => self.to_ack.push(msg_id),
                        Err(e) => tracing::warn!(error = %e, "cannot record a receipt"),
                    }
                }
                self.emit(Event::Delivered {
                    client_msg_id,
                    msg_id,
                    to,
                });
            }
            ServerMessage::UserOnline { user } => self.emit(Event::UserOnline(user)),
            ServerMessage::UserOffline { username } => self.emit(Event::UserOffline { username }),
            ServerMessage::FriendRequestReceived { request } => {
                self.emit(Event::FriendRequest(request))
            }
            ServerMessage::FriendResponse {
                username,
                accepted,
                friend,
            } => self.emit(Event::FriendResponse {
                username,
                accepted,
                friend,
            }),
            ServerMessage::FriendRemoved { username } => {
                self.emit(Event::FriendRemoved { username })
            }
            ServerMessage::Kicked { reason } => {
                tracing::warn!(%reason, "kicked by the server");
                if reason == "logged_in_elsewhere" {
                    // Another device has the session now; do not fight it for the account.
                    self.session = None;
                }
                self.emit(Event::Kicked { reason });
            }
            ServerMessage::Heartbeat { .. } => {}
            file @ (ServerMessage::FileOffered { .. }
            | ServerMessage::FileAnswered { .. }
            | ServerMessage::FileCancelled { .. }) => {
                let _ = self.file_pushes.send(file);
            }
            call @ (ServerMessage::CallIncoming { .. }
            | ServerMessage::CallAccepted { .. }
            | ServerMessage::CallPeer { .. }
            | ServerMessage::CallEnded { .. }) => {
                let _ = self.call_pushes.send(call);
            }
            other => self.emit(Event::Other(Box::new(other))),
        }
    }

    // ---- outbox and acks -----------------------------------------------------------------

    async fn flush_outbox(&mut self) {
        let ready = self.live.as_ref().is_some_and(|l| l.logged_in);
        let Some(store) = self.store().filter(|_| ready) else {
            return;
        };
        let entries = match store.outbox().await {
            Ok(entries) => entries,
            Err(e) => return tracing::error!(error = %e, "cannot read the outbox"),
        };
        for entry in entries {
            if !self.in_flight.insert(entry.client_msg_id.clone()) {
                continue;
            }
            let message = ClientMessage::SendMessage {
                id: request_id(),
                client_msg_id: entry.client_msg_id.clone(),
                to: entry.to,
                body: entry.body,
            };
            self.send_pending(
                message,
                Pending::Outbox {
                    client_msg_id: entry.client_msg_id,
                },
            )
            .await;
        }
    }

    async fn outbox_reply(&mut self, client_msg_id: &str, reply: ServerMessage) {
        self.in_flight.remove(client_msg_id);
        let Some(store) = self.store() else { return };
        match reply {
            ServerMessage::MessageAccepted { msg_id, ts, .. } => {
                if let Err(e) = store.mark_sent(client_msg_id, msg_id, ts).await {
                    tracing::error!(error = %e, "cannot record a sent message");
                }
                self.emit(Event::Sent {
                    client_msg_id: client_msg_id.to_owned(),
                    msg_id,
                    ts,
                });
            }
            ServerMessage::Error { code, message, .. } if is_permanent(code) => {
                if let Err(e) = store.mark_failed(client_msg_id, &message).await {
                    tracing::error!(error = %e, "cannot record a failed message");
                }
                self.emit(Event::Failed {
                    client_msg_id: client_msg_id.to_owned(),
                    code,
                    message,
                });
            }
            // Transient (rate limit, server trouble): it stays in the outbox for the next flush.
            other => {
                tracing::debug!(?other, "outbox entry not accepted yet");
                self.outbox_retry = true;
            }
        }
    }

    async fn flush_acks(&mut self) {
        if self.to_ack.is_empty() || !self.live.as_ref().is_some_and(|l| l.logged_in) {
            return;
        }
        let ids = std::mem::take(&mut self.to_ack);
        for chunk in ids.chunks(crate::MAX_ACK) {
            let message = ClientMessage::Ack {
                id: request_id(),
                msg_ids: chunk.to_vec(),
            };
            self.send_pending(message, Pending::Ack).await;
        }
    }

    // ---- time ------------------------------------------------------------------------------

    async fn tick(&mut self) {
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| now >= t) && self.live.is_none() {
            self.retry_at = None;
            self.dial();
        }
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (_, deadline))| now >= *deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((pending, _)) = self.pending.remove(&id) {
                if matches!(pending, Pending::Hello) {
                    // A server that accepts the socket but never answers: give up on this
                    // connection, fail what waited for it, and (with a session) dial again.
                    for command in std::mem::take(&mut self.waiting) {
                        fail_command(command, ClientError::Timeout);
                    }
                    self.drop_connection("no answer to hello");
                    continue;
                }
                if let Pending::Outbox { client_msg_id } = &pending {
                    self.in_flight.remove(client_msg_id);
                    self.outbox_retry = true;
                }
                fail(pending, ClientError::Timeout);
            }
        }
        let Some((last_rx, last_tx, idle, heartbeat, greeted, logged_in)) =
            self.live.as_ref().map(|l| {
                (
                    l.last_rx,
                    l.last_tx,
                    l.idle,
                    l.heartbeat,
                    l.greeted,
                    l.logged_in,
                )
            })
        else {
            return;
        };
        if now.duration_since(last_rx) >= idle {
            return self.drop_connection("the server went silent");
        }
        if greeted && now.duration_since(last_tx) >= heartbeat {
            let id = request_id();
            self.send_pending(ClientMessage::Heartbeat { id }, Pending::Heartbeat)
                .await;
        }
        if logged_in && self.outbox_retry && self.in_flight.is_empty() {
            // Entries that timed out or met a transient error go again.
            self.outbox_retry = false;
            self.flush_outbox().await;
        }
    }
}

fn is_permanent(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::Internal
            | ErrorCode::ServerBusy
            | ErrorCode::NotAuthenticated
    )
}

fn login_message(credentials: &Credentials) -> ClientMessage {
    match credentials {
        Credentials::Password { username, password } => ClientMessage::Login {
            id: request_id(),
            username: username.clone(),
            password: password.clone(),
        },
        Credentials::Guest { username } => ClientMessage::GuestLogin {
            id: request_id(),
            username: username.clone(),
        },
    }
}

fn fail(pending: Pending, error: ClientError) {
    match pending {
        Pending::User(reply) => {
            let _ = reply.send(Err(error));
        }
        Pending::Login {
            reply: Some(reply), ..
        } => {
            let _ = reply.send(Err(error));
        }
        _ => {}
    }
}

fn fail_command(command: Command, error: ClientError) {
    match command {
        Command::Request { reply, .. }
        | Command::Upload { reply, .. }
        | Command::Login { reply, .. }
        | Command::Resume { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        _ => {}
    }
}
