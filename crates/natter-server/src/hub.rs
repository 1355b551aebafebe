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

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<UserId, Entry>,
    /// Username key → id of online users, so routing to them needs no database read.
    by_name: HashMap<String, UserId>,
    /// Presence changes not yet sent to batched sessions: username key → the user now, or
    /// `None` (with the display name) once offline.
    pending: HashMap<String, PresenceChange>,
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

    /// The id of an online user by username (any case).
    pub fn online_id(&self, username: &str) -> Option<UserId> {
        let key = natter_proto::validate::username_key(username);
        self.lock().by_name.get(&key).copied()
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
        let previous = {
            let mut inner = self.lock();
            let key = natter_proto::validate::username_key(&attach.user.username);
            inner.by_name.insert(key, attach.user_id);
            inner.sessions.insert(attach.user_id, entry)
        };
        match previous {
            Some(old) if old.conn_id != attach.conn_id => {
                old.control.kick("logged_in_elsewhere");
                true
            }
            Some(_) => true,
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
        let removed = {
            let mut inner = self.lock();
            match inner.sessions.get(&user_id) {
                Some(e) if e.conn_id == conn_id => {
                    let key = natter_proto::validate::username_key(&e.user.username);
                    inner.by_name.remove(&key);
                    inner.sessions.remove(&user_id)
                }
                _ => None,
            }
        };
        match removed {
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
            if *id == user_id || (entry.batched && !friends.contains(id)) {
                continue;
            }
            if entry.scope == PresenceScope::All || friends.contains(id) {
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
        self.lock().sessions.get(&user_id).map(|e| e.user.clone())
    }

    /// A handle on an online user's current session, for pushes bound to that connection.
    pub fn link(&self, user_id: UserId) -> Option<SessionLink> {
        self.lock().sessions.get(&user_id).map(|e| SessionLink {
            user_id,
            username: e.user.username.clone(),
            conn_id: e.conn_id,
            local_ip: e.local_ip,
            tx: e.tx.clone(),
            control: e.control.clone(),
        })
    }

    /// Whether a user is online.
    pub fn is_online(&self, user_id: UserId) -> bool {
        self.lock().contains_key(&user_id)
    }

    /// Online users; with `only` set, just those ids.
    pub fn online_users(&self, only: Option<&HashSet<UserId>>) -> Vec<OnlineUser> {
        let sessions = self.lock();
        let mut users: Vec<OnlineUser> = sessions
            .iter()
            .filter(|(id, _)| only.is_none_or(|set| set.contains(id)))
            .map(|(_, e)| e.user.clone())
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    /// How many users are online.
    pub fn online_count(&self) -> usize {
        self.lock().len()
    }

    /// Pushes a message to one user if online; false if they are not.
    pub fn push_to(&self, user_id: UserId, message: &ServerMessage) -> bool {
        self.push_push(user_id, Push::Frame(encode_payload(message)))
    }

    /// Pushes a prepared push to one user if online.
    pub fn push_push(&self, user_id: UserId, push: Push) -> bool {
        match self.lock().get(&user_id) {
            Some(entry) => {
                deliver(entry, push);
                true
            }
            None => false,
        }
    }

    /// Pushes a frame to every online user except `except`.
    pub fn broadcast(&self, except: UserId, frame: Bytes) {
        let sessions = self.lock();
        for (id, entry) in sessions.iter() {
            if *id != except {
                deliver(entry, Push::Frame(frame.clone()));
            }
        }
    }

    /// Keeps the hub's view of a friendship in step with the database.
    pub fn set_friendship(&self, a: UserId, b: UserId, are_friends: bool) {
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

    /// Updates a user's public identity (after a profile edit).
    pub fn set_nickname(&self, user_id: UserId, nickname: &str) {
        if let Some(entry) = self.lock().sessions.get_mut(&user_id) {
            entry.user.nickname = nickname.to_owned();
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

/// One session's push channel, held by something that outlives a single request (a call): its
/// pushes go to that connection only, never to a later session of the same user.
#[derive(Debug, Clone)]
pub struct SessionLink {
    /// User id.
    pub user_id: UserId,
    /// Username, display form.
    pub username: String,
    /// The connection the session lives on.
    pub conn_id: u64,
    /// The server's address that connection came in on.
    pub local_ip: IpAddr,
    tx: mpsc::Sender<Push>,
    control: Arc<SessionControl>,
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
            tx,
            control,
        }
    }

    /// Queues a push on that connection; a connection already gone is skipped silently.
    pub fn push(&self, message: &ServerMessage) {
        deliver_to(
            &self.tx,
            &self.control,
            &self.username,
            Push::Frame(encode_payload(message)),
        );
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
