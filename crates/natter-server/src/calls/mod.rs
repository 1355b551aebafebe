//! Voice calls (PROTOCOL.md §5.8): who is calling whom, and the UDP relay that carries their
//! audio when the peers cannot reach each other.
//!
//! [`registry`] is the state machine and the relay's forwarding rule, pure and unit tested.
//! [`Calls`] shares it between the request handlers (`handlers/calls.rs`), the end of a session
//! (`handlers::auth::end_session`), the ring timer ([`ring_timer`]) and the relay loop
//! ([`relay`]), and delivers the pushes it produces while still holding its lock, so every
//! participant sees a call's events in the order they happened (never a `call_peer` after its
//! `call_ended`). Calls live in memory only: a restart drops every connection anyway.
//!
//! In a cluster a call lives on the caller's node (its *home*, named in the call id) and uses
//! that node's relay; a callee on another node is a member reached through the bus
//! ([`SessionLink`] with [`crate::hub::ANY_CONN`]), whose answer and hang-up that node forwards
//! here (`cluster.rs`).

pub mod registry;
pub mod relay;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use natter_proto::CallEndReason;
use rand::RngCore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::hub::{ClusterEvent, Hub, SessionLink};
use crate::store::UserId;
pub use registry::{CallError, Invited, Member, Token, Verdict};
use registry::{Effects, Registry};

/// Every call in progress, and how to reach the relay.
#[derive(Debug)]
pub struct Calls {
    registry: Mutex<Registry<SessionLink>>,
    /// Wakes the ring timer when a call starts ringing (its deadline may be the earliest).
    ringing: tokio::sync::Notify,
    ring_timeout: Duration,
    relay_host: Option<String>,
    relay_port: u16,
    /// This node's id in a cluster (call ids name their home node), and the hub that tells the
    /// other nodes who is in a call here.
    home: OnceLock<(String, Arc<Hub>)>,
    /// Users in calls homed on other nodes, by node: a call to them is answered `busy`.
    busy_elsewhere: Mutex<HashMap<UserId, String>>,
}

impl Calls {
    /// No calls yet; `relay_port` is the port the relay is actually bound to.
    pub fn new(config: &Config, relay_port: u16) -> Self {
        Self {
            registry: Mutex::new(Registry::new(config.limits.enabled)),
            ringing: tokio::sync::Notify::new(),
            ring_timeout: config.ring_timeout,
            relay_host: config.relay_host.clone(),
            relay_port,
            home: OnceLock::new(),
            busy_elsewhere: Mutex::new(HashMap::new()),
        }
    }

    /// Makes this node the home of the calls it starts (once, when it joins a cluster).
    pub fn set_home(&self, node: &str, hub: Arc<Hub>) {
        let _ = self.home.set((node.to_owned(), hub));
    }

    /// What another node said: `user_id` is (or no longer is) in a call homed there.
    pub fn set_busy_elsewhere(&self, node: &str, user_id: UserId, in_call: bool) {
        let mut busy = self
            .busy_elsewhere
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if in_call {
            busy.insert(user_id, node.to_owned());
        } else if busy.get(&user_id).is_some_and(|n| n == node) {
            busy.remove(&user_id);
        }
    }

    /// A node died: its calls died with it.
    pub fn node_gone(&self, node: &str) {
        let mut busy = self
            .busy_elsewhere
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        busy.retain(|_, n| n != node);
    }

    fn is_busy_elsewhere(&self, user_id: UserId) -> bool {
        let busy = self
            .busy_elsewhere
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        busy.contains_key(&user_id)
    }

    /// Tells the other nodes that these users' calls here began or ended.
    fn announce(&self, users: impl IntoIterator<Item = UserId>, in_call: bool) {
        if let Some((_, hub)) = self.home.get() {
            for user_id in users {
                hub.publish_event(|| ClusterEvent::InCall { user_id, in_call });
            }
        }
    }

    /// Delivers a registry outcome's pushes; every `call_ended` frees its recipient.
    fn deliver(&self, effects: &Effects<SessionLink>) {
        deliver(effects);
        let ended = effects.iter().filter_map(|(link, message)| {
            matches!(message, natter_proto::ServerMessage::CallEnded { .. }).then_some(link.user_id)
        });
        self.announce(ended, false);
    }

    /// The other node a call lives on, from its id (`call-<node>-<random>`), when it is not
    /// this one: its requests go there.
    pub fn home_elsewhere<'a>(&self, call_id: &'a str) -> Option<&'a str> {
        let (me, _) = self.home.get()?;
        let (node, random) = call_id.strip_prefix("call-")?.split_once('-')?;
        (!node.is_empty() && !random.is_empty() && node != me).then_some(node)
    }

    /// A fresh call id and token; in a cluster the id names this node.
    fn fresh_ids(&self) -> (String, Token) {
        let (id, token) = fresh_ids();
        match self.home.get() {
            Some((node, _)) => (id.replacen("call-", &format!("call-{node}-"), 1), token),
            None => (id, token),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry<SessionLink>> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The relay's `host:port` for a client that reached the server at `local_ip`: the
    /// configured host, else that very address, which the client can evidently reach.
    pub fn relay_addr_for(&self, local_ip: IpAddr) -> String {
        match &self.relay_host {
            Some(host) => format!("{host}:{}", self.relay_port),
            // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; it can only use
            // the v4 form.
            None => SocketAddr::new(local_ip.to_canonical(), self.relay_port).to_string(),
        }
    }

    /// A participant as the registry keeps them.
    pub fn member(&self, link: SessionLink) -> Member<SessionLink> {
        Member {
            user_id: link.user_id,
            username: link.username.clone(),
            conn_id: link.conn_id,
            relay_addr: self.relay_addr_for(link.local_ip),
            link,
        }
    }

    /// Whether a user takes part in a call.
    pub fn is_in_call(&self, user_id: UserId) -> bool {
        self.lock().is_in_call(user_id)
    }

    /// `call_invite`; `callee` is `None` when they are offline. Rings the callee and returns
    /// the new call's id, with the reason it ended at once (busy, offline) if it did; the
    /// caller's own replies are the handler's to write.
    pub fn invite(
        &self,
        caller: SessionLink,
        callee: Option<SessionLink>,
    ) -> Result<(String, Option<CallEndReason>), CallError> {
        let caller = self.member(caller);
        let callee = callee.map(|link| {
            let remote = link.is_remote();
            let mut member = self.member(link);
            // A callee on another node uses this node's relay, as the caller reaches it (set
            // --relay-host on nodes whose clients come from elsewhere).
            if remote {
                member.relay_addr = caller.relay_addr.clone();
            }
            member
        });
        let now = Instant::now();
        let (caller_id, callee_id) = (caller.user_id, callee.as_ref().map(|c| c.user_id));
        let mut registry = self.lock();
        if callee_id.is_some_and(|id| !registry.is_in_call(id) && self.is_busy_elsewhere(id)) {
            // In a call on another node: busy, as if that call were here.
            if registry.is_in_call(caller_id) {
                return Err(CallError::AlreadyInCall);
            }
            return Ok((self.fresh_ids().0, Some(CallEndReason::Busy)));
        }
        let (call_id, invited) =
            registry.invite(caller, callee, now + self.ring_timeout, now, || {
                self.fresh_ids()
            })?;
        let ended_at_once = match invited {
            Invited::Ringing(effects) => {
                deliver(&effects);
                self.announce([caller_id].into_iter().chain(callee_id), true);
                self.ringing.notify_one();
                None
            }
            Invited::Busy => Some(CallEndReason::Busy),
            Invited::Offline => Some(CallEndReason::Offline),
        };
        Ok((call_id, ended_at_once))
    }

    /// `call_answer`.
    pub fn answer(
        &self,
        call_id: &str,
        user_id: UserId,
        conn_id: u64,
        accept: bool,
    ) -> Result<(), CallError> {
        let mut registry = self.lock();
        self.deliver(&registry.answer(call_id, user_id, conn_id, accept)?);
        Ok(())
    }

    /// `call_hangup`.
    pub fn hangup(&self, call_id: &str, user_id: UserId, conn_id: u64) -> Result<(), CallError> {
        let mut registry = self.lock();
        self.deliver(&registry.hangup(call_id, user_id, conn_id)?);
        Ok(())
    }

    /// A session ended: its call ends with `connection_lost`.
    pub fn leave(&self, user_id: UserId, conn_id: u64) {
        let mut registry = self.lock();
        self.deliver(&registry.leave(user_id, conn_id));
    }

    /// The relay's verdict on one datagram (see [`Registry::on_packet`]); garbage is dropped
    /// before the lock is taken.
    pub fn on_datagram(&self, datagram: &[u8], from: SocketAddr, now: Instant) -> Verdict {
        let Ok(packet) = natter_proto::media::Packet::decode(datagram) else {
            return Verdict::Drop;
        };
        let mut registry = self.lock();
        let (verdict, effects) = registry.on_packet(&packet, from, now);
        self.deliver(&effects);
        verdict
    }

    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut registry = self.lock();
        self.deliver(&registry.expire(now));
        registry.next_deadline()
    }
}

/// Pushes while the registry is locked: a push only queues a frame (never waits), and the lock
/// orders each call's events the same for both participants.
fn deliver(effects: &Effects<SessionLink>) {
    for (link, message) in effects {
        link.push(message);
    }
}

/// A call id and a media token nobody can guess: 128 random bits each.
fn fresh_ids() -> (String, Token) {
    let mut id = [0u8; 16];
    let mut token = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut token);
    (
        format!("call-{}", natter_proto::media::token_hex(&id)),
        token,
    )
}

/// Ends calls nobody answered within the ring timeout, sleeping until the earliest deadline.
pub async fn ring_timer(calls: Arc<Calls>, cancel: CancellationToken) {
    loop {
        let next = calls.expire(Instant::now());
        let sleep = async {
            match next {
                Some(deadline) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            // A permit is stored when nobody waits, so a call that starts ringing between
            // `expire` and here still wakes us.
            _ = calls.ringing.notified() => {}
            _ = sleep => {}
        }
    }
}
