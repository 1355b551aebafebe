//! [`MediaSession`]: one call's media, running on its own thread (see the module docs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter_proto::media::{Packet, Role};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::audio::{
    AudioSink, AudioSource, FrameInfo, FrameKind, Pacing, SilenceSource, SourceRead,
};
use super::codec::{EncoderSettings, OpusDecoder, OpusEncoder, MIN_FEC_BITRATE};
use super::jitter::{JitterBuffer, JitterConfig, Playout};
use super::level::{InputLevel, LevelMeter};
use super::path::{MediaPath, PathState, Verdict};
use super::{Frame, VoiceError, FRAME_DURATION, FRAME_SAMPLES};

/// How often device-paced sources and sinks are polled: a quarter frame, so a captured frame waits
/// at most 5 ms before it is encoded.
const DEVICE_POLL: Duration = Duration::from_millis(5);
/// Most frames moved per poll (a device that delivered a burst, or a session that fell behind).
const MAX_FRAMES_PER_POLL: usize = 10;

/// Everything a session needs from call signalling, plus tuning with sensible defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// The call's media token (`natter_proto::media::token_bytes(&media.token)`).
    pub token: [u8; 16],
    /// Our side of the call.
    pub role: Role,
    /// The server's UDP relay (`media.relay_addr`, resolved).
    pub relay: SocketAddr,
    /// The jitter buffer's lowest target delay (40 ms).
    pub jitter_target: Duration,
    /// The jitter buffer's highest target delay (200 ms).
    pub jitter_max: Duration,
    /// Opus bitrate in bit/s (32 000; at least that while `fec` is on).
    pub bitrate: i32,
    /// Opus in-band FEC (on).
    pub fec: bool,
    /// The loss rate Opus plans its FEC for, in percent (10).
    pub expected_loss_percent: u8,
}

impl MediaConfig {
    /// The defaults for a call.
    pub fn new(token: [u8; 16], role: Role, relay: SocketAddr) -> Self {
        MediaConfig {
            token,
            role,
            relay,
            jitter_target: Duration::from_millis(40),
            jitter_max: Duration::from_millis(200),
            bitrate: MIN_FEC_BITRATE,
            fec: true,
            expected_loss_percent: 10,
        }
    }

    fn encoder_settings(&self) -> EncoderSettings {
        EncoderSettings {
            bitrate: self.bitrate,
            fec: self.fec,
            expected_loss_percent: self.expected_loss_percent,
        }
    }
}

/// What a session has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// Audio packets sent.
    pub packets_sent: u64,
    /// Bytes of audio packets sent (UDP payload: our 29-byte header + Opus).
    pub bytes_sent: u64,
    /// Valid audio packets received.
    pub packets_received: u64,
    /// Bytes of valid audio packets received.
    pub bytes_received: u64,
    /// Datagrams dropped: wrong token, role or magic, malformed, or from a stranger.
    pub packets_invalid: u64,
    /// Audio packets that came after their turn to play.
    pub late: u64,
    /// Audio packets received twice.
    pub duplicates: u64,
    /// Frames whose packet did not come in time (`fec_recovered` + concealed losses).
    pub lost: u64,
    /// Lost frames rebuilt from the next packet's FEC data.
    pub fec_recovered: u64,
    /// Frames made up by Opus concealment (lost without FEC, and waits for late packets).
    pub concealed: u64,
    /// Frames dropped to bring the delay back to the target.
    pub dropped: u64,
    /// Which way audio goes now.
    pub path: MediaPath,
    /// Whether the relay acknowledged our `bind`.
    pub relay_bound: bool,
    /// Interarrival jitter (RFC 3550).
    pub jitter: Duration,
    /// How long the fastest recent packets wait in the jitter buffer.
    pub buffer_delay: Duration,
    /// The delay the jitter buffer aims for.
    pub target_delay: Duration,
}

#[derive(Debug, Default)]
struct Shared {
    muted: AtomicBool,
    level: LevelMeter,
    stats: Mutex<MediaStats>,
}

impl Shared {
    fn stats(&self) -> MediaStats {
        // Only plain copies happen under this lock; a poisoned one still holds valid numbers.
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call's media: capture → Opus → UDP → jitter buffer → Opus → playback. Stops on
/// [`MediaSession::stop`] or when dropped.
#[derive(Debug)]
pub struct MediaSession {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    peer: watch::Sender<Option<SocketAddr>>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MediaSession {
    /// Binds the UDP socket and starts sending and playing on a thread of its own.
    pub async fn start(
        config: MediaConfig,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<MediaSession, VoiceError> {
        if config.jitter_target < FRAME_DURATION || config.jitter_max < config.jitter_target {
            return Err(VoiceError::InvalidConfig(
                "jitter_target must be ≥ 20 ms and jitter_max ≥ jitter_target",
            ));
        }
        let encoder = OpusEncoder::new(config.encoder_settings())?;
        let decoder = OpusDecoder::new()?;
        // Same family as the relay (a v4 socket cannot reach a v6 relay); loopback stays on
        // loopback so tests never listen on a real interface.
        let bind_ip = match config.relay.ip() {
            ip if ip.is_loopback() => ip,
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let socket = std::net::UdpSocket::bind((bind_ip, 0))?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;

        let now = Instant::now();
        let shared = Arc::new(Shared::default());
        let (peer, peer_rx) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let stream = rand::random::<u32>();
        tracing::info!(%local_addr, relay = %config.relay, role = ?config.role, stream, "media session starting");
        let task = MediaTask {
            shared: Arc::clone(&shared),
            path: PathState::new(config.role, config.token, config.relay, now),
            source_pacing: source.pacing(),
            source,
            sink,
            encoder,
            decoder,
            decoder_generation: 0,
            jitter: JitterBuffer::new(
                JitterConfig {
                    min_delay: config.jitter_target,
                    max_delay: config.jitter_max,
                },
                now,
            ),
            role: config.role,
            token: config.token,
            stream,
            seq: 0,
            ts: 0,
            frame_in: [0.0; FRAME_SAMPLES],
            frame_out: [0.0; FRAME_SAMPLES],
            send_buf: Vec::with_capacity(natter_proto::media::MAX_PACKET),
            source_ended: false,
            sink_failed: false,
            stats: MediaStats::default(),
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("natter-voice".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(VoiceError::Io(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let socket = match UdpSocket::from_std(socket) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(VoiceError::Io(e)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    task.run(socket, peer_rx, stop).await;
                });
            })?;
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(VoiceError::Io(std::io::Error::other(
                    "media thread ended before it started",
                )))
            }
        }
        Ok(MediaSession {
            local_addr,
            shared,
            peer,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The local UDP address (what the relay will observe, modulo NAT).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The peer's address from `call_peer`: bind to it and use it once it answers.
    pub fn set_peer(&self, peer: SocketAddr) {
        self.peer.send_replace(Some(peer));
    }

    /// Mutes or unmutes the microphone (encoded silence is sent while muted).
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed);
    }

    /// Whether the microphone is muted.
    pub fn is_muted(&self) -> bool {
        self.shared.muted.load(Ordering::Relaxed)
    }

    /// The microphone's level over the last frame (measured even while muted).
    pub fn input_level(&self) -> InputLevel {
        self.shared.level.load()
    }

    /// Counters and the current path, jitter and delay.
    pub fn stats(&self) -> MediaStats {
        self.shared.stats()
    }

    /// Stops sending and playing, waits for the media thread, and returns the final stats.
    pub async fn stop(mut self) -> MediaStats {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            // The thread leaves its loop at the next wake-up (≤ 20 ms); joining is quick.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.shared.stats()
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        // Without `stop`, the thread still ends on its own at its next wake-up.
        self.shutdown.cancel();
    }
}

/// The media thread's state: owns the socket (passed to `run`), codec, buffer, source and sink.
struct MediaTask {
    shared: Arc<Shared>,
    path: PathState,
    source: Box<dyn AudioSource>,
    source_pacing: Pacing,
    sink: Box<dyn AudioSink>,
    encoder: OpusEncoder,
    decoder: OpusDecoder,
    decoder_generation: u32,
    jitter: JitterBuffer,
    role: Role,
    token: [u8; 16],
    stream: u32,
    seq: u16,
    ts: u32,
    frame_in: Frame,
    frame_out: Frame,
    send_buf: Vec<u8>,
    source_ended: bool,
    sink_failed: bool,
    stats: MediaStats,
}

fn ticker(pacing: Pacing) -> tokio::time::Interval {
    let (period, behaviour) = match pacing {
        // Catch up after a stall: a frame clock that skipped would shift the stream.
        Pacing::Session => (FRAME_DURATION, MissedTickBehavior::Burst),
        Pacing::Device => (DEVICE_POLL, MissedTickBehavior::Delay),
    };
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(behaviour);
    interval
}

impl MediaTask {
    async fn run(
        mut self,
        socket: UdpSocket,
        mut peer_rx: watch::Receiver<Option<SocketAddr>>,
        shutdown: CancellationToken,
    ) {
        let mut capture = ticker(self.source_pacing);
        let mut playout = ticker(self.sink.pacing());
        let mut buf = vec![0u8; 2048];
        loop {
            let wake = self.path.next_wakeup();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => self.on_datagram(&socket, &buf[..n], from).await,
                    // Some platforms surface ICMP errors of earlier sends here; the socket is fine.
                    Err(e) => tracing::debug!(error = %e, "udp receive"),
                },
                _ = capture.tick() => {
                    let pacing = self.source_pacing;
                    self.capture(&socket).await;
                    if pacing != self.source_pacing {
                        capture = ticker(self.source_pacing);
                    }
                }
                _ = playout.tick() => self.playout(),
                _ = tokio::time::sleep_until(wake.into()) => self.send_binds(&socket).await,
                changed = peer_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let peer = *peer_rx.borrow_and_update();
                    if let Some(peer) = peer {
                        tracing::info!(%peer, "peer address known; trying the direct path");
                        self.path.set_peer(peer, Instant::now());
                        self.send_binds(&socket).await;
                    }
                }
            }
        }
        self.publish_stats(Instant::now());
        tracing::info!(stats = ?self.stats, "media session stopped");
    }

    async fn on_datagram(&mut self, socket: &UdpSocket, datagram: &[u8], from: SocketAddr) {
        let now = Instant::now();
        match self.path.classify(from, datagram, now) {
            Verdict::Audio {
                stream,
                seq,
                ts,
                payload,
            } => {
                self.stats.packets_received += 1;
                self.stats.bytes_received += datagram.len() as u64;
                self.jitter.push(stream, seq, ts, payload, now);
            }
            Verdict::AnswerBind(to) => {
                self.path.bind_ack_packet(&mut self.send_buf);
                send(socket, &self.send_buf, to).await;
            }
            Verdict::Confirmed => {}
            Verdict::Drop(reason) => {
                self.stats.packets_invalid += 1;
                tracing::trace!(?reason, %from, "dropped a datagram");
            }
        }
    }

    async fn send_binds(&mut self, socket: &UdpSocket) {
        let (relay, peer) = self.path.binds_due(Instant::now());
        if !relay && peer.is_none() {
            return;
        }
        self.path.bind_packet(&mut self.send_buf);
        if relay {
            send(socket, &self.send_buf, self.path.relay()).await;
        }
        if let Some(peer) = peer {
            send(socket, &self.send_buf, peer).await;
        }
    }

    async fn capture(&mut self, socket: &UdpSocket) {
        let frames = match self.source_pacing {
            Pacing::Session => 1,
            Pacing::Device => MAX_FRAMES_PER_POLL,
        };
        for _ in 0..frames {
            match self.source.read_frame(&mut self.frame_in) {
                Ok(SourceRead::Frame) => {}
                Ok(SourceRead::NotYet) => return,
                Ok(SourceRead::Ended) => {
                    if !self.source_ended {
                        tracing::info!("audio source ended; sending silence");
                        self.source_ended = true;
                    }
                    self.frame_in.fill(0.0);
                }
                Err(e) => {
                    // A lost microphone must not end the call: the far end hears silence.
                    tracing::warn!(error = %e, "audio source failed; sending silence");
                    self.source = Box::new(SilenceSource);
                    self.source_pacing = Pacing::Session;
                    return;
                }
            }
            self.shared.level.store(InputLevel::of(&self.frame_in));
            if self.shared.muted.load(Ordering::Relaxed) {
                self.frame_in.fill(0.0);
            }
            self.send_frame(socket).await;
        }
    }

    async fn send_frame(&mut self, socket: &UdpSocket) {
        let payload = match self.encoder.encode(&self.frame_in) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "opus refused a frame");
                return;
            }
        };
        self.send_buf.clear();
        Packet::Audio {
            role: self.role,
            token: self.token,
            stream: self.stream,
            seq: self.seq,
            ts: self.ts,
            payload,
        }
        .encode(&mut self.send_buf);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME_SAMPLES as u32);
        let to = self.path.audio_destination(Instant::now());
        if send(socket, &self.send_buf, to).await {
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += self.send_buf.len() as u64;
        }
    }

    fn playout(&mut self) {
        let frames = match self.sink.pacing() {
            Pacing::Session => 1,
            Pacing::Device => self.sink.frames_wanted().min(MAX_FRAMES_PER_POLL),
        };
        let mut now = Instant::now();
        for _ in 0..frames {
            now = Instant::now();
            self.play_one(now);
        }
        self.publish_stats(now);
    }

    fn play_one(&mut self, now: Instant) {
        if self.jitter.generation() != self.decoder_generation {
            self.decoder_generation = self.jitter.generation();
            if let Err(e) = self.decoder.reset() {
                tracing::warn!(error = %e, "opus decoder reset");
            }
        }
        let out = &mut self.frame_out;
        let (kind, ts, result) = match self.jitter.pull(now) {
            Playout::Packet { ts, payload } => (
                FrameKind::Decoded,
                Some(ts),
                self.decoder.decode(payload, out),
            ),
            Playout::Fec { ts, next_payload } => (
                FrameKind::Fec,
                Some(ts),
                self.decoder.decode_fec(next_payload, out),
            ),
            Playout::Conceal { ts } => (FrameKind::Concealed, ts, self.decoder.conceal(out)),
            Playout::Silence => {
                out.fill(0.0);
                (FrameKind::Silence, None, Ok(()))
            }
        };
        let kind = match result {
            Ok(()) => kind,
            Err(e) => {
                // A packet libopus cannot read (a foreign sender's 40 ms frame, garbage with a
                // valid header): conceal it like a lost one.
                tracing::debug!(error = %e, "undecodable packet");
                if self.decoder.conceal(out).is_err() {
                    out.fill(0.0);
                }
                FrameKind::Concealed
            }
        };
        if let Err(e) = self
            .sink
            .write_frame(&self.frame_out, FrameInfo { ts, kind, at: now })
        {
            if !self.sink_failed {
                tracing::warn!(error = %e, "audio sink failed; discarding playback");
                self.sink_failed = true;
            }
        }
    }

    fn publish_stats(&mut self, now: Instant) {
        let j = self.jitter.stats();
        self.stats.late = j.late;
        self.stats.duplicates = j.duplicates;
        self.stats.lost = j.lost;
        self.stats.fec_recovered = j.fec;
        self.stats.concealed = j.concealed;
        self.stats.dropped = j.dropped;
        self.stats.path = self.path.current(now);
        self.stats.relay_bound = self.path.relay_bound();
        self.stats.jitter = self.jitter.jitter();
        self.stats.buffer_delay = self.jitter.delay();
        self.stats.target_delay = self.jitter.target();
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = self.stats;
    }
}

/// Sends a datagram; UDP errors are logged, never fatal (the path may come back).
async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) -> bool {
    match socket.send_to(bytes, to).await {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, %to, "udp send");
            false
        }
    }
}
