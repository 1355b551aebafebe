//! Voice benchmark (issue 8 §6): one-way latency from a captured frame to the same frame ready for
//! playback, over loopback UDP between two real `MediaSession`s with a 40 ms jitter target
//! (p50/p99); Opus encode + decode CPU per 20 ms frame; bandwidth of one direction of a call.
//! Writes its section of docs/BENCHMARKS.md.
//!
//! `cargo bench -p natter-core --bench voice` (20 s of call; `NATTER_VOICEBENCH_SECS` to change,
//! `NATTER_VOICEBENCH_OUT` for another file, `-` for stdout only). It reports; it asserts nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter_core::voice::codec::{EncoderSettings, OpusDecoder, OpusEncoder};
use natter_core::voice::{
    AudioSource, Frame, MediaConfig, MediaSession, NullSink, Pacing, RecordingSink, SilenceSource,
    SourceRead, VoiceError, WavSource, FRAME_SAMPLES,
};
use natter_proto::media::Role;

const TOKEN: [u8; 16] = *b"natter-benchcall";

fn speech() -> WavSource {
    WavSource::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/speech.wav"
    ))
    .expect("speech fixture")
}

/// A source that notes when each frame was captured (frame n has sender timestamp n × 960).
struct TimedSource {
    inner: WavSource,
    captured: Arc<Mutex<Vec<Instant>>>,
}

impl AudioSource for TimedSource {
    fn pacing(&self) -> Pacing {
        Pacing::Session
    }

    fn read_frame(&mut self, frame: &mut Frame) -> Result<SourceRead, VoiceError> {
        let r = self.inner.read_frame(frame)?;
        self.captured.lock().expect("log").push(Instant::now());
        Ok(r)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Median µs per frame of encode and of decode over the speech fixture, five passes.
fn codec_cpu() -> (f64, f64, usize) {
    let samples = speech().samples().to_vec();
    let frames: Vec<&[f32]> = samples.chunks_exact(FRAME_SAMPLES).collect();
    let (mut enc_runs, mut dec_runs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let mut enc = OpusEncoder::new(EncoderSettings::default()).expect("encoder");
        let mut dec = OpusDecoder::new().expect("decoder");
        let t = Instant::now();
        let packets: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| enc.encode(f).expect("encode").to_vec())
            .collect();
        enc_runs.push(t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64);
        let mut out = [0f32; FRAME_SAMPLES];
        let t = Instant::now();
        for p in &packets {
            dec.decode(p, &mut out).expect("decode");
        }
        dec_runs.push(t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64);
    }
    enc_runs.sort_by(f64::total_cmp);
    dec_runs.sort_by(f64::total_cmp);
    (enc_runs[2], dec_runs[2], frames.len())
}

fn main() {
    let secs: u64 = std::env::var("NATTER_VOICEBENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (enc_us, dec_us, codec_frames) = codec_cpu();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (latencies, sent, bytes, stats) = runtime.block_on(async {
        // The relay address is a socket that never answers: both sides go direct, as on a LAN.
        let nowhere = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let relay: SocketAddr = nowhere.local_addr().expect("addr");
        let captured = Arc::new(Mutex::new(Vec::new()));
        let source = TimedSource {
            inner: speech().looping(true),
            captured: Arc::clone(&captured),
        };
        let sink = RecordingSink::new();
        let heard = sink.recording();
        let bob = MediaSession::start(
            MediaConfig::new(TOKEN, Role::Callee, relay),
            Box::new(SilenceSource),
            Box::new(sink),
        )
        .await
        .expect("bob");
        let alice = MediaSession::start(
            MediaConfig::new(TOKEN, Role::Caller, relay),
            Box::new(source),
            Box::new(NullSink),
        )
        .await
        .expect("alice");
        alice.set_peer(bob.local_addr());
        bob.set_peer(alice.local_addr());
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let alice_stats = alice.stop().await;
        let bob_stats = bob.stop().await;
        let captured = captured.lock().expect("log").clone();
        // The first 2 s are the path coming up (relay, then direct): steady state only.
        let warm = started + Duration::from_secs(2);
        let mut latencies: Vec<f64> = heard
            .frames()
            .iter()
            .filter(|f| f.at >= warm)
            .filter_map(|f| {
                let at = *captured.get(f.ts? as usize / FRAME_SAMPLES)?;
                Some(f.at.saturating_duration_since(at).as_secs_f64() * 1e3)
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        (
            latencies,
            alice_stats.packets_sent,
            alice_stats.bytes_sent,
            bob_stats,
        )
    });
    let call_secs = secs as f64;
    let payload_bps = bytes as f64 / call_secs;
    let wire_bps = (bytes + sent * 28) as f64 / call_secs;
    let section = format!(
        "<!-- voicebench:begin -->\n## Voice (`cargo bench -p natter-core --bench voice`)\n\n\
         Two `MediaSession`s in one process over loopback UDP (direct path), {secs} s of the \
         espeak-ng speech fixture on a loop as the caller's microphone, a recording sink as the \
         callee's speaker; Opus 32 kbit/s, FEC for 10% loss, 40 ms jitter target; 2 cores.\n\n\
         | measure | value |\n|---|---:|\n\
         | one-way latency, capture → ready for playback, p50 | {:.1} ms |\n\
         | one-way latency, p99 (target < 60 ms) | {:.1} ms |\n\
         | one-way latency, max | {:.1} ms |\n\
         | frames measured (after the first 2 s) | {} |\n\
         | Opus encode, per 20 ms frame (median of 5 passes over {codec_frames} frames) | {enc_us:.0} µs |\n\
         | Opus decode, per frame | {dec_us:.0} µs |\n\
         | encode + decode, share of one core in real time | {:.2}% |\n\
         | bandwidth, one direction, UDP payload (29-byte header + Opus) | {:.1} kbit/s |\n\
         | bandwidth with IPv4 + UDP headers (28 bytes a packet) | {:.1} kbit/s |\n\
         | packets a second | {:.1} |\n\
         | callee: lost / late / concealed / dropped for delay | {} / {} / {} / {} |\n\n\
         Latency is from the moment the caller's session read a frame from its source to the \
         moment the callee's session handed the decoded frame to its sink: encode, UDP, jitter \
         buffer and decode, without device buffers (those add the sound card's own period on \
         each side).\n<!-- voicebench:end -->",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        latencies.len(),
        (enc_us + dec_us) / 20_000.0 * 100.0,
        payload_bps * 8.0 / 1e3,
        wire_bps * 8.0 / 1e3,
        sent as f64 / call_secs,
        stats.lost,
        stats.late,
        stats.concealed,
        stats.dropped,
    );
    println!("{section}");
    let out = std::env::var("NATTER_VOICEBENCH_OUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/BENCHMARKS.md").to_owned()
    });
    if out == "-" {
        return;
    }
    let (begin, end) = ("<!-- voicebench:begin -->", "<!-- voicebench:end -->");
    let doc = std::fs::read_to_string(&out).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let doc = match (doc.find(begin), doc.find(end)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{}{}", &doc[..a], section, &doc[b + end.len()..])
        }
        _ => format!("{}\n\n{}\n", doc.trim_end(), section),
    };
    std::fs::write(&out, doc).expect("write BENCHMARKS.md");
}
