//! What the clients measure, shared by every client task of one phase: per-step counters and
//! latency histograms, connection-level counters, and the two books of the special runs (each
//! client's view of who is online, and the crash run's ledger of every message).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

/// Largest number of error messages kept verbatim.
const ERROR_SAMPLES: usize = 20;

/// The process-wide base instant, with the wall clock (Unix ms) read at the same moment.
static BASE: OnceLock<(Instant, i64)> = OnceLock::new();

fn base() -> &'static (Instant, i64) {
    BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        (Instant::now(), wall)
    })
}

/// Nanoseconds since a process-wide base instant; senders stamp messages with it and receivers
/// (in the same process) subtract it from their own reading.
pub fn now_ns() -> u64 {
    base().0.elapsed().as_nanos() as u64
}

/// A [`now_ns`] reading as wall-clock Unix milliseconds, to compare with the server's `ts`
/// (same machine, same clock; millisecond resolution).
pub fn wall_ms(ns: u64) -> i64 {
    base().1 + (ns / 1_000_000) as i64
}

/// Which server the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The real natter-server: hello, login, send_message, message push, ack.
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
pub fn parse_username(name: &str) -> Option<u32> {
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

    pub fn record_ns(&self, ns: u64) {
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
    /// Send timestamp → `message_accepted` at the sender (slow_down waits and retries included).
    pub accepted: Hist,
    /// Write of the attempt the server accepted → its `message_accepted` (no slow_down waits:
    /// what the "accepted p99 under overload" target is about).
    pub attempt: Hist,
    /// The part of [`StepStats::attempt`] before the server's commit (`message_accepted.ts`,
    /// the batch's time): reading, decoding and queueing for the writer, not the reply's way back.
    pub attempt_to_commit: Hist,
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
    /// Send requests written by the writer tasks (first tries and retries).
    pub written: AtomicU64,
    /// `slow_down` answers to `send_message`.
    pub slow_downs: AtomicU64,
}

impl StepStats {
    fn new() -> Self {
        Self {
            delivery: Hist::new(),
            accepted: Hist::new(),
            attempt: Hist::new(),
            attempt_to_commit: Hist::new(),
            receipt: Hist::new(),
            send_lag: Hist::new(),
            delivered: AtomicU64::new(0),
            accepted_n: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            written: AtomicU64::new(0),
            slow_downs: AtomicU64::new(0),
        }
    }
}

/// Each client's view of who is online (presence runs): one bit per client index, built from
/// `login_ok.online` and every presence push after it.
pub struct PresenceBook {
    words: usize,
    sets: Vec<Mutex<Vec<u64>>>,
    /// Names in presence data that are not bench clients.
    pub foreign: AtomicU64,
}

impl PresenceBook {
    pub fn new(clients: usize) -> Self {
        let words = clients.div_ceil(64);
        Self {
            words,
            sets: (0..clients).map(|_| Mutex::new(Vec::new())).collect(),
            foreign: AtomicU64::new(0),
        }
    }

    /// Replaces client `me`'s view with `online` (its `login_ok.online`).
    pub fn reset<'a>(&self, me: u32, online: impl Iterator<Item = &'a str>) {
        let Some(slot) = self.sets.get(me as usize) else {
            return;
        };
        let mut set = vec![0u64; self.words];
        for name in online {
            self.mark(&mut set, name, true);
        }
        *slot.lock().expect("presence lock") = set;
    }

    /// Applies one change to client `me`'s view; a change naming `me` itself is ignored.
    pub fn apply(&self, me: u32, name: &str, online: bool) {
        if parse_username(name) == Some(me) {
            return;
        }
        if let Some(slot) = self.sets.get(me as usize) {
            self.mark(&mut slot.lock().expect("presence lock"), name, online);
        }
    }

    fn mark(&self, set: &mut [u64], name: &str, online: bool) {
        match parse_username(name).filter(|i| (*i as usize) < self.sets.len()) {
            Some(i) => {
                let (w, b) = (i as usize / 64, i % 64);
                if online {
                    set[w] |= 1 << b;
                } else {
                    set[w] &= !(1 << b);
                }
            }
            None => {
                self.foreign.fetch_add(1, Relaxed);
            }
        }
    }

    /// The set holding exactly `members`.
    pub fn reference(&self, members: impl Iterator<Item = u32>) -> Vec<u64> {
        let mut set = vec![0u64; self.words];
        for i in members {
            set[i as usize / 64] |= 1 << (i % 64);
        }
        set
    }

    /// How client `me`'s view differs from `expected` (with `me` itself counted as online):
    /// (missing, extra).
    pub fn diff(&self, me: u32, expected: &[u64]) -> (u64, u64) {
        let Some(slot) = self.sets.get(me as usize) else {
            return (0, 0);
        };
        let set = slot.lock().expect("presence lock");
        let (mut missing, mut extra) = (0u64, 0u64);
        for (w, want) in expected.iter().enumerate() {
            let mut have = set.get(w).copied().unwrap_or(0);
            if w == me as usize / 64 {
                have |= 1 << (me % 64);
            }
            missing += u64::from((want & !have).count_ones());
            extra += u64::from((have & !want).count_ones());
        }
        (missing, extra)
    }
}

/// What happened to one message in the crash run.
#[derive(Debug, Default, Clone, Copy)]
pub struct LedgerEntry {
    pub accepted: bool,
    /// `message` pushes of it, over all connections of its recipient.
    pub deliveries: u32,
    /// Its sender got the `receipt`: the recipient's ack was committed.
    pub receipted: bool,
    /// Pushes that came after the receipt (an acked message delivered again).
    pub after_receipt: u32,
}

/// Every message of the crash run by `msg_id`.
#[derive(Default)]
pub struct Ledger {
    pub msgs: HashMap<i64, LedgerEntry>,
    /// `message_accepted` with `duplicate: true` (a resend of a message stored before the kill).
    pub accepted_duplicates: u64,
}

/// A sent message not yet accepted (the crash run resends these after reconnecting).
#[derive(Debug, Clone, Copy)]
pub struct Unaccepted {
    pub to: u32,
    pub ts: u64,
    pub step: u8,
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
    /// The session token of each client's latest login.
    pub tokens: Vec<Mutex<Option<String>>>,
    /// Protocol version in use: 0 until the first `hello_ok`.
    pub version: AtomicU32,
    /// `hello.presence`: "all" or "friends".
    pub presence_all: bool,
    pub presence_book: Option<PresenceBook>,
    /// Crash run: every message's fate, and each client's sent-but-not-accepted messages.
    pub ledger: Option<Mutex<Ledger>>,
    pub outbox: Vec<Mutex<HashMap<u64, Unaccepted>>>,
    pub delivered_total: AtomicU64,
    pub errors: AtomicU64,
    pub error_samples: Mutex<Vec<String>>,
    /// Connections that ended while the benchmark still needed them.
    pub disconnects: AtomicU64,
    /// Presence pushes received (`user_online`/`user_offline`, or version 2 `presence` batches).
    pub presence_pushes: AtomicU64,
    /// Bytes of those pushes (frame payloads).
    pub presence_bytes: AtomicU64,
    /// Entries in them (one per user going online or offline).
    pub presence_entries: AtomicU64,
    /// Bytes of `login_ok` replies (its `online` list grows with `presence: "all"`).
    pub login_ok_bytes: AtomicU64,
    /// Server heartbeat pushes received.
    pub heartbeats: AtomicU64,
    /// Frames of any other kind.
    pub other_frames: AtomicU64,
    pub acks_sent: AtomicU64,
    pub acked_ids: AtomicU64,
    /// `ok` replies (none expected for quiet acks).
    pub oks: AtomicU64,
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
            tokens: (0..clients).map(|_| Mutex::new(None)).collect(),
            version: AtomicU32::new(0),
            presence_all: false,
            presence_book: None,
            ledger: None,
            outbox: Vec::new(),
            delivered_total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
            disconnects: AtomicU64::new(0),
            presence_pushes: AtomicU64::new(0),
            presence_bytes: AtomicU64::new(0),
            presence_entries: AtomicU64::new(0),
            login_ok_bytes: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            other_frames: AtomicU64::new(0),
            acks_sent: AtomicU64::new(0),
            acked_ids: AtomicU64::new(0),
            oks: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// Clients say `presence: "all"` and keep a view of who is online.
    pub fn with_presence_all(mut self) -> Self {
        self.presence_all = true;
        self.presence_book = Some(PresenceBook::new(self.names.len()));
        self
    }

    /// Every message is tracked by `msg_id`, and unaccepted sends are kept for resending.
    pub fn with_ledger(mut self) -> Self {
        self.ledger = Some(Mutex::new(Ledger::default()));
        self.outbox = (0..self.names.len())
            .map(|_| Mutex::new(HashMap::new()))
            .collect();
        self
    }

    /// The protocol version in use (the wanted one until a server answered).
    pub fn version(&self) -> u32 {
        match self.version.load(Relaxed) {
            0 => natter_proto::PROTOCOL_VERSION,
            v => v,
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

    /// The error count, with the first one seen: "N (first: `…`)".
    pub fn errors_seen(&self) -> String {
        format!(
            "{}{}",
            self.errors.load(Relaxed),
            self.error_samples
                .lock()
                .expect("samples")
                .first()
                .map(|e| format!(" (first: `{e}`)"))
                .unwrap_or_default()
        )
    }

    /// The name client `idx` logged in with.
    pub fn name(&self, idx: u32) -> String {
        match self.names.get(idx as usize).and_then(OnceLock::get) {
            Some(name) => name.clone(),
            None => username(idx, 0),
        }
    }

    pub fn note_disconnect(&self, idx: u32, why: String) {
        if !self.closing.load(Relaxed) {
            self.disconnects.fetch_add(1, Relaxed);
            self.note_error(format!("client {} disconnected: {why}", self.name(idx)));
        }
    }

    pub fn step(&self, step: usize) -> Option<&StepStats> {
        self.steps.get(step)
    }

    pub fn delivered(&self, step: usize, sent_ns: u64, sender: Option<u32>) {
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

    /// Crash run: applies `f` to the ledger entry of `msg_id`.
    pub fn ledger_entry(&self, msg_id: i64, f: impl FnOnce(&mut LedgerEntry)) {
        if let Some(ledger) = &self.ledger {
            f(ledger
                .lock()
                .expect("ledger lock")
                .msgs
                .entry(msg_id)
                .or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_book_applies_changes_in_order_and_ignores_self() {
        let book = PresenceBook::new(130);
        book.reset(0, ["lb000000", "lb000001"].into_iter());
        book.apply(0, "lb000129", true);
        book.apply(0, "lb000001", false);
        book.apply(0, "lb000001", true);
        book.apply(0, "lb000129", false);
        book.apply(0, "lb000000", false); // about itself: ignored
        book.apply(0, "someone", true);
        let expected = book.reference([0, 1].into_iter());
        assert_eq!(book.diff(0, &expected), (0, 0));
        let all = book.reference(0..130);
        assert_eq!(book.diff(0, &all), (128, 0));
        assert_eq!(book.foreign.load(Relaxed), 1);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_username(&username(42, 0)), Some(42));
        assert_eq!(parse_username(&username(42, 2)), Some(42));
        assert_eq!(username(7, 1), "lb000007r1");
    }
}
