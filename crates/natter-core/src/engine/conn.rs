//! Connection mechanics: dialling, `hello`, heartbeats when quiet, dropping a silent server, and
//! re-dialling with exponential backoff and full jitter once a session exists. Nothing here knows
//! what a message means.

use std::time::Duration;

use futures::{FutureExt, SinkExt};
use natter_proto::{encode, ClientMessage, Frame, FrameCodec, PayloadPool, ServerMessage};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::{fail, fail_command, request_id, Engine, Pending};
use crate::transport::ServerAddr;
use crate::transport::{self, Stream};
use crate::{ClientError, ConnectionState, Event};

pub(super) type Conn = Framed<Box<dyn Stream>, FrameCodec>;

/// Heartbeat interval until the server's `hello_ok` says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Idle timeout until the server's `hello_ok` says otherwise.
const DEFAULT_IDLE: Duration = Duration::from_secs(45);

/// An open connection and its clocks.
pub(super) struct Live {
    pub(super) conn: Conn,
    heartbeat: Duration,
    idle: Duration,
    last_rx: Instant,
    last_tx: Instant,
    /// `hello_ok` came: requests may go.
    pub(super) greeted: bool,
    /// A session is logged in on this connection: the outbox and acks may go.
    pub(super) logged_in: bool,
}

impl Live {
    fn new(conn: Conn, now: Instant) -> Self {
        Self {
            conn,
            heartbeat: DEFAULT_HEARTBEAT,
            idle: DEFAULT_IDLE,
            last_rx: now,
            last_tx: now,
            greeted: false,
            logged_in: false,
        }
    }

    /// Nothing came for the idle timeout: the server is gone, whatever the socket says.
    pub(super) fn is_silent(&self, now: Instant) -> bool {
        now.duration_since(self.last_rx) >= self.idle
    }

    /// Nothing went for a heartbeat interval: time to say something.
    pub(super) fn is_quiet(&self, now: Instant) -> bool {
        now.duration_since(self.last_tx) >= self.heartbeat
    }
}

/// The reconnect delay before attempt `attempts` (0-based): exponential from `min`, capped at
/// `max`, then drawn from its upper half with `jitter` (a uniform draw in `cap/2..=cap`).
pub(super) fn backoff_ms(
    attempts: u32,
    min: Duration,
    max: Duration,
    jitter: impl FnOnce(std::ops::RangeInclusive<u64>) -> u64,
) -> u64 {
    let exp = min.as_millis() as u64 * (1u64 << attempts.min(10));
    let cap = exp.min(max.as_millis() as u64).max(1);
    jitter(cap / 2..=cap)
}

impl Engine {
    pub(super) fn dial(&mut self) {
        if self.dialing.is_some() || self.live.is_some() {
            return;
        }
        self.set_state(ConnectionState::Connecting);
        let server = self.current_server().clone();
        let pins = self.pins.clone();
        let timeout = self.config.request_timeout;
        self.dialing = Some(
            async move {
                let stream = transport::connect(&server, &pins, timeout).await?;
                // File pieces come down this connection: recycle their buffers.
                let codec = FrameCodec::default().with_payload_pool(PayloadPool::default());
                Ok(Framed::new(stream, codec))
            }
            .boxed(),
        );
    }

    pub(super) async fn dialed(&mut self, result: Result<Conn, ClientError>) {
        match result {
            Ok(conn) => {
                self.live = Some(Live::new(conn, Instant::now()));
                let hello = ClientMessage::Hello {
                    id: request_id(),
                    version: natter_proto::PROTOCOL_VERSION,
                    client: self.config.client_name.clone(),
                    presence: self.config.presence,
                };
                self.send_pending(hello, Pending::Hello).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, server = %self.current_server(), "connect failed");
                self.next_server();
                if matches!(e, ClientError::CertificateChanged { .. }) {
                    self.emit(Event::CertificateChanged(e.clone()));
                }
                for command in std::mem::take(&mut self.waiting) {
                    fail_command(command, e.clone());
                }
                self.schedule_retry();
            }
        }
    }

    /// The answer to `hello`: without `hello_ok` the connection is useless.
    pub(super) async fn hello_reply(&mut self, message: ServerMessage) {
        let ServerMessage::HelloOk {
            heartbeat_interval_ms,
            idle_timeout_ms,
            ..
        } = message
        else {
            tracing::warn!(?message, "the server refused hello");
            return self.drop_connection("hello refused");
        };
        if let Some(live) = self.live.as_mut() {
            live.greeted = true;
            live.heartbeat = Duration::from_millis(heartbeat_interval_ms.max(100));
            live.idle = Duration::from_millis(idle_timeout_ms.max(200));
        }
        if self.session.is_none() {
            self.set_state(ConnectionState::Online);
        }
        self.greeted().await;
    }

    /// After `hello_ok`: log the session back in, then run what waited for the connection.
    async fn greeted(&mut self) {
        self.restore_session().await;
        for command in std::mem::take(&mut self.waiting) {
            Box::pin(self.command(command)).await;
        }
    }

    pub(super) fn schedule_retry(&mut self) {
        if self.session.is_none() {
            self.set_state(ConnectionState::Offline);
            return;
        }
        self.set_state(ConnectionState::Connecting);
        // Full jitter: many clients dropped by one server restart must not return in lockstep.
        let delay = backoff_ms(
            self.attempts,
            self.config.backoff_min,
            self.config.backoff_max,
            |range| rand::thread_rng().gen_range(range),
        );
        self.attempts = self.attempts.saturating_add(1);
        self.retry_at = Some(Instant::now() + Duration::from_millis(delay));
    }

    /// The address the next dial goes to.
    fn current_server(&self) -> &ServerAddr {
        match self.server_index {
            0 => &self.config.server,
            i => self
                .config
                .fallbacks
                .get(i - 1)
                .unwrap_or(&self.config.server),
        }
    }

    /// Moves on to the next address of the service: a node that failed is tried again only
    /// after every other one.
    fn next_server(&mut self) {
        let count = 1 + self.config.fallbacks.len();
        self.server_index = (self.server_index + 1) % count;
    }

    pub(super) fn drop_connection(&mut self, why: &str) {
        if self.live.take().is_some() {
            tracing::info!(why, server = %self.current_server(), "connection lost");
            self.next_server();
        }
        self.in_flight.clear();
        // Dropping the sink tells the downloader its fetch ended short.
        self.expect_binary = None;
        if self.session.is_none() {
            // Nothing will dial again on its own: whoever waited for this connection hears now.
            for command in std::mem::take(&mut self.waiting) {
                fail_command(command, ClientError::Offline);
            }
        }
        // An internal re-login (no reply) that dropped is retried by the usual path.
        for (_, (pending, _)) in std::mem::take(&mut self.pending) {
            fail(pending, ClientError::Offline);
        }
        self.schedule_retry();
    }

    /// Something came from the server: it is alive.
    pub(super) fn heard(&mut self) {
        if let Some(live) = self.live.as_mut() {
            live.last_rx = Instant::now();
        }
    }

    pub(super) async fn heartbeat(&mut self) {
        let id = request_id();
        self.send_pending(ClientMessage::Heartbeat { id }, Pending::Heartbeat)
            .await;
    }

    pub(super) async fn write(&mut self, message: ClientMessage) {
        self.write_frame(encode(&message)).await;
    }

    pub(super) async fn write_frame(&mut self, frame: Frame) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.last_tx = Instant::now();
        if let Err(e) = live.conn.send(frame).await {
            tracing::debug!(error = %e, "write failed");
            self.drop_connection("write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_cap() {
        let upper = |r: std::ops::RangeInclusive<u64>| *r.end();
        let delays: Vec<u64> = (0..8)
            .map(|a| backoff_ms(a, ms(200), ms(10_000), upper))
            .collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    }

    #[test]
    fn backoff_jitter_draws_from_the_upper_half() {
        let range = |r: std::ops::RangeInclusive<u64>| {
            assert_eq!((*r.start(), *r.end()), (400, 800));
            *r.start()
        };
        assert_eq!(backoff_ms(2, ms(200), ms(10_000), range), 400);
    }

    #[test]
    fn backoff_never_overflows_or_reaches_zero() {
        let upper = |r: std::ops::RangeInclusive<u64>| *r.end();
        assert_eq!(backoff_ms(u32::MAX, ms(200), ms(10_000), upper), 10_000);
        assert_eq!(backoff_ms(0, ms(0), ms(0), upper), 1);
    }
}
