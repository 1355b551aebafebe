//! The call state machine of PROTOCOL.md §5.8 and the relay's forwarding rule, with no I/O:
//! every operation takes the time and returns what to push to whom, so the whole life of a call
//! (and every way it can end) is tested here without sockets or sleeping.
//!
//! Invariants: a user is in at most one call; a call is reachable by its id and by its media
//! token; each call leaves the registry exactly once, and that removal is the one place that
//! produces `call_ended`, one per participant.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use natter_proto::media::{token_hex, Packet, Role};
use natter_proto::{CallEndReason, CallMedia, ServerMessage};

use crate::ratelimit::{Bucket, Rate};
use crate::store::UserId;

/// A call's media token: the 16 bytes every packet carries.
pub type Token = [u8; 16];

/// Pushes to make: the participant's link and the message.
pub type Effects<L> = Vec<(L, ServerMessage)>;

/// Binds a leg may have answered: clients send one every 200 ms until acked, then every 5 s, so
/// this is generous for them and still stops a bind loop from turning the relay into a pump.
const BIND_RATE: Rate = Rate {
    burst: 20.0,
    per_sec: 10.0,
};
/// Audio packets a leg may have forwarded: 20 ms frames are 50 a second; 10 ms frames and
/// bursts after a stall fit four times over. Beyond that the relay would only be a free pipe.
const AUDIO_RATE: Rate = Rate {
    burst: 400.0,
    per_sec: 200.0,
};

/// One participant as the registry knows them; `link` is where their pushes go.
#[derive(Debug, Clone)]
pub struct Member<L> {
    /// Who.
    pub user_id: UserId,
    /// Display name (the callee sees the caller's in `call_incoming`).
    pub username: String,
    /// The connection whose session placed or took the call; the call lives and dies with it.
    pub conn_id: u64,
    /// The relay's address as this participant reached the server.
    pub relay_addr: String,
    /// Where this participant's pushes go.
    pub link: L,
}

impl<L> Member<L> {
    fn is(&self, user_id: UserId, conn_id: u64) -> bool {
        // A member on another node (ANY_CONN) is whichever session its node speaks for.
        self.user_id == user_id && (self.conn_id == conn_id || self.conn_id == crate::hub::ANY_CONN)
    }
}

/// Why a request about a call is refused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CallError {
    /// The caller is already in a call (ringing or active).
    #[error("you are already in a call")]
    AlreadyInCall,
    /// No such call for this session, or not in the state the request needs.
    #[error("no such call")]
    NotFound,
    /// Only the callee answers.
    #[error("the caller cannot answer their own call")]
    CallerAnswering,
}

/// How an invitation went, besides getting a call id.
#[derive(Debug)]
pub enum Invited<L> {
    /// The callee's phone rings; these are the pushes.
    Ringing(Effects<L>),
    /// The callee is in another call: the call is over at once.
    Busy,
    /// The callee is offline: the call is over at once.
    Offline,
}

/// What the relay does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: not ours, not valid, not from the right place, or over its budget.
    Drop,
    /// Answer the sender with this `bind_ack`.
    Ack {
        /// The binder's own role, echoed.
        role: Role,
        /// The call's token.
        token: Token,
    },
    /// Send the datagram, unchanged, to this address.
    Forward(SocketAddr),
}

#[derive(Debug)]
enum Phase {
    Ringing { deadline: Instant },
    Active,
}

/// One side's media path as the relay sees it.
#[derive(Debug)]
struct Leg {
    /// Recorded from the first valid bind, then fixed for the call: a later bind from elsewhere
    /// is dropped, so someone who sniffed the token cannot take the stream over.
    addr: Option<SocketAddr>,
    binds: Bucket,
    audio: Bucket,
}

impl Leg {
    fn new(now: Instant) -> Self {
        Self {
            addr: None,
            binds: Bucket::new(BIND_RATE, now),
            audio: Bucket::new(AUDIO_RATE, now),
        }
    }
}

#[derive(Debug)]
struct Call<L> {
    id: String,
    caller: Member<L>,
    callee: Member<L>,
    phase: Phase,
    /// Indexed by [`slot`].
    legs: [Leg; 2],
    peers_told: bool,
}

impl<L> Call<L> {
    fn member(&self, role: Role) -> &Member<L> {
        match role {
            Role::Caller => &self.caller,
            Role::Callee => &self.callee,
        }
    }
}

fn slot(role: Role) -> usize {
    match role {
        Role::Caller => 0,
        Role::Callee => 1,
    }
}

/// Every call in progress.
#[derive(Debug)]
pub struct Registry<L> {
    calls: HashMap<Token, Call<L>>,
    by_id: HashMap<String, Token>,
    by_user: HashMap<UserId, Token>,
    /// Ringing calls by deadline, earliest first.
    deadlines: BTreeSet<(Instant, Token)>,
    rate_limited: bool,
}

impl<L: Clone> Registry<L> {
    /// An empty registry; `rate_limited` off lifts the relay's per-leg budgets (benchmarks).
    pub fn new(rate_limited: bool) -> Self {
        Self {
            calls: HashMap::new(),
            by_id: HashMap::new(),
            by_user: HashMap::new(),
            deadlines: BTreeSet::new(),
            rate_limited,
        }
    }

    /// Whether a user takes part in a call (ringing or active).
    pub fn is_in_call(&self, user_id: UserId) -> bool {
        self.by_user.contains_key(&user_id)
    }

    /// How many calls are in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is in progress.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// `call_invite`: gives the call an id, then it rings, or ends at once (busy, offline).
    /// `callee` is `None` when they are offline. `fresh` makes a random call id and token; it is
    /// asked again in the unlikely case that either is taken.
    pub fn invite(
        &mut self,
        caller: Member<L>,
        callee: Option<Member<L>>,
        ring_until: Instant,
        now: Instant,
        mut fresh: impl FnMut() -> (String, Token),
    ) -> Result<(String, Invited<L>), CallError> {
        if self.is_in_call(caller.user_id) {
            return Err(CallError::AlreadyInCall);
        }
        let (id, token) = loop {
            let (id, token) = fresh();
            if !self.by_id.contains_key(&id) && !self.calls.contains_key(&token) {
                break (id, token);
            }
        };
        let Some(callee) = callee else {
            tracing::info!(call = %id, caller = %caller.username, "call to an offline user");
            return Ok((id, Invited::Offline));
        };
        if self.is_in_call(callee.user_id) {
            tracing::info!(call = %id, caller = %caller.username, callee = %callee.username, "callee busy");
            return Ok((id, Invited::Busy));
        }
        let incoming = ServerMessage::CallIncoming {
            call_id: id.clone(),
            from: caller.username.clone(),
            media: CallMedia {
                peer_addr: None,
                relay_addr: callee.relay_addr.clone(),
                token: token_hex(&token),
            },
        };
        let effects = vec![(callee.link.clone(), incoming)];
        tracing::info!(call = %id, caller = %caller.username, callee = %callee.username, "ringing");
        self.by_id.insert(id.clone(), token);
        self.by_user.insert(caller.user_id, token);
        self.by_user.insert(callee.user_id, token);
        self.deadlines.insert((ring_until, token));
        self.calls.insert(
            token,
            Call {
                id: id.clone(),
                caller,
                callee,
                phase: Phase::Ringing {
                    deadline: ring_until,
                },
                legs: [Leg::new(now), Leg::new(now)],
                peers_told: false,
            },
        );
        Ok((id, Invited::Ringing(effects)))
    }

    /// `call_answer` by the callee's session: accept makes the call active (`call_accepted` to
    /// the caller), reject ends it.
    pub fn answer(
        &mut self,
        call_id: &str,
        user_id: UserId,
        conn_id: u64,
        accept: bool,
    ) -> Result<Effects<L>, CallError> {
        let token = *self.by_id.get(call_id).ok_or(CallError::NotFound)?;
        let call = self
            .calls
            .get_mut(&token)
            .expect("every call id names a call in the registry");
        if !call.callee.is(user_id, conn_id) {
            return Err(if call.caller.is(user_id, conn_id) {
                CallError::CallerAnswering
            } else {
                CallError::NotFound
            });
        }
        let Phase::Ringing { deadline } = call.phase else {
            return Err(CallError::NotFound);
        };
        if !accept {
            return Ok(self.end(token, CallEndReason::Rejected));
        }
        call.phase = Phase::Active;
        self.deadlines.remove(&(deadline, token));
        tracing::info!(call = %call.id, "accepted");
        let accepted = ServerMessage::CallAccepted {
            call_id: call.id.clone(),
            media: CallMedia {
                // The relay drops binds while a call rings, so this is known only in theory.
                peer_addr: call.legs[slot(Role::Callee)].addr.map(|a| a.to_string()),
                relay_addr: call.caller.relay_addr.clone(),
                token: token_hex(&token),
            },
        };
        Ok(vec![(call.caller.link.clone(), accepted)])
    }

    /// `call_hangup` by either participant's session, ringing or active.
    pub fn hangup(
        &mut self,
        call_id: &str,
        user_id: UserId,
        conn_id: u64,
    ) -> Result<Effects<L>, CallError> {
        let token = *self.by_id.get(call_id).ok_or(CallError::NotFound)?;
        let call = &self.calls[&token];
        if !call.caller.is(user_id, conn_id) && !call.callee.is(user_id, conn_id) {
            return Err(CallError::NotFound);
        }
        Ok(self.end(token, CallEndReason::Hangup))
    }

    /// The session of `user_id` on `conn_id` ended: its call, if any, ends with
    /// `connection_lost`. A call of the same user on another connection is not this session's.
    pub fn leave(&mut self, user_id: UserId, conn_id: u64) -> Effects<L> {
        let Some(&token) = self.by_user.get(&user_id) else {
            return Vec::new();
        };
        let call = &self.calls[&token];
        if call.caller.is(user_id, conn_id) || call.callee.is(user_id, conn_id) {
            self.end(token, CallEndReason::ConnectionLost)
        } else {
            Vec::new()
        }
    }

    /// Ends every call that has rung past its deadline.
    pub fn expire(&mut self, now: Instant) -> Effects<L> {
        let mut effects = Vec::new();
        while let Some(&(deadline, token)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            effects.extend(self.end(token, CallEndReason::NoAnswer));
        }
        effects
    }

    /// When the next ringing call runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// The relay's rule for one decoded datagram from `from` (PROTOCOL.md §5.8 "Media path").
    /// A bind to an active call records its leg's address (the first one only) and is acked;
    /// once both legs are known each side gets `call_peer` once. Audio goes to the other leg
    /// only from its own leg's recorded address. Everything else is dropped.
    pub fn on_packet(
        &mut self,
        packet: &Packet<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> (Verdict, Effects<L>) {
        let drop = (Verdict::Drop, Vec::new());
        let Some(call) = self.calls.get_mut(packet.token()) else {
            return drop;
        };
        if !matches!(call.phase, Phase::Active) {
            return drop;
        }
        let role = packet.role();
        let rate_limited = self.rate_limited;
        match *packet {
            Packet::Bind { token, .. } => {
                let leg = &mut call.legs[slot(role)];
                match leg.addr {
                    Some(addr) if addr != from => return drop,
                    Some(_) => {}
                    None => {
                        tracing::debug!(call = %call.id, ?role, %from, "media leg bound");
                        leg.addr = Some(from);
                    }
                }
                if rate_limited && leg.binds.take(now).is_err() {
                    return drop;
                }
                let mut effects = Vec::new();
                if let (false, [Some(caller), Some(callee)]) =
                    (call.peers_told, [call.legs[0].addr, call.legs[1].addr])
                {
                    call.peers_told = true;
                    let peer = |peer_addr: SocketAddr| ServerMessage::CallPeer {
                        call_id: call.id.clone(),
                        peer_addr: peer_addr.to_string(),
                    };
                    effects.push((call.caller.link.clone(), peer(callee)));
                    effects.push((call.callee.link.clone(), peer(caller)));
                }
                (Verdict::Ack { role, token }, effects)
            }
            Packet::Audio { .. } => {
                let [mine, theirs] = match role {
                    Role::Caller => [0, 1],
                    Role::Callee => [1, 0],
                };
                if call.legs[mine].addr != Some(from) {
                    return drop;
                }
                let Some(to) = call.legs[theirs].addr else {
                    return drop;
                };
                if rate_limited && call.legs[mine].audio.take(now).is_err() {
                    return drop;
                }
                (Verdict::Forward(to), Vec::new())
            }
            // Acks only ever travel from the relay or between peers, never to the relay.
            Packet::BindAck { .. } => drop,
        }
    }

    /// Removes a call and says `call_ended` to both participants: the only way out.
    fn end(&mut self, token: Token, reason: CallEndReason) -> Effects<L> {
        let Some(call) = self.calls.remove(&token) else {
            return Vec::new();
        };
        self.by_id.remove(&call.id);
        for user in [call.caller.user_id, call.callee.user_id] {
            if self.by_user.get(&user) == Some(&token) {
                self.by_user.remove(&user);
            }
        }
        if let Phase::Ringing { deadline } = call.phase {
            self.deadlines.remove(&(deadline, token));
        }
        tracing::info!(call = %call.id, ?reason, "call ended");
        [Role::Caller, Role::Callee]
            .into_iter()
            .map(|role| {
                (
                    call.member(role).link.clone(),
                    ServerMessage::CallEnded {
                        call_id: call.id.clone(),
                        reason,
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    type Reg = Registry<&'static str>;

    const ALICE: UserId = 1;
    const BOBBY: UserId = 2;
    const CAROL: UserId = 3;

    fn member(user_id: UserId, name: &'static str) -> Member<&'static str> {
        Member {
            user_id,
            username: name.into(),
            conn_id: user_id as u64 * 10,
            relay_addr: format!("relay-for-{name}:4005"),
            link: name,
        }
    }

    fn ids() -> impl FnMut() -> (String, Token) {
        let mut n = 0u8;
        move || {
            n += 1;
            (format!("call-{n}"), [n; 16])
        }
    }

    /// A fresh id and token per call across the tests, far from the small ones [`ids`] makes.
    fn unique() -> (String, Token) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1000);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut token = [0xab; 16];
        token[..4].copy_from_slice(&n.to_be_bytes());
        (format!("call-{n}"), token)
    }

    fn ring(reg: &mut Reg, caller: UserId, callee: UserId, now: Instant) -> (String, Token) {
        let name = |id| match id {
            ALICE => "alice",
            BOBBY => "bobby",
            _ => "carol",
        };
        let (id, outcome) = reg
            .invite(
                member(caller, name(caller)),
                Some(member(callee, name(callee))),
                now + Duration::from_secs(30),
                now,
                unique,
            )
            .expect("caller is free");
        assert!(matches!(outcome, Invited::Ringing(_)), "{outcome:?}");
        let token = reg.by_id[&id];
        (id, token)
    }

    fn ended(effects: &Effects<&'static str>) -> Vec<(&'static str, CallEndReason)> {
        effects
            .iter()
            .filter_map(|(to, m)| match m {
                ServerMessage::CallEnded { reason, .. } => Some((*to, *reason)),
                _ => None,
            })
            .collect()
    }

    fn bind(role: Role, token: Token) -> Packet<'static> {
        Packet::Bind { role, token }
    }

    fn audio(role: Role, token: Token) -> Packet<'static> {
        Packet::Audio {
            role,
            token,
            stream: 7,
            seq: 1,
            ts: 960,
            payload: b"opus",
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn invite_rings_the_callee_with_the_token_and_their_relay_address() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        let (id, outcome) = reg
            .invite(
                member(ALICE, "alice"),
                Some(member(BOBBY, "bobby")),
                now,
                now,
                ids(),
            )
            .expect("free");
        let Invited::Ringing(effects) = outcome else {
            panic!("expected ringing, got {outcome:?}");
        };
        assert_eq!(effects.len(), 1);
        let (to, message) = &effects[0];
        assert_eq!(*to, "bobby");
        assert_eq!(
            message,
            &ServerMessage::CallIncoming {
                call_id: id,
                from: "alice".into(),
                media: CallMedia {
                    peer_addr: None,
                    relay_addr: "relay-for-bobby:4005".into(),
                    token: token_hex(&[1; 16]),
                },
            }
        );
        assert!(reg.is_in_call(ALICE) && reg.is_in_call(BOBBY));
    }

    #[test]
    fn offline_busy_and_a_busy_caller() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        let (_, offline) = reg
            .invite(member(ALICE, "alice"), None, now, now, ids())
            .expect("free");
        assert!(matches!(offline, Invited::Offline));
        assert!(
            !reg.is_in_call(ALICE),
            "an offline call leaves nothing behind"
        );
        ring(&mut reg, ALICE, BOBBY, now);
        let (_, busy) = reg
            .invite(
                member(CAROL, "carol"),
                Some(member(BOBBY, "bobby")),
                now,
                now,
                || ("call-x".into(), [9; 16]),
            )
            .expect("carol is free");
        assert!(matches!(busy, Invited::Busy));
        assert!(!reg.is_in_call(CAROL));
        let again = reg.invite(
            member(BOBBY, "bobby"),
            Some(member(CAROL, "carol")),
            now,
            now,
            || ("call-y".into(), [8; 16]),
        );
        assert_eq!(
            again.err(),
            Some(CallError::AlreadyInCall),
            "ringing counts as a call"
        );
    }

    #[test]
    fn a_taken_id_or_token_is_drawn_again() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        reg.invite(
            member(ALICE, "alice"),
            Some(member(BOBBY, "bobby")),
            now,
            now,
            ids(),
        )
        .expect("free");
        let mut draws = vec![
            ("call-2".to_owned(), [2; 16]),
            ("call-1".to_owned(), [1; 16]),
        ];
        let (id, _) = reg
            .invite(
                member(CAROL, "carol"),
                Some(member(4, "dave")),
                now,
                now,
                || draws.pop().expect("a second draw"),
            )
            .expect("free");
        assert_eq!(id, "call-2");
    }

    #[test]
    fn accept_then_hangup_ends_once_for_both() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        let (id, _) = ring(&mut reg, ALICE, BOBBY, now);
        assert_eq!(
            reg.answer(&id, ALICE, 10, true).err(),
            Some(CallError::CallerAnswering)
        );
        assert_eq!(
            reg.answer(&id, CAROL, 30, true).err(),
            Some(CallError::NotFound)
        );
        assert_eq!(
            reg.answer(&id, BOBBY, 99, true).err(),
            Some(CallError::NotFound),
            "another connection of the callee is not the one that rang"
        );
        let effects = reg.answer(&id, BOBBY, 20, true).expect("callee answers");
        assert!(matches!(
            &effects[..],
            [("alice", ServerMessage::CallAccepted { media, .. })]
                if media.relay_addr == "relay-for-alice:4005" && media.peer_addr.is_none()
        ));
        assert_eq!(
            reg.next_deadline(),
            None,
            "an active call does not time out"
        );
        assert_eq!(
            reg.answer(&id, BOBBY, 20, true).err(),
            Some(CallError::NotFound),
            "only a ringing call can be answered"
        );
        assert_eq!(reg.hangup(&id, CAROL, 30).err(), Some(CallError::NotFound));
        let effects = reg.hangup(&id, BOBBY, 20).expect("participant");
        assert_eq!(
            ended(&effects),
            [
                ("alice", CallEndReason::Hangup),
                ("bobby", CallEndReason::Hangup)
            ]
        );
        assert!(reg.is_empty() && !reg.is_in_call(ALICE) && !reg.is_in_call(BOBBY));
        assert_eq!(reg.hangup(&id, BOBBY, 20).err(), Some(CallError::NotFound));
        assert!(reg.leave(ALICE, 10).is_empty(), "nothing ends twice");
    }

    #[test]
    fn reject_cancel_timeout_and_lost_connections() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        let (id, _) = ring(&mut reg, ALICE, BOBBY, now);
        let effects = reg.answer(&id, BOBBY, 20, false).expect("reject");
        assert_eq!(
            ended(&effects),
            [
                ("alice", CallEndReason::Rejected),
                ("bobby", CallEndReason::Rejected)
            ]
        );
        assert_eq!(reg.next_deadline(), None);

        let (id, _) = ring(&mut reg, ALICE, BOBBY, now);
        let effects = reg.hangup(&id, ALICE, 10).expect("caller cancels");
        assert_eq!(ended(&effects)[0].1, CallEndReason::Hangup);

        ring(&mut reg, ALICE, BOBBY, now);
        let deadline = reg.next_deadline().expect("ringing");
        assert!(reg.expire(deadline - Duration::from_millis(1)).is_empty());
        assert_eq!(
            ended(&reg.expire(deadline)),
            [
                ("alice", CallEndReason::NoAnswer),
                ("bobby", CallEndReason::NoAnswer)
            ]
        );

        let (id, _) = ring(&mut reg, ALICE, BOBBY, now);
        assert!(
            reg.leave(BOBBY, 99).is_empty(),
            "another session of bobby ending leaves this call alone"
        );
        reg.answer(&id, BOBBY, 20, true).expect("accept");
        assert_eq!(
            ended(&reg.leave(BOBBY, 20)),
            [
                ("alice", CallEndReason::ConnectionLost),
                ("bobby", CallEndReason::ConnectionLost)
            ]
        );
        assert!(reg.is_empty() && reg.by_user.is_empty() && reg.by_id.is_empty());
    }

    #[test]
    fn the_relay_binds_both_legs_tells_the_peers_once_and_forwards_only_from_them() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        let (id, token) = ring(&mut reg, ALICE, BOBBY, now);
        let (alice_udp, bobby_udp, thief) = (addr(5001), addr(5002), addr(5003));

        let (verdict, _) = reg.on_packet(&bind(Role::Caller, token), alice_udp, now);
        assert_eq!(verdict, Verdict::Drop, "a ringing call has no media path");
        reg.answer(&id, BOBBY, 20, true).expect("accept");

        let (verdict, effects) = reg.on_packet(&bind(Role::Caller, token), alice_udp, now);
        assert_eq!(
            verdict,
            Verdict::Ack {
                role: Role::Caller,
                token
            }
        );
        assert!(effects.is_empty(), "one leg known: nobody to introduce yet");
        let (verdict, _) = reg.on_packet(&audio(Role::Caller, token), alice_udp, now);
        assert_eq!(
            verdict,
            Verdict::Drop,
            "nowhere to forward before bobby binds"
        );

        let (verdict, effects) = reg.on_packet(&bind(Role::Callee, token), bobby_udp, now);
        assert!(matches!(
            verdict,
            Verdict::Ack {
                role: Role::Callee,
                ..
            }
        ));
        assert_eq!(
            effects,
            vec![
                (
                    "alice",
                    ServerMessage::CallPeer {
                        call_id: id.clone(),
                        peer_addr: bobby_udp.to_string()
                    }
                ),
                (
                    "bobby",
                    ServerMessage::CallPeer {
                        call_id: id.clone(),
                        peer_addr: alice_udp.to_string()
                    }
                ),
            ]
        );
        let (verdict, effects) = reg.on_packet(&bind(Role::Callee, token), bobby_udp, now);
        assert!(
            matches!(verdict, Verdict::Ack { .. }),
            "keep-alive binds are acked"
        );
        assert!(effects.is_empty(), "call_peer goes out once");

        assert_eq!(
            reg.on_packet(&audio(Role::Caller, token), alice_udp, now).0,
            Verdict::Forward(bobby_udp)
        );
        assert_eq!(
            reg.on_packet(&audio(Role::Callee, token), bobby_udp, now).0,
            Verdict::Forward(alice_udp)
        );
        for (packet, from, why) in [
            (audio(Role::Caller, token), thief, "audio from a stranger"),
            (
                audio(Role::Callee, token),
                alice_udp,
                "audio claiming the other role",
            ),
            (
                audio(Role::Caller, [0xee; 16]),
                alice_udp,
                "an unknown token",
            ),
            (bind(Role::Caller, token), thief, "a bind taking a leg over"),
            (
                Packet::BindAck {
                    role: Role::Caller,
                    token,
                },
                alice_udp,
                "an ack sent to the relay",
            ),
        ] {
            assert_eq!(reg.on_packet(&packet, from, now).0, Verdict::Drop, "{why}");
        }

        reg.hangup(&id, ALICE, 10).expect("hang up");
        assert_eq!(
            reg.on_packet(&audio(Role::Caller, token), alice_udp, now).0,
            Verdict::Drop,
            "an ended call is forgotten"
        );
        assert_eq!(
            reg.on_packet(&bind(Role::Caller, token), alice_udp, now).0,
            Verdict::Drop
        );
    }

    #[test]
    fn a_leg_flooding_the_relay_is_held_to_its_budget() {
        let now = Instant::now();
        let mut reg = Reg::new(true);
        let (id, token) = ring(&mut reg, ALICE, BOBBY, now);
        reg.answer(&id, BOBBY, 20, true).expect("accept");
        reg.on_packet(&bind(Role::Caller, token), addr(1), now);
        reg.on_packet(&bind(Role::Callee, token), addr(2), now);
        let forwarded = (0..1000)
            .filter(|_| {
                matches!(
                    reg.on_packet(&audio(Role::Caller, token), addr(1), now).0,
                    Verdict::Forward(_)
                )
            })
            .count();
        assert_eq!(forwarded, AUDIO_RATE.burst as usize);
        let later = now + Duration::from_secs(1);
        assert!(matches!(
            reg.on_packet(&audio(Role::Caller, token), addr(1), later).0,
            Verdict::Forward(_)
        ));
        let acked = (0..100)
            .filter(|_| {
                matches!(
                    reg.on_packet(&bind(Role::Callee, token), addr(2), now).0,
                    Verdict::Ack { .. }
                )
            })
            .count();
        assert!((10..100).contains(&acked), "{acked} binds acked");

        let mut free = Reg::new(false);
        let (id, token) = ring(&mut free, ALICE, BOBBY, now);
        free.answer(&id, BOBBY, 20, true).expect("accept");
        free.on_packet(&bind(Role::Caller, token), addr(1), now);
        free.on_packet(&bind(Role::Callee, token), addr(2), now);
        assert!((0..1000).all(|_| matches!(
            free.on_packet(&audio(Role::Caller, token), addr(1), now).0,
            Verdict::Forward(_)
        )));
    }
}
