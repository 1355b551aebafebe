//! Two media sessions in one process talking over real UDP on 127.0.0.1, through a stand-in for
//! the server's relay ([`voice_support::TestRelay`]) or directly. No sound card: a speech WAV is
//! the caller's microphone and a recording sink is the callee's speaker.

mod voice_support;

use std::time::Duration;

use natter_core::voice::{
    AudioSource, FrameKind, MediaConfig, MediaPath, MediaSession, MediaStats, NullSink, Recording,
    RecordingSink, SilenceSource, SineSource, WavSource, FRAME_SAMPLES,
};
use natter_proto::media::{Packet, Role};
use voice_support::{
    decode_silence_filled, find_lag, on_sender_timeline, score, speech_wav, wait_for, TestRelay,
    TOKEN,
};

fn config(role: Role, relay: &TestRelay) -> MediaConfig {
    MediaConfig::new(TOKEN, role, relay.addr)
}

/// Bob answering the call: a silent microphone, `sink` as his speaker.
async fn bob_listens(relay: &TestRelay, sink: RecordingSink) -> MediaSession {
    MediaSession::start(
        config(Role::Callee, relay),
        Box::new(SilenceSource),
        Box::new(sink),
    )
    .await
    .expect("bob")
}

/// Alice calling: `source` as her microphone, no speaker.
async fn alice_says(relay: &TestRelay, source: impl AudioSource + 'static) -> MediaSession {
    MediaSession::start(
        config(Role::Caller, relay),
        Box::new(source),
        Box::new(NullSink),
    )
    .await
    .expect("alice")
}

/// What the callee heard of the caller's speech.
struct Heard {
    reference: Vec<f32>,
    recording: Recording,
    callee: MediaStats,
    caller: MediaStats,
}

/// Alice (caller) says the fixture sentence; Bob (callee) listens and records.
async fn alice_speaks_to_bob(relay: &TestRelay) -> Heard {
    let wav = WavSource::open(speech_wav()).expect("speech fixture");
    let reference = wav.samples().to_vec();
    let sink = RecordingSink::new();
    let recording = sink.recording();
    let bob = bob_listens(relay, sink).await;
    let alice = alice_says(relay, wav).await;
    let speech = Duration::from_secs_f64(reference.len() as f64 / 48_000.0);
    tokio::time::sleep(speech + Duration::from_millis(500)).await;
    let caller = alice.stop().await;
    let callee = bob.stop().await;
    Heard {
        reference,
        recording,
        callee,
        caller,
    }
}

/// First and last sender frames worth scoring: heard, and inside the reference.
fn scored_range(present: &[bool], reference: &[f32]) -> (usize, usize) {
    let first = present
        .iter()
        .position(|p| *p)
        .expect("something was heard");
    let last = (reference.len() / FRAME_SAMPLES - 1).min(present.len() - 1);
    (first, last)
}

#[tokio::test]
async fn speech_reaches_the_callee_recognisably_through_the_relay() {
    let relay = TestRelay::start(0.0, 1).await;
    let heard = alice_speaks_to_bob(&relay).await;
    let (played, present) =
        on_sender_timeline(&heard.recording.samples(), &heard.recording.frames());
    let (first, last) = scored_range(&present, &heard.reference);
    let missing = present[first..=last].iter().filter(|p| !**p).count();
    let lag = find_lag(&heard.reference, &played, FRAME_SAMPLES);
    let s = score(&heard.reference, &played, lag, first, last);
    println!(
        "clean call: frames {first}..={last}, codec delay {:.1} ms, PESQ {:?}, segSNR {:.1} dB, \
         correlation {:.3}; callee {:?}",
        lag as f64 / 48.0,
        s.pesq,
        s.seg_snr,
        s.correlation,
        heard.callee
    );
    assert_eq!(missing, 0, "every frame after the first arrived");
    assert!(heard.callee.relay_bound && heard.caller.relay_bound);
    assert_eq!(heard.callee.path, MediaPath::Relay);
    // Nothing is dropped on loopback; a loaded CI machine may still make a packet or two late.
    assert!(heard.callee.lost <= 10, "{:?}", heard.callee);
    assert!(
        first <= 25,
        "audio flowing within 0.5 s (first frame {first})"
    );
    assert!(lag < 480, "codec delay {lag} samples");
    // The network adds nothing: offline, the same encoder settings (32 kbit/s, FEC planned for
    // 10% loss) score the same PESQ 3.39 on this sentence.
    if let Some(pesq) = s.pesq {
        assert!(pesq >= 3.0, "PESQ {pesq}");
    }
    assert!(s.correlation >= 0.9, "correlation {}", s.correlation);
    assert!(s.seg_snr >= 6.0, "segmental SNR {}", s.seg_snr);
}

#[tokio::test]
async fn with_ten_percent_loss_fec_and_concealment_beat_silence_filling() {
    let relay = TestRelay::start(0.10, 0x5eed).await;
    let heard = alice_speaks_to_bob(&relay).await;
    let (played, present) =
        on_sender_timeline(&heard.recording.samples(), &heard.recording.frames());
    let received = relay.forwarded_to(Role::Callee);
    let (baseline, _) = decode_silence_filled(&received);
    let (first, last) = scored_range(&present, &heard.reference);
    let last = last.min(baseline.len() / FRAME_SAMPLES - 1);
    let lag = find_lag(&heard.reference, &played, FRAME_SAMPLES);
    let ours = score(&heard.reference, &played, lag, first, last);
    let naive = score(&heard.reference, &baseline, lag, first, last);
    let frames = heard.recording.frames();
    let count = |k: FrameKind| {
        frames
            .iter()
            .filter(|f| f.kind == k && f.ts.is_some())
            .count()
    };
    println!(
        "10% loss: relay dropped {} of {} audio packets; callee lost {}, FEC {} , concealed {}; \
         FEC+PLC: PESQ {:?}, segSNR {:.1} dB, corr {:.3}; silence-filled: PESQ {:?}, segSNR {:.1} \
         dB, corr {:.3}",
        relay.dropped_to(Role::Callee),
        heard.caller.packets_sent,
        heard.callee.lost,
        count(FrameKind::Fec),
        count(FrameKind::Concealed),
        ours.pesq,
        ours.seg_snr,
        ours.correlation,
        naive.pesq,
        naive.seg_snr,
        naive.correlation
    );
    let dropped = relay.dropped_to(Role::Callee) as f64 / heard.caller.packets_sent as f64;
    assert!((0.06..0.14).contains(&dropped), "loss injected: {dropped}");
    assert!(
        heard.callee.fec_recovered > heard.callee.lost / 2,
        "{:?}",
        heard.callee
    );
    if let (Some(a), Some(b)) = (ours.pesq, naive.pesq) {
        assert!(a >= b + 0.5, "PESQ {a} (FEC+PLC) vs {b} (silence)");
    }
    assert!(
        ours.seg_snr >= naive.seg_snr + 0.5,
        "segSNR {} (FEC+PLC) vs {} (silence)",
        ours.seg_snr,
        naive.seg_snr
    );
    assert!(ours.correlation >= naive.correlation + 0.03);
}

/// A session with a sine microphone and a recording speaker.
async fn tone_session(role: Role, relay: &TestRelay, hz: f32) -> (MediaSession, Recording) {
    let sink = RecordingSink::new();
    let rec = sink.recording();
    let session = MediaSession::start(
        config(role, relay),
        Box::new(SineSource::new(hz, 0.5)),
        Box::new(sink),
    )
    .await
    .expect("session");
    (session, rec)
}

/// RMS of the last `frames` frames played.
fn recent_rms(rec: &Recording, frames: usize) -> f32 {
    let s = rec.samples();
    let tail = &s[s.len().saturating_sub(frames * FRAME_SAMPLES)..];
    (tail.iter().map(|x| x * x).sum::<f32>() / tail.len().max(1) as f32).sqrt()
}

#[tokio::test]
async fn audio_goes_direct_once_the_peer_answers_and_back_to_the_relay_when_it_goes_quiet() {
    let relay = TestRelay::start(0.0, 2).await;
    let (alice, alice_heard) = tone_session(Role::Caller, &relay, 440.0).await;
    let (bob, _) = tone_session(Role::Callee, &relay, 660.0).await;
    wait_for("both bound to the relay", Duration::from_secs(3), || {
        alice.stats().relay_bound && bob.stats().relay_bound
    })
    .await;
    // The `call_peer` push.
    alice.set_peer(bob.local_addr());
    bob.set_peer(alice.local_addr());
    wait_for("the direct path", Duration::from_secs(3), || {
        alice.stats().path == MediaPath::Direct && bob.stats().path == MediaPath::Direct
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let via_relay = relay.forwarded_to(Role::Caller).len() + relay.forwarded_to(Role::Callee).len();
    let received = alice.stats().packets_received;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let via_relay_later =
        relay.forwarded_to(Role::Caller).len() + relay.forwarded_to(Role::Callee).len();
    assert_eq!(
        via_relay_later, via_relay,
        "no audio through the relay while direct"
    );
    assert!(
        alice.stats().packets_received >= received + 20,
        "audio flows directly"
    );

    // Bob now thinks Alice is elsewhere: nothing reaches Alice directly any more.
    let elsewhere = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    bob.set_peer(elsewhere.local_addr().expect("addr"));
    wait_for("alice back on the relay", Duration::from_secs(3), || {
        alice.stats().path == MediaPath::Relay
    })
    .await;
    let received = alice.stats().packets_received;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        alice.stats().packets_received >= received + 20,
        "audio keeps coming through the relay"
    );
    assert!(recent_rms(&alice_heard, 10) > 0.2, "alice still hears bob");
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn packets_with_a_wrong_token_role_or_magic_or_from_strangers_are_dropped() {
    let relay = TestRelay::start(0.0, 3).await;
    let sink = RecordingSink::new();
    let bob = bob_listens(&relay, sink).await;
    wait_for("bob bound", Duration::from_secs(3), || {
        bob.stats().relay_bound
    })
    .await;
    let audio = |role: Role, token: [u8; 16]| {
        let mut v = Vec::new();
        Packet::Audio {
            role,
            token,
            stream: 1,
            seq: 0,
            ts: 0,
            payload: &[0xf8, 0xff, 0xfe],
        }
        .encode(&mut v);
        v
    };
    let to = bob.local_addr();
    relay.send_raw(&audio(Role::Caller, [0; 16]), to).await; // another call's token
    relay.send_raw(&audio(Role::Callee, TOKEN), to).await; // bob's own role
    let mut garbage = audio(Role::Caller, TOKEN);
    garbage[0] = 0x00;
    relay.send_raw(&garbage, to).await; // wrong magic
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    stranger
        .send_to(&audio(Role::Caller, TOKEN), to)
        .await
        .expect("send"); // right token, wrong sender
    wait_for("four drops", Duration::from_secs(2), || {
        bob.stats().packets_invalid >= 4
    })
    .await;
    // A valid one from the relay is taken.
    relay.send_raw(&audio(Role::Caller, TOKEN), to).await;
    wait_for("one packet", Duration::from_secs(2), || {
        bob.stats().packets_received == 1
    })
    .await;
    let stats = bob.stop().await;
    assert_eq!(stats.packets_invalid, 4, "{stats:?}");
}

#[tokio::test]
async fn muting_sends_silence_while_the_meter_still_reads_the_microphone() {
    let relay = TestRelay::start(0.0, 4).await;
    let (alice, _) = tone_session(Role::Caller, &relay, 440.0).await;
    let (bob, bob_heard) = tone_session(Role::Callee, &relay, 660.0).await;
    wait_for("bob hears alice", Duration::from_secs(3), || {
        recent_rms(&bob_heard, 5) > 0.2
    })
    .await;
    let level = alice.input_level();
    assert!((level.rms - 0.354).abs() < 0.02, "{level:?}");
    assert!((level.peak - 0.5).abs() < 0.02, "{level:?}");

    alice.set_muted(true);
    assert!(alice.is_muted());
    let sent = alice.stats().packets_sent;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(recent_rms(&bob_heard, 10) < 0.01, "bob hears silence");
    assert!(
        alice.stats().packets_sent >= sent + 25,
        "silence is still sent"
    );
    assert!(
        (alice.input_level().rms - 0.354).abs() < 0.02,
        "the meter still reads"
    );

    alice.set_muted(false);
    wait_for("bob hears alice again", Duration::from_secs(2), || {
        recent_rms(&bob_heard, 5) > 0.2
    })
    .await;
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn a_44k1_stereo_source_and_a_44k1_sink_go_through_the_resampler() {
    let relay = TestRelay::start(0.0, 5).await;
    // Two seconds of a 1 kHz tone, stereo at 44.1 kHz, like a device that does not do 48 kHz.
    let stereo: Vec<f32> = (0..88_200)
        .flat_map(|i| {
            let v = 0.5 * (i as f32 * std::f32::consts::TAU * 1_000.0 / 44_100.0).sin();
            [v, v]
        })
        .collect();
    let source = WavSource::from_samples(&stereo, 44_100, 2).expect("source");
    let sink = RecordingSink::with_rate(44_100).expect("sink");
    let heard = sink.recording();
    let bob = bob_listens(&relay, sink).await;
    let alice = alice_says(&relay, source).await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    alice.stop().await;
    bob.stop().await;
    let samples = heard.samples();
    let frames = heard.frame_count();
    let expected = frames * 882;
    assert!(
        samples.len().abs_diff(expected) < 1_000,
        "{} samples for {frames} frames at 44.1 kHz",
        samples.len()
    );
    // The loudest second is the tone; count its zero crossings.
    let loud: Vec<f32> = samples
        .chunks(441)
        .filter(|c| c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32 > 0.05)
        .flatten()
        .copied()
        .collect();
    assert!(
        loud.len() > 44_100,
        "a second of tone heard ({} samples)",
        loud.len()
    );
    let crossings = loud
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count();
    let hz = crossings as f64 * 44_100.0 / loud.len() as f64;
    println!(
        "44.1 kHz path: {} samples, tone at {hz:.1} Hz",
        samples.len()
    );
    assert!((hz - 1_000.0).abs() < 10.0, "tone at {hz} Hz");
}
