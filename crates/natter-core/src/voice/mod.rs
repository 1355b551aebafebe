//! Voice media (issue 8, PROTOCOL.md §5.8): everything between a microphone and UDP packets and
//! back to a speaker, usable headless. Call signalling (who calls whom, the token, the relay
//! address, `call_peer`) lives elsewhere; it hands this module a [`MediaConfig`] and, later, the
//! peer's address.
//!
//! ```text
//!  AudioSource ─► level meter ─► (mute → silence) ─► Opus encode ─► Packet::Audio ─┐
//!  (cpal mic via rtrb ring, WAV, sine)                                              │ one UDP
//!                                                                                   │ socket,
//!  AudioSink ◄─ Opus decode / FEC / PLC ◄─ JitterBuffer ◄─ PathState filter ◄───────┘ relay or
//!  (cpal speaker via rtrb ring, RecordingSink)                                        direct
//! ```
//!
//! # Using it
//!
//! ```no_run
//! # async fn call(token: [u8; 16], relay: std::net::SocketAddr, peer: std::net::SocketAddr)
//! #     -> Result<(), natter_core::voice::VoiceError> {
//! use natter_core::voice::{CpalSink, CpalSource, MediaConfig, MediaSession};
//! use natter_proto::media::Role;
//!
//! // After `call_accepted` (caller) or a successful `call_answer` (callee):
//! let config = MediaConfig::new(token, Role::Caller, relay);
//! let session = MediaSession::start(
//!     config,
//!     Box::new(CpalSource::open(None)?), // None = the system default microphone
//!     Box::new(CpalSink::open(None)?),
//! )
//! .await?;
//! // When the `call_peer` push arrives:
//! session.set_peer(peer);
//! session.set_muted(true);
//! let _meter = session.input_level(); // cheap; poll it from the UI
//! let _stats = session.stats();
//! // On `call_ended` or hang-up:
//! let _final_stats = session.stop().await;
//! # Ok(()) }
//! ```
//!
//! - [`MediaSession::start`] binds one UDP socket (same IP family as the relay; loopback when the
//!   relay is on loopback), sends `bind` to the relay every 200 ms until `bind_ack`, then every
//!   5 s, and starts sending audio through the relay at once.
//! - [`MediaSession::set_peer`] also binds straight to the peer. Audio switches to the direct
//!   address as soon as a valid packet arrives from it, and back to the relay after 1 s without
//!   one. Packets with a wrong token, role or magic, or from any address other than the relay and
//!   the peer, are dropped (counted in [`MediaStats::packets_invalid`]).
//! - Mute sends encoded silence rather than nothing: the far end's jitter buffer, the path
//!   keep-alive and the stats keep running, and a muted microphone is not revealed by a gap. The
//!   input meter keeps measuring the microphone while muted, so the UI can say "you are muted".
//! - Each session is one stream: a random stream id, `seq` and `ts` from 0. A new session (say
//!   after a device change) is a new stream, which the receiver handles as a restart.
//!
//! # Threads
//!
//! A session runs on its own thread with a single-threaded tokio runtime that owns the socket, the
//! codec, the jitter buffer, the source and the sink, so nothing in the app's runtime can delay a
//! frame. cpal devices call back on their own real-time threads; those callbacks only move samples
//! in or out of [`rtrb`] rings (no locks, no allocation, no blocking), and the session thread does
//! resampling and channel mixing on its side of the ring.
//!
//! # Modules
//!
//! - [`codec`]: Opus encoder/decoder settings (48 kHz mono, 20 ms, VOIP, in-band FEC).
//! - [`jitter`]: the adaptive jitter buffer (pure logic, driven by explicit times in tests).
//! - [`path`]: which packets to accept, where to send audio, when to send `bind`s (pure logic).
//! - [`audio`]: the [`AudioSource`]/[`AudioSink`] traits and the file/synthetic/in-memory ones.
//! - [`device`]: cpal devices, listing and choosing by name.
//! - [`resample`]: rate conversion (rubato) used by files and devices that are not at 48 kHz.

pub mod audio;
pub mod codec;
pub mod device;
mod error;
pub mod jitter;
mod level;
pub mod path;
pub mod resample;
mod session;

pub use audio::{
    AudioSink, AudioSource, FrameInfo, FrameKind, NullSink, Pacing, Recording, RecordingSink,
    SilenceSource, SineSource, SourceRead, WavSource,
};
pub use device::{
    default_devices, list_devices, AudioDevice, CpalSink, CpalSource, DefaultDevices,
};
pub use error::VoiceError;
pub use level::InputLevel;
pub use path::MediaPath;
pub use session::{MediaConfig, MediaSession, MediaStats};

/// The sample rate of everything between source and sink (Opus' native rate).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at 48 kHz: the unit of capture, encoding, packets and playout.
pub const FRAME_SAMPLES: usize = 960;
/// One frame's duration.
pub const FRAME_DURATION: std::time::Duration = std::time::Duration::from_millis(20);
/// One 20 ms frame of 48 kHz mono samples in `[-1, 1]`.
pub type Frame = [f32; FRAME_SAMPLES];
