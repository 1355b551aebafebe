//! The message writer: one task that stores chat messages and acks in batched transactions and
//! then routes them.
//!
//! Persisting before acking at tens of thousands of messages per second needs batching: one
//! SQLite commit per message would cap us at the disk's fsync rate. Jobs queue on a channel; the
//! writer takes everything waiting (up to [`MAX_BATCH`]), commits it as one transaction, and only
//! then pushes to recipients and answers senders. Because one task commits and routes in id
//! order, every recipient sees private messages in `msg_id` order.

use std::sync::Arc;

use natter_proto::{MsgId, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::hub::{self, Hub};
use crate::store::{
    self, AckedMessage, NewMessage, Store, StoreError, StoreResult, StoredMessage, UserId,
};

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 2048;
/// Queue depth in front of the writer; senders wait when it is full (backpressure).
pub const QUEUE: usize = 8192;

enum Job {
    Save {
        message: NewMessage,
        reply: oneshot::Sender<StoreResult<StoredMessage>>,
    },
    Ack {
        recipient: UserId,
        msg_ids: Vec<MsgId>,
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// The writer task is gone (server shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the message writer has stopped")]
pub struct WriterStopped;

impl Writer {
    /// Starts the writer task; it ends when every `Writer` handle is dropped.
    pub fn spawn(
        store: Store,
        hub: Arc<Hub>,
        now: fn() -> i64,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(rx, store, hub, now));
        (Self { tx }, task)
    }

    /// Stores a message and routes it; resolves once it is committed.
    pub async fn save(
        &self,
        message: NewMessage,
    ) -> Result<oneshot::Receiver<StoreResult<StoredMessage>>, WriterStopped> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Save { message, reply })
            .await
            .map_err(|_| WriterStopped)?;
        Ok(rx)
    }

    /// Marks messages delivered and sends receipts; resolves once committed.
    pub async fn ack(
        &self,
        recipient: UserId,
        msg_ids: Vec<MsgId>,
    ) -> Result<oneshot::Receiver<StoreResult<()>>, WriterStopped> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Ack {
                recipient,
                msg_ids,
                reply,
            })
            .await
            .map_err(|_| WriterStopped)?;
        Ok(rx)
    }
}

enum Done {
    Saved(Box<StoredMessage>),
    Acked(Vec<AckedMessage>),
}

async fn run(mut rx: mpsc::Receiver<Job>, store: Store, hub: Arc<Hub>, now: fn() -> i64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ts = now();
        let started = std::time::Instant::now();
        let committed = commit(&store, &batch, ts).await;
        tracing::debug!(
            jobs = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        match committed {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    finish(&hub, job, result, ts);
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

async fn commit(store: &Store, batch: &[Job], ts: i64) -> StoreResult<Vec<Done>> {
    let saves: Vec<&NewMessage> = batch
        .iter()
        .filter_map(|job| match job {
            Job::Save { message, .. } => Some(message),
            Job::Ack { .. } => None,
        })
        .collect();
    let acks: Vec<(UserId, &[MsgId])> = batch
        .iter()
        .filter_map(|job| match job {
            Job::Ack {
                recipient, msg_ids, ..
            } => Some((*recipient, msg_ids.as_slice())),
            Job::Save { .. } => None,
        })
        .collect();
    let mut tx = store.begin().await?;
    let mut stored = store::save_messages_in(&mut tx, &saves, ts)
        .await?
        .into_iter();
    let mut acked = store::mark_delivered_in(&mut tx, &acks, ts)
        .await?
        .into_iter();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Save { .. } => {
                let saved = stored
                    .next()
                    .ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
                results.push(Done::Saved(Box::new(saved)));
            }
            Job::Ack { .. } => {
                // Receipts are pushed after the commit; a sender who is offline, or whose
                // connection silently died, gets them again at the next login until acked.
                results.push(Done::Acked(acked.next().unwrap_or_default()));
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

fn receipt(a: &AckedMessage, ts: i64) -> ServerMessage {
    ServerMessage::Receipt {
        msg_id: a.msg_id,
        client_msg_id: a.client_msg_id.clone(),
        to: a.recipient_name.clone(),
        ts,
    }
}

fn finish(hub: &Hub, job: Job, result: Done, ts: i64) {
    match (job, result) {
        (Job::Save { message, reply }, Done::Saved(stored)) => {
            if !stored.duplicate {
                match stored.recipient_id {
                    Some(recipient) => {
                        hub.push_push(recipient, hub::private_push(&stored.message));
                    }
                    None => hub.broadcast(
                        message.sender_id,
                        hub::frame_of(&ServerMessage::Message {
                            message: stored.message.clone(),
                        }),
                    ),
                }
            }
            let _ = reply.send(Ok(*stored));
        }
        (Job::Ack { reply, .. }, Done::Acked(acked)) => {
            for a in &acked {
                hub.push_to(a.sender_id, &receipt(a, ts));
            }
            let _ = reply.send(Ok(()));
        }
        (job, _) => {
            tracing::error!("writer results out of step with its jobs");
            fail(job);
        }
    }
}

fn fail(job: Job) {
    let err = || store::StoreError::Db(sqlx::Error::PoolClosed);
    match job {
        Job::Save { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Job::Ack { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
    }
}
