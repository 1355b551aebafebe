//! The hub: who is online, and a channel into each online session's connection task.
//!
//! Pushes are serialised once and shared (`Bytes`) by every recipient. A session whose channel is
//! full is too slow to keep up; it is told to close (its private messages stay queued in the
//! database and come again at its next login), so one stuck client never stalls the others.
//!
//! Presence for everyone (`presence: "all"`) is N² pushes if each change goes to each session
//! (50 million for a ramp of 10,000 logins). Version 2 sessions get it batched instead: changes
//! collect in `pending` (the last state of each user wins) and [`Hub::flush_presence`], run every
//! presence interval, sends them all as one `presence` push, encoded once for every session.
//!
//! In a cluster (see [`crate::cluster`]) the hub also knows the users online on other nodes, as
//! those nodes announced them over the bus: routing, "is online" and online lists cover the
//! whole cluster, pushes for a user elsewhere go out through the bus, and presence changes are
//! those of the cluster (a user who moves from one node to another never blinks offline).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use natter_proto::{MsgId, OnlineUser, PresenceScope, ServerMessage};
use tokio::sync::mpsc;

use crate::store::UserId;

/// Capacity of each session's push channel.
pub const SESSION_QUEUE: usize = 4096;

/// What the hub hands a connection task.
#[derive(Debug, Clone)]
pub enum Push {
    /// A JSON frame to write as is.
    Frame(Bytes),
    /// A private chat message (the connection skips ids it already pushed).
    Private {
        /// Message id.
        msg_id: MsgId,
        /// Its `message` frame.
        frame: Bytes,
    },
}

/// Lets the hub end a session from outside its connection task, even when its queue is full.
#[derive(Debug, Default)]
pub struct SessionControl {
    reason: std::sync::OnceLock<&'static str>,
    token: tokio_util::sync::CancellationToken,
}

impl SessionControl {
    /// Ends the session with a reason for the `kicked` push (the first reason wins).
    pub fn kick(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// A future that resolves once the session is kicked (see [`Self::reason`]).
    pub fn kicked(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    /// Why the session was kicked.
    pub fn reason(&self) -> &'static str {
        self.reason.get().copied().unwrap_or("kicked")
    }
}

/// One online session.
#[derive(Debug)]
struct Entry {
    conn_id: u64,
    local_ip: IpAddr,
    user: OnlineUser,
    scope: PresenceScope,
    /// Gets presence in batches (§5.3, version 2 with `presence: "all"`).
    batched: bool,
    friends: HashSet<UserId>,
    tx: mpsc::Sender<Push>,
    control: std::sync::Arc<SessionControl>,
}

/// A session being registered.
#[derive(Debug)]
pub struct Attach {
    /// User id.
    pub user_id: UserId,
    /// Connection id.
    pub conn_id: u64,
    /// The server's address the connection came in on (calls name the relay by it).
    pub local_ip: IpAddr,
    /// Public identity.
    pub user: OnlineUser,
    /// Which presence pushes the connection wants.
    pub scope: PresenceScope,
    /// Presence in batches rather than one push per change.
    pub batched: bool,
    /// The user's friends' ids.
    pub friends: HashSet<UserId>,
    /// The connection's push channel.
    pub tx: mpsc::Sender<Push>,
    /// How the hub ends the session.
    pub control: std::sync::Arc<SessionControl>,
}

/// The registry of online sessions.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// The cluster bus, once this node joined one.
    bus: OnceLock<Bus>,
}

/// Where the hub hands what other nodes must hear; [`crate::cluster`] publishes it in order.
#[derive(Debug)]
pub struct Bus {
    /// This node's id.
    pub node: String,
    /// Outbound bus traffic.
    pub out: mpsc::UnboundedSender<BusOut>,
}

/// Something for the other nodes.
#[derive(Debug)]
pub enum BusOut {
    /// A push for a user on `node`.
    Push {
        /// The node the user is on.
        node: String,
        /// The user.
        user_id: UserId,
        /// What to push.
        push: Push,
    },
    /// A frame for every session in the cluster but `except`'s (the square).
    Broadcast {
        /// The sender, who does not get it back.
        except: UserId,
        /// The frame.
        frame: Bytes,
    },
    /// A change every node applies to its view.
    Event(ClusterEvent),
}

/// A change of this node's sessions that every other node applies to its view.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterEvent {
    /// A node started: every node answers with a snapshot.
    Hello,
    /// A node is alive (sent periodically).
    Alive,
    /// A node is shutting down: its users are offline now.
    Bye,
    /// Every user online on the sending node (answer to `Hello`).
    Snapshot {
        /// The users.
        users: Vec<(UserId, OnlineUser)>,
    },
    /// A user logged in on the sending node; other nodes end that user's sessions.
    Online {
        /// The user.
        user_id: UserId,
        /// Public identity.
        user: OnlineUser,
    },
    /// A user's session on the sending node ended (calls homed elsewhere that reach that user
    /// through the bus end with `connection_lost`).
    Offline {
        /// The user.
        user_id: UserId,
    },
    /// A user's call (homed on the sending node) started ringing, or ended: other nodes answer
    /// `busy` to calls for them meanwhile.
    InCall {
        /// The user.
        user_id: UserId,
        /// In a call now.
        in_call: bool,
    },
    /// Two users became friends or stopped being friends.
    Friendship {
        /// One user.
        a: UserId,
        /// The other.
        b: UserId,
        /// The new state.
        are_friends: bool,
    },
    /// A user changed their nickname.
    Nickname {
        /// The user.
        user_id: UserId,
        /// The new nickname.
        nickname: String,
    },
}

/// A user online on other nodes.
#[derive(Debug)]
struct RemoteUser {
    user: OnlineUser,
    /// The nodes with a session of this user (two while a login moves between nodes).
    nodes: HashSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<UserId, Entry>,
    /// Username key → id of online users, so routing to them needs no database read.
    by_name: HashMap<String, UserId>,
    /// Presence changes not yet sent to batched sessions: username key → the user now, or
    /// `None` (with the display name) once offline.
    pending: HashMap<String, PresenceChange>,
    /// Users online on other nodes of the cluster.
    remote: HashMap<UserId, RemoteUser>,
    /// Username key → id of `remote` users.
    remote_by_name: HashMap<String, UserId>,
}

impl Inner {
    fn online_anywhere(&self, user_id: UserId) -> bool {
        self.sessions.contains_key(&user_id) || self.remote.contains_key(&user_id)
    }
}

#[derive(Debug)]
enum PresenceChange {
    Online(OnlineUser),
    Offline(String),
}

impl std::ops::Deref for Inner {
    type Target = HashMap<UserId, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.sessions
    }
}

fn encode_payload(message: &ServerMessage) -> Bytes {
    natter_proto::encode(message).payload().clone()
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of an online user by username (any case), on any node.
    pub fn online_id(&self, username: &str) -> Option<UserId> {
        let key = natter_proto::validate::username_key(username);
        let inner = self.lock();
        inner
            .by_name
            .get(&key)
            .or_else(|| inner.remote_by_name.get(&key))
            .copied()
    }

    /// Connects the hub to a cluster bus (once).
    pub fn set_bus(&self, bus: Bus) {
        let _ = self.bus.set(bus);
    }

    /// Tells the other nodes of a cluster (nothing without one).
    pub fn publish_event(&self, event: impl FnOnce() -> ClusterEvent) {
        self.publish(|| BusOut::Event(event()));
    }

    /// Hands `out` to the bus; a node alone never even builds it.
    fn publish(&self, out: impl FnOnce() -> BusOut) {
        if let Some(bus) = self.bus.get() {
            // The bus task outlives every session; a send fails only during shutdown.
            let _ = bus.out.send(out());
        }
    }

    /// Registers a session. Returns true when the user was already online on another connection,
    /// which is kicked; presence does not change then.
    pub fn attach(&self, attach: Attach) -> bool {
        let entry = Entry {
            conn_id: attach.conn_id,
            local_ip: attach.local_ip,
            user: attach.user.clone(),
            scope: attach.scope,
            batched: attach.batched,
            friends: attach.friends,
            tx: attach.tx,
            control: attach.control,
        };
        let (previous, elsewhere) = {
            let mut inner = self.lock();
            let key = natter_proto::validate::username_key(&attach.user.username);
            inner.by_name.insert(key, attach.user_id);
            let elsewhere = inner.remote.contains_key(&attach.user_id);
            (inner.sessions.insert(attach.user_id, entry), elsewhere)
        };
        // Other nodes end their sessions of this user, as this node does below.
        self.publish(|| {
            BusOut::Event(ClusterEvent::Online {
                user_id: attach.user_id,
                user: attach.user.clone(),
            })
        });
        match previous {
            Some(old) if old.conn_id != attach.conn_id => {
                old.control.kick("logged_in_elsewhere");
                true
            }
            Some(_) => true,
            None if elsewhere => true,
            None => {
                self.announce(
                    attach.user_id,
                    &ServerMessage::UserOnline { user: attach.user },
                );
                false
            }
        }
    }

    /// Unregisters a session if it is still the user's current one; announces the logout then.
    pub fn detach(&self, user_id: UserId, conn_id: u64) -> bool {
        let (removed, elsewhere) = {
            let mut inner = self.lock();
            let removed = match inner.sessions.get(&user_id) {
                Some(e) if e.conn_id == conn_id => {
                    let key = natter_proto::validate::username_key(&e.user.username);
                    inner.by_name.remove(&key);
                    inner.sessions.remove(&user_id)
                }
                _ => None,
            };
            (removed, inner.remote.contains_key(&user_id))
        };
        if removed.is_some() {
            self.publish(|| BusOut::Event(ClusterEvent::Offline { user_id }));
        }
        match removed {
            // Still online on another node: nothing changes for anyone else.
            Some(_) if elsewhere => true,
            Some(entry) => {
                self.announce_with(
                    user_id,
                    &entry.friends,
                    &ServerMessage::UserOffline {
                        username: entry.user.username,
                    },
                );
                true
            }
            None => false,
        }
    }

    /// Sends a presence change of `user_id` to everyone who wants it now, and queues it for the
    /// next batch.
    fn announce(&self, user_id: UserId, message: &ServerMessage) {
        let friends = self
            .lock()
            .get(&user_id)
            .map(|e| e.friends.clone())
            .unwrap_or_default();
        self.announce_with(user_id, &friends, message);
    }

    fn announce_with(&self, user_id: UserId, friends: &HashSet<UserId>, message: &ServerMessage) {
        let change = match message {
            ServerMessage::UserOnline { user } => PresenceChange::Online(user.clone()),
            ServerMessage::UserOffline { username } => PresenceChange::Offline(username.clone()),
            _ => return,
        };
        let key = match &change {
            PresenceChange::Online(user) => natter_proto::validate::username_key(&user.username),
            PresenceChange::Offline(name) => natter_proto::validate::username_key(name),
        };
        let frame = encode_payload(message);
        let mut inner = self.lock();
        for (id, entry) in inner.sessions.iter() {
            // Friendship is symmetric: the recipient's own set answers for users of other nodes,
            // whose friend sets this node does not hold.
            let friend = friends.contains(id) || entry.friends.contains(&user_id);
            if *id == user_id || (entry.batched && !friend) {
                continue;
            }
            if entry.scope == PresenceScope::All || friend {
                deliver(entry, Push::Frame(frame.clone()));
            }
        }
        inner.pending.insert(key, change);
    }

    /// Sends the presence changes collected since the last call, as one `presence` push, to
    /// every batched session. Friends also had them at once; a batch may name its recipient.
    pub fn flush_presence(&self) {
        let mut inner = self.lock();
        if inner.pending.is_empty() {
            return;
        }
        // A batch of one change is not sent back to the user it is about: a lone login should
        // not echo to its own session (bigger batches are shared as they are).
        let lone = (inner.pending.len() == 1)
            .then(|| inner.pending.keys().next().cloned())
            .flatten()
            .and_then(|key| inner.by_name.get(&key).copied());
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for (_, change) in inner.pending.drain() {
            match change {
                PresenceChange::Online(user) => online.push(user),
                PresenceChange::Offline(name) => offline.push(name),
            }
        }
        let frame = encode_payload(&ServerMessage::Presence { online, offline });
        for (id, entry) in inner.sessions.iter() {
            if entry.batched && Some(*id) != lone {
                deliver(entry, Push::Frame(frame.clone()));
            }
        }
    }

    /// An online user's public identity.
    pub fn online_user(&self, user_id: UserId) -> Option<OnlineUser> {
        let inner = self.lock();
        match inner.sessions.get(&user_id) {
            Some(e) => Some(e.user.clone()),
            None => inner.remote.get(&user_id).map(|r| r.user.clone()),
        }
    }

    /// A handle on an online user's current session, for pushes bound to that connection; in a
    /// cluster, a session on another node is reached through the bus.
    pub fn link(&self, user_id: UserId) -> Option<SessionLink> {
        let inner = self.lock();
        if let Some(e) = inner.sessions.get(&user_id) {
            return Some(SessionLink {
                user_id,
                username: e.user.username.clone(),
                conn_id: e.conn_id,
                local_ip: e.local_ip,
                route: Route::Local {
                    tx: e.tx.clone(),
                    control: e.control.clone(),
                },
            });
        }
        let remote = inner.remote.get(&user_id)?;
        let bus = self.bus.get()?;
        Some(SessionLink {
            user_id,
            username: remote.user.username.clone(),
            conn_id: ANY_CONN,
            local_ip: IpAddr::from([0, 0, 0, 0]),
            route: Route::Remote {
                node: remote.nodes.iter().next()?.clone(),
                out: bus.out.clone(),
            },
        })
    }

    /// Whether a user is online, on any node.
    pub fn is_online(&self, user_id: UserId) -> bool {
        self.lock().online_anywhere(user_id)
    }

    /// Online users of the whole cluster; with `only` set, just those ids.
    pub fn online_users(&self, only: Option<&HashSet<UserId>>) -> Vec<OnlineUser> {
        let inner = self.lock();
        let wanted = |id: &UserId| only.is_none_or(|set| set.contains(id));
        let mut users: Vec<OnlineUser> = inner
            .sessions
            .iter()
            .filter(|(id, _)| wanted(id))
            .map(|(_, e)| e.user.clone())
            .chain(
                inner
                    .remote
                    .iter()
                    .filter(|(id, _)| wanted(id) && !inner.sessions.contains_key(id))
                    .map(|(_, r)| r.user.clone()),
            )
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    /// How many users are online in the whole cluster.
    pub fn online_count(&self) -> usize {
        let inner = self.lock();
        inner.sessions.len()
            + inner
                .remote
                .keys()
                .filter(|id| !inner.sessions.contains_key(id))
                .count()
    }

    /// Pushes a message to one user if online; false if they are not.
    pub fn push_to(&self, user_id: UserId, message: &ServerMessage) -> bool {
        self.push_push(user_id, Push::Frame(encode_payload(message)))
    }

    /// Pushes a prepared push to one user if online here, or through the bus to the node they
    /// are on; false if they are online nowhere.
    pub fn push_push(&self, user_id: UserId, push: Push) -> bool {
        let node = {
            let inner = self.lock();
            if let Some(entry) = inner.get(&user_id) {
                deliver(entry, push);
                return true;
            }
            match inner
                .remote
                .get(&user_id)
                .and_then(|r| r.nodes.iter().next())
            {
                Some(node) => node.clone(),
                None => return false,
            }
        };
        self.publish(|| BusOut::Push {
            node,
            user_id,
            push,
        });
        true
    }

    /// A push that came over the bus for a user of this node; dropped if they left meanwhile
    /// (private messages stay queued in the database and come again at the next login).
    pub fn push_local(&self, user_id: UserId, push: Push) {
        if let Some(entry) = self.lock().get(&user_id) {
            deliver(entry, push);
        }
    }

    /// Pushes a frame to every online user except `except`, in the whole cluster.
    pub fn broadcast(&self, except: UserId, frame: Bytes) {
        self.broadcast_local(except, frame.clone());
        self.publish(|| BusOut::Broadcast { except, frame });
    }

    /// Pushes a frame to every user of this node except `except`.
    pub fn broadcast_local(&self, except: UserId, frame: Bytes) {
        let sessions = self.lock();
        for (id, entry) in sessions.iter() {
            if *id != except {
                deliver(entry, Push::Frame(frame.clone()));
            }
        }
    }

    /// Keeps the hub's view of a friendship in step with the database, on every node.
    pub fn set_friendship(&self, a: UserId, b: UserId, are_friends: bool) {
        self.publish(|| BusOut::Event(ClusterEvent::Friendship { a, b, are_friends }));
        self.apply_friendship(a, b, are_friends);
    }

    fn apply_friendship(&self, a: UserId, b: UserId, are_friends: bool) {
        let mut inner = self.lock();
        for (x, y) in [(a, b), (b, a)] {
            if let Some(entry) = inner.sessions.get_mut(&x) {
                if are_friends {
                    entry.friends.insert(y);
                } else {
                    entry.friends.remove(&y);
                }
            }
        }
    }

    /// Updates a user's public identity (after a profile edit), on every node.
    pub fn set_nickname(&self, user_id: UserId, nickname: &str) {
        self.publish(|| {
            BusOut::Event(ClusterEvent::Nickname {
                user_id,
                nickname: nickname.to_owned(),
            })
        });
        let mut inner = self.lock();
        if let Some(entry) = inner.sessions.get_mut(&user_id) {
            entry.user.nickname = nickname.to_owned();
        }
    }

    /// The users of this node, for a new node's snapshot.
    pub fn local_users(&self) -> Vec<(UserId, OnlineUser)> {
        let inner = self.lock();
        inner
            .sessions
            .iter()
            .map(|(id, e)| (*id, e.user.clone()))
            .collect()
    }

    /// Applies what another node said about its sessions.
    pub fn apply_remote(&self, node: &str, event: ClusterEvent) {
        match event {
            // Node membership and calls are the cluster member's to handle.
            ClusterEvent::Hello
            | ClusterEvent::Alive
            | ClusterEvent::Bye
            | ClusterEvent::InCall { .. } => {}
            ClusterEvent::Snapshot { users } => {
                let listed: HashSet<UserId> = users.iter().map(|(id, _)| *id).collect();
                let stale: Vec<UserId> = {
                    let inner = self.lock();
                    inner
                        .remote
                        .iter()
                        .filter(|(id, r)| r.nodes.contains(node) && !listed.contains(id))
                        .map(|(id, _)| *id)
                        .collect()
                };
                for user_id in stale {
                    self.remote_offline(node, user_id);
                }
                for (user_id, user) in users {
                    self.remote_online(node, user_id, user, false);
                }
            }
            ClusterEvent::Online { user_id, user } => self.remote_online(node, user_id, user, true),
            ClusterEvent::Offline { user_id } => self.remote_offline(node, user_id),
            ClusterEvent::Friendship { a, b, are_friends } => {
                self.apply_friendship(a, b, are_friends)
            }
            ClusterEvent::Nickname { user_id, nickname } => {
                let mut inner = self.lock();
                if let Some(r) = inner.remote.get_mut(&user_id) {
                    r.user.nickname = nickname;
                }
            }
        }
    }

    /// A user is online on `node`. With `login` (not a snapshot) this node's own session of that
    /// user ends: the newer login wins, across nodes as on one.
    fn remote_online(&self, node: &str, user_id: UserId, user: OnlineUser, login: bool) {
        let (was_online, local) = {
            let mut inner = self.lock();
            let was_online = inner.online_anywhere(user_id);
            let key = natter_proto::validate::username_key(&user.username);
            inner.remote_by_name.insert(key, user_id);
            let remote = inner.remote.entry(user_id).or_insert_with(|| RemoteUser {
                user: user.clone(),
                nodes: HashSet::new(),
            });
            remote.user = user.clone();
            remote.nodes.insert(node.to_owned());
            let local = inner.sessions.get(&user_id).map(|e| e.control.clone());
            (was_online, local)
        };
        if let (true, Some(control)) = (login, local) {
            control.kick("logged_in_elsewhere");
        }
        if !was_online {
            self.announce_with(
                user_id,
                &HashSet::new(),
                &ServerMessage::UserOnline { user },
            );
        }
    }

    /// A user's session on `node` ended.
    fn remote_offline(&self, node: &str, user_id: UserId) {
        let gone = {
            let mut inner = self.lock();
            let Some(remote) = inner.remote.get_mut(&user_id) else {
                return;
            };
            remote.nodes.remove(node);
            if !remote.nodes.is_empty() {
                return;
            }
            let Some(remote) = inner.remote.remove(&user_id) else {
                return;
            };
            let key = natter_proto::validate::username_key(&remote.user.username);
            inner.remote_by_name.remove(&key);
            (!inner.sessions.contains_key(&user_id)).then_some(remote.user.username)
        };
        if let Some(username) = gone {
            self.announce_with(
                user_id,
                &HashSet::new(),
                &ServerMessage::UserOffline { username },
            );
        }
    }

    /// A node died or left: every user it had is offline (unless online elsewhere too).
    pub fn node_gone(&self, node: &str) {
        let users: Vec<UserId> = {
            let inner = self.lock();
            inner
                .remote
                .iter()
                .filter(|(_, r)| r.nodes.contains(node))
                .map(|(id, _)| *id)
                .collect()
        };
        for user_id in users {
            self.remote_offline(node, user_id);
        }
    }

    /// Tells every session to close (server shutdown).
    pub fn kick_all(&self, reason: &'static str) {
        for entry in self.lock().values() {
            entry.control.kick(reason);
        }
    }
}

fn deliver(entry: &Entry, push: Push) {
    deliver_to(&entry.tx, &entry.control, &entry.user.username, push);
}

fn deliver_to(tx: &mpsc::Sender<Push>, control: &SessionControl, username: &str, push: Push) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(push) {
        tracing::warn!(user = %username, "session lags behind its pushes; closing it");
        // Dropping the push is safe: private messages stay queued in the database until acked,
        // and a call whose session ends is ended for the other side.
        control.kick("lagging");
    }
}

/// The `conn_id` of a [`SessionLink`] to a session on another node: this node cannot name that
/// connection, so the session's own node vouches for it (real connection ids start at 1).
pub const ANY_CONN: u64 = 0;

/// One session's push channel, held by something that outlives a single request (a call): its
/// pushes go to that connection only, never to a later session of the same user. A link to a
/// session on another node of a cluster goes through the bus to that user's session there.
#[derive(Debug, Clone)]
pub struct SessionLink {
    /// User id.
    pub user_id: UserId,
    /// Username, display form.
    pub username: String,
    /// The connection the session lives on ([`ANY_CONN`] on another node).
    pub conn_id: u64,
    /// The server's address that connection came in on (unspecified on another node).
    pub local_ip: IpAddr,
    route: Route,
}

#[derive(Debug, Clone)]
enum Route {
    Local {
        tx: mpsc::Sender<Push>,
        control: Arc<SessionControl>,
    },
    Remote {
        node: String,
        out: mpsc::UnboundedSender<BusOut>,
    },
}

impl SessionLink {
    /// A link to a session from its connection's own parts.
    pub fn new(
        user_id: UserId,
        username: String,
        conn_id: u64,
        local_ip: IpAddr,
        tx: mpsc::Sender<Push>,
        control: Arc<SessionControl>,
    ) -> Self {
        Self {
            user_id,
            username,
            conn_id,
            local_ip,
            route: Route::Local { tx, control },
        }
    }

    /// Whether the session is on another node.
    pub fn is_remote(&self) -> bool {
        matches!(self.route, Route::Remote { .. })
    }

    /// Queues a push on that connection; a connection already gone is skipped silently.
    pub fn push(&self, message: &ServerMessage) {
        let push = Push::Frame(encode_payload(message));
        match &self.route {
            Route::Local { tx, control } => deliver_to(tx, control, &self.username, push),
            Route::Remote { node, out } => {
                let _ = out.send(BusOut::Push {
                    node: node.clone(),
                    user_id: self.user_id,
                    push,
                });
            }
        }
    }
}

/// Prepares a private-message push.
pub fn private_push(message: &natter_proto::ChatMessage) -> Push {
    Push::Private {
        msg_id: message.msg_id,
        frame: encode_payload(&ServerMessage::Message {
            message: message.clone(),
        }),
    }
}

/// Serialises a push once for many recipients.
pub fn frame_of(message: &ServerMessage) -> Bytes {
    encode_payload(message)
}
