//! Real cpal streams: ALSA's default device, which `.ci/run` routes into a PulseAudio null sink
//! whose monitor is the default source, so what a cpal speaker plays a cpal microphone captures
//! again, in a whole call. (An earlier test measured the monitor with `arecord`; its capture read
//! silence or noise at random while this path worked, so it measured arecord, not us.) Without
//! `NATTER_AUDIO_TESTS=1` (no audio device on this machine) each test prints why it is skipped.
//! Both play into the same null sink, so run them with `--test-threads 1` (as `.ci/run` does).

mod voice_support;

use std::time::Duration;

use natter_core::voice::{
    default_devices, list_devices, CpalSink, CpalSource, MediaConfig, MediaSession, RecordingSink,
    SineSource,
};
use natter_proto::media::Role;
use voice_support::{TestRelay, TOKEN};

fn audio_available() -> bool {
    if std::env::var("NATTER_AUDIO_TESTS").as_deref() == Ok("1") {
        return true;
    }
    println!(
        "skipped: no audio device (set NATTER_AUDIO_TESTS=1 with PulseAudio and a null sink \
         running, as .ci/run does)"
    );
    false
}

/// Power of `hz` in `s` (48 kHz) by the Goertzel algorithm, normalised so a full-scale sine
/// gives about 0.25.
fn tone_power(s: &[f32], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0f64, 0f64);
    for x in s {
        let s0 = f64::from(*x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = s.len() as f64;
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

fn rms(s: &[f32]) -> f32 {
    (s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32).sqrt()
}

#[tokio::test]
async fn a_session_on_real_devices_echoes_the_far_ends_tone_back() {
    if !audio_available() {
        return;
    }
    let devices = list_devices().expect("list devices");
    println!("defaults: {:?}", default_devices());
    assert!(devices.iter().any(|d| d.is_input) && devices.iter().any(|d| d.is_output));
    // Bob plays what he hears into the null sink and his microphone is its monitor: Alice hears
    // her own tone back, after two trips through sessions, cpal and PulseAudio.
    let relay = TestRelay::start(0.0, 6).await;
    let bob = MediaSession::start(
        MediaConfig::new(TOKEN, Role::Callee, relay.addr),
        Box::new(CpalSource::open(None).expect("default input")),
        Box::new(CpalSink::open(None).expect("default output")),
    )
    .await
    .expect("bob");
    let sink = RecordingSink::new();
    let heard = sink.recording();
    let alice = MediaSession::start(
        MediaConfig::new(TOKEN, Role::Caller, relay.addr),
        Box::new(SineSource::new(440.0, 0.5)),
        Box::new(sink),
    )
    .await
    .expect("alice");
    // PulseAudio takes a moment to start delivering capture: give the echo time to settle.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let bob_stats = bob.stop().await;
    let alice_stats = alice.stop().await;
    let samples = heard.samples();
    let tail = &samples[samples.len().saturating_sub(24_000)..];
    println!(
        "echo: rms {:.3}, 440 Hz {:.4}; bob {bob_stats:?}; alice {alice_stats:?}",
        rms(tail),
        tone_power(tail, 440.0)
    );
    // Alice's tone reached bob's speaker all along; his microphone (the monitor) sent at least
    // a second of it back.
    assert!(bob_stats.packets_received > 150, "{bob_stats:?}");
    assert!(alice_stats.packets_received > 50, "{alice_stats:?}");
    assert!(
        rms(tail) > 0.2,
        "alice hears her tone back: rms {}",
        rms(tail)
    );
    assert!(tone_power(tail, 440.0) > 100.0 * tone_power(tail, 1_000.0));
}
