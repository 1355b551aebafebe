//! Load-generating clients: one reader task and one writer task per TCP connection, shared
//! counters and latency histograms, and the connection handshake (hello + guest_login).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use natter_proto::{
    decode_client, decode_server, encode, ClientMessage, FrameCodec, MessageBody, PresenceScope,
    ServerMessage, Target, PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, Encoder};

/// Acks are batched: sent when this many ids are pending...
const ACK_BATCH: usize = 64;
/// ...or when the oldest pending id has waited this long.
const ACK_DELAY: Duration = Duration::from_millis(20);
/// How many queued outgoing frames one writer coalesces into a single write.
const WRITE_COALESCE: usize = 64;
/// Largest number of error messages kept verbatim.
const ERROR_SAMPLES: usize = 20;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since a process-wide base instant; senders stamp messages with it and receivers
/// (in the same process) subtract it from their own reading.
pub fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Which server the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The real natter-server: hello, guest_login, send_message, message push, ack.
    Natter,
    /// The raw TCP echo baseline: the same send_message frames, written back to the sender.
    Echo,
}

/// The login name client `idx` tries first; a retry after a failed login appends `r<attempt>`
/// (a failed guest_login may leave the first name held for the guest grace period).
pub fn username(idx: u32, attempt: u32) -> String {
    if attempt == 0 {
        format!("lb{idx:06}")
    } else {
        format!("lb{idx:06}r{attempt}")
    }
}

/// Client index from a login name (`lb` + six digits + optional retry suffix).
fn parse_username(name: &str) -> Option<u32> {
    name.strip_prefix("lb")?.get(..6)?.parse().ok()
}

/// A latency histogram in microseconds (1 µs .. 10 min, 3 significant digits).
pub struct Hist(Mutex<Histogram<u64>>);

impl Hist {
    fn new() -> Self {
        Self(Mutex::new(
            Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds"),
        ))
    }

    fn record_ns(&self, ns: u64) {
        let us = (ns / 1_000).max(1);
        self.0.lock().expect("histogram lock").saturating_record(us);
    }

    /// A copy of the histogram as it is now.
    pub fn snapshot(&self) -> Histogram<u64> {
        self.0.lock().expect("histogram lock").clone()
    }
}

/// Everything measured for one step; messages carry their step number, so late arrivals are
/// still counted where they belong.
pub struct StepStats {
    /// Send timestamp → `message` push at the recipient (natter) or frame back (echo).
    pub delivery: Hist,
    /// Send timestamp → `message_accepted` at the sender.
    pub accepted: Hist,
    /// Send timestamp → `receipt` at the sender (includes the recipient's ack batching).
    pub receipt: Hist,
    /// Scheduled send time → the moment the writer task encoded it (bench-side queueing).
    pub send_lag: Hist,
    /// Messages received by their recipient.
    pub delivered: AtomicU64,
    /// `message_accepted` replies.
    pub accepted_n: AtomicU64,
    /// `message_accepted` replies with `duplicate: true` (there should be none).
    pub duplicates: AtomicU64,
    /// `receipt` pushes.
    pub receipts: AtomicU64,
    /// Send requests written by the writer tasks.
    pub written: AtomicU64,
}

impl StepStats {
    fn new() -> Self {
        Self {
            delivery: Hist::new(),
            accepted: Hist::new(),
            receipt: Hist::new(),
            send_lag: Hist::new(),
            delivered: AtomicU64::new(0),
            accepted_n: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }
}

/// State shared by every client task of one phase.
pub struct Shared {
    pub mode: Mode,
    pub steps: Vec<StepStats>,
    /// The step whose deliveries hand a send permit back to the sender (max throughput).
    pub max_step: usize,
    /// Per-client send permits of the max-throughput step.
    pub permits: Vec<Semaphore>,
    /// The name each client logged in with.
    pub names: Vec<OnceLock<String>>,
    pub delivered_total: AtomicU64,
    pub errors: AtomicU64,
    pub error_samples: Mutex<Vec<String>>,
    /// Connections that ended while the benchmark still needed them.
    pub disconnects: AtomicU64,
    /// `user_online` / `user_offline` pushes received (expected 0 with presence "friends").
    pub presence_pushes: AtomicU64,
    /// Server heartbeat pushes received.
    pub heartbeats: AtomicU64,
    /// Frames of any other kind.
    pub other_frames: AtomicU64,
    pub acks_sent: AtomicU64,
    pub acked_ids: AtomicU64,
    /// Set before the clients are dropped on purpose.
    pub closing: AtomicBool,
}

impl Shared {
    pub fn new(mode: Mode, clients: usize, steps: usize, max_step: usize) -> Self {
        Self {
            mode,
            steps: (0..steps).map(|_| StepStats::new()).collect(),
            max_step,
            permits: (0..clients).map(|_| Semaphore::new(0)).collect(),
            names: (0..clients).map(|_| OnceLock::new()).collect(),
            delivered_total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
            disconnects: AtomicU64::new(0),
            presence_pushes: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            other_frames: AtomicU64::new(0),
            acks_sent: AtomicU64::new(0),
            acked_ids: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// Counts an error and keeps the first few verbatim.
    pub fn note_error(&self, what: String) {
        self.errors.fetch_add(1, Relaxed);
        let mut samples = self.error_samples.lock().expect("samples lock");
        if samples.len() < ERROR_SAMPLES {
            samples.push(what);
        }
    }

    /// The name client `idx` logged in with.
    pub fn name(&self, idx: u32) -> String {
        match self.names.get(idx as usize).and_then(OnceLock::get) {
            Some(name) => name.clone(),
            None => username(idx, 0),
        }
    }

    fn note_disconnect(&self, idx: u32, why: String) {
        if !self.closing.load(Relaxed) {
            self.disconnects.fetch_add(1, Relaxed);
            self.note_error(format!("client {} disconnected: {why}", self.name(idx)));
        }
    }

    fn step(&self, step: usize) -> Option<&StepStats> {
        self.steps.get(step)
    }

    fn delivered(&self, step: usize, sent_ns: u64, sender: Option<u32>) {
        let Some(st) = self.step(step) else { return };
        st.delivery.record_ns(now_ns().saturating_sub(sent_ns));
        st.delivered.fetch_add(1, Relaxed);
        self.delivered_total.fetch_add(1, Relaxed);
        if step == self.max_step {
            if let Some(p) = sender.and_then(|s| self.permits.get(s as usize)) {
                p.add_permits(1);
            }
        }
    }
}

/// Work for a writer task.
#[derive(Debug)]
pub enum Out {
    /// Send a private text message to client `to`, stamped `ts` (see [`now_ns`]), in `step`.
    Send { to: u32, ts: u64, step: u8 },
    /// Acknowledge pushed messages.
    Ack(Vec<i64>),
    /// Liveness probe.
    Heartbeat,
}

/// A connected, logged-in client.
pub struct ClientHandle {
    pub idx: u32,
    pub tx: mpsc::UnboundedSender<Out>,
    pub tasks: [JoinHandle<()>; 2],
}

/// `"s=<step> t=<ns> ..."` → (step, ns).
fn parse_text(text: &str) -> Option<(usize, u64)> {
    let mut it = text.split_ascii_whitespace();
    let step = it.next()?.strip_prefix("s=")?.parse().ok()?;
    let ts = it.next()?.strip_prefix("t=")?.parse().ok()?;
    Some((step, ts))
}

/// `"<step>.<ns>.<seq>"` → (step, ns).
fn parse_client_msg_id(id: &str) -> Option<(usize, u64)> {
    let mut it = id.split('.');
    let step = it.next()?.parse().ok()?;
    let ts = it.next()?.parse().ok()?;
    Some((step, ts))
}

fn put(codec: &mut FrameCodec, buf: &mut BytesMut, msg: &ClientMessage) {
    codec
        .encode(encode(msg), buf)
        .expect("benchmark frames are far below the frame limit");
}

async fn write_msg(wr: &mut OwnedWriteHalf, msg: &ClientMessage) -> Result<()> {
    let mut buf = BytesMut::new();
    put(&mut FrameCodec::default(), &mut buf, msg);
    wr.write_all(&buf).await?;
    Ok(())
}

async fn read_server_msg(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    codec: &mut FrameCodec,
) -> Result<ServerMessage> {
    loop {
        if let Some(frame) = codec.decode(buf)? {
            return decode_server(frame.payload()).map_err(|e| anyhow!("undecodable reply: {e}"));
        }
        buf.reserve(4096);
        if rd.read_buf(buf).await? == 0 {
            bail!("server closed the connection during login");
        }
    }
}

/// Connects client `idx`; for natter does hello (presence "friends") and guest_login, then
/// starts its reader and writer tasks.
pub async fn connect(
    shared: Arc<Shared>,
    addr: SocketAddr,
    idx: u32,
    attempt: u32,
) -> Result<ClientHandle> {
    let name = username(idx, attempt);
    let stream = TcpStream::connect(addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let mut codec = FrameCodec::default();
    let mut heartbeat = Duration::from_secs(3600);
    if shared.mode == Mode::Natter {
        let hello = ClientMessage::Hello {
            id: "h".into(),
            version: PROTOCOL_VERSION,
            client: "natter-loadbench".into(),
            presence: PresenceScope::Friends,
        };
        write_msg(&mut wr, &hello).await?;
        match read_server_msg(&mut rd, &mut buf, &mut codec).await? {
            ServerMessage::HelloOk {
                heartbeat_interval_ms,
                ..
            } => heartbeat = Duration::from_millis(heartbeat_interval_ms.clamp(100, 3_600_000)),
            other => bail!("expected hello_ok, got {other:?}"),
        }
        let login = ClientMessage::GuestLogin {
            id: "g".into(),
            username: name.clone(),
        };
        write_msg(&mut wr, &login).await?;
        loop {
            match read_server_msg(&mut rd, &mut buf, &mut codec).await? {
                ServerMessage::LoginOk { .. } => break,
                ServerMessage::Error { code, message, .. } => {
                    bail!("guest_login refused: {code}: {message}")
                }
                ServerMessage::UserOnline { .. } | ServerMessage::UserOffline { .. } => {
                    shared.presence_pushes.fetch_add(1, Relaxed);
                }
                _ => {
                    shared.other_frames.fetch_add(1, Relaxed);
                }
            }
        }
    }
    if let Some(slot) = shared.names.get(idx as usize) {
        let _ = slot.set(name);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(writer(shared.clone(), idx, wr, rx, heartbeat));
    let reader = tokio::spawn(reader(shared, idx, rd, buf, tx.clone()));
    Ok(ClientHandle {
        idx,
        tx,
        tasks: [reader, writer],
    })
}

async fn writer(
    shared: Arc<Shared>,
    idx: u32,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    heartbeat: Duration,
) {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(512);
    let mut seq: u64 = 0;
    loop {
        let first = match tokio::time::timeout(heartbeat, rx.recv()).await {
            Ok(Some(out)) => out,
            Ok(None) => break,
            Err(_) => Out::Heartbeat,
        };
        let mut next = Some(first);
        let mut coalesced = 0;
        while let Some(out) = next.take() {
            seq += 1;
            let msg = match out {
                Out::Send { to, ts, step } => {
                    if let Some(st) = shared.steps.get(step as usize) {
                        st.send_lag.record_ns(now_ns().saturating_sub(ts));
                        st.written.fetch_add(1, Relaxed);
                    }
                    ClientMessage::SendMessage {
                        id: format!("s{seq}"),
                        client_msg_id: format!("{step}.{ts}.{seq}"),
                        to: Target::User {
                            username: shared.name(to),
                        },
                        body: MessageBody::Text {
                            text: format!("s={step} t={ts} natter-loadbench message {seq}"),
                        },
                    }
                }
                Out::Ack(msg_ids) => {
                    shared.acks_sent.fetch_add(1, Relaxed);
                    shared.acked_ids.fetch_add(msg_ids.len() as u64, Relaxed);
                    ClientMessage::Ack {
                        id: Some(format!("a{seq}")),
                        msg_ids,
                    }
                }
                Out::Heartbeat => ClientMessage::Heartbeat {
                    id: format!("h{seq}"),
                },
            };
            put(&mut codec, &mut buf, &msg);
            coalesced += 1;
            if coalesced < WRITE_COALESCE {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = wr.write_all(&buf).await {
            shared.note_disconnect(idx, format!("write failed: {e}"));
            return;
        }
        buf.clear();
    }
}

async fn reader(
    shared: Arc<Shared>,
    idx: u32,
    mut rd: OwnedReadHalf,
    mut buf: BytesMut,
    tx: mpsc::UnboundedSender<Out>,
) {
    let mut codec = FrameCodec::default();
    let mut pending: Vec<i64> = Vec::new();
    let ack_timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(ack_timer);
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
            match shared.mode {
                Mode::Natter => handle_natter(&shared, idx, frame.payload(), &mut pending),
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
        }
    }
}

fn handle_natter(shared: &Shared, idx: u32, payload: &[u8], pending: &mut Vec<i64>) {
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
            pending.push(message.msg_id);
        }
        ServerMessage::MessageAccepted {
            client_msg_id,
            duplicate,
            ..
        } => {
            if let Some((step, ts)) = parse_client_msg_id(&client_msg_id) {
                if let Some(st) = shared.step(step) {
                    st.accepted.record_ns(now_ns().saturating_sub(ts));
                    st.accepted_n.fetch_add(1, Relaxed);
                    if duplicate {
                        st.duplicates.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        ServerMessage::Receipt { client_msg_id, .. } => {
            if let Some((step, ts)) = parse_client_msg_id(&client_msg_id) {
                if let Some(st) = shared.step(step) {
                    st.receipt.record_ns(now_ns().saturating_sub(ts));
                    st.receipts.fetch_add(1, Relaxed);
                }
            }
        }
        ServerMessage::Ok { .. } | ServerMessage::HeartbeatAck { .. } => {}
        ServerMessage::Heartbeat { .. } => {
            shared.heartbeats.fetch_add(1, Relaxed);
        }
        ServerMessage::UserOnline { .. } | ServerMessage::UserOffline { .. } => {
            shared.presence_pushes.fetch_add(1, Relaxed);
        }
        ServerMessage::Error {
            id, code, message, ..
        } => shared.note_error(format!(
            "{}: error reply to {:?}: {code}: {message}",
            shared.name(idx),
            id.unwrap_or_default()
        )),
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
        assert_eq!(parse_client_msg_id("3.123456.9"), Some((3, 123456)));
        assert_eq!(parse_username(&username(42, 0)), Some(42));
        assert_eq!(parse_username(&username(42, 2)), Some(42));
        assert_eq!(username(7, 1), "lb000007r1");
    }
}
