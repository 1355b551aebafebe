//! One task per connection: it owns the socket, reads frames, runs handlers, writes replies and
//! the hub's pushes, sends heartbeats when quiet, and drops a peer that stays silent too long.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use natter_proto::{decode_client, ErrorCode, Frame, FrameCodec, FrameError, ServerMessage};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::handlers::{self, auth, ConnState, Outgoing};
use crate::hub::{Push, SessionControl, SESSION_QUEUE};
use crate::Ctx;

/// How long one write may block before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most queued pushes written before the next flush.
const PUSH_BATCH: usize = 256;

struct Writer<S> {
    framed: Framed<S, FrameCodec>,
    last_tx: Instant,
    dirty: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    async fn feed(&mut self, payload: Bytes) -> Result<(), FrameError> {
        self.last_tx = Instant::now();
        self.dirty = true;
        self.framed.feed(Frame::Json(payload)).await
    }

    async fn message(&mut self, message: &ServerMessage) -> Result<(), FrameError> {
        self.feed(natter_proto::encode(message).payload().clone())
            .await
    }

    async fn flush(&mut self) -> Result<(), FrameError> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        match tokio::time::timeout(WRITE_TIMEOUT, self.framed.flush()).await {
            Ok(result) => result,
            Err(_) => Err(FrameError::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }
}

async fn write_outgoing<S: AsyncRead + AsyncWrite + Unpin>(
    w: &mut Writer<S>,
    state: &mut ConnState,
    out: Vec<Outgoing>,
) -> Result<(), FrameError> {
    for item in out {
        match item {
            Outgoing::Message(m) => w.message(&m).await?,
            Outgoing::Raw(b) => w.feed(b).await?,
            Outgoing::Private(message) => {
                if state.pushed.insert(message.msg_id) {
                    w.message(&ServerMessage::Message { message }).await?;
                }
            }
        }
    }
    Ok(())
}

async fn write_push<S: AsyncRead + AsyncWrite + Unpin>(
    w: &mut Writer<S>,
    state: &mut ConnState,
    push: Push,
) -> Result<(), FrameError> {
    match push {
        Push::Frame(frame) => w.feed(frame).await,
        Push::Private { msg_id, frame } => {
            // Skip what the login queue already pushed on this connection.
            if state.session.is_some() && state.pushed.insert(msg_id) {
                w.feed(frame).await
            } else {
                Ok(())
            }
        }
    }
}

enum Exit {
    Closed,
    Kicked(&'static str),
    Shutdown,
}

/// Serves one connection until it closes; cleans up its session afterwards.
pub async fn serve<S>(stream: S, peer: SocketAddr, ctx: Arc<Ctx>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn_id = ctx.next_conn_id();
    let (push_tx, mut push_rx) = mpsc::channel(SESSION_QUEUE);
    let mut state = ConnState::new(conn_id, peer.ip(), push_tx, &ctx.config.limits);
    let mut w = Writer {
        framed: Framed::new(stream, FrameCodec::new(ctx.config.max_frame_bytes)),
        last_tx: Instant::now(),
        dirty: false,
    };
    let mut pending = FuturesOrdered::new();
    let mut last_rx = Instant::now();
    let heartbeat = ctx.config.heartbeat_interval;
    let mut tick = tokio::time::interval(heartbeat / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::debug!(conn_id, %peer, "connected");
    // Futures that live across iterations: re-creating a timer or a cancellation waiter on every
    // wake-up showed up in profiles under load.
    let shutdown = shutdown.cancelled();
    tokio::pin!(shutdown);
    let idle = tokio::time::sleep_until(last_rx + ctx.config.idle_timeout);
    tokio::pin!(idle);
    let mut kicked: Option<(
        Arc<SessionControl>,
        Pin<Box<WaitForCancellationFutureOwned>>,
    )> = None;

    let exit = loop {
        let control = state.session.as_ref().map(|s| &s.control);
        if control.map(Arc::as_ptr) != kicked.as_ref().map(|(c, _)| Arc::as_ptr(c)) {
            kicked = control.map(|c| (c.clone(), Box::pin(c.kicked())));
        }
        let kick = async {
            match kicked.as_mut() {
                Some((control, waiter)) => {
                    waiter.as_mut().await;
                    control.reason()
                }
                None => std::future::pending().await,
            }
        };
        let result: Result<Option<Exit>, FrameError> = tokio::select! {
            _ = &mut shutdown => Ok(Some(Exit::Shutdown)),
            reason = kick => Ok(Some(Exit::Kicked(reason))),
            frame = w.framed.next() => {
                match frame {
                    None => Ok(Some(Exit::Closed)),
                    Some(Err(FrameError::TooLarge { len, max })) => {
                        let _ = w.message(&ServerMessage::error(
                            None,
                            ErrorCode::FrameTooLarge,
                            format!("frame of {len} bytes exceeds the maximum of {max} bytes"),
                        )).await;
                        Ok(Some(Exit::Closed))
                    }
                    Some(Err(e)) => {
                        tracing::debug!(conn_id, error = %e, "read failed");
                        Ok(Some(Exit::Closed))
                    }
                    Some(Ok(Frame::Binary(_))) => {
                        last_rx = Instant::now();
                        w.message(&ServerMessage::error(
                            None,
                            ErrorCode::UnexpectedBinary,
                            "a binary frame must follow the header that announces it",
                        )).await.map(|_| None)
                    }
                    Some(Ok(Frame::Json(payload))) => {
                        last_rx = Instant::now();
                        match decode_client(&payload) {
                            Err(e) => w
                                .message(&ServerMessage::error(e.id.as_deref(), e.code, e.message))
                                .await
                                .map(|_| None),
                            Ok(message) => {
                                let outcome = handlers::dispatch(&ctx, &mut state, message).await;
                                if let Some(d) = outcome.deferred {
                                    pending.push_back(d);
                                }
                                let close = outcome.close;
                                write_outgoing(&mut w, &mut state, outcome.out)
                                    .await
                                    .map(|_| close.then_some(Exit::Closed))
                            }
                        }
                    }
                }
            }
            Some(reply) = pending.next(), if !pending.is_empty() => w.message(&reply).await.map(|_| None),
            Some(push) = push_rx.recv() => {
                let mut result = write_push(&mut w, &mut state, push).await;
                for _ in 0..PUSH_BATCH {
                    if result.is_err() {
                        break;
                    }
                    match push_rx.try_recv() {
                        Ok(push) => result = write_push(&mut w, &mut state, push).await,
                        Err(_) => break,
                    }
                }
                result.map(|_| None)
            }
            _ = &mut idle => {
                let deadline = last_rx + ctx.config.idle_timeout;
                if Instant::now() >= deadline {
                    tracing::info!(conn_id, %peer, "peer silent past the idle timeout; dropping it");
                    Ok(Some(Exit::Closed))
                } else {
                    idle.as_mut().reset(deadline);
                    Ok(None)
                }
            }
            _ = tick.tick() => {
                if w.last_tx.elapsed() >= heartbeat {
                    w.message(&ServerMessage::Heartbeat { ts: (ctx.clock)() }).await.map(|_| None)
                } else {
                    Ok(None)
                }
            }
        };
        match result {
            Ok(Some(exit)) => break exit,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(conn_id, error = %e, "write failed");
                break Exit::Closed;
            }
        }
        if let Err(e) = w.flush().await {
            tracing::debug!(conn_id, error = %e, "flush failed");
            break Exit::Closed;
        }
    };

    let reason = match exit {
        Exit::Closed => None,
        Exit::Kicked(reason) => Some(reason),
        Exit::Shutdown => Some("shutdown"),
    };
    if let Some(reason) = reason {
        let kicked = ServerMessage::Kicked {
            reason: reason.to_owned(),
        };
        if w.message(&kicked).await.is_ok() {
            let _ = w.flush().await;
        }
    } else {
        let _ = w.flush().await;
    }
    auth::end_session(&ctx, &mut state, false).await;
    tracing::debug!(conn_id, %peer, "disconnected");
}
