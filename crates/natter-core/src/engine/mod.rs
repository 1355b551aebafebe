//! The engine: the one task that owns the connection.
//!
//! Callers talk to it through [`Command`]s; it answers through oneshots and publishes [`Event`]s.
//! The work is split the way the server's is:
//!
//! - `conn` — the socket: dial, `hello`, heartbeats, the idle drop, reconnect backoff, writing.
//! - `session` — logging in and keeping the session: login / resume replies, falling back from a
//!   dead token to the remembered credentials, kicks.
//! - `chat` — what messages mean: incoming messages and receipts (stored before they are acked),
//!   the outbox (sent in order after every login and whenever something new is queued), acks,
//!   and the other pushes that become events.
//! - `social` — presence and friend pushes, which become events as they are.
//! - `fetch` — file bytes: `file_data` headers and the binary frames that follow them.
//!
//! This file holds the loop that drives them, the commands, and the table of pending requests.

mod chat;
mod conn;
mod fetch;
mod session;
mod social;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use natter_proto::{decode_server, ClientMessage, ErrorCode, Frame, PresenceScope, ServerMessage};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::store::Store;
use crate::transport::{PinStore, ServerAddr};
use crate::{ClientError, ConnectionState, Event, LoginInfo, SharedStore};

use conn::{Conn, Live};
pub(crate) use fetch::Piece;
use fetch::{ExpectBinary, PieceSink};
pub(crate) use session::Credentials;
use session::Session;

type Reply = oneshot::Sender<Result<ServerMessage, ClientError>>;
type LoginReply = oneshot::Sender<Result<LoginInfo, ClientError>>;

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
        reply: LoginReply,
    },
    /// Continue a saved session (app restart); falls back to `credentials` if given.
    Resume {
        token: String,
        credentials: Option<Credentials>,
        reply: LoginReply,
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
        sink: PieceSink,
    },
    /// Stop.
    Shutdown,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The server.
    pub server: ServerAddr,
    /// Other nodes of the same service (see [`crate::ClientConfig::fallbacks`]).
    pub fallbacks: Vec<ServerAddr>,
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

/// What a request in flight was for, so its reply goes to the right family.
enum Pending {
    /// The connection's `hello`: without an answer the connection is useless.
    Hello,
    User(Reply),
    Login {
        credentials: Option<Credentials>,
        reply: Option<LoginReply>,
    },
    Outbox {
        client_msg_id: String,
    },
    Heartbeat,
    Fetch {
        remaining: u64,
        sink: PieceSink,
    },
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
    in_flight: HashSet<String>,
    /// An outbox entry met a timeout or a transient refusal: flush again on the next tick.
    outbox_retry: bool,
    /// The server asked us to wait before sending the outbox again (`slow_down`).
    outbox_not_before: Option<Instant>,
    /// After a `slow_down` the outbox goes one message at a time until one is accepted, so
    /// a queue that grew during the wait does not hit a busy server all at once.
    outbox_probing: bool,
    attempts: u32,
    /// Which address dials next: 0 is `config.server`, then the fallbacks in turn.
    server_index: usize,
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

/// A reply as the caller of a plain request sees it: the server's `error` becomes `Err`.
fn into_result(message: ServerMessage) -> Result<ServerMessage, ClientError> {
    match message {
        ServerMessage::Error {
            code,
            message,
            retry_after_ms,
            ..
        } => Err(server_error(code, message, retry_after_ms)),
        other => Ok(other),
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
            in_flight: HashSet::new(),
            outbox_retry: false,
            outbox_not_before: None,
            outbox_probing: false,
            attempts: 0,
            server_index: 0,
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

    // ---- commands ------------------------------------------------------------------------

    async fn command(&mut self, command: Command) {
        let greeted = self.live.as_ref().is_some_and(|l| l.greeted);
        match command {
            Command::Shutdown => {}
            Command::FlushOutbox => self.flush_outbox().await,
            Command::SessionEnded => self.end_session(),
            Command::HoldSession { token } => self.hold_session(token, greeted).await,
            command if !greeted => self.wait_for_connection(command),
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
                let pending = Pending::Fetch {
                    remaining: len,
                    sink,
                };
                self.send_pending(message, pending).await;
            }
            Command::Login { credentials, reply } => self.login(credentials, reply).await,
            Command::Resume {
                token,
                credentials,
                reply,
            } => self.resume(token, credentials, reply).await,
        }
    }

    /// A command that needs a greeted connection, before there is one.
    fn wait_for_connection(&mut self, command: Command) {
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

    async fn send_pending(&mut self, message: ClientMessage, pending: Pending) {
        let id = message.id().unwrap_or_default().to_owned();
        let deadline = Instant::now() + self.config.request_timeout;
        self.pending.insert(id, (pending, deadline));
        self.write(message).await;
    }

    // ---- incoming --------------------------------------------------------------------------

    async fn frame(&mut self, frame: Option<Result<Frame, natter_proto::FrameError>>) {
        let payload = match frame {
            Some(Ok(Frame::Json(payload))) => payload,
            Some(Ok(Frame::Binary(data))) => {
                self.heard();
                return self.binary(data).await;
            }
            Some(Err(e)) => return self.drop_connection(&e.to_string()),
            None => return self.drop_connection("server closed the connection"),
        };
        self.heard();
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

    /// A reply goes to the family whose request it answers.
    async fn reply(&mut self, id: &str, message: ServerMessage) {
        let Some((pending, _)) = self.pending.remove(id) else {
            return;
        };
        match pending {
            Pending::Hello => self.hello_reply(message).await,
            Pending::Login { credentials, reply } => {
                self.login_reply(credentials, reply, message).await
            }
            Pending::Outbox { client_msg_id } => self.outbox_reply(&client_msg_id, message).await,
            Pending::Fetch { remaining, sink } => self.fetch_reply(remaining, sink, message).await,
            Pending::User(reply) => {
                let _ = reply.send(into_result(message));
            }
            Pending::Heartbeat => {}
        }
    }

    /// A push goes to the family it belongs to; files and calls have their own managers.
    async fn push(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Message { message } => self.incoming(message).await,
            ServerMessage::Receipt {
                msg_id,
                client_msg_id,
                to,
                ..
            } => self.receipt(msg_id, client_msg_id, to).await,
            ServerMessage::Kicked { reason } => self.kicked(reason),
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
            ServerMessage::Presence { online, offline } => {
                let me = self.store().map(|s| s.user().to_owned());
                for event in social::presence_events(online, offline, me.as_deref()) {
                    self.emit(event);
                }
            }
            other => match social::event_for(other) {
                Some(event) => self.emit(event),
                None => tracing::debug!("a push the engine does not know; ignored"),
            },
        }
    }

    // ---- time ------------------------------------------------------------------------------

    async fn tick(&mut self) {
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| now >= t) && self.live.is_none() {
            self.retry_at = None;
            self.dial();
        }
        self.expire_pending(now);
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let (greeted, logged_in) = (live.greeted, live.logged_in);
        if live.is_silent(now) {
            return self.drop_connection("the server went silent");
        }
        if greeted && live.is_quiet(now) {
            self.heartbeat().await;
        }
        if logged_in
            && self.outbox_retry
            && self.in_flight.is_empty()
            && self.outbox_not_before.is_none_or(|t| now >= t)
        {
            // Entries that timed out or met a transient error go again.
            self.outbox_retry = false;
            self.outbox_not_before = None;
            self.flush_outbox().await;
        }
    }

    /// Fails every request whose deadline has passed.
    fn expire_pending(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (_, deadline))| now >= *deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let Some((pending, _)) = self.pending.remove(&id) else {
                continue;
            };
            match pending {
                // A server that accepts the socket but never answers: give up on this
                // connection, fail what waited for it, and (with a session) dial again.
                Pending::Hello => {
                    for command in std::mem::take(&mut self.waiting) {
                        fail_command(command, ClientError::Timeout);
                    }
                    self.drop_connection("no answer to hello");
                }
                Pending::Outbox { client_msg_id } => {
                    self.in_flight.remove(&client_msg_id);
                    self.outbox_retry = true;
                }
                other => fail(other, ClientError::Timeout),
            }
        }
    }
}

/// Answers a request that will get no reply.
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

/// Answers a command that cannot run.
fn fail_command(command: Command, error: ClientError) {
    match command {
        Command::Request { reply, .. } | Command::Upload { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Login { reply, .. } | Command::Resume { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        _ => {}
    }
}
