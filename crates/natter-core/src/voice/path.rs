//! The media path of PROTOCOL.md §5.8 as pure logic: which datagrams to accept, where audio goes
//! (relay or direct), and when `bind`s are due. The session feeds it datagrams and the time and
//! does the sending; tests drive it without sockets.
//!
//! - To the relay: `bind` every 200 ms until its `bind_ack`, then every 5 s (NAT keep-alive).
//! - To the peer, once known: `bind` every 200 ms while no direct packet has come for 1 s (every
//!   1 s after 10 s of that, so a peer behind a strict NAT costs next to nothing), every 5 s while
//!   direct. A valid `bind` from the peer is answered with a `bind_ack`.
//! - Audio goes to the peer while a valid packet came straight from it within the last second,
//!   else to the relay.
//! - Accepted: from the relay, `bind_ack` with our own role and audio with the other role; from
//!   the peer, `bind`, `bind_ack` and audio with the other role. All with the call's token.
//!   Anything else is dropped, never answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_proto::media::{Packet, Role};

const RELAY_BIND_FAST: Duration = Duration::from_millis(200);
const RELAY_BIND_SLOW: Duration = Duration::from_secs(5);
const PEER_BIND_FAST: Duration = Duration::from_millis(200);
const PEER_BIND_PATIENT: Duration = Duration::from_secs(1);
const PEER_BIND_SLOW: Duration = Duration::from_secs(5);
/// How long to keep trying the direct path fast before slowing down.
const PEER_FAST_FOR: Duration = Duration::from_secs(10);
/// Silence from the peer's address after which audio goes back to the relay.
pub const DIRECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Which way audio currently goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaPath {
    /// Through the server's relay.
    #[default]
    Relay,
    /// Straight to the peer.
    Direct,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a Natter media packet (size, magic, kind or role byte).
    Malformed,
    /// Another call's token.
    WrongToken,
    /// A role that makes no sense from where it came (say our own role on audio).
    WrongRole,
    /// From neither the relay nor the peer.
    Stranger,
}

/// What to do with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// An audio frame for the jitter buffer.
    Audio {
        /// Stream id.
        stream: u32,
        /// Sequence number.
        seq: u16,
        /// 48 kHz timestamp.
        ts: u32,
        /// Opus packet.
        payload: &'a [u8],
    },
    /// The peer bound to us: answer with a `bind_ack` to this address.
    AnswerBind(SocketAddr),
    /// A path confirmation; nothing more to do.
    Confirmed,
    /// Dropped, unanswered.
    Drop(DropReason),
}

/// Path state of one session.
#[derive(Debug, Clone)]
pub struct PathState {
    role: Role,
    token: [u8; 16],
    relay: SocketAddr,
    relay_acked: bool,
    next_relay_bind: Instant,
    peer: Option<SocketAddr>,
    /// Since when the direct path has been down (or the peer known), for the bind rate.
    peer_down_since: Instant,
    next_peer_bind: Instant,
    last_direct: Option<Instant>,
}

impl PathState {
    /// A path to the relay only; the first `bind` is due at once.
    pub fn new(role: Role, token: [u8; 16], relay: SocketAddr, now: Instant) -> Self {
        PathState {
            role,
            token,
            relay,
            relay_acked: false,
            next_relay_bind: now,
            peer: None,
            peer_down_since: now,
            next_peer_bind: now,
            last_direct: None,
        }
    }

    /// Learns (or changes) the peer's address; binding to it starts at once.
    pub fn set_peer(&mut self, peer: SocketAddr, now: Instant) {
        if self.peer == Some(peer) {
            return;
        }
        self.peer = Some(peer);
        self.last_direct = None;
        self.peer_down_since = now;
        self.next_peer_bind = now;
    }

    /// Whether the relay acknowledged our `bind`.
    pub fn relay_bound(&self) -> bool {
        self.relay_acked
    }

    /// The relay's address.
    pub fn relay(&self) -> SocketAddr {
        self.relay
    }

    /// The peer's address, if known.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Which way audio goes now.
    pub fn current(&self, now: Instant) -> MediaPath {
        match (self.peer, self.last_direct) {
            (Some(_), Some(at)) if now.saturating_duration_since(at) < DIRECT_TIMEOUT => {
                MediaPath::Direct
            }
            _ => MediaPath::Relay,
        }
    }

    /// Where to send the next audio packet.
    pub fn audio_destination(&self, now: Instant) -> SocketAddr {
        match (self.current(now), self.peer) {
            (MediaPath::Direct, Some(peer)) => peer,
            _ => self.relay,
        }
    }

    /// Judges a datagram from `from`.
    pub fn classify<'a>(
        &mut self,
        from: SocketAddr,
        datagram: &'a [u8],
        now: Instant,
    ) -> Verdict<'a> {
        let Ok(packet) = Packet::decode(datagram) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if packet.token() != &self.token {
            return Verdict::Drop(DropReason::WrongToken);
        }
        let other = self.role.other();
        let from_peer = self.peer == Some(from);
        let from_relay = from == self.relay;
        if !from_peer && !from_relay {
            return Verdict::Drop(DropReason::Stranger);
        }
        match packet {
            Packet::BindAck { role, .. } if from_relay && role == self.role => {
                self.relay_acked = true;
                Verdict::Confirmed
            }
            Packet::Audio {
                role,
                stream,
                seq,
                ts,
                payload,
                ..
            } if role == other => {
                if from_peer {
                    self.direct_seen(now);
                }
                Verdict::Audio {
                    stream,
                    seq,
                    ts,
                    payload,
                }
            }
            Packet::Bind { role, .. } if from_peer && role == other => {
                self.direct_seen(now);
                Verdict::AnswerBind(from)
            }
            Packet::BindAck { role, .. } if from_peer && role == other => {
                self.direct_seen(now);
                Verdict::Confirmed
            }
            _ => Verdict::Drop(DropReason::WrongRole),
        }
    }

    fn direct_seen(&mut self, now: Instant) {
        if self.current(now) == MediaPath::Relay {
            tracing::debug!(peer = ?self.peer, "direct path up");
        }
        self.last_direct = Some(now);
    }

    /// `bind`s due now: (to the relay?, to this peer address?). Moves the timers on.
    pub fn binds_due(&mut self, now: Instant) -> (bool, Option<SocketAddr>) {
        let relay = now >= self.next_relay_bind;
        if relay {
            let every = if self.relay_acked {
                RELAY_BIND_SLOW
            } else {
                RELAY_BIND_FAST
            };
            self.next_relay_bind = now + every;
        }
        let mut peer = None;
        if let Some(addr) = self.peer {
            let direct = self.current(now) == MediaPath::Direct;
            if !direct && self.last_direct.is_some() {
                // It was up and went quiet: try hard again for a while.
                self.last_direct = None;
                self.peer_down_since = now;
            }
            if now >= self.next_peer_bind {
                let every = if direct {
                    PEER_BIND_SLOW
                } else if now.saturating_duration_since(self.peer_down_since) < PEER_FAST_FOR {
                    PEER_BIND_FAST
                } else {
                    PEER_BIND_PATIENT
                };
                self.next_peer_bind = now + every;
                peer = Some(addr);
            }
        }
        (relay, peer)
    }

    /// When [`PathState::binds_due`] next has something to do (or the direct path may expire).
    pub fn next_wakeup(&self) -> Instant {
        let mut at = self.next_relay_bind;
        if self.peer.is_some() {
            at = at.min(self.next_peer_bind);
            if let Some(last) = self.last_direct {
                at = at.min(last + DIRECT_TIMEOUT);
            }
        }
        at
    }

    /// The `bind` packet we send.
    pub fn bind_packet(&self, out: &mut Vec<u8>) {
        out.clear();
        Packet::Bind {
            role: self.role,
            token: self.token,
        }
        .encode(out);
    }

    /// The `bind_ack` we answer a peer's `bind` with (our own role: we are its sender).
    pub fn bind_ack_packet(&self, out: &mut Vec<u8>) {
        out.clear();
        Packet::BindAck {
            role: self.role,
            token: self.token,
        }
        .encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: [u8; 16] = [7; 16];

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn bytes(p: Packet<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        p.encode(&mut v);
        v
    }

    fn audio(role: Role, token: [u8; 16]) -> Vec<u8> {
        bytes(Packet::Audio {
            role,
            token,
            stream: 1,
            seq: 2,
            ts: 960,
            payload: &[1, 2, 3],
        })
    }

    #[test]
    fn relay_binds_fast_until_acked_then_slowly() {
        let t0 = Instant::now();
        let mut p = PathState::new(Role::Caller, TOKEN, addr(4005), t0);
        assert_eq!(p.binds_due(t0), (true, None));
        assert_eq!(p.binds_due(t0 + Duration::from_millis(100)), (false, None));
        assert_eq!(p.binds_due(t0 + Duration::from_millis(200)), (true, None));
        let ack = bytes(Packet::BindAck {
            role: Role::Caller,
            token: TOKEN,
        });
        assert_eq!(
            p.classify(addr(4005), &ack, t0 + Duration::from_millis(250)),
            Verdict::Confirmed
        );
        assert!(p.relay_bound());
        assert_eq!(p.binds_due(t0 + Duration::from_millis(400)), (true, None));
        assert_eq!(p.next_wakeup(), t0 + Duration::from_millis(5_400));
    }

    #[test]
    fn wrong_token_role_magic_or_sender_are_dropped() {
        let t0 = Instant::now();
        let mut p = PathState::new(Role::Caller, TOKEN, addr(4005), t0);
        let relay = addr(4005);
        assert!(matches!(
            p.classify(relay, &audio(Role::Callee, TOKEN), t0),
            Verdict::Audio {
                seq: 2,
                ts: 960,
                ..
            }
        ));
        assert_eq!(
            p.classify(relay, &audio(Role::Callee, [8; 16]), t0),
            Verdict::Drop(DropReason::WrongToken)
        );
        assert_eq!(
            p.classify(relay, &audio(Role::Caller, TOKEN), t0),
            Verdict::Drop(DropReason::WrongRole)
        );
        let mut bad = audio(Role::Callee, TOKEN);
        bad[0] = 0x42;
        assert_eq!(
            p.classify(relay, &bad, t0),
            Verdict::Drop(DropReason::Malformed)
        );
        assert_eq!(
            p.classify(addr(9), &audio(Role::Callee, TOKEN), t0),
            Verdict::Drop(DropReason::Stranger)
        );
        // A relay never sends binds, and its ack must echo our role.
        let bind = bytes(Packet::Bind {
            role: Role::Callee,
            token: TOKEN,
        });
        assert_eq!(
            p.classify(relay, &bind, t0),
            Verdict::Drop(DropReason::WrongRole)
        );
        assert!(!p.relay_bound());
    }

    #[test]
    fn direct_path_comes_up_on_a_packet_from_the_peer_and_falls_back_after_a_second() {
        let t0 = Instant::now();
        let relay = addr(4005);
        let peer = addr(5000);
        let mut p = PathState::new(Role::Callee, TOKEN, relay, t0);
        assert_eq!(p.audio_destination(t0), relay);
        p.set_peer(peer, t0);
        assert_eq!(p.binds_due(t0), (true, Some(peer)));
        assert_eq!(
            p.current(t0),
            MediaPath::Relay,
            "binding alone proves nothing"
        );
        let their_bind = bytes(Packet::Bind {
            role: Role::Caller,
            token: TOKEN,
        });
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(p.classify(peer, &their_bind, t1), Verdict::AnswerBind(peer));
        assert_eq!(p.current(t1), MediaPath::Direct);
        assert_eq!(p.audio_destination(t1), peer);
        // Audio keeps it up.
        let t2 = t1 + Duration::from_millis(900);
        assert!(matches!(
            p.classify(peer, &audio(Role::Caller, TOKEN), t2),
            Verdict::Audio { .. }
        ));
        assert_eq!(
            p.current(t2 + Duration::from_millis(999)),
            MediaPath::Direct
        );
        // Nothing direct for a second: back to the relay, and binding fast again.
        let t3 = t2 + DIRECT_TIMEOUT;
        assert_eq!(p.current(t3), MediaPath::Relay);
        assert_eq!(p.audio_destination(t3), relay);
        let _ = p.binds_due(t3);
        assert!(p.next_wakeup() <= t3 + PEER_BIND_FAST);
    }
}
