//! Load-generating clients: one reader task and one writer task per connection (plain TCP or
//! TLS), and the connection handshake (hello, then guest_login, login or resume).
//!
//! The clients behave as real ones do: they ask for [`PROTOCOL_VERSION`] (falling back to
//! [`MIN_PROTOCOL_VERSION`] when refused), ack pushed messages *and* receipts in batches (without
//! an `id` from version 2 on, so no `ok` comes back), and answer `slow_down` by sending the same
//! `client_msg_id` again after `retry_after_ms`. Every frame is a `natter_proto` message, encoded
//! and decoded by `natter_proto` itself.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use natter_proto::{
    decode_client, decode_server, encode, ClientMessage, ErrorCode, FrameCodec, MessageBody,
    PresenceScope, ServerMessage, Target, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, Encoder};

pub use crate::stats::{now_ns, Mode, Shared};
use crate::stats::{parse_username, wall_ms, Unaccepted};

/// Acks are batched: sent when this many ids are pending...
const ACK_BATCH: usize = 64;
/// ...or when the oldest pending id has waited this long.
const ACK_DELAY: Duration = Duration::from_millis(20);
/// How many queued outgoing frames one writer coalesces into a single write.
const WRITE_COALESCE: usize = 64;
/// `slow_down` without `retry_after_ms` (not expected) waits this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_millis(50);
/// A `slow_down` asking for longer than this is capped (bounded waits everywhere).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

type Rd = Box<dyn AsyncRead + Send + Unpin>;
type Wr = Box<dyn AsyncWrite + Send + Unpin>;

/// Where and how a client connects.
#[derive(Clone)]
pub struct Dial {
    pub addr: SocketAddr,
    /// Local address to bind before connecting (spreads ports over 127.0.0.x).
    pub source: Option<IpAddr>,
    /// TLS with this configuration (the bench pins the server's certificate).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Dial {
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            source: None,
            tls: None,
        }
    }
}

/// How a client gets its session.
pub enum Login {
    Guest {
        name: String,
    },
    Password {
        name: String,
        password: String,
    },
    /// `resume` by token; if the token is refused, `login` with the password if there is one.
    Resume {
        name: String,
        token: String,
    },
}

impl Login {
    fn name(&self) -> &str {
        match self {
            Login::Guest { name } | Login::Password { name, .. } | Login::Resume { name, .. } => {
                name
            }
        }
    }
}

/// Work for a writer task.
#[derive(Debug)]
pub enum Out {
    /// Send a private text message to client `to`, stamped `ts` (see [`now_ns`]), in `step`;
    /// `seq` is set for a resend (it keeps the `client_msg_id`).
    Send {
        to: u32,
        ts: u64,
        step: u8,
        seq: Option<u64>,
    },
    /// Acknowledge pushed messages and receipts.
    Ack(Vec<i64>),
    /// Liveness probe.
    Heartbeat,
    /// A `slow_down` came: hold every send until then (PROTOCOL.md §5.5 rule 8), then send
    /// one at a time until one is accepted.
    Pause(tokio::time::Instant),
    /// A message was accepted after a `slow_down`: the held sends may all go.
    Accepted,
}

/// A connected, logged-in client.
pub struct ClientHandle {
    pub idx: u32,
    pub tx: mpsc::UnboundedSender<Out>,
    pub tasks: [JoinHandle<()>; 2],
}

impl ClientHandle {
    /// Ends both tasks; the socket closes.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// `"s=<step> t=<ns> ..."` → (step, ns).
fn parse_text(text: &str) -> Option<(usize, u64)> {
    let mut it = text.split_ascii_whitespace();
    let step = it.next()?.strip_prefix("s=")?.parse().ok()?;
    let ts = it.next()?.strip_prefix("t=")?.parse().ok()?;
    Some((step, ts))
}

/// `client_msg_id` of a bench message: `"<step>.<ns>.<seq>"`.
fn client_msg_id(step: u8, ts: u64, seq: u64) -> String {
    format!("{step}.{ts}.{seq}")
}

/// `"<step>.<ns>.<seq>"` → (step, ns, seq).
fn parse_client_msg_id(id: &str) -> Option<(usize, u64, u64)> {
    let mut it = id.split('.');
    let step = it.next()?.parse().ok()?;
    let ts = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((step, ts, seq))
}

/// One written `send_message`: a first try or a retry of message `seq` of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SendAttempt {
    step: u8,
    /// The message's scheduled send time (the same for every attempt).
    ts: u64,
    seq: u64,
    to: u32,
    /// When this attempt was encoded for writing (see [`now_ns`]).
    written: u64,
}

impl SendAttempt {
    /// Request id: `"s<step>.<ns>.<seq>.<to>.<written ns>"`, so that the reply alone says what to
    /// send again (`slow_down`) and how long this very attempt took (`message_accepted`). At most
    /// about 50 characters, within the protocol's 64.
    fn request_id(&self) -> String {
        let SendAttempt {
            step,
            ts,
            seq,
            to,
            written,
        } = self;
        format!("s{step}.{ts}.{seq}.{to}.{written}")
    }

    fn parse(id: &str) -> Option<Self> {
        let mut it = id.strip_prefix('s')?.split('.');
        let attempt = SendAttempt {
            step: it.next()?.parse().ok()?,
            ts: it.next()?.parse().ok()?,
            seq: it.next()?.parse().ok()?,
            to: it.next()?.parse().ok()?,
            written: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(attempt)
    }

    /// The same message, to be written again.
    fn retry(&self) -> Out {
        Out::Send {
            to: self.to,
            ts: self.ts,
            step: self.step,
            seq: Some(self.seq),
        }
    }
}

/// Appends `msg` as one JSON frame to `buf`.
fn put(buf: &mut BytesMut, msg: &ClientMessage) {
    FrameCodec::default()
        .encode(encode(msg), buf)
        .expect("bench frames are far below the frame limit");
}

async fn write_msg(wr: &mut Wr, msg: &ClientMessage) -> Result<()> {
    let mut buf = BytesMut::new();
    put(&mut buf, msg);
    wr.write_all(&buf).await?;
    // Over TLS, `write_all` may leave records inside rustls when the socket would block; only
    // `flush` is sure to send them (for plain TCP it costs nothing).
    wr.flush().await?;
    Ok(())
}

/// Reads one frame; returns its payload length and decoded form.
async fn read_frame(
    rd: &mut Rd,
    buf: &mut BytesMut,
    codec: &mut FrameCodec,
) -> Result<(usize, ServerMessage)> {
    loop {
        if let Some(frame) = codec.decode(buf)? {
            let payload = frame.payload();
            let msg = decode_server(payload).map_err(|e| anyhow!("undecodable reply: {e}"))?;
            return Ok((payload.len(), msg));
        }
        buf.reserve(4096);
        if rd.read_buf(buf).await? == 0 {
            bail!("server closed the connection during login");
        }
    }
}

/// A TCP connection (bound to `dial.source` first if set), wrapped in TLS if asked.
async fn open(dial: &Dial) -> Result<(Rd, Wr)> {
    let tcp = match dial.source {
        Some(ip) => {
            let socket = TcpSocket::new_v4().context("socket")?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("bind {ip}"))?;
            socket.connect(dial.addr).await.context("connect")?
        }
        None => TcpStream::connect(dial.addr).await.context("connect")?,
    };
    tcp.set_nodelay(true)?;
    match &dial.tls {
        None => {
            let (rd, wr) = tcp.into_split();
            Ok((Box::new(rd), Box::new(wr)))
        }
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost")
                .expect("static server name")
                .to_owned();
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .context("TLS handshake")?;
            let (rd, wr) = tokio::io::split(tls);
            Ok((Box::new(rd), Box::new(wr)))
        }
    }
}

/// Pushes that may come while a client waits for a handshake reply.
fn count_handshake_push(shared: &Shared, len: usize, msg: &ServerMessage) {
    match msg {
        ServerMessage::Presence { .. }
        | ServerMessage::UserOnline { .. }
        | ServerMessage::UserOffline { .. } => {
            shared.presence_pushes.fetch_add(1, Relaxed);
            shared.presence_bytes.fetch_add(len as u64, Relaxed);
        }
        ServerMessage::Heartbeat { .. } => {
            shared.heartbeats.fetch_add(1, Relaxed);
        }
        _ => {
            shared.other_frames.fetch_add(1, Relaxed);
        }
    }
}

/// A connection after `hello`.
struct Greeted {
    rd: Rd,
    wr: Wr,
    buf: BytesMut,
    codec: FrameCodec,
    heartbeat: Duration,
}

/// Connects and says `hello` with the version in use; if the server refuses it, the phase falls
/// back to [`MIN_PROTOCOL_VERSION`] (once, for every client).
async fn greet(shared: &Shared, dial: &Dial) -> Result<Greeted> {
    for _ in 0..2 {
        let (mut rd, mut wr) = open(dial).await?;
        let mut buf = BytesMut::with_capacity(4096);
        let mut codec = FrameCodec::default();
        let version = shared.version();
        let hello = ClientMessage::Hello {
            id: "h".into(),
            version,
            client: "natter-loadbench".into(),
            presence: if shared.presence_all {
                PresenceScope::All
            } else {
                PresenceScope::Friends
            },
        };
        write_msg(&mut wr, &hello).await?;
        loop {
            let (len, msg) = read_frame(&mut rd, &mut buf, &mut codec).await?;
            match msg {
                ServerMessage::HelloOk {
                    version,
                    heartbeat_interval_ms,
                    ..
                } => {
                    let _ = shared
                        .version
                        .compare_exchange(0, version, Relaxed, Relaxed);
                    return Ok(Greeted {
                        rd,
                        wr,
                        buf,
                        codec,
                        heartbeat: Duration::from_millis(
                            heartbeat_interval_ms.clamp(100, 3_600_000),
                        ),
                    });
                }
                ServerMessage::Error {
                    code: ErrorCode::UnsupportedVersion,
                    ..
                } if version > MIN_PROTOCOL_VERSION => {
                    let _ =
                        shared
                            .version
                            .compare_exchange(0, MIN_PROTOCOL_VERSION, Relaxed, Relaxed);
                    break;
                }
                ServerMessage::Error { code, message, .. } => {
                    bail!("hello refused: {code}: {message}")
                }
                other => count_handshake_push(shared, len, &other),
            }
        }
    }
    bail!("server refused protocol versions {PROTOCOL_VERSION} and {MIN_PROTOCOL_VERSION}")
}

/// Sends `req` and reads until its reply (or an error), counting pushes in between.
async fn request(
    shared: &Shared,
    g: &mut Greeted,
    req: &ClientMessage,
) -> Result<(usize, ServerMessage)> {
    write_msg(&mut g.wr, req).await?;
    loop {
        let (len, msg) = read_frame(&mut g.rd, &mut g.buf, &mut g.codec).await?;
        if msg.reply_id().is_none() && !matches!(msg, ServerMessage::Error { .. }) {
            count_handshake_push(shared, len, &msg);
        } else {
            return Ok((len, msg));
        }
    }
}

/// Says `hello` once and returns the protocol version the server agreed to.
pub async fn probe_version(shared: &Shared, dial: &Dial) -> Result<u32> {
    greet(shared, dial).await?;
    Ok(shared.version())
}

/// Registers an account (Argon2id on the server) on a connection of its own. An account that
/// already exists counts as registered.
pub async fn register(shared: &Shared, dial: &Dial, name: &str, password: &str) -> Result<()> {
    let mut g = greet(shared, dial).await?;
    let req = ClientMessage::Register {
        id: "r".into(),
        username: name.into(),
        password: password.into(),
        nickname: String::new(),
        motto: String::new(),
        phone: String::new(),
    };
    match request(shared, &mut g, &req).await?.1 {
        ServerMessage::Registered { .. } => Ok(()),
        ServerMessage::Error {
            code: ErrorCode::UsernameTaken,
            ..
        } => Ok(()),
        ServerMessage::Error { code, message, .. } => {
            bail!("register refused: {code}: {message}")
        }
        other => bail!("expected registered, got {other:?}"),
    }
}

/// Connects client `idx` (hello + login for natter, nothing for the echo server), then starts
/// its reader and writer tasks.
pub async fn connect(
    shared: Arc<Shared>,
    dial: &Dial,
    idx: u32,
    login: Login,
) -> Result<ClientHandle> {
    let name = login.name().to_string();
    let g = if shared.mode == Mode::Natter {
        let mut g = greet(&shared, dial).await?;
        let (len, reply) = match &login {
            Login::Guest { name } => {
                let req = ClientMessage::GuestLogin {
                    id: "g".into(),
                    username: name.clone(),
                };
                request(&shared, &mut g, &req).await?
            }
            Login::Password { name, password } => {
                let req = ClientMessage::Login {
                    id: "l".into(),
                    username: name.clone(),
                    password: password.clone(),
                };
                request(&shared, &mut g, &req).await?
            }
            Login::Resume { token, .. } => {
                let req = ClientMessage::Resume {
                    id: "s".into(),
                    token: token.clone(),
                };
                request(&shared, &mut g, &req).await?
            }
        };
        match reply {
            ServerMessage::LoginOk { token, online, .. } => {
                shared.login_ok_bytes.fetch_add(len as u64, Relaxed);
                if let Some(book) = &shared.presence_book {
                    book.reset(idx, online.iter().map(|u| u.username.as_str()));
                }
                if let Some(slot) = shared.tokens.get(idx as usize) {
                    *slot.lock().expect("token lock") = Some(token);
                }
            }
            ServerMessage::Error { code, message, .. } => {
                bail!("login refused: {code}: {message}")
            }
            other => bail!("expected login_ok, got {other:?}"),
        }
        g
    } else {
        let (rd, wr) = open(dial).await?;
        Greeted {
            rd,
            wr,
            buf: BytesMut::with_capacity(4096),
            codec: FrameCodec::default(),
            heartbeat: Duration::from_secs(3600),
        }
    };
    if let Some(slot) = shared.names.get(idx as usize) {
        let _ = slot.set(name);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(writer(shared.clone(), idx, g.wr, rx, g.heartbeat));
    let reader = tokio::spawn(reader(shared, idx, g.rd, g.buf, tx.clone()));
    Ok(ClientHandle {
        idx,
        tx,
        tasks: [reader, writer],
    })
}

async fn writer(
    shared: Arc<Shared>,
    idx: u32,
    mut wr: Wr,
    mut rx: mpsc::UnboundedReceiver<Out>,
    heartbeat: Duration,
) {
    let mut buf = BytesMut::with_capacity(512);
    let mut seq: u64 = 0;
    let quiet_acks = shared.version() >= 2;
    // Sends held back while a `slow_down` wait lasts, then sent one at a time until one is
    // accepted, as natter-core's outbox does.
    let mut paused_until: Option<tokio::time::Instant> = None;
    let (mut probing, mut probe_out) = (false, false);
    let mut held: std::collections::VecDeque<Out> = std::collections::VecDeque::new();
    loop {
        let now = tokio::time::Instant::now();
        if paused_until.is_some_and(|t| now >= t) {
            paused_until = None;
        }
        let resumed = if paused_until.is_none() && !(probing && probe_out) {
            held.pop_front()
        } else {
            None
        };
        let mut first_was_held = resumed.is_some();
        let first = match resumed {
            Some(out) => out,
            None => {
                let wait = paused_until.map_or(heartbeat, |t| (t - now).min(heartbeat));
                match tokio::time::timeout(wait, rx.recv()).await {
                    Ok(Some(out)) => out,
                    Ok(None) => break,
                    Err(_) if paused_until.is_some() => continue,
                    Err(_) => Out::Heartbeat,
                }
            }
        };
        let mut next = Some(first);
        let mut coalesced = 0;
        while let Some(out) = next.take() {
            seq += 1;
            // Send lag is the bench's own lateness, taken when a send first comes out of the
            // dispenser's channel: not again when it leaves a `slow_down` hold.
            if !std::mem::take(&mut first_was_held) {
                if let Out::Send {
                    ts,
                    step,
                    seq: None,
                    ..
                } = &out
                {
                    if let Some(st) = shared.steps.get(*step as usize) {
                        st.send_lag.record_ns(now_ns().saturating_sub(*ts));
                    }
                }
            }
            match out {
                Out::Pause(until) => {
                    paused_until = Some(paused_until.map_or(until, |t| t.max(until)));
                    (probing, probe_out) = (true, false);
                }
                Out::Accepted => (probing, probe_out) = (false, false),
                held_back @ Out::Send { .. }
                    if paused_until.is_some() || (probing && probe_out) =>
                {
                    held.push_back(held_back)
                }
                Out::Send {
                    to,
                    ts,
                    step,
                    seq: resend,
                } => {
                    probe_out = probing;
                    let seq = resend.unwrap_or(seq);
                    if let Some(st) = shared.steps.get(step as usize) {
                        st.written.fetch_add(1, Relaxed);
                    }
                    if let Some(outbox) = shared.outbox.get(idx as usize) {
                        outbox
                            .lock()
                            .expect("outbox lock")
                            .insert(seq, Unaccepted { to, ts, step });
                    }
                    let attempt = SendAttempt {
                        step,
                        ts,
                        seq,
                        to,
                        written: now_ns(),
                    };
                    put(
                        &mut buf,
                        &ClientMessage::SendMessage {
                            id: attempt.request_id(),
                            client_msg_id: client_msg_id(step, ts, seq),
                            to: Target::User {
                                username: shared.name(to),
                            },
                            body: MessageBody::Text {
                                text: format!("s={step} t={ts} natter-loadbench message {seq}"),
                            },
                        },
                    );
                }
                Out::Ack(msg_ids) => {
                    shared.acks_sent.fetch_add(1, Relaxed);
                    shared.acked_ids.fetch_add(msg_ids.len() as u64, Relaxed);
                    put(
                        &mut buf,
                        &ClientMessage::Ack {
                            id: (!quiet_acks).then(|| format!("a{seq}")),
                            msg_ids,
                        },
                    );
                }
                Out::Heartbeat => put(
                    &mut buf,
                    &ClientMessage::Heartbeat {
                        id: format!("h{seq}"),
                    },
                ),
            }
            coalesced += 1;
            if coalesced < WRITE_COALESCE {
                next = rx.try_recv().ok();
            }
        }
        if buf.is_empty() {
            continue;
        }
        let written = match wr.write_all(&buf).await {
            Ok(()) => wr.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            shared.note_disconnect(idx, format!("write failed: {e}"));
            return;
        }
        buf.clear();
    }
}

/// Sends waiting out a `slow_down`, earliest first.
#[derive(Default)]
struct RetryQueue {
    due: Vec<(tokio::time::Instant, Out)>,
    /// A `slow_down` came and no message was accepted since (the writer is probing).
    refused: bool,
}

impl RetryQueue {
    fn push(&mut self, at: tokio::time::Instant, out: Out) {
        let pos = self.due.partition_point(|(t, _)| *t <= at);
        self.due.insert(pos, (at, out));
        self.refused = true;
    }

    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.due.first().map(|(t, _)| *t)
    }

    fn take_due(&mut self, now: tokio::time::Instant) -> Vec<Out> {
        let n = self.due.partition_point(|(t, _)| *t <= now);
        self.due.drain(..n).map(|(_, out)| out).collect()
    }
}

async fn reader(
    shared: Arc<Shared>,
    idx: u32,
    mut rd: Rd,
    mut buf: BytesMut,
    tx: mpsc::UnboundedSender<Out>,
) {
    let mut codec = FrameCodec::default();
    let mut pending: Vec<i64> = Vec::new();
    let mut retries = RetryQueue::default();
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    let ack_timer = tokio::time::sleep_until(far());
    let retry_timer = tokio::time::sleep_until(far());
    tokio::pin!(ack_timer, retry_timer);
    loop {
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    shared.note_disconnect(idx, format!("bad frame from server: {e}"));
                    return;
                }
            };
            let was_empty = pending.is_empty();
            let due_before = retries.next_due();
            match shared.mode {
                Mode::Natter => handle_natter(
                    &shared,
                    idx,
                    frame.payload(),
                    &mut pending,
                    &mut retries,
                    &tx,
                ),
                Mode::Echo => handle_echo(&shared, idx, frame.payload()),
            }
            if was_empty && !pending.is_empty() {
                ack_timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + ACK_DELAY);
            }
            if pending.len() >= ACK_BATCH {
                let _ = tx.send(Out::Ack(std::mem::take(&mut pending)));
            }
            if let Some(due) = retries.next_due().filter(|d| Some(*d) != due_before) {
                retry_timer.as_mut().reset(due);
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => {
                    shared.note_disconnect(idx, "server closed the connection".into());
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    shared.note_disconnect(idx, format!("read failed: {e}"));
                    return;
                }
            },
            _ = &mut ack_timer, if !pending.is_empty() => {
                let _ = tx.send(Out::Ack(std::mem::take(&mut pending)));
            }
            _ = &mut retry_timer, if retries.next_due().is_some() => {
                for out in retries.take_due(tokio::time::Instant::now()) {
                    let _ = tx.send(out);
                }
                retry_timer.as_mut().reset(retries.next_due().unwrap_or_else(far));
            }
        }
    }
}

fn handle_natter(
    shared: &Shared,
    idx: u32,
    payload: &[u8],
    pending: &mut Vec<i64>,
    retries: &mut RetryQueue,
    tx: &mpsc::UnboundedSender<Out>,
) {
    let msg = match decode_server(payload) {
        Ok(msg) => msg,
        Err(e) => {
            shared.note_error(format!("{}: undecodable frame: {e}", shared.name(idx)));
            return;
        }
    };
    match msg {
        ServerMessage::Message { message } => {
            if let MessageBody::Text { text } = &message.body {
                if let Some((step, ts)) = parse_text(text) {
                    shared.delivered(step, ts, parse_username(&message.from));
                }
            }
            shared.ledger_entry(message.msg_id, |e| {
                e.deliveries += 1;
                if e.receipted {
                    e.after_receipt += 1;
                }
            });
            pending.push(message.msg_id);
        }
        ServerMessage::MessageAccepted {
            id,
            client_msg_id,
            msg_id,
            ts: committed_ms,
            duplicate,
        } => {
            if std::mem::take(&mut retries.refused) {
                let _ = tx.send(Out::Accepted);
            }
            let now = now_ns();
            if let Some((step, ts, seq)) = parse_client_msg_id(&client_msg_id) {
                if let Some(st) = shared.step(step) {
                    st.accepted.record_ns(now.saturating_sub(ts));
                    if let Some(attempt) = SendAttempt::parse(&id) {
                        st.attempt.record_ns(now.saturating_sub(attempt.written));
                        let to_commit = committed_ms - wall_ms(attempt.written);
                        st.attempt_to_commit
                            .record_ns(to_commit.max(0) as u64 * 1_000_000);
                    }
                    st.accepted_n.fetch_add(1, Relaxed);
                    if duplicate {
                        st.duplicates.fetch_add(1, Relaxed);
                    }
                }
                if let Some(outbox) = shared.outbox.get(idx as usize) {
                    outbox.lock().expect("outbox lock").remove(&seq);
                }
            }
            shared.ledger_entry(msg_id, |e| e.accepted = true);
            if duplicate {
                if let Some(ledger) = &shared.ledger {
                    ledger.lock().expect("ledger lock").accepted_duplicates += 1;
                }
            }
        }
        ServerMessage::Receipt {
            msg_id,
            client_msg_id,
            ..
        } => {
            if let Some((step, ts, _)) = parse_client_msg_id(&client_msg_id) {
                if let Some(st) = shared.step(step) {
                    st.receipt.record_ns(now_ns().saturating_sub(ts));
                    st.receipts.fetch_add(1, Relaxed);
                }
            }
            shared.ledger_entry(msg_id, |e| e.receipted = true);
            // Receipts are acked like messages (PROTOCOL §5.5), or they come again.
            pending.push(msg_id);
        }
        ServerMessage::Ok { .. } => {
            shared.oks.fetch_add(1, Relaxed);
        }
        ServerMessage::HeartbeatAck { .. } => {}
        ServerMessage::Heartbeat { .. } => {
            shared.heartbeats.fetch_add(1, Relaxed);
        }
        ServerMessage::Presence { online, offline } => {
            shared.presence_pushes.fetch_add(1, Relaxed);
            shared
                .presence_bytes
                .fetch_add(payload.len() as u64, Relaxed);
            shared
                .presence_entries
                .fetch_add((online.len() + offline.len()) as u64, Relaxed);
            if let Some(book) = &shared.presence_book {
                for u in &online {
                    book.apply(idx, &u.username, true);
                }
                for name in &offline {
                    book.apply(idx, name, false);
                }
            }
        }
        ServerMessage::UserOnline { user } => {
            note_presence_change(shared, idx, payload.len(), &user.username, true)
        }
        ServerMessage::UserOffline { username } => {
            note_presence_change(shared, idx, payload.len(), &username, false)
        }
        ServerMessage::Error {
            id,
            code,
            retry_after_ms,
            message,
        } => {
            let refused = (code == ErrorCode::SlowDown)
                .then(|| id.as_deref().and_then(SendAttempt::parse))
                .flatten();
            match refused {
                Some(attempt) => {
                    if let Some(st) = shared.step(attempt.step as usize) {
                        st.slow_downs.fetch_add(1, Relaxed);
                    }
                    let wait = retry_after_ms
                        .map(Duration::from_millis)
                        .unwrap_or(DEFAULT_RETRY_AFTER)
                        .min(MAX_RETRY_AFTER);
                    let until = tokio::time::Instant::now() + wait;
                    let _ = tx.send(Out::Pause(until));
                    retries.push(until, attempt.retry());
                }
                None => shared.note_error(format!(
                    "{}: error reply to {:?}: {code}: {message}",
                    shared.name(idx),
                    id.unwrap_or_default()
                )),
            }
        }
        ServerMessage::Kicked { reason } => {
            if !shared.closing.load(Relaxed) {
                shared.note_error(format!("{}: kicked: {reason}", shared.name(idx)));
            }
        }
        _ => {
            shared.other_frames.fetch_add(1, Relaxed);
        }
    }
}

/// A version 1 presence push (one change per frame).
fn note_presence_change(shared: &Shared, idx: u32, len: usize, name: &str, online: bool) {
    shared.presence_pushes.fetch_add(1, Relaxed);
    shared.presence_bytes.fetch_add(len as u64, Relaxed);
    shared.presence_entries.fetch_add(1, Relaxed);
    if let Some(book) = &shared.presence_book {
        book.apply(idx, name, online);
    }
}

fn handle_echo(shared: &Shared, idx: u32, payload: &[u8]) {
    match decode_client(payload) {
        Ok(ClientMessage::SendMessage {
            body: MessageBody::Text { text },
            ..
        }) => {
            if let Some((step, ts)) = parse_text(&text) {
                shared.delivered(step, ts, Some(idx));
            }
        }
        Ok(_) => {
            shared.other_frames.fetch_add(1, Relaxed);
        }
        Err(e) => shared.note_error(format!("{}: undecodable echo: {e}", shared.name(idx))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        assert_eq!(
            parse_text("s=3 t=123456 natter-loadbench message 9"),
            Some((3, 123456))
        );
        assert_eq!(
            parse_client_msg_id(&client_msg_id(3, 123456, 9)),
            Some((3, 123456, 9))
        );
        let attempt = SendAttempt {
            step: 3,
            ts: 123_456,
            seq: 9,
            to: 77,
            written: 654_321,
        };
        assert_eq!(SendAttempt::parse(&attempt.request_id()), Some(attempt));
        assert_eq!(SendAttempt::parse("s3.123456.9.77"), None);
        match attempt.retry() {
            Out::Send {
                to: 77,
                ts: 123_456,
                step: 3,
                seq: Some(9),
            } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retries_come_out_earliest_first() {
        let t0 = tokio::time::Instant::now();
        let mut q = RetryQueue::default();
        let send = |to| Out::Send {
            to,
            ts: 0,
            step: 0,
            seq: Some(0),
        };
        q.push(t0 + Duration::from_millis(30), send(3));
        q.push(t0 + Duration::from_millis(10), send(1));
        q.push(t0 + Duration::from_millis(20), send(2));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_millis(10)));
        let due: Vec<u32> = q
            .take_due(t0 + Duration::from_millis(20))
            .into_iter()
            .map(|o| match o {
                Out::Send { to, .. } => to,
                _ => 0,
            })
            .collect();
        assert_eq!(due, [1, 2]);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_millis(30)));
    }
}
