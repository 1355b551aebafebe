//! Helpers for the voice tests: a stand-in for the server's UDP relay (with injectable loss), the
//! speech fixture, aligning what a receiver played with what the sender captured, and scoring it
//! (PESQ through Python's `pesq` package when it is installed, segmental SNR and correlation in
//! Rust always).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natter_core::voice::codec::OpusDecoder;
use natter_core::voice::resample::RateConverter;
use natter_core::voice::{FrameInfo, FRAME_SAMPLES};
use natter_proto::media::{Packet, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

pub const TOKEN: [u8; 16] = *b"natter-test-call";

/// The committed espeak-ng sentence (16 kHz mono, ~9.7 s).
pub fn speech_wav() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/speech.wav")
}

/// An audio packet the relay forwarded.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub to: Role,
    pub seq: u16,
    pub ts: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct RelayState {
    caller: Option<SocketAddr>,
    callee: Option<SocketAddr>,
    forwarded: Vec<Forwarded>,
    dropped_by_loss: Vec<Role>,
}

/// A minimal §5.8 relay on 127.0.0.1: records each role's address from its `bind`, answers
/// `bind_ack`, forwards audio between the two recorded addresses, and drops a seeded random share
/// of audio packets when asked to.
pub struct TestRelay {
    pub addr: SocketAddr,
    socket: Arc<UdpSocket>,
    state: Arc<Mutex<RelayState>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    pub async fn start(loss: f64, seed: u64) -> TestRelay {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind relay"));
        let addr = socket.local_addr().expect("relay addr");
        let state = Arc::new(Mutex::new(RelayState::default()));
        let task = tokio::spawn(relay_loop(
            Arc::clone(&socket),
            Arc::clone(&state),
            loss,
            seed,
        ));
        TestRelay {
            addr,
            socket,
            state,
            task,
        }
    }

    /// Audio packets forwarded to `role`, in forwarding order.
    pub fn forwarded_to(&self, role: Role) -> Vec<Forwarded> {
        let state = self.state.lock().expect("relay state");
        state
            .forwarded
            .iter()
            .filter(|f| f.to == role)
            .cloned()
            .collect()
    }

    /// Audio packets to `role` the relay dropped on purpose.
    pub fn dropped_to(&self, role: Role) -> usize {
        let state = self.state.lock().expect("relay state");
        state.dropped_by_loss.iter().filter(|r| **r == role).count()
    }

    /// Sends raw bytes from the relay's own address (for packets a real relay would never send).
    pub async fn send_raw(&self, bytes: &[u8], to: SocketAddr) {
        self.socket.send_to(bytes, to).await.expect("send raw");
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_loop(socket: Arc<UdpSocket>, state: Arc<Mutex<RelayState>>, loss: f64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(packet) = Packet::decode(&buf[..n]) else {
            continue;
        };
        if packet.token() != &TOKEN {
            continue;
        }
        let reply = {
            let mut st = state.lock().expect("relay state");
            match packet {
                Packet::Bind { role, token } => {
                    match role {
                        Role::Caller => st.caller = Some(from),
                        Role::Callee => st.callee = Some(from),
                    }
                    let mut ack = Vec::new();
                    Packet::BindAck { role, token }.encode(&mut ack);
                    Some((ack, from))
                }
                Packet::Audio {
                    role,
                    seq,
                    ts,
                    payload,
                    ..
                } => {
                    let (own, other) = match role {
                        Role::Caller => (st.caller, st.callee),
                        Role::Callee => (st.callee, st.caller),
                    };
                    match (own, other) {
                        (Some(own), Some(other)) if own == from => {
                            // Seeded: the same losses on every run.
                            if rng.gen_bool(loss) {
                                st.dropped_by_loss.push(role.other());
                                None
                            } else {
                                st.forwarded.push(Forwarded {
                                    to: role.other(),
                                    seq,
                                    ts,
                                    payload: payload.to_vec(),
                                });
                                Some((buf[..n].to_vec(), other))
                            }
                        }
                        _ => None,
                    }
                }
                Packet::BindAck { .. } => None,
            }
        };
        if let Some((bytes, to)) = reply {
            let _ = socket.send_to(&bytes, to).await;
        }
    }
}

/// Waits until `check` holds, polling every 20 ms, or fails loudly after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a receiver played, put back on the sender's timeline: frame `n` (sender timestamp
/// `n × 960`, since streams start at 0) at samples `n × 960 …`. Frames inserted while waiting
/// for late packets, and silence, have no timestamp and are left out. Returns the samples and
/// which frames are present.
pub fn on_sender_timeline(samples: &[f32], frames: &[FrameInfo]) -> (Vec<f32>, Vec<bool>) {
    let last = frames
        .iter()
        .filter_map(|f| f.ts)
        .map(|ts| ts as usize / FRAME_SAMPLES)
        .max()
        .unwrap_or(0);
    let mut out = vec![0f32; (last + 1) * FRAME_SAMPLES];
    let mut present = vec![false; last + 1];
    for (i, info) in frames.iter().enumerate() {
        let Some(ts) = info.ts else { continue };
        let n = ts as usize / FRAME_SAMPLES;
        let Some(src) = samples.get(i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES) else {
            continue;
        };
        out[n * FRAME_SAMPLES..(n + 1) * FRAME_SAMPLES].copy_from_slice(src);
        present[n] = true;
    }
    (out, present)
}

/// Decodes a received packet stream the naive way: packets in timestamp order, a lost frame
/// (a gap in the sequence) replaced by silence, no FEC, no concealment.
pub fn decode_silence_filled(packets: &[Forwarded]) -> (Vec<f32>, Vec<bool>) {
    let mut sorted = packets.to_vec();
    sorted.sort_by_key(|p| p.ts);
    let last = sorted.last().map_or(0, |p| p.ts as usize / FRAME_SAMPLES);
    let first = sorted.first().map_or(0, |p| p.ts as usize / FRAME_SAMPLES);
    let mut out = vec![0f32; (last + 1) * FRAME_SAMPLES];
    let mut present = vec![false; last + 1];
    let mut decoder = OpusDecoder::new().expect("decoder");
    for p in &sorted {
        let n = p.ts as usize / FRAME_SAMPLES;
        decoder
            .decode(
                &p.payload,
                &mut out[n * FRAME_SAMPLES..(n + 1) * FRAME_SAMPLES],
            )
            .expect("decode");
    }
    for flag in present.iter_mut().skip(first) {
        *flag = true;
    }
    (out, present)
}

/// The lag (in samples, 0 ≤ lag < `max_lag`) by which `out` trails `reference`, from the
/// cross-correlation over the loudest second of the reference.
pub fn find_lag(reference: &[f32], out: &[f32], max_lag: usize) -> usize {
    let window = 48_000.min(reference.len().saturating_sub(max_lag));
    let energy = |s: &[f32]| s.iter().map(|x| x * x).sum::<f32>();
    let start = (0..reference.len().saturating_sub(window + max_lag))
        .step_by(4_800)
        .max_by(|a, b| {
            energy(&reference[*a..*a + window]).total_cmp(&energy(&reference[*b..*b + window]))
        })
        .unwrap_or(0);
    let correlation = |lag: usize| -> f32 {
        (start..start + window)
            .filter(|i| i + lag < out.len())
            .map(|i| reference[i] * out[i + lag])
            .sum()
    };
    let all: Vec<f32> = (0..max_lag).map(correlation).collect();
    (0..max_lag)
        .max_by(|a, b| all[*a].total_cmp(&all[*b]))
        .unwrap_or(0)
}

/// Scores of a degraded signal against its reference.
#[derive(Debug, Clone, Copy)]
pub struct Score {
    /// Segmental SNR in dB (20 ms segments with speech, each clamped to −10 … 35 dB).
    pub seg_snr: f64,
    /// Pearson correlation of the waveforms.
    pub correlation: f64,
    /// PESQ wideband MOS-LQO, when Python's `pesq` package is installed.
    pub pesq: Option<f64>,
}

/// Scores frames `first..last` (inclusive) of `out` (shifted back by `lag`) against `reference`.
pub fn score(reference: &[f32], out: &[f32], lag: usize, first: usize, last: usize) -> Score {
    let from = first * FRAME_SAMPLES;
    let to = ((last + 1) * FRAME_SAMPLES)
        .min(reference.len())
        .min(out.len().saturating_sub(lag));
    let r = &reference[from..to];
    let d: Vec<f32> = (from..to).map(|i| out[i + lag]).collect();
    let mut segs = Vec::new();
    for (rs, ds) in r.chunks(FRAME_SAMPLES).zip(d.chunks(FRAME_SAMPLES)) {
        let sig: f64 = rs.iter().map(|x| f64::from(*x).powi(2)).sum();
        if sig / (rs.len() as f64) < 1e-5 {
            continue; // silence between words says nothing
        }
        let err: f64 = rs
            .iter()
            .zip(ds)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        segs.push((10.0 * (sig / err.max(1e-12)).log10()).clamp(-10.0, 35.0));
    }
    let seg_snr = segs.iter().sum::<f64>() / segs.len().max(1) as f64;
    let mean = |s: &[f32]| s.iter().map(|x| f64::from(*x)).sum::<f64>() / s.len().max(1) as f64;
    let (mr, md) = (mean(r), mean(&d));
    let (mut num, mut vr, mut vd) = (0.0, 0.0, 0.0);
    for (a, b) in r.iter().zip(&d) {
        let (a, b) = (f64::from(*a) - mr, f64::from(*b) - md);
        num += a * b;
        vr += a * a;
        vd += b * b;
    }
    Score {
        seg_snr,
        correlation: num / (vr * vd).sqrt().max(1e-12),
        pesq: pesq(r, &d),
    }
}

/// PESQ (ITU-T P.862.2 wideband) through `python3 -c 'import pesq'`, at 16 kHz; `None` when Python
/// or the package is missing.
pub fn pesq(reference: &[f32], degraded: &[f32]) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let write = |name: &str, s: &[f32]| -> Option<PathBuf> {
        let s16 = RateConverter::convert_all(s, 48_000, 16_000).ok()?;
        let path = dir.path().join(name);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).ok()?;
        for x in s16 {
            w.write_sample((x.clamp(-1.0, 1.0) * 32_767.0) as i16)
                .ok()?;
        }
        w.finalize().ok()?;
        Some(path)
    };
    let r = write("ref.wav", reference)?;
    let d = write("deg.wav", degraded)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/voice_support/pesq_score.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(r)
        .arg(d)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "pesq unavailable: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
