//! The cluster bus: several nodes on one PostgreSQL database, talking over NATS.
//!
//! Everything durable is in the shared database already (messages, acks, friendships, notices,
//! transfers), so the bus carries only what is live: who is online where, and pushes for users
//! connected to another node. Subjects, after the cluster's name (`--cluster-name`, so that
//! several clusters can share one NATS):
//!
//! - `<cluster>.node.<node>.push.<user>` / `<cluster>.node.<node>.private.<user>.<msg_id>`: a
//!   frame for one user of that node (the payload is the frame's JSON, as the client gets it);
//! - `<cluster>.node.<node>.call` (request/reply): a call request (answer, hang up) of a
//!   participant on another node, for the call's home node (see [`crate::calls`]);
//! - `<cluster>.all.square.<origin>.<except>`: a frame for every session in the cluster but one;
//! - `<cluster>.all.event.<origin>`: a [`ClusterEvent`] as JSON (logins, logouts, friendships,
//!   nicknames, `hello`/`snapshot` when a node starts, `alive` every quarter of the node timeout,
//!   `bye` when it stops).
//!
//! A node not heard from within the node timeout is taken for dead: its users go offline
//! everywhere. Nothing durable rides on the bus, so a lost bus message costs at most a late
//! push: private messages and receipts stay queued in the database until acked and come again at
//! the next login, as on one node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::calls::{CallError, Calls};
use crate::hub::{Bus, BusOut, ClusterEvent, Hub, Push, ANY_CONN};
use crate::store::UserId;

/// How long a forwarded call request waits for the call's home node.
const CALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A call request forwarded to the call's home node.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CallRequest {
    /// The call.
    pub call_id: String,
    /// Who asks (a participant on the forwarding node).
    pub user_id: UserId,
    /// What they ask.
    pub op: CallOp,
}

/// What a forwarded call request asks.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CallOp {
    /// `call_answer`.
    Answer {
        /// Accept or decline.
        accept: bool,
    },
    /// `call_hangup`.
    Hangup,
}

/// What request handlers need of the cluster: forwarding call requests to their home node.
#[derive(Debug, Clone)]
pub struct Link {
    client: async_nats::Client,
    cluster: String,
}

impl Link {
    /// Asks `home` to apply `request`; its verdict comes back. A home node that is gone (or
    /// does not answer in time) means the call is gone.
    pub async fn call_request(&self, home: &str, request: &CallRequest) -> Result<(), CallError> {
        let payload = serde_json::to_vec(request).expect("call requests serialise to JSON");
        let subject = format!("{}.node.{home}.call", self.cluster);
        let asked = tokio::time::timeout(
            CALL_REQUEST_TIMEOUT,
            self.client.request(subject, payload.into()),
        )
        .await;
        match asked {
            Ok(Ok(reply)) => serde_json::from_slice::<Result<(), CallError>>(&reply.payload)
                .unwrap_or(Err(CallError::NotFound)),
            Ok(Err(e)) => {
                tracing::debug!(%home, error = %e, "call request found no home node");
                Err(CallError::NotFound)
            }
            Err(_) => Err(CallError::NotFound),
        }
    }
}

/// Cluster bus errors.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// A subscription failed.
    #[error("cannot subscribe on NATS: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
}

/// A node's membership in a cluster: the task that publishes and receives its bus traffic.
pub struct Member {
    client: async_nats::Client,
    /// First token of every subject.
    cluster: String,
    node: String,
    hub: Arc<Hub>,
    calls: Arc<Calls>,
    out: mpsc::UnboundedReceiver<BusOut>,
    node_timeout: Duration,
    direct: async_nats::Subscriber,
    all: async_nats::Subscriber,
}

impl Member {
    /// Connects to NATS at `url`, subscribes, and connects `hub` to the bus. Run the returned
    /// member with [`Member::run`].
    pub async fn join(
        url: &str,
        cluster: &str,
        hub: Arc<Hub>,
        calls: Arc<Calls>,
        node_timeout: Duration,
    ) -> Result<Self, ClusterError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|source| ClusterError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let node = uuid::Uuid::new_v4().simple().to_string();
        let direct = client.subscribe(format!("{cluster}.node.{node}.>")).await?;
        let all = client.subscribe(format!("{cluster}.all.>")).await?;
        let (tx, out) = mpsc::unbounded_channel();
        hub.set_bus(Bus {
            node: node.clone(),
            out: tx,
        });
        calls.set_home(&node, hub.clone());
        tracing::info!(%node, %url, %cluster, "joined the cluster bus");
        Ok(Self {
            client,
            cluster: cluster.to_owned(),
            node,
            hub,
            calls,
            out,
            node_timeout,
            direct,
            all,
        })
    }

    /// The handle request handlers use.
    pub fn link(&self) -> Link {
        Link {
            client: self.client.clone(),
            cluster: self.cluster.clone(),
        }
    }

    /// Publishes and receives until `stop`, then says goodbye.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(self.node_timeout / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.event(&ClusterEvent::Hello).await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(out) = self.out.recv() => self.publish(out).await,
                Some(msg) = self.direct.next() => {
                    if msg.subject.ends_with(".call") {
                        self.call_request(msg.reply, &msg.payload).await;
                    } else {
                        self.direct_message(&msg.subject, msg.payload);
                    }
                }
                Some(msg) = self.all.next() => self.cluster_message(&msg.subject, msg.payload, &mut seen).await,
                _ = tick.tick() => {
                    self.event(&ClusterEvent::Alive).await;
                    let now = Instant::now();
                    let timeout = self.node_timeout;
                    let dead: Vec<String> = seen
                        .iter()
                        .filter(|(_, at)| now.duration_since(**at) > timeout)
                        .map(|(node, _)| node.clone())
                        .collect();
                    for node in dead {
                        tracing::warn!(%node, "node silent past the node timeout; its users are offline");
                        seen.remove(&node);
                        self.forget(&node);
                    }
                }
            }
        }
        // What the sessions' shutdown queued (their offline events) goes out before the bye.
        while let Ok(out) = self.out.try_recv() {
            self.publish(out).await;
        }
        self.event(&ClusterEvent::Bye).await;
        if let Err(e) = self.client.flush().await {
            tracing::warn!(error = %e, "could not flush the cluster bus");
        }
    }

    async fn publish(&self, out: BusOut) {
        let (subject, payload) = match out {
            BusOut::Push {
                node,
                user_id,
                push: Push::Frame(frame),
            } => (
                format!("{}.node.{node}.push.{user_id}", self.cluster),
                frame,
            ),
            BusOut::Push {
                node,
                user_id,
                push: Push::Private { msg_id, frame },
            } => (
                format!("{}.node.{node}.private.{user_id}.{msg_id}", self.cluster),
                frame,
            ),
            BusOut::Broadcast { except, frame } => (
                format!("{}.all.square.{}.{except}", self.cluster, self.node),
                frame,
            ),
            BusOut::Event(event) => return self.event(&event).await,
        };
        if let Err(e) = self.client.publish(subject, payload).await {
            tracing::warn!(error = %e, "cluster bus publish failed");
        }
    }

    async fn event(&self, event: &ClusterEvent) {
        let payload = serde_json::to_vec(event).expect("cluster events serialise to JSON");
        let subject = format!("{}.all.event.{}", self.cluster, self.node);
        if let Err(e) = self.client.publish(subject, payload.into()).await {
            tracing::warn!(error = %e, "cluster bus publish failed");
        }
    }

    /// A call request forwarded from another node: applied here, the verdict sent back.
    async fn call_request(&self, reply: Option<async_nats::Subject>, payload: &[u8]) {
        let verdict: Result<(), CallError> = match serde_json::from_slice::<CallRequest>(payload) {
            Ok(req) => match req.op {
                CallOp::Answer { accept } => {
                    self.calls
                        .answer(&req.call_id, req.user_id, ANY_CONN, accept)
                }
                CallOp::Hangup => self.calls.hangup(&req.call_id, req.user_id, ANY_CONN),
            },
            Err(e) => {
                tracing::warn!(error = %e, "unreadable call request");
                Err(CallError::NotFound)
            }
        };
        if let Some(reply) = reply {
            let body = serde_json::to_vec(&verdict).expect("verdicts serialise to JSON");
            if let Err(e) = self.client.publish(reply, body.into()).await {
                tracing::warn!(error = %e, "could not answer a call request");
            }
        }
    }

    fn direct_message(&self, subject: &str, payload: Bytes) {
        let parts: Vec<&str> = subject.split('.').collect();
        let push = match parts.as_slice() {
            [_, _, _, "push", user] => user.parse().ok().map(|u| (u, Push::Frame(payload))),
            [_, _, _, "private", user, msg_id] => match (user.parse(), msg_id.parse()) {
                (Ok(u), Ok(msg_id)) => Some((
                    u,
                    Push::Private {
                        msg_id,
                        frame: payload,
                    },
                )),
                _ => None,
            },
            _ => None,
        };
        match push {
            Some((user_id, push)) => self.hub.push_local(user_id, push),
            None => tracing::warn!(%subject, "unknown cluster bus subject"),
        }
    }

    async fn cluster_message(
        &self,
        subject: &str,
        payload: Bytes,
        seen: &mut HashMap<String, Instant>,
    ) {
        let parts: Vec<&str> = subject.split('.').collect();
        match parts.as_slice() {
            [_, _, "square", origin, except] if *origin != self.node => {
                if let Ok(except) = except.parse() {
                    self.hub.broadcast_local(except, payload);
                }
            }
            [_, _, "event", origin] if *origin != self.node => {
                let event: ClusterEvent = match serde_json::from_slice(&payload) {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!(%origin, error = %e, "unreadable cluster event");
                        return;
                    }
                };
                let known = seen.insert((*origin).to_owned(), Instant::now()).is_some();
                let greets = matches!(
                    event,
                    ClusterEvent::Hello | ClusterEvent::Snapshot { .. } | ClusterEvent::Bye
                );
                if !known && !greets {
                    // A node this one missed (or took for dead) that is back: everyone tells
                    // everyone who is online.
                    self.event(&ClusterEvent::Hello).await;
                }
                match &event {
                    ClusterEvent::Hello => self.snapshot().await,
                    ClusterEvent::Offline { user_id } => self.calls.leave(*user_id, ANY_CONN),
                    ClusterEvent::InCall { user_id, in_call } => {
                        self.calls.set_busy_elsewhere(origin, *user_id, *in_call);
                    }
                    ClusterEvent::Bye => {
                        seen.remove(*origin);
                        self.forget(origin);
                    }
                    _ => {}
                }
                self.hub.apply_remote(origin, event);
            }
            _ => {}
        }
    }

    /// A node left or died: its users are offline and its calls over, as far as this node knows.
    fn forget(&self, node: &str) {
        self.hub.node_gone(node);
        self.calls.node_gone(node);
    }

    async fn snapshot(&self) {
        let users = self.hub.local_users();
        self.event(&ClusterEvent::Snapshot { users }).await;
    }
}
