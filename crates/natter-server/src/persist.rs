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
//! Admission control: when the queue holds more than [`ADMIT_WAIT`] of work at the measured
//! commit rate, new messages are refused with `slow_down` (PROTOCOL.md §5.5) instead of waiting
//! in a queue that only grows; acks are always taken, since they are what lets the backlog go.

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
/// Assumed cost of one job before any batch was timed.
const INITIAL_JOB_NANOS: u64 = 20_000;

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
    },
    Ack {
        recipient: UserId,
        msg_ids: Vec<MsgId>,
        reply: Option<oneshot::Sender<StoreResult<()>>>,
    },
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Measured commit cost per job (nanoseconds, smoothed), for admission.
    job_nanos: Arc<AtomicU64>,
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
        let job_nanos = Arc::new(AtomicU64::new(INITIAL_JOB_NANOS));
        let measured = job_nanos.clone();
        let thread = std::thread::Builder::new()
            .name("natter-writer".into())
            .spawn(move || run(rx, log, hub, now, measured))?;
        Ok((Self { tx, job_nanos }, WriterThread(thread)))
    }

    /// How long the work queued now would take the writer.
    fn backlog(&self) -> Duration {
        let queued = (self.tx.max_capacity() - self.tx.capacity()) as u64;
        Duration::from_nanos(queued.saturating_mul(self.job_nanos.load(Ordering::Relaxed)))
    }

    /// Queues a message to store and route; the receiver resolves once it is committed.
    pub fn save(
        &self,
        message: NewMessage,
    ) -> Result<oneshot::Receiver<StoreResult<StoredMessage>>, Refused> {
        let backlog = self.backlog();
        if backlog > ADMIT_WAIT {
            // Come back when about half of today's backlog has gone: soon enough to keep the
            // writer busy, late enough not to be refused again at once.
            return Err(Refused::SlowDown(backlog / 2));
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job::Save { message, reply }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Refused::SlowDown(ADMIT_WAIT)),
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
            })
            .await
            .map_err(|_| Refused::Stopped)?;
        Ok(rx)
    }
}

fn run(
    mut rx: mpsc::Receiver<Job>,
    mut log: Box<dyn MessageLog>,
    hub: Arc<Hub>,
    now: fn() -> i64,
    job_nanos: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = rx.blocking_recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let ts = now();
        let started = Instant::now();
        let committed = commit(log.as_mut(), &batch, ts);
        let elapsed = started.elapsed();
        // Smoothed over batches: one slow fsync should not refuse everybody.
        let per_job = elapsed.as_nanos() as u64 / batch.len() as u64;
        let old = job_nanos.load(Ordering::Relaxed);
        job_nanos.store((old * 7 + per_job) / 8, Ordering::Relaxed);
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
                        Job::Save { message, reply } => match stored.next() {
                            Some(saved) => route_saved(&hub, message.sender_id, saved, reply),
                            None => fail(Job::Save { message, reply }),
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

fn fail(job: Job) {
    let err = || crate::store::StoreError::Db(sqlx::Error::PoolClosed);
    match job {
        Job::Save { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Job::Ack { reply, .. } => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(err()));
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
        let store = Store::open(&path).await.expect("store");
        let alice = store
            .create_user("alice", None, "", "", "", 0)
            .await
            .expect("user");
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let log = Gated {
            log: SqliteLog::open(&path).expect("log"),
            open: open.clone(),
        };
        let (writer, thread) =
            Writer::spawn(Box::new(log), Arc::new(Hub::default()), || 1).expect("writer");

        let mut accepted = Vec::new();
        let mut refused = None;
        for n in 0..QUEUE {
            let mut message = text("alice", n);
            message.sender_id = alice.id;
            match writer.save(message) {
                Ok(rx) => accepted.push(rx),
                Err(Refused::SlowDown(wait)) => {
                    refused = Some(wait);
                    break;
                }
                Err(Refused::Stopped) => panic!("the writer stopped"),
            }
        }
        let wait = refused.expect("a stuck writer must refuse before its queue is full");
        assert!(wait > Duration::ZERO && wait <= ADMIT_WAIT, "retry after {wait:?}");
        assert!(accepted.len() > 1, "the first messages are taken");

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
        assert_eq!(total as usize, ids.len(), "every accepted message, nothing else");
    }
}
