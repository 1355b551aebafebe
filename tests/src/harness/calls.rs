//! Voice calls from a test client (PROTOCOL.md §5.8): the three requests, waiting for the call
//! pushes, and [`MediaSocket`], a real UDP socket on loopback that speaks the relay's packet
//! format (`natter_proto::media`), so scenarios can show what the relay forwards and what it
//! drops.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use natter_proto::media::{token_bytes, Packet, Role, MAX_PACKET};
use natter_proto::{CallEndReason, CallMedia, ClientMessage, ServerMessage};
use tokio::net::UdpSocket;

use super::client::{TestClient, PUSH_TIMEOUT};
use super::replies::{show, Reply};

/// A `call_incoming` push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The call.
    pub call_id: String,
    /// The caller.
    pub from: String,
    /// Where to send audio once accepted.
    pub media: CallMedia,
}

impl TestClient {
    /// `call_invite` → the new call's id (from `call_ringing`).
    pub async fn call_invite(&self, to: &str) -> Result<String> {
        let reply = self
            .request_with(|id| ClientMessage::CallInvite { id, to: to.into() })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::CallRinging { call_id, .. } => Ok(call_id),
            other => bail!("expected call_ringing, got {}", show(&other)),
        }
    }

    /// `call_answer` → `ok`.
    pub async fn call_answer(&self, call_id: &str, accept: bool) -> Result<()> {
        self.request_with(|id| ClientMessage::CallAnswer {
            id,
            call_id: call_id.into(),
            accept,
        })
        .await?
        .expect_ok()
    }

    /// `call_hangup` → `ok`.
    pub async fn call_hangup(&self, call_id: &str) -> Result<()> {
        self.request_with(|id| ClientMessage::CallHangup {
            id,
            call_id: call_id.into(),
        })
        .await?
        .expect_ok()
    }

    /// Waits for `call_incoming` from `from`.
    pub async fn expect_call_incoming(&mut self, from: &str) -> Result<IncomingCall> {
        self.expect_push_map(&format!("call_incoming from {from}"), |m| match m {
            ServerMessage::CallIncoming {
                call_id,
                from: caller,
                media,
            } if caller == from => Some(IncomingCall {
                call_id: call_id.clone(),
                from: caller.clone(),
                media: media.clone(),
            }),
            _ => None,
        })
        .await
    }

    /// Waits for `call_accepted` of `call_id`; returns its media.
    pub async fn expect_call_accepted(&mut self, call_id: &str) -> Result<CallMedia> {
        self.expect_push_map(&format!("call_accepted for {call_id}"), |m| match m {
            ServerMessage::CallAccepted { call_id: c, media } if c == call_id => {
                Some(media.clone())
            }
            _ => None,
        })
        .await
    }

    /// Waits for `call_peer` of `call_id`; returns the peer's address.
    pub async fn expect_call_peer(&mut self, call_id: &str) -> Result<SocketAddr> {
        let addr = self
            .expect_push_map(&format!("call_peer for {call_id}"), |m| match m {
                ServerMessage::CallPeer {
                    call_id: c,
                    peer_addr,
                } if c == call_id => Some(peer_addr.clone()),
                _ => None,
            })
            .await?;
        addr.parse()
            .with_context(|| format!("call_peer names `{addr}`, not an ip:port"))
    }

    /// Waits for `call_ended` of `call_id`; returns the reason.
    pub async fn expect_call_ended(&mut self, call_id: &str) -> Result<CallEndReason> {
        self.expect_call_ended_within(call_id, PUSH_TIMEOUT).await
    }

    /// Waits for `call_ended` of `call_id`, at most `timeout`.
    pub async fn expect_call_ended_within(
        &mut self,
        call_id: &str,
        timeout: Duration,
    ) -> Result<CallEndReason> {
        self.expect_push_map_within(&format!("call_ended for {call_id}"), timeout, |m| match m {
            ServerMessage::CallEnded { call_id: c, reason } if c == call_id => Some(*reason),
            _ => None,
        })
        .await
    }

    /// Asserts no call push of any kind is queued or arrives within `wait`.
    pub async fn assert_no_call_push(&mut self, wait: Duration) -> Result<()> {
        self.assert_no_push_matching("call push", wait, |m| {
            matches!(
                m,
                ServerMessage::CallIncoming { .. }
                    | ServerMessage::CallAccepted { .. }
                    | ServerMessage::CallPeer { .. }
                    | ServerMessage::CallEnded { .. }
            )
        })
        .await
    }
}

/// How long [`MediaSocket::bind_until_acked`] keeps trying.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// The protocol's bind period before the first ack (§5.8).
const BIND_RETRY: Duration = Duration::from_millis(200);

/// One participant's UDP socket on 127.0.0.1, with the call's token and role.
#[derive(Debug)]
pub struct MediaSocket {
    socket: UdpSocket,
    relay: SocketAddr,
    token: [u8; 16],
    role: Role,
}

impl MediaSocket {
    /// A fresh socket for `role` of the call that `media` describes (its `relay_addr` must be
    /// an `ip:port`, as it is for a server without `--relay-host`).
    pub async fn open(media: &CallMedia, role: Role) -> Result<MediaSocket> {
        let relay: SocketAddr = media
            .relay_addr
            .parse()
            .with_context(|| format!("relay_addr `{}` is not an ip:port", media.relay_addr))?;
        let token = token_bytes(&media.token)
            .ok_or_else(|| anyhow!("media.token `{}` is not 32 hex digits", media.token))?;
        Self::with_token(relay, token, role).await
    }

    /// A socket that claims `role` with any token (a stranger's, or a wrong one).
    pub async fn with_token(relay: SocketAddr, token: [u8; 16], role: Role) -> Result<MediaSocket> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .context("while binding a UDP socket on loopback")?;
        Ok(MediaSocket {
            socket,
            relay,
            token,
            role,
        })
    }

    /// This socket's address, as the relay observes it on loopback.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    /// The call's token as this socket uses it.
    pub fn token(&self) -> [u8; 16] {
        self.token
    }

    /// Sends one `bind` to the relay.
    pub async fn bind(&self) -> Result<()> {
        self.send_packet(Packet::Bind {
            role: self.role,
            token: self.token,
        })
        .await
    }

    /// Sends `bind` every 200 ms until the relay answers with a `bind_ack` that echoes this
    /// socket's role and token, as a client does (§5.8); fails after [`BIND_TIMEOUT`].
    pub async fn bind_until_acked(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + BIND_TIMEOUT;
        let mut buf = vec![0u8; MAX_PACKET + 1];
        loop {
            self.bind().await?;
            let retry = tokio::time::Instant::now() + BIND_RETRY;
            while let Ok(received) =
                tokio::time::timeout_at(retry, self.socket.recv_from(&mut buf)).await
            {
                let (len, from) = received.context("while waiting for bind_ack")?;
                if from == self.relay
                    && Packet::decode(&buf[..len])
                        == Ok(Packet::BindAck {
                            role: self.role,
                            token: self.token,
                        })
                {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "no bind_ack from the relay at {} within {BIND_TIMEOUT:?} ({:?})",
                    self.relay,
                    self.role
                );
            }
        }
    }

    /// Sends one audio packet to the relay; returns the exact bytes sent.
    pub async fn send_audio(&self, seq: u16, payload: &[u8]) -> Result<Vec<u8>> {
        let packet = Packet::Audio {
            role: self.role,
            token: self.token,
            stream: 0x5eed_0000 | u32::from(self.role == Role::Callee),
            seq,
            ts: u32::from(seq) * 960,
            payload,
        };
        let mut bytes = Vec::new();
        packet.encode(&mut bytes);
        self.send_raw(&bytes).await?;
        Ok(bytes)
    }

    /// Sends a prepared packet to the relay.
    pub async fn send_packet(&self, packet: Packet<'_>) -> Result<()> {
        let mut bytes = Vec::new();
        packet.encode(&mut bytes);
        self.send_raw(&bytes).await
    }

    /// Sends arbitrary bytes to the relay.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<()> {
        self.socket
            .send_to(bytes, self.relay)
            .await
            .with_context(|| format!("while sending {} bytes to the relay", bytes.len()))?;
        Ok(())
    }

    /// Waits for the next datagram; returns its bytes and sender.
    pub async fn expect_datagram(&self, timeout: Duration) -> Result<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; MAX_PACKET + 1];
        match tokio::time::timeout(timeout, self.socket.recv_from(&mut buf)).await {
            Ok(received) => {
                let (len, from) = received.context("while receiving a datagram")?;
                buf.truncate(len);
                Ok((buf, from))
            }
            Err(_) => bail!(
                "{:?} socket {}: no datagram within {timeout:?}",
                self.role,
                self.local_addr()?
            ),
        }
    }

    /// Asserts nothing arrives within `wait`: bounded waiting only ever shows an absence.
    pub async fn assert_silent(&self, wait: Duration) -> Result<()> {
        let mut buf = vec![0u8; MAX_PACKET + 1];
        match tokio::time::timeout(wait, self.socket.recv_from(&mut buf)).await {
            Err(_) => Ok(()),
            Ok(Ok((len, from))) => bail!(
                "{:?} socket {}: expected nothing, got {len} bytes from {from}: {:02x?}",
                self.role,
                self.local_addr()?,
                &buf[..len.min(40)]
            ),
            Ok(Err(e)) => Err(e).context("while listening for silence"),
        }
    }
}
