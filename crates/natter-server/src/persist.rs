//! The message writer: one thread that stores chat messages and acks in batched transactions
//! (group commit) and then routes them.
//!
//! Persisting before acking at tens of thousands of messages per second needs batching: one
//! commit per message would cap us at the disk's sync rate. Jobs queue on a channel; the writer
//! takes everything waiting (up to [`MAX_BATCH`]), commits it as one transaction through its
//! [`MessageLog`], and only then pushes to recipients and answers senders. Because one thread
//! commits and routes in id order, every recipient sees private messages in `msg_id` order.
//!
//! The writer is a plain thread, not a task: the log's handle is synchronous (no hand-off per
//! statement), and a commit that blocks on the disk blocks nobody but the writer.
//!
//! Admission control: when work waits longer than [`ADMIT_WAIT`], new messages are refused with
//! `slow_down` (PROTOCOL.md §5.5) instead of waiting in a queue that only grows; acks are always
//! taken, since they are what lets the backlog go. Two waits are measured, as CoDel does, and the
//! larger counts: the writer's queue (how long the oldest job of the last batch waited, or how long
//! the writer has been busy with work queued behind it), and the async runtime's (how late a
//! timer fires: [`Writer::watch_runtime`]). The second sees what the first cannot: when the
//! server is short of CPU, requests wait unread in sockets and run queues long before any of them
//! reaches the writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_proto::{MsgId, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::hub::{self, Hub};
use crate::store::{AckedMessage, MessageLog, NewMessage, StoreResult, StoredMessage, UserId};

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 4096;
/// Queue depth in front of the writer; acks wait when it is full (backpressure).
pub const QUEUE: usize = 16384;
/// A message is refused with `slow_down` when the work queued before it would take longer.
pub const ADMIT_WAIT: Duration = Duration::from_millis(200);
/// Under steady load the writer lets a batch gather for up to this long (from its oldest job):
/// one commit of a dozen jobs writes about the pages of one commit of one, so fewer, larger
/// commits cut the writer's CPU and the WAL traffic (≈100 MB/s at 5,000 msgs/s without it).
const LINGER: Duration = Duration::from_millis(1);
/// A batch this large is committed without lingering.
const LINGER_ENOUGH: usize = 128;
/// The writer counts as under load when its last commit ended this recently.
const BUSY_GAP: Duration = Duration::from_millis(5);
/// The shortest and the longest wait a `slow_down` asks for.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(250);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often the runtime's lateness is sampled.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The writer is gone (server shutting down).
    #[error("the message writer has stopped")]
    Stopped,
    /// The writer is behind; try again after this long.
    #[error("the message writer is behind")]
    SlowDown(Duration),
}

enum Job {
    Save {
        message: NewMessage,
        reply: oneshot::Sender<StoreResult<StoredMessage>>,
        queued: Instant,
    },
    Ack {
        recipient: UserId,
        msg_ids: Vec<MsgId>,
        reply: Option<oneshot::Sender<StoreResult<()>>>,
        queued: Instant,
    },
}

impl Job {
    fn queued(&self) -> Instant {
        match self {
            Job::Save { queued, .. } | Job::Ack { queued, .. } => *queued,
        }
    }
}

/// What the writer tells admission about its queue (nanoseconds since `epoch`).
struct Pressure {
    epoch: Instant,
    /// How long the oldest job of the last batch had waited (0 once the queue ran empty).
    last_wait: AtomicU64,
    /// When the writer took the batch it is working on; [`IDLE`] while it waits for work.
    working_since: AtomicU64,
    /// How late the runtime's last probe timer fired.
    runtime_lag: AtomicU64,
}

const IDLE: u64 = u64::MAX;

impl Pressure {
    fn since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    pressure: Arc<Pressure>,
}

/// The writer thread; [`WriterThread::join`] waits for it to drain and stop.
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    /// Waits (off the async runtime) until the writer has committed everything queued and
    /// stopped; it stops once every [`Writer`] handle is dropped.
    pub async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

impl Writer {
    /// Starts the writer thread over a message log.
    pub fn spawn(
        log: Box<dyn MessageLog>,
        hub: Arc<Hub>,
        now: fn() -> i64,
    ) -> std::io::Result<(Self, WriterThread)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let pressure = Arc::new(Pressure {
            epoch: Instant::now(),
            last_wait: AtomicU64::new(0),
            working_since: AtomicU64::new(IDLE),
            runtime_lag: AtomicU64::new(0),
        });
        let measured = pressure.clone();
        let thread = std::thread::Builder::new()
            .name("natter-writer".into())
            .spawn(move || run(rx, log, hub, now, measured))?;
        Ok((Self { tx, pressure }, WriterThread(thread)))
    }

    /// How long a message taken now can expect to wait: the runtime's lateness, or the last
    /// batch's queueing delay, or, while jobs are queued, how long the writer has been on its
    /// current batch.
    fn backlog(&self) -> Duration {
        let p = &self.pressure;
        let lag = p.runtime_lag.load(Ordering::Relaxed);
        if self.tx.capacity() == self.tx.max_capacity() {
            return Duration::from_nanos(lag);
        }
        let busy = match p.working_since.load(Ordering::Relaxed) {
            IDLE => 0,
            since => p.since_epoch(Instant::now()).saturating_sub(since),
        };
        Duration::from_nanos(busy.max(p.last_wait.load(Ordering::Relaxed)).max(lag))
    }

    /// Measures how late the async runtime runs a timer, for admission, until `stop`. A task
    /// of the runtime that serves the connections must run it. A late timer counts for as long
    /// as it was late (the lateness decays in real time), so one stall of 300 ms refuses
    /// messages for about 300 ms, not just until the next sample.
    pub async fn watch_runtime(self, stop: tokio_util::sync::CancellationToken) {
        let lag = &self.pressure.runtime_lag;
        loop {
            let asleep = Instant::now();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            let slept = asleep.elapsed();
            let late = slept.saturating_sub(PROBE_EVERY).as_nanos() as u64;
            let decayed = lag
                .load(Ordering::Relaxed)
                .saturating_sub(slept.as_nanos() as u64);
            lag.store(late.max(decayed), Ordering::Relaxed);
        }
    }

    /// Queues a message to store and route; the receiver resolves once it is committed.
    pub fn save(
        &self,
        message: NewMessage,
    ) -> Result<oneshot::Receiver<StoreResult<StoredMessage>>, Refused> {
        let backlog = self.backlog();
        if backlog > ADMIT_WAIT {
            // Come back after twice the wait measured now: the backlog ahead is gone by then,
            // and a client refused again at once would only add load (a refusal costs the
            // server a request and a reply, a third of what an accepted message costs).
            return Err(Refused::SlowDown(retry_after(backlog)));
        }
        let (reply, rx) = oneshot::channel();
        let queued = Instant::now();
        match self.tx.try_send(Job::Save {
            message,
            reply,
            queued,
        }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(Refused::SlowDown(retry_after(ADMIT_WAIT)))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Stopped),
        }
    }

    /// Queues acks (marks messages delivered, sends receipts). With `confirm`, the receiver
    /// resolves once they are committed; a quiet ack asks for nothing back.
    pub async fn ack(
        &self,
        recipient: UserId,
        msg_ids: Vec<MsgId>,
        confirm: bool,
    ) -> Result<Option<oneshot::Receiver<StoreResult<()>>>, Refused> {
        let (reply, rx) = if confirm {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.tx
            .send(Job::Ack {
                recipient,
                msg_ids,
                reply,
                queued: Instant::now(),
            })
            .await
            .map_err(|_| Refused::Stopped)?;
        Ok(rx)
    }
}

/// The wait a `slow_down` asks for when work waits `wait`: twice that, within bounds, so the
/// same answer comes from a long queue and from a full one (PROTOCOL.md §5.5 rule 8).
fn retry_after(wait: Duration) -> Duration {
    (wait * 2).clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER)
}

fn run(
    mut rx: mpsc::Receiver<Job>,
    mut log: Box<dyn MessageLog>,
    hub: Arc<Hub>,
    now: fn() -> i64,
    pressure: Arc<Pressure>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_commit = Instant::now() - BUSY_GAP;
    while let Some(job) = rx.blocking_recv() {
        let linger_until = (last_commit.elapsed() < BUSY_GAP).then(|| job.queued() + LINGER);
        batch.push(job);
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            match linger_until {
                Some(until) if now < until && batch.len() < LINGER_ENOUGH => {
                    std::thread::sleep((until - now).min(Duration::from_micros(250)));
                }
                _ => break,
            }
        }
        let started = Instant::now();
        let oldest = batch.iter().map(Job::queued).min().unwrap_or(started);
        pressure.last_wait.store(
            started.saturating_duration_since(oldest).as_nanos() as u64,
            Ordering::Relaxed,
        );
        pressure
            .working_since
            .store(pressure.since_epoch(started), Ordering::Relaxed);
        let ts = now();
        let committed = commit(log.as_mut(), &batch, ts);
        last_commit = Instant::now();
        let elapsed = last_commit - started;
        tracing::debug!(
            jobs = batch.len(),
            micros = elapsed.as_micros() as u64,
            "batch committed"
        );
        match committed {
            Ok((stored, acked)) => {
                let (mut stored, mut acked) = (stored.into_iter(), acked.into_iter());
                for job in batch.drain(..) {
                    match job {
                        Job::Save { message, reply, .. } => match stored.next() {
                            Some(saved) => route_saved(&hub, message.sender_id, saved, reply),
                            None => {
                                tracing::error!("the message log returned too few results");
                                let _ = reply.send(Err(stopped()));
                            }
                        },
                        Job::Ack { reply, .. } => {
                            route_acked(&hub, acked.next().unwrap_or_default(), ts, reply);
                        }
                    }
                }
            }
            Err(e) => {
                // The whole transaction rolled back: nothing was stored, every sender learns so
                // and may resend with the same client message id.
                tracing::error!(error = %e, jobs = batch.len(), "message batch failed");
                for job in batch.drain(..) {
                    fail(job);
                }
            }
        }
        if rx.is_empty() {
            // Caught up: nothing queued waits, whatever the last batch went through.
            pressure.last_wait.store(0, Ordering::Relaxed);
            pressure.working_since.store(IDLE, Ordering::Relaxed);
        }
    }
}

type Results = (Vec<StoredMessage>, Vec<Vec<AckedMessage>>);

fn commit(log: &mut dyn MessageLog, batch: &[Job], ts: i64) -> StoreResult<Results> {
    let mut saves = Vec::with_capacity(batch.len());
    let mut acks = Vec::new();
    for job in batch {
        match job {
            Job::Save { message, .. } => saves.push(message),
            Job::Ack {
                recipient, msg_ids, ..
            } => acks.push((*recipient, msg_ids.as_slice())),
        }
    }
    let done = log.commit(&saves, &acks, ts)?;
    Ok((done.stored, done.acked))
}

fn route_saved(
    hub: &Hub,
    sender: UserId,
    stored: StoredMessage,
    reply: oneshot::Sender<StoreResult<StoredMessage>>,
) {
    if !stored.duplicate {
        match stored.recipient_id {
            Some(recipient) => {
                hub.push_push(recipient, hub::private_push(&stored.message));
            }
            None => hub.broadcast(
                sender,
                hub::frame_of(&ServerMessage::Message {
                    message: stored.message.clone(),
                }),
            ),
        }
    }
    let _ = reply.send(Ok(stored));
}

fn route_acked(
    hub: &Hub,
    acked: Vec<AckedMessage>,
    ts: i64,
    reply: Option<oneshot::Sender<StoreResult<()>>>,
) {
    // Receipts are pushed after the commit; a sender who is offline, or whose connection
    // silently died, gets them again at the next login until acked.
    for a in &acked {
        hub.push_to(
            a.sender_id,
            &ServerMessage::Receipt {
                msg_id: a.msg_id,
                client_msg_id: a.client_msg_id.clone(),
                to: a.recipient_name.clone(),
                ts,
            },
        );
    }
    if let Some(reply) = reply {
        let _ = reply.send(Ok(()));
    }
}

fn stopped() -> crate::store::StoreError {
    crate::store::StoreError::Db(sqlx::Error::PoolClosed)
}

fn fail(job: Job) {
    match job {
        Job::Save { reply, .. } => {
            let _ = reply.send(Err(stopped()));
        }
        Job::Ack { reply, .. } => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(stopped()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

    use natter_proto::MessageBody;

    use super::*;
    use crate::store::{Committed, SqliteLog, Store};

    /// The real SQLite log, held shut until the test opens it: a writer stuck on a slow disk.
    struct Gated {
        log: SqliteLog,
        open: Arc<(Mutex<bool>, Condvar)>,
    }

    impl MessageLog for Gated {
        fn commit(
            &mut self,
            saves: &[&NewMessage],
            acks: &[(UserId, &[MsgId])],
            now: i64,
        ) -> StoreResult<Committed> {
            let (lock, cvar) = &*self.open;
            let mut open = lock.lock().expect("gate lock");
            while !*open {
                open = cvar.wait(open).expect("gate lock");
            }
            drop(open);
            self.log.commit(saves, acks, now)
        }
    }

    fn text(sender: &str, n: usize) -> NewMessage {
        NewMessage {
            sender_id: 1,
            sender_name: sender.into(),
            sender_guest: false,
            client_msg_id: format!("m{n}"),
            recipient: None,
            body: MessageBody::Text {
                text: format!("hello {n}"),
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_far_behind_says_slow_down_and_loses_nothing_it_accepted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("natter.db");
        let (store, users) = Store::for_tests(&path, &["alice"]).await;
        let alice = &users[0];
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let log = Gated {
            log: SqliteLog::open(&path).expect("log"),
            open: open.clone(),
        };
        let (writer, thread) =
            Writer::spawn(Box::new(log), Arc::new(Hub::default()), || 1).expect("writer");

        let save = |n: usize| {
            let mut message = text("alice", n);
            message.sender_id = alice.id;
            writer.save(message)
        };
        // The first message is taken and stuck in its commit; the second queues behind it.
        let mut accepted = vec![save(0).expect("an idle writer takes a message")];
        tokio::time::sleep(Duration::from_millis(50)).await;
        accepted.push(save(1).expect("a short queue takes a message"));
        tokio::time::sleep(ADMIT_WAIT + Duration::from_millis(50)).await;
        match save(2) {
            Err(Refused::SlowDown(wait)) => assert!(
                wait > ADMIT_WAIT && wait <= MAX_RETRY_AFTER,
                "retry after {wait:?}"
            ),
            Err(Refused::Stopped) => panic!("the writer stopped"),
            Ok(_) => panic!("a writer stuck past the admit wait must say slow_down"),
        }

        *open.0.lock().expect("gate lock") = true;
        open.1.notify_all();
        let mut ids = Vec::new();
        for rx in accepted {
            let stored = rx.await.expect("answered").expect("stored");
            assert!(!stored.duplicate);
            ids.push(stored.message.msg_id);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "msg_ids in order");
        drop(writer);
        thread.join().await;
        let (page, _) = store.history("square", None, 200).await.expect("history");
        assert_eq!(
            page.last().map(|m| m.msg_id),
            ids.last().copied(),
            "the last accepted message is on disk"
        );
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&store.pool_for_tests())
            .await
            .expect("count");
        assert_eq!(
            total as usize,
            ids.len(),
            "every accepted message, nothing else"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_runtime_running_late_says_slow_down_until_it_catches_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("natter.db");
        let (_store, users) = Store::for_tests(&path, &["alice"]).await;
        let alice = &users[0];
        let log = SqliteLog::open(&path).expect("log");
        let (writer, thread) =
            Writer::spawn(Box::new(log), Arc::new(Hub::default()), || 1).expect("writer");
        let stop = tokio_util::sync::CancellationToken::new();
        let probe = tokio::spawn(writer.clone().watch_runtime(stop.clone()));
        let save = |n: usize| {
            let mut message = text("alice", n);
            message.sender_id = alice.id;
            writer.save(message)
        };
        tokio::time::sleep(PROBE_EVERY * 3).await;
        let first = save(0).expect("a runtime on time takes a message");

        // Something holds the runtime's only thread: every request would wait that long.
        let stall = ADMIT_WAIT * 2;
        tokio::spawn(async move { std::thread::sleep(stall) })
            .await
            .expect("stall");
        tokio::time::sleep(Duration::from_millis(2)).await;
        match save(1) {
            Err(Refused::SlowDown(wait)) => assert!(
                wait >= ADMIT_WAIT && wait <= MAX_RETRY_AFTER,
                "retry after {wait:?}"
            ),
            Err(Refused::Stopped) => panic!("the writer stopped"),
            Ok(_) => panic!("a runtime running {stall:?} late must say slow_down"),
        }

        tokio::time::sleep(stall + PROBE_EVERY * 5).await;
        let second = save(2).expect("a runtime that caught up takes messages again");
        for rx in [first, second] {
            rx.await.expect("answered").expect("stored");
        }
        stop.cancel();
        probe.await.expect("probe");
        drop(writer);
        thread.join().await;
    }
}
