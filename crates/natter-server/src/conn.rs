//! One task per connection: it owns the socket, reads frames, runs handlers, writes replies and
//! the hub's pushes, sends heartbeats when quiet, and drops a peer that stays silent too long.
//! It also pairs each `file_chunk` with the binary frame that must follow it, and streams
//! `file_fetch` answers a piece at a time between everything else (PROTOCOL.md §5.7).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt, SinkExt, StreamExt};
use natter_proto::{
    decode_client, ClientMessage, ErrorCode, Frame, FrameCodec, FrameError, ServerMessage,
};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::handlers::{self, auth, ConnState, Outgoing};
use crate::hub::{Push, SessionControl, SESSION_QUEUE};
use crate::transfer::fetch::Piece;
use crate::Ctx;

/// How long one write may block before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most queued pushes written before the next flush.
const PUSH_BATCH: usize = 256;
/// Starting size of a connection's read and write buffers. Most frames are a few hundred bytes;
/// tokio-util's default (8 KiB each) was most of an idle session's memory.
const BUFFER: usize = 2048;
/// A buffer that grew past this for one large frame (a long online list, a file piece) is let
/// go once empty, so a session does not keep its largest frame's memory for life.
const BUFFER_KEEP: usize = 64 * 1024;
/// Binary payloads from this size on are written to the socket directly.
const DIRECT_WRITE: usize = 64 * 1024;

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

    async fn binary(&mut self, payload: Bytes) -> Result<(), FrameError> {
        self.last_tx = Instant::now();
        self.dirty = true;
        if payload.len() < DIRECT_WRITE {
            return self.framed.feed(Frame::Binary(payload)).await;
        }
        // A file piece goes to the socket from its own buffer: copying a megabyte into the
        // write buffer (which then grows and is let go again) cost as much as sending it.
        let header = self.framed.codec().binary_header(payload.len())?;
        self.framed.write_buffer_mut().extend_from_slice(&header);
        self.flush().await?;
        let socket = self.framed.get_mut();
        // A TLS stream holds records back until flushed.
        let write = async {
            socket.write_all(&payload).await?;
            socket.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(result) => result.map_err(FrameError::Io),
            Err(_) => Err(FrameError::Io(std::io::ErrorKind::TimedOut.into())),
        }
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
        let flushed = match tokio::time::timeout(WRITE_TIMEOUT, self.framed.flush()).await {
            Ok(result) => result,
            Err(_) => Err(FrameError::Io(std::io::ErrorKind::TimedOut.into())),
        };
        self.shrink_buffers();
        flushed
    }

    fn shrink_buffers(&mut self) {
        let write = self.framed.write_buffer_mut();
        if write.is_empty() && write.capacity() > BUFFER_KEEP {
            *write = BytesMut::with_capacity(BUFFER);
        }
        let read = self.framed.read_buffer_mut();
        if read.is_empty() && read.capacity() > BUFFER_KEEP {
            *read = BytesMut::with_capacity(BUFFER);
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
            Outgoing::Binary(b) => w.binary(b).await?,
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

/// Writes the replies and pushes that are ready now, without waiting for any.
///
/// Polling `later` here uses a no-op waker; that is safe because the loop polls it again with
/// the task's own waker in the next `select!` before it sleeps.
async fn write_ready<S: AsyncRead + AsyncWrite + Unpin>(
    w: &mut Writer<S>,
    state: &mut ConnState,
    later: &mut Later,
    push_rx: &mut mpsc::Receiver<Push>,
) -> Result<(), FrameError> {
    while !later.ordered.is_empty() {
        match later.ordered.next().now_or_never() {
            Some(Some(reply)) => w.message(&reply).await?,
            _ => break,
        }
    }
    while !later.chunks.is_empty() {
        match later.chunks.next().now_or_never() {
            Some(Some((reply, len))) => {
                later.chunk_done(len);
                w.message(&reply).await?;
            }
            _ => break,
        }
    }
    for _ in 0..PUSH_BATCH {
        match push_rx.try_recv() {
            Ok(push) => write_push(w, state, push).await?,
            Err(_) => break,
        }
    }
    Ok(())
}

enum Exit {
    Closed,
    Kicked(&'static str),
    Shutdown,
}

/// A `file_chunk` header read; its binary frame must be the very next frame.
struct AwaitedChunk {
    message: ClientMessage,
    id: String,
    len: u32,
}

/// Bytes of `file_chunk`s a connection may have being written at once. Past it the connection
/// reads no more frames until some are stored: TCP then slows the sender, and memory stays
/// bounded per connection. Eight chunks of the largest suggested size (1 MiB) keep the disk and
/// the database busy in parallel with the socket.
const CHUNK_BYTES_IN_FLIGHT: usize = 8 * 1024 * 1024;

/// Replies that come after their handler returned.
#[derive(Default)]
struct Later {
    /// Written in request order (chat messages after their batch commits).
    ordered: FuturesOrdered<BoxFuture<'static, ServerMessage>>,
    /// Written whenever ready (a file's hash check).
    unordered: FuturesUnordered<BoxFuture<'static, ServerMessage>>,
    /// Chunks being stored, with their sizes; written whenever ready.
    chunks: FuturesUnordered<BoxFuture<'static, (ServerMessage, usize)>>,
    /// Sum of the sizes in `chunks`.
    chunk_bytes: usize,
}

impl Later {
    /// Whether another frame may be read (the chunks in flight leave room).
    fn has_room(&self) -> bool {
        self.chunk_bytes < CHUNK_BYTES_IN_FLIGHT
    }

    fn chunk_done(&mut self, len: usize) {
        self.chunk_bytes = self.chunk_bytes.saturating_sub(len);
    }
}

/// Runs one request and writes what it answers at once.
async fn run_request<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    state: &mut ConnState,
    w: &mut Writer<S>,
    later: &mut Later,
    message: ClientMessage,
    binary: Option<Bytes>,
) -> Result<Option<Exit>, FrameError> {
    let chunk_len = binary.as_ref().map_or(0, Bytes::len);
    // Boxed: the state of the largest handler (a login with its Argon2 hand-off, a file chunk)
    // would otherwise live inline in every connection's task for its whole life, idle or not.
    let outcome = Box::pin(handlers::dispatch(ctx, state, message, binary)).await;
    if let Some(c) = outcome.chunk {
        later.chunk_bytes += chunk_len;
        later
            .chunks
            .push(Box::pin(async move { (c.await, chunk_len) }));
    }
    if let Some(d) = outcome.deferred {
        later.ordered.push_back(d);
    }
    if let Some(l) = outcome.late {
        later.unordered.push(l);
    }
    let close = outcome.close;
    write_outgoing(w, state, outcome.out)
        .await
        .map(|_| close.then_some(Exit::Closed))
}

/// Handles one frame (or the end of the stream) read from the peer.
async fn on_read<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    state: &mut ConnState,
    w: &mut Writer<S>,
    later: &mut Later,
    awaited: &mut Option<AwaitedChunk>,
    read: Option<Result<Frame, FrameError>>,
) -> Result<Option<Exit>, FrameError> {
    let frame = match read {
        None => return Ok(Some(Exit::Closed)),
        Some(Err(FrameError::TooLarge { len, max })) => {
            let _ = w
                .message(&ServerMessage::error(
                    None,
                    ErrorCode::FrameTooLarge,
                    format!("frame of {len} bytes exceeds the maximum of {max} bytes"),
                ))
                .await;
            return Ok(Some(Exit::Closed));
        }
        Some(Err(e)) => {
            tracing::debug!(conn_id = state.conn_id, error = %e, "read failed");
            return Ok(Some(Exit::Closed));
        }
        Some(Ok(frame)) => frame,
    };
    let frame = match (awaited.take(), frame) {
        (Some(chunk), Frame::Binary(bytes)) if bytes.len() == chunk.len as usize => {
            return run_request(ctx, state, w, later, chunk.message, Some(bytes)).await;
        }
        (Some(chunk), frame) => {
            // §5.7 rule 1: the chunk is refused and this frame is handled on its own.
            w.message(&ServerMessage::error(
                Some(&chunk.id),
                ErrorCode::InvalidMessage,
                format!(
                    "a file_chunk of {} bytes must be followed at once by a binary frame of \
                     exactly that length",
                    chunk.len
                ),
            ))
            .await?;
            frame
        }
        (None, frame) => frame,
    };
    match frame {
        Frame::Binary(_) => w
            .message(&ServerMessage::error(
                None,
                ErrorCode::UnexpectedBinary,
                "a binary frame must follow the header that announces it",
            ))
            .await
            .map(|_| None),
        Frame::Json(payload) => match decode_client(&payload) {
            Err(e) => w
                .message(&ServerMessage::error(e.id.as_deref(), e.code, e.message))
                .await
                .map(|_| None),
            Ok(message) => {
                if let ClientMessage::FileChunk { id, len, .. } = &message {
                    // Nothing is decided before the bytes are here, so a refused chunk never
                    // leaves its binary frame behind to be misread as unannounced.
                    *awaited = Some(AwaitedChunk {
                        id: id.clone(),
                        len: *len,
                        message,
                    });
                    return Ok(None);
                }
                run_request(ctx, state, w, later, message, None).await
            }
        },
    }
}

/// Serves one connection until it closes; cleans up its session afterwards. `local` is the
/// server's end of the TCP connection.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    ctx: Arc<Ctx>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn_id = ctx.next_conn_id();
    let (push_tx, mut push_rx) = mpsc::channel(SESSION_QUEUE);
    let mut state = ConnState::new(conn_id, peer.ip(), local.ip(), push_tx, &ctx.config.limits);
    let mut w = Writer {
        framed: Framed::with_capacity(stream, FrameCodec::new(ctx.config.max_frame_bytes), BUFFER),
        last_tx: Instant::now(),
        dirty: false,
    };
    let mut later = Later::default();
    let mut awaited: Option<AwaitedChunk> = None;
    let mut last_rx = Instant::now();
    // Bytes of an unfinished frame at the last idle check: a large binary frame still arriving
    // on a slow link is not silence.
    let mut rx_buffered = 0usize;
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
            read = w.framed.next(), if later.has_room() => {
                if matches!(read, Some(Ok(_))) {
                    last_rx = Instant::now();
                }
                on_read(&ctx, &mut state, &mut w, &mut later, &mut awaited, read).await
            }
            Some(reply) = later.ordered.next(), if !later.ordered.is_empty() => {
                w.message(&reply).await.map(|_| None)
            }
            Some(reply) = later.unordered.next(), if !later.unordered.is_empty() => {
                w.message(&reply).await.map(|_| None)
            }
            Some((reply, len)) = later.chunks.next(), if !later.chunks.is_empty() => {
                later.chunk_done(len);
                w.message(&reply).await.map(|_| None)
            }
            Some(piece) = state.fetches.next(), if state.fetches.is_busy() => match piece {
                // Header and bytes go out back to back: nothing may come between them (§2).
                Piece::Data { header, bytes } => match w.message(&header).await {
                    Ok(()) => w.binary(bytes).await.map(|_| None),
                    Err(e) => Err(e),
                },
                Piece::Failed(error) => w.message(&error).await.map(|_| None),
            },
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
                // Before calling the peer silent, take what it sent meanwhile: the loop may
                // have been busy writing (a long fetch) while its frames waited in the socket.
                match w.framed.next().now_or_never() {
                    Some(read) => {
                        if matches!(read, Some(Ok(_))) {
                            last_rx = Instant::now();
                        }
                        idle.as_mut().reset(last_rx + ctx.config.idle_timeout);
                        on_read(&ctx, &mut state, &mut w, &mut later, &mut awaited, read).await
                    }
                    None => {
                        let buffered = w.framed.read_buffer().len();
                        if buffered != rx_buffered {
                            rx_buffered = buffered;
                            last_rx = Instant::now();
                        }
                        let deadline = last_rx + ctx.config.idle_timeout;
                        if Instant::now() >= deadline {
                            tracing::info!(conn_id, %peer, "peer silent past the idle timeout; dropping it");
                            Ok(Some(Exit::Closed))
                        } else {
                            idle.as_mut().reset(deadline);
                            Ok(None)
                        }
                    }
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
        let result = match result {
            // Whatever else is ready already goes out in the same write: a reply that just
            // committed and the pushes queued meanwhile cost one syscall, not one each.
            Ok(None) => write_ready(&mut w, &mut state, &mut later, &mut push_rx)
                .await
                .map(|_| None),
            other => other,
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
