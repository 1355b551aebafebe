//! cpal devices: listing, choosing by name, and the microphone and speaker as
//! [`AudioSource`]/[`AudioSink`].
//!
//! The real-time rule: a cpal callback only converts samples to or from `f32`, mixes channels to
//! mono (capture) or copies mono to every channel (playback), and moves them through an [`rtrb`]
//! ring. No lock, no allocation, no blocking, no logging: a full ring drops samples and an empty
//! one plays silence, both counted in atomics. Resampling to and from 48 kHz happens on the
//! session thread, on the other side of the ring.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::audio::{AudioSink, AudioSource, FrameInfo, Pacing, SourceRead};
use super::resample::RateConverter;
use super::{Frame, VoiceError, FRAME_SAMPLES, SAMPLE_RATE};

/// One audio device as the settings screen lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDevice {
    /// Human-readable name (what [`CpalSource::open`] / [`CpalSink::open`] take).
    pub name: String,
    /// The backend's stable id (also accepted by `open`).
    pub id: String,
    /// Can capture.
    pub is_input: bool,
    /// Can play.
    pub is_output: bool,
}

/// The system's default devices, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultDevices {
    /// Default microphone.
    pub input: Option<String>,
    /// Default speaker.
    pub output: Option<String>,
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| device.to_string())
}

fn device_id(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| device.to_string())
}

/// Every device of the default host.
pub fn list_devices() -> Result<Vec<AudioDevice>, VoiceError> {
    let host = cpal::default_host();
    Ok(host
        .devices()?
        .map(|d| AudioDevice {
            name: device_name(&d),
            id: device_id(&d),
            is_input: d.supports_input(),
            is_output: d.supports_output(),
        })
        .collect())
}

/// The default input and output devices' names.
pub fn default_devices() -> DefaultDevices {
    let host = cpal::default_host();
    DefaultDevices {
        input: host.default_input_device().map(|d| device_name(&d)),
        output: host.default_output_device().map(|d| device_name(&d)),
    }
}

fn find_device(name: Option<&str>, input: bool) -> Result<cpal::Device, VoiceError> {
    let host = cpal::default_host();
    let which = if input { "input" } else { "output" };
    match name {
        None => if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or_else(|| VoiceError::NoDevice(format!("no default {which} device"))),
        Some(name) => host
            .devices()?
            .filter(|d| {
                if input {
                    d.supports_input()
                } else {
                    d.supports_output()
                }
            })
            .find(|d| device_name(d) == name || device_id(d) == name || d.to_string() == name)
            .ok_or_else(|| VoiceError::NoDevice(format!("no {which} device named {name:?}"))),
    }
}

/// Picks a stream configuration: 48 kHz if the device has it (no resampling), in a format we
/// convert, preferring `f32`; else the device's default.
fn choose_config(
    device: &cpal::Device,
    input: bool,
) -> Result<(StreamConfig, SampleFormat), VoiceError> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = if input {
        device.supported_input_configs()?.collect()
    } else {
        device.supported_output_configs()?.collect()
    };
    let usable = |f: SampleFormat| {
        matches!(
            f,
            SampleFormat::F32 | SampleFormat::I16 | SampleFormat::I32 | SampleFormat::U16
        )
    };
    let rank = |f: SampleFormat| match f {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        _ => 3,
    };
    let best = ranges
        .iter()
        .filter(|r| usable(r.sample_format()) && r.contains_rate(SAMPLE_RATE))
        .min_by_key(|r| (rank(r.sample_format()), r.channels()));
    let supported = match best {
        Some(r) => r.with_sample_rate(SAMPLE_RATE),
        None => {
            if input {
                device.default_input_config()?
            } else {
                device.default_output_config()?
            }
        }
    };
    let format = supported.sample_format();
    if !usable(format) {
        return Err(VoiceError::UnsupportedFormat(format!("{format:?}")));
    }
    // The device's own buffer size: through ALSA's PulseAudio plugin some fixed sizes (480 and
    // 960 frames, say) made capture deliver nothing at all, while the default always worked.
    let config = supported.config();
    Ok((config, format))
}

/// The capture buffer: one 20 ms frame when the device allows it. With the device's default,
/// ALSA's PulseAudio plugin delivered no samples at all within seconds (measured on the CI
/// machine's null-sink monitor), while fixed sizes of 960–1920 frames delivered steadily.
fn capture_buffer(device: &cpal::Device) -> cpal::BufferSize {
    const FRAMES: u32 = crate::voice::FRAME_SAMPLES as u32;
    let fits = device.supported_input_configs().is_ok_and(|mut ranges| {
        ranges.any(|r| match r.buffer_size() {
            cpal::SupportedBufferSize::Range { min, max } => (*min..=*max).contains(&FRAMES),
            cpal::SupportedBufferSize::Unknown => false,
        })
    });
    if fits {
        cpal::BufferSize::Fixed(FRAMES)
    } else {
        cpal::BufferSize::Default
    }
}

/// Counters the callbacks update.
#[derive(Debug, Default)]
struct CallbackCounters {
    /// Samples dropped (capture ring full) or silence played (playback ring empty).
    xruns: AtomicU64,
    /// Frames the device asked for in its last callback (playback).
    last_callback: AtomicUsize,
    /// Errors the backend reported that the stream survives (xruns, a reroute …).
    glitches: AtomicU64,
    /// The backend reported that the stream is gone (device unplugged …).
    failed: AtomicBool,
}

impl CallbackCounters {
    /// cpal's error callback: xruns and reroutes are glitches the stream survives; only a lost
    /// device, host or stream ends it.
    fn on_error(&self, error: &cpal::Error) {
        use cpal::ErrorKind;
        match error.kind() {
            ErrorKind::DeviceNotAvailable
            | ErrorKind::HostUnavailable
            | ErrorKind::StreamInvalidated
            | ErrorKind::PermissionDenied => self.failed.store(true, Ordering::Relaxed),
            _ => {
                self.glitches.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A microphone through cpal.
pub struct CpalSource {
    _stream: cpal::Stream,
    ring: rtrb::Consumer<f32>,
    converter: RateConverter,
    chunk: Vec<f32>,
    counters: Arc<CallbackCounters>,
    name: String,
}

impl std::fmt::Debug for CpalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpalSource({:?}, {:?})", self.name, self.converter)
    }
}

impl CpalSource {
    /// Opens the input device called `name` (its name or id, see [`list_devices`]), or the
    /// default one, and starts capturing.
    pub fn open(name: Option<&str>) -> Result<Self, VoiceError> {
        let device = find_device(name, true)?;
        let (mut config, format) = choose_config(&device, true)?;
        config.buffer_size = capture_buffer(&device);
        let rate = config.sample_rate;
        // Half a second of mono at the device rate: room for a session thread that hiccups.
        let (producer, ring) = rtrb::RingBuffer::new(rate as usize / 2);
        let counters = Arc::new(CallbackCounters::default());
        let stream = match format {
            SampleFormat::F32 => build_input::<f32>(&device, config, producer, &counters),
            SampleFormat::I16 => build_input::<i16>(&device, config, producer, &counters),
            SampleFormat::I32 => build_input::<i32>(&device, config, producer, &counters),
            SampleFormat::U16 => build_input::<u16>(&device, config, producer, &counters),
            other => return Err(VoiceError::UnsupportedFormat(format!("{other:?}"))),
        }?;
        stream.play()?;
        let name = device_name(&device);
        tracing::info!(device = %name, rate, channels = config.channels, ?format, "microphone open");
        Ok(CpalSource {
            _stream: stream,
            ring,
            converter: RateConverter::new(rate, SAMPLE_RATE)?,
            chunk: vec![0.0; rate as usize / 50],
            counters,
            name,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Samples dropped because the session did not keep up.
    pub fn overruns(&self) -> u64 {
        self.counters.xruns.load(Ordering::Relaxed)
    }

    /// Glitches the backend reported (xruns, reroutes).
    pub fn glitches(&self) -> u64 {
        self.counters.glitches.load(Ordering::Relaxed)
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut producer: rtrb::Producer<f32>,
    counters: &Arc<CallbackCounters>,
) -> Result<cpal::Stream, VoiceError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let scale = 1.0 / channels as f32;
    let data_counters = Arc::clone(counters);
    let error_counters = Arc::clone(counters);
    let stream = device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _info| {
            let frames = data.len() / channels;
            let mixed = data
                .chunks_exact(channels)
                .map(|frame| frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale);
            let written = match producer.write_chunk_uninit(frames.min(producer.slots())) {
                Ok(chunk) => chunk.fill_from_iter(mixed),
                Err(_) => 0,
            };
            if written < frames {
                data_counters
                    .xruns
                    .fetch_add((frames - written) as u64, Ordering::Relaxed);
            }
        },
        move |err| error_counters.on_error(&err),
        None,
    )?;
    Ok(stream)
}

impl AudioSource for CpalSource {
    fn pacing(&self) -> Pacing {
        Pacing::Device
    }

    fn read_frame(&mut self, frame: &mut Frame) -> Result<SourceRead, VoiceError> {
        if self.counters.failed.load(Ordering::Relaxed) {
            return Err(VoiceError::Device(format!("{} stopped", self.name)));
        }
        loop {
            if self.converter.pop(frame) {
                return Ok(SourceRead::Frame);
            }
            let n = self.ring.slots().min(self.chunk.len());
            if n == 0 {
                return Ok(SourceRead::NotYet);
            }
            let Ok(chunk) = self.ring.read_chunk(n) else {
                return Ok(SourceRead::NotYet);
            };
            let (a, b) = chunk.as_slices();
            self.chunk[..a.len()].copy_from_slice(a);
            self.chunk[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
            self.converter.push(&self.chunk[..n]);
        }
    }
}

/// A speaker through cpal.
pub struct CpalSink {
    _stream: cpal::Stream,
    ring: rtrb::Producer<f32>,
    converter: RateConverter,
    scratch: Vec<f32>,
    rate: u32,
    counters: Arc<CallbackCounters>,
    name: String,
}

impl std::fmt::Debug for CpalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpalSink({:?}, {:?})", self.name, self.converter)
    }
}

impl CpalSink {
    /// Opens the output device called `name` (its name or id, see [`list_devices`]), or the
    /// default one, and starts playing (silence until frames arrive).
    pub fn open(name: Option<&str>) -> Result<Self, VoiceError> {
        let device = find_device(name, false)?;
        let (config, format) = choose_config(&device, false)?;
        let rate = config.sample_rate;
        let (ring, consumer) = rtrb::RingBuffer::new(rate as usize / 2);
        let counters = Arc::new(CallbackCounters::default());
        let stream = match format {
            SampleFormat::F32 => build_output::<f32>(&device, config, consumer, &counters),
            SampleFormat::I16 => build_output::<i16>(&device, config, consumer, &counters),
            SampleFormat::I32 => build_output::<i32>(&device, config, consumer, &counters),
            SampleFormat::U16 => build_output::<u16>(&device, config, consumer, &counters),
            other => return Err(VoiceError::UnsupportedFormat(format!("{other:?}"))),
        }?;
        stream.play()?;
        let name = device_name(&device);
        tracing::info!(device = %name, rate, channels = config.channels, ?format, "speaker open");
        Ok(CpalSink {
            _stream: stream,
            ring,
            converter: RateConverter::new(SAMPLE_RATE, rate)?,
            scratch: vec![0.0; FRAME_SAMPLES * 4],
            rate,
            counters,
            name,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Samples of silence played because no audio was ready.
    pub fn underruns(&self) -> u64 {
        self.counters.xruns.load(Ordering::Relaxed)
    }

    /// Glitches the backend reported (xruns, reroutes).
    pub fn glitches(&self) -> u64 {
        self.counters.glitches.load(Ordering::Relaxed)
    }
}

fn build_output<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut consumer: rtrb::Consumer<f32>,
    counters: &Arc<CallbackCounters>,
) -> Result<cpal::Stream, VoiceError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let data_counters = Arc::clone(counters);
    let error_counters = Arc::clone(counters);
    let stream = device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _info| {
            let frames = data.len() / channels;
            data_counters.last_callback.store(frames, Ordering::Relaxed);
            let n = frames.min(consumer.slots());
            let mut out = data.chunks_exact_mut(channels);
            if let Ok(chunk) = consumer.read_chunk(n) {
                let (a, b) = chunk.as_slices();
                for (frame, &v) in out.by_ref().zip(a.iter().chain(b.iter())) {
                    frame.fill(T::from_sample(v));
                }
                chunk.commit_all();
            }
            // cpal pre-fills with silence, but say so explicitly for the frames not covered.
            let mut missing = 0u64;
            for frame in out {
                frame.fill(T::EQUILIBRIUM);
                missing += 1;
            }
            if missing > 0 {
                data_counters.xruns.fetch_add(missing, Ordering::Relaxed);
            }
        },
        move |err| error_counters.on_error(&err),
        None,
    )?;
    Ok(stream)
}

impl AudioSink for CpalSink {
    fn pacing(&self) -> Pacing {
        Pacing::Device
    }

    fn frames_wanted(&mut self) -> usize {
        // Keep one callback plus one frame queued: enough that the device never starves between
        // two polls of the session (every 5 ms), little enough to add no needless delay.
        let queued = self.ring.buffer().capacity() - self.ring.slots() + self.converter.available();
        let callback = self.counters.last_callback.load(Ordering::Relaxed);
        let frame_at_rate = self.rate as usize / 50;
        let want_queued = callback.max(frame_at_rate / 2) + frame_at_rate;
        usize::from(queued < want_queued)
    }

    fn write_frame(&mut self, frame: &Frame, _info: FrameInfo) -> Result<(), VoiceError> {
        if self.counters.failed.load(Ordering::Relaxed) {
            return Err(VoiceError::Device(format!("{} stopped", self.name)));
        }
        self.converter.push(frame);
        let n = self.converter.pop_some(&mut self.scratch);
        let (_, dropped) = self.ring.push_partial_slice(&self.scratch[..n]);
        if !dropped.is_empty() {
            tracing::debug!(dropped = dropped.len(), "speaker ring full");
        }
        Ok(())
    }
}
