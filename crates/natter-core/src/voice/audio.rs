//! Where audio comes from and goes to. A session only sees these two traits, so the same pipeline
//! runs on cpal devices ([`super::device`]), WAV files, synthetic signals and in-memory recordings.
//!
//! Everything crossing the traits is 48 kHz mono in 20 ms frames; an implementation at another
//! rate or channel count converts on its side ([`super::resample`]).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::resample::{downmix_into, RateConverter};
use super::{Frame, VoiceError, FRAME_SAMPLES, SAMPLE_RATE};

/// Who decides when a frame is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// The session's 20 ms clock: files, synthetic signals, recordings (they could go faster).
    Session,
    /// A hardware clock: the session polls every few milliseconds and moves what is ready.
    Device,
}

/// What [`AudioSource::read_frame`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRead {
    /// The frame was filled.
    Frame,
    /// Nothing captured yet (device sources only); try again at the next poll.
    NotYet,
    /// The source is finished (end of a file); the session sends silence from now on.
    Ended,
}

/// A microphone, or anything standing in for one.
pub trait AudioSource: Send {
    /// Whether the session or the device sets the pace.
    fn pacing(&self) -> Pacing;
    /// Fills `frame` with the next 20 ms of 48 kHz mono audio.
    fn read_frame(&mut self, frame: &mut Frame) -> Result<SourceRead, VoiceError>;
}

/// How a played frame was made (for recordings, tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Decoded from its own packet.
    Decoded,
    /// Rebuilt from the next packet's FEC data.
    Fec,
    /// Opus packet-loss concealment.
    Concealed,
    /// Nothing to play.
    Silence,
}

/// What the session knows about a frame it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The sender's 48 kHz timestamp of the frame this stands for (`None` for silence and for
    /// concealment inserted while waiting for late packets).
    pub ts: Option<u32>,
    /// How it was made.
    pub kind: FrameKind,
    /// When the session handed it to the sink.
    pub at: Instant,
}

/// A speaker, or anything standing in for one.
pub trait AudioSink: Send {
    /// Whether the session or the device sets the pace.
    fn pacing(&self) -> Pacing;
    /// Device sinks: how many frames to write now to keep the device fed without building up
    /// delay. Session-paced sinks are written once per 20 ms and need not answer.
    fn frames_wanted(&mut self) -> usize {
        1
    }
    /// Plays one 20 ms frame of 48 kHz mono audio.
    fn write_frame(&mut self, frame: &Frame, info: FrameInfo) -> Result<(), VoiceError>;
}

/// A WAV file (any rate, any channel count, integer or float) as a microphone.
#[derive(Debug)]
pub struct WavSource {
    samples: Vec<f32>,
    at: usize,
    looping: bool,
}

impl WavSource {
    /// Reads the whole file, mixed to mono and converted to 48 kHz.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VoiceError> {
        let mut reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()?
            }
        };
        Self::from_samples(&interleaved, spec.sample_rate, spec.channels)
    }

    /// Interleaved samples at `rate` Hz with `channels` channels.
    pub fn from_samples(interleaved: &[f32], rate: u32, channels: u16) -> Result<Self, VoiceError> {
        let mut mono = Vec::with_capacity(interleaved.len() / usize::from(channels.max(1)));
        downmix_into(interleaved, usize::from(channels), &mut mono);
        Ok(WavSource {
            samples: RateConverter::convert_all(&mono, rate, SAMPLE_RATE)?,
            at: 0,
            looping: false,
        })
    }

    /// Starts again from the beginning at the end instead of ending.
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// The 48 kHz mono samples this source plays (what a receiver should hear).
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }
}

impl AudioSource for WavSource {
    fn pacing(&self) -> Pacing {
        Pacing::Session
    }

    fn read_frame(&mut self, frame: &mut Frame) -> Result<SourceRead, VoiceError> {
        if self.at >= self.samples.len() {
            if !self.looping || self.samples.is_empty() {
                return Ok(SourceRead::Ended);
            }
            self.at = 0;
        }
        let n = FRAME_SAMPLES.min(self.samples.len() - self.at);
        frame[..n].copy_from_slice(&self.samples[self.at..self.at + n]);
        frame[n..].fill(0.0);
        self.at += n;
        Ok(SourceRead::Frame)
    }
}

/// A sine tone as a microphone.
#[derive(Debug, Clone)]
pub struct SineSource {
    step: f64,
    phase: f64,
    amplitude: f32,
}

impl SineSource {
    /// A tone of `frequency` Hz at `amplitude` (full scale = 1).
    pub fn new(frequency: f32, amplitude: f32) -> Self {
        SineSource {
            step: f64::from(frequency) / f64::from(SAMPLE_RATE),
            phase: 0.0,
            amplitude,
        }
    }
}

impl AudioSource for SineSource {
    fn pacing(&self) -> Pacing {
        Pacing::Session
    }

    fn read_frame(&mut self, frame: &mut Frame) -> Result<SourceRead, VoiceError> {
        for s in frame.iter_mut() {
            *s = self.amplitude * (self.phase * std::f64::consts::TAU).sin() as f32;
            self.phase = (self.phase + self.step).fract();
        }
        Ok(SourceRead::Frame)
    }
}

/// Silence as a microphone (a side that only listens).
#[derive(Debug, Clone, Copy, Default)]
pub struct SilenceSource;

impl AudioSource for SilenceSource {
    fn pacing(&self) -> Pacing {
        Pacing::Session
    }

    fn read_frame(&mut self, frame: &mut Frame) -> Result<SourceRead, VoiceError> {
        frame.fill(0.0);
        Ok(SourceRead::Frame)
    }
}

/// A sink that discards everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn pacing(&self) -> Pacing {
        Pacing::Session
    }

    fn write_frame(&mut self, _frame: &Frame, _info: FrameInfo) -> Result<(), VoiceError> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Recorded {
    samples: Vec<f32>,
    frames: Vec<FrameInfo>,
}

/// A speaker that records: every played sample (at its rate) and what each frame was.
#[derive(Debug)]
pub struct RecordingSink {
    shared: Arc<Mutex<Recorded>>,
    converter: Option<RateConverter>,
    rate: u32,
    scratch: Vec<f32>,
}

/// The reading end of a [`RecordingSink`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recording {
    shared: Arc<Mutex<Recorded>>,
    rate: u32,
}

impl Default for RecordingSink {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingSink {
    /// Records at 48 kHz.
    pub fn new() -> Self {
        RecordingSink {
            shared: Arc::default(),
            converter: None,
            rate: SAMPLE_RATE,
            scratch: Vec::new(),
        }
    }

    /// Records at `rate` Hz, converting like a device at that rate would.
    pub fn with_rate(rate: u32) -> Result<Self, VoiceError> {
        let converter = (rate != SAMPLE_RATE)
            .then(|| RateConverter::new(SAMPLE_RATE, rate))
            .transpose()?;
        Ok(RecordingSink {
            converter,
            rate,
            scratch: vec![0.0; FRAME_SAMPLES * 4],
            ..Self::new()
        })
    }

    /// A handle to read what was recorded (keep it before boxing the sink).
    pub fn recording(&self) -> Recording {
        Recording {
            shared: Arc::clone(&self.shared),
            rate: self.rate,
        }
    }
}

impl AudioSink for RecordingSink {
    fn pacing(&self) -> Pacing {
        Pacing::Session
    }

    fn write_frame(&mut self, frame: &Frame, info: FrameInfo) -> Result<(), VoiceError> {
        // A poisoned lock means a test thread panicked while reading; keep recording anyway.
        let mut rec = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        rec.frames.push(info);
        match self.converter.as_mut() {
            None => rec.samples.extend_from_slice(frame),
            Some(c) => {
                c.push(frame);
                let n = c.pop_some(&mut self.scratch);
                rec.samples.extend_from_slice(&self.scratch[..n]);
            }
        }
        Ok(())
    }
}

impl Recording {
    /// Sample rate of [`Recording::samples`].
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Everything played so far.
    pub fn samples(&self) -> Vec<f32> {
        self.lock().samples.clone()
    }

    /// What each played frame was, in order (one per 20 ms).
    pub fn frames(&self) -> Vec<FrameInfo> {
        self.lock().frames.clone()
    }

    /// Frames played so far.
    pub fn frame_count(&self) -> usize {
        self.lock().frames.len()
    }

    /// Forgets what was recorded so far.
    pub fn clear(&self) {
        let mut rec = self.lock();
        rec.samples.clear();
        rec.frames.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_file_reads_as_48k_mono_frames_then_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 24_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).expect("create");
        for i in 0..2_400 {
            // 100 ms; left a ramp, right its negative plus 0.2: mono is 0.1 throughout.
            let l = (i as f32 / 2_400.0) * 0.5;
            w.write_sample((l * 32_767.0) as i16).expect("l");
            w.write_sample(((0.2 - l) * 32_767.0) as i16).expect("r");
        }
        w.finalize().expect("finalize");
        let mut src = WavSource::open(&path).expect("open");
        assert_eq!(src.samples().len(), 4_800);
        let mut frame = [0f32; FRAME_SAMPLES];
        for _ in 0..5 {
            assert_eq!(src.read_frame(&mut frame).expect("read"), SourceRead::Frame);
            assert!((frame[500] - 0.1).abs() < 0.01, "{}", frame[500]);
        }
        assert_eq!(src.read_frame(&mut frame).expect("read"), SourceRead::Ended);
    }

    #[test]
    fn a_recording_sink_at_44k1_converts_what_it_records() {
        let mut sink = RecordingSink::with_rate(44_100).expect("sink");
        let rec = sink.recording();
        let mut src = SineSource::new(1_000.0, 0.5);
        let mut frame = [0f32; FRAME_SAMPLES];
        for _ in 0..50 {
            src.read_frame(&mut frame).expect("sine");
            let info = FrameInfo {
                ts: None,
                kind: FrameKind::Decoded,
                at: Instant::now(),
            };
            sink.write_frame(&frame, info).expect("write");
        }
        assert_eq!(rec.frame_count(), 50);
        let n = rec.samples().len();
        assert!(
            (43_000..=44_100).contains(&n),
            "{n} samples for 1 s at 44.1 kHz"
        );
        assert_eq!(rec.sample_rate(), 44_100);
    }
}
