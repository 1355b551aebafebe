//! The adaptive jitter buffer: packets go in as they arrive (any order, duplicated, late, from a
//! restarted stream), one 20 ms frame comes out per playout tick, saying what the decoder should do
//! with it. Pure logic: every call takes the time, so tests drive it step by step.
//!
//! How it decides:
//! - **Order** is by sequence number (unwrapped to 64 bits, so the 16-bit wrap is invisible).
//!   A frame missing at its turn while later ones are here is *late* if the delay is still below
//!   the target: a concealed frame is inserted without moving on (the buffer grows by 20 ms and
//!   waits for it — this is how it adapts upwards). Once the delay has reached the target it is
//!   *lost*: rebuilt from the next packet's FEC data if that packet is here, else concealed (Opus
//!   PLC), and playout moves on. Nothing newer here at all is an *underrun*: up to 100 ms of
//!   concealment without moving on, then silence, and after 500 ms the buffer primes again on the
//!   next packet (with a fresh delay estimate: the far end paused).
//! - **Delay** is measured against the sender's clock: for the frame being played,
//!   `now − ts/48 kHz − min transit` over the last 5 s is how long the fastest recent packet would
//!   have waited. The **target** is the 95th percentile of each packet's transit above that
//!   minimum, plus one frame, clamped to `[min_delay, max_delay]` (40 ms … 200 ms by default):
//!   on a quiet network it sits at 40 ms, under jitter it grows to cover it.
//! - **Shrinking**: 200 ms in a row more than 15 ms above the target drops one frame; more than
//!   200 ms above the target (say after a stall) drops enough frames at once to get back.
//! - **Priming**: the first packet of a stream waits until `target` has passed since it arrived.
//! - **Restarts**: a new stream id resets everything (and bumps [`JitterBuffer::generation`], so
//!   the caller resets its decoder); packets of the last few retired streams are ignored, so a
//!   straggler cannot flip back. A jump of more than 64 frames in one stream primes again there.

use std::time::{Duration, Instant};

use super::FRAME_SAMPLES;

/// Frames the buffer can hold ahead of the playout point (1.28 s).
pub const SLOTS: usize = 64;
/// Largest payload kept (a UDP datagram of at most 1500 bytes minus the 29-byte header).
const MAX_PAYLOAD: usize = natter_proto::media::MAX_PACKET - natter_proto::media::AUDIO_HEADER_LEN;
/// Transit samples kept for the delay estimate (5 s of 20 ms packets).
const WINDOW: usize = 250;
/// Underrun frames concealed before switching to silence (Opus PLC fades out by itself).
const PLC_FRAMES: u32 = 5;
/// Underrun frames after which the far end is taken to have paused: prime again.
const REPRIME_AFTER: u32 = 25;
/// Retired stream ids remembered.
const RETIRED: usize = 4;
const FRAME_SECS: f64 = FRAME_SAMPLES as f64 / 48_000.0;

/// Bounds of the playout delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Lowest target delay (what a quiet network gets).
    pub min_delay: Duration,
    /// Highest target delay, however bad the jitter.
    pub max_delay: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(200),
        }
    }
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Accepted,
    /// Stored, as the first packet of a new stream (the old one was dropped).
    Restarted,
    /// Already here; dropped.
    Duplicate,
    /// Its turn has passed; dropped.
    Late,
    /// From a stream that was replaced; dropped.
    Retired,
}

/// What to play for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode this packet.
    Packet {
        /// Sender timestamp of the frame.
        ts: u32,
        /// The Opus packet.
        payload: &'a [u8],
    },
    /// The frame was lost: decode the FEC data of the packet that follows it.
    Fec {
        /// Sender timestamp of the lost frame.
        ts: u32,
        /// The next packet (played again normally at its own turn).
        next_payload: &'a [u8],
    },
    /// Conceal (Opus PLC): for a lost frame (`ts` is its timestamp) or an underrun (`None`,
    /// an inserted frame that stretches the delay).
    Conceal {
        /// Sender timestamp of the lost frame, if this stands in for one.
        ts: Option<u32>,
    },
    /// Nothing to play: silence.
    Silence,
}

/// Counters since the buffer was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets stored.
    pub accepted: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets dropped because their turn had passed.
    pub late: u64,
    /// Frames played from their own packet.
    pub played: u64,
    /// Frames whose packet never came in time (= `fec` + concealed losses).
    pub lost: u64,
    /// Lost frames rebuilt from the next packet's FEC data.
    pub fec: u64,
    /// Frames concealed by PLC (lost frames without FEC, and underrun inserts).
    pub concealed: u64,
    /// Concealed frames inserted on underrun (stretching the delay).
    pub stretched: u64,
    /// Frames dropped to bring the delay back to the target.
    pub dropped: u64,
    /// Streams started (the first one included).
    pub streams: u64,
}

#[derive(Debug)]
struct Slot {
    /// Extended sequence number held, or `None` when free.
    seq: Option<i64>,
    ts: i64,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Nothing to play; a packet at or after `floor` starts priming.
    Idle { floor: Option<i64> },
    /// Waiting for the first packet (`base`, the lowest here) to have waited the target delay;
    /// nothing before `floor` (already played) is taken.
    Priming {
        first_arrival: f64,
        base: i64,
        floor: Option<i64>,
    },
    /// Playing; `next` is the frame to play at the next pull.
    Playing { next: i64 },
}

/// The jitter buffer for one incoming direction of a call.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    epoch: Instant,
    stream: Option<u32>,
    retired: [Option<u32>; RETIRED],
    generation: u32,
    slots: Vec<Slot>,
    /// Last (sequence, extended sequence) seen, for unwrapping.
    seq_ref: (u16, i64),
    ts_ref: (u32, i64),
    newest: i64,
    state: State,
    /// Extended timestamp of the frame to play next.
    next_ts: i64,
    /// (arrival − ts/48 kHz) of recent packets, seconds; a ring of `WINDOW`.
    transits: Vec<f64>,
    transit_at: usize,
    scratch: Vec<f64>,
    /// (min transit, target) computed from `transits`, or `None` when stale.
    estimate: Option<(f64, f64)>,
    last_transit: Option<f64>,
    jitter: f64,
    underrun: u32,
    over_target: u32,
    delay: f64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer; `now` anchors its clock.
    pub fn new(config: JitterConfig, now: Instant) -> Self {
        JitterBuffer {
            config,
            epoch: now,
            stream: None,
            retired: [None; RETIRED],
            generation: 0,
            slots: (0..SLOTS)
                .map(|_| Slot {
                    seq: None,
                    ts: 0,
                    data: Vec::with_capacity(MAX_PAYLOAD),
                })
                .collect(),
            seq_ref: (0, 0),
            ts_ref: (0, 0),
            newest: 0,
            state: State::Idle { floor: None },
            next_ts: 0,
            transits: Vec::with_capacity(WINDOW),
            transit_at: 0,
            scratch: Vec::with_capacity(WINDOW),
            estimate: None,
            last_transit: None,
            jitter: 0.0,
            underrun: 0,
            over_target: 0,
            delay: 0.0,
            stats: JitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Bumped at every stream (re)start: the decoder must be reset when it changes.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Interarrival jitter (RFC 3550 §6.4.1 estimator).
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter.max(0.0))
    }

    /// Current playout delay above the fastest recent packet's transit (see the module docs).
    pub fn delay(&self) -> Duration {
        Duration::from_secs_f64(self.delay.max(0.0))
    }

    /// The delay the buffer currently aims for.
    pub fn target(&mut self) -> Duration {
        Duration::from_secs_f64(self.estimate().1)
    }

    /// Whether frames are being played (not idle or priming).
    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    fn secs(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.epoch).as_secs_f64()
    }

    /// Starts buffering afresh with packet `ext`, which arrived at `t`.
    fn prime(&mut self, t: f64, ext: i64, floor: Option<i64>) {
        self.clear_slots();
        self.state = State::Priming {
            first_arrival: t,
            base: ext,
            floor,
        };
        self.newest = ext;
    }

    /// Stores an arriving packet.
    pub fn push(
        &mut self,
        stream: u32,
        seq: u16,
        ts: u32,
        payload: &[u8],
        now: Instant,
    ) -> PushOutcome {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            // Not a frame we could decode; the path layer already bounds datagrams.
            return PushOutcome::Late;
        }
        let mut restarted = false;
        match self.stream {
            Some(current) if current == stream => {}
            Some(current) => {
                if self.retired.contains(&Some(stream)) {
                    return PushOutcome::Retired;
                }
                self.retired.rotate_right(1);
                self.retired[0] = Some(current);
                self.start_stream(stream, seq, ts);
                restarted = true;
            }
            None => {
                self.start_stream(stream, seq, ts);
                restarted = self.stats.streams > 1;
            }
        }
        let t = self.secs(now);
        let ext = unwrap16(&mut self.seq_ref, seq);
        let ext_ts = unwrap32(&mut self.ts_ref, ts);
        if let State::Idle { floor: Some(_) } = self.state {
            // The far end paused and resumes: its old transits say nothing about the new ones.
            self.reset_estimate();
        }
        self.record_transit(t - ext_ts as f64 / 48_000.0);

        match self.state {
            State::Idle { floor } => {
                if floor.is_some_and(|f| ext < f) {
                    self.stats.late += 1;
                    return PushOutcome::Late;
                }
                self.prime(t, ext, floor);
            }
            State::Priming {
                first_arrival,
                base,
                floor,
            } => {
                if ext < base {
                    if self.newest - ext >= SLOTS as i64 || floor.is_some_and(|f| ext < f) {
                        self.stats.late += 1;
                        return PushOutcome::Late;
                    }
                    self.state = State::Priming {
                        first_arrival,
                        base: ext,
                        floor,
                    };
                } else if ext - base >= SLOTS as i64 {
                    self.prime(t, ext, floor);
                }
            }
            State::Playing { next } => {
                if ext < next {
                    self.stats.late += 1;
                    return PushOutcome::Late;
                }
                if ext - next >= SLOTS as i64 {
                    // A jump no buffer could bridge: start over from here.
                    self.clear_slots();
                    self.state = State::Priming {
                        first_arrival: t,
                        base: ext,
                        floor: Some(next),
                    };
                    self.newest = ext;
                }
            }
        }
        let slot = &mut self.slots[slot_index(ext)];
        if slot.seq == Some(ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        slot.seq = Some(ext);
        slot.ts = ext_ts;
        slot.data.clear();
        slot.data.extend_from_slice(payload);
        self.newest = self.newest.max(ext);
        self.stats.accepted += 1;
        if restarted {
            PushOutcome::Restarted
        } else {
            PushOutcome::Accepted
        }
    }

    /// The next frame to play (call once per 20 ms of playback).
    pub fn pull(&mut self, now: Instant) -> Playout<'_> {
        let t = self.secs(now);
        let (min_transit, target) = self.estimate();
        let next = match self.state {
            State::Idle { .. } => return Playout::Silence,
            State::Priming {
                first_arrival,
                base,
                ..
            } => {
                if t + FRAME_SECS / 2.0 < first_arrival + target {
                    return Playout::Silence;
                }
                self.state = State::Playing { next: base };
                self.next_ts = self.slots[slot_index(base)].ts;
                self.underrun = 0;
                self.over_target = 0;
                base
            }
            State::Playing { next } => next,
        };
        let next = self.shrink(next, t, min_transit, target);

        let here = |slots: &[Slot], seq: i64| slots[slot_index(seq)].seq == Some(seq);
        if here(&self.slots, next) {
            let i = slot_index(next);
            self.slots[i].seq = None;
            self.next_ts = self.slots[i].ts + FRAME_SAMPLES as i64;
            self.state = State::Playing { next: next + 1 };
            self.underrun = 0;
            self.stats.played += 1;
            let slot = &self.slots[i];
            return Playout::Packet {
                ts: slot.ts as u32,
                payload: &slot.data,
            };
        }
        if self.newest > next {
            if self.delay < target - FRAME_SECS / 2.0 {
                // Later frames are here but there is delay to spare: it is probably just late.
                self.stats.concealed += 1;
                self.stats.stretched += 1;
                return Playout::Conceal { ts: None };
            }
            // Later frames are here and waiting longer would exceed the target: it is lost.
            let ts = self.next_ts;
            self.next_ts += FRAME_SAMPLES as i64;
            self.state = State::Playing { next: next + 1 };
            self.underrun = 0;
            self.stats.lost += 1;
            if here(&self.slots, next + 1) {
                self.stats.fec += 1;
                return Playout::Fec {
                    ts: ts as u32,
                    next_payload: &self.slots[slot_index(next + 1)].data,
                };
            }
            self.stats.concealed += 1;
            return Playout::Conceal {
                ts: Some(ts as u32),
            };
        }
        // Underrun: nothing newer to play. Stretch; do not move on.
        self.underrun += 1;
        if self.underrun > REPRIME_AFTER {
            self.state = State::Idle { floor: Some(next) };
            return Playout::Silence;
        }
        if self.underrun <= PLC_FRAMES {
            self.stats.concealed += 1;
            self.stats.stretched += 1;
            return Playout::Conceal { ts: None };
        }
        Playout::Silence
    }

    /// Drops frames when the delay stays above the target; returns the frame to play.
    fn shrink(&mut self, mut next: i64, t: f64, min_transit: f64, target: f64) -> i64 {
        let ts = if self.slots[slot_index(next)].seq == Some(next) {
            self.slots[slot_index(next)].ts
        } else {
            self.next_ts
        };
        self.delay = t - ts as f64 / 48_000.0 - min_transit;
        let excess = self.delay - target;
        let mut drop = 0i64;
        if excess > 0.2 {
            drop = (excess / FRAME_SECS).floor() as i64;
        } else if excess > 0.015 {
            self.over_target += 1;
            if self.over_target >= 10 {
                drop = 1;
            }
        } else {
            self.over_target = 0;
        }
        // Never drop past the newest frame here: that would only turn into an underrun.
        drop = drop.min(self.newest - next).max(0);
        if drop > 0 {
            for seq in next..next + drop {
                let slot = &mut self.slots[slot_index(seq)];
                if slot.seq == Some(seq) {
                    slot.seq = None;
                }
            }
            next += drop;
            self.next_ts += drop * FRAME_SAMPLES as i64;
            if self.slots[slot_index(next)].seq == Some(next) {
                self.next_ts = self.slots[slot_index(next)].ts;
            }
            self.stats.dropped += drop as u64;
            self.delay -= drop as f64 * FRAME_SECS;
            self.over_target = 0;
            self.state = State::Playing { next };
        }
        next
    }

    fn start_stream(&mut self, stream: u32, seq: u16, ts: u32) {
        self.stream = Some(stream);
        self.generation = self.generation.wrapping_add(1);
        self.stats.streams += 1;
        self.clear_slots();
        // Extended values start at the wire values, so `ext as u32` is the wire timestamp again.
        self.seq_ref = (seq, i64::from(seq));
        self.ts_ref = (ts, i64::from(ts));
        self.newest = 0;
        self.state = State::Idle { floor: None };
        self.reset_estimate();
        self.underrun = 0;
        self.over_target = 0;
    }

    fn reset_estimate(&mut self) {
        self.transits.clear();
        self.transit_at = 0;
        self.estimate = None;
        self.last_transit = None;
    }

    fn clear_slots(&mut self) {
        for slot in &mut self.slots {
            slot.seq = None;
        }
    }

    fn record_transit(&mut self, transit: f64) {
        if let Some(last) = self.last_transit {
            // RFC 3550 §6.4.1: J += (|D| - J) / 16.
            self.jitter += ((transit - last).abs() - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
        if self.transits.len() < WINDOW {
            self.transits.push(transit);
        } else {
            self.transits[self.transit_at] = transit;
        }
        self.transit_at = (self.transit_at + 1) % WINDOW;
        self.estimate = None;
    }

    /// (min transit, target delay) over the window, in seconds.
    fn estimate(&mut self) -> (f64, f64) {
        if let Some(e) = self.estimate {
            return e;
        }
        let min_delay = self.config.min_delay.as_secs_f64();
        let max_delay = self.config.max_delay.as_secs_f64().max(min_delay);
        if self.transits.is_empty() {
            return (0.0, min_delay);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.transits);
        self.scratch.sort_by(f64::total_cmp);
        let min = self.scratch[0];
        let p95 = self.scratch[(self.scratch.len() * 95).div_ceil(100) - 1] - min;
        let target = (p95 + FRAME_SECS).clamp(min_delay, max_delay);
        self.estimate = Some((min, target));
        (min, target)
    }
}

fn slot_index(seq: i64) -> usize {
    seq.rem_euclid(SLOTS as i64) as usize
}

/// Extends a wrapping 16-bit counter to 64 bits around the newest value seen.
fn unwrap16(reference: &mut (u16, i64), value: u16) -> i64 {
    let ext = reference.1 + i64::from(value.wrapping_sub(reference.0) as i16);
    if ext > reference.1 {
        *reference = (value, ext);
    }
    ext
}

/// Extends a wrapping 32-bit counter to 64 bits around the newest value seen.
fn unwrap32(reference: &mut (u32, i64), value: u32) -> i64 {
    let ext = reference.1 + i64::from(value.wrapping_sub(reference.0) as i32);
    if ext > reference.1 {
        *reference = (value, ext);
    }
    ext
}

#[cfg(test)]
mod tests;
