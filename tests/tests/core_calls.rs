//! Voice calls through natter-core against the real server: signalling over TCP, audio over the
//! server's UDP relay or the direct path, every way a call can end. Each side's microphone is a
//! tone of its own frequency and its speaker a recorder, so what arrives can be checked: the
//! other side's tone, loud, and not one's own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Result};
use natter_core::voice::{AudioSink, AudioSource, Recording, RecordingSink, SineSource};
use natter_core::{CallInfo, CallPhase, ClientError, Event};
use natter_e2e::harness::core::*;
use natter_e2e::*;
use natter_proto::CallEndReason;

/// Gives `device` a tone at `hz` as its microphone; returns where its speaker's output lands.
fn tone_audio(device: &Device, hz: f32) -> Arc<Mutex<Option<Recording>>> {
    let heard = Arc::new(Mutex::new(None));
    let slot = heard.clone();
    device.set_audio_factory(Arc::new(move || {
        let sink = RecordingSink::new();
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink.recording());
        Ok((
            Box::new(SineSource::new(hz, 0.3)) as Box<dyn AudioSource>,
            Box::new(sink) as Box<dyn AudioSink>,
        ))
    }));
    heard
}

/// Power of `hz` in `samples` (48 kHz), by the Goertzel filter, normalised per sample.
fn power_at(samples: &[f32], hz: f32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f64::from(hz) / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

/// The last second of what `heard` recorded carries `want` clearly above `other`.
fn expect_tone(heard: &Arc<Mutex<Option<Recording>>>, want: f32, other: f32) -> Result<()> {
    let Some(recording) = heard.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        bail!("no audio session was started");
    };
    let samples = recording.samples();
    ensure!(
        samples.len() >= 48_000,
        "only {} samples played",
        samples.len()
    );
    let last = &samples[samples.len() - 48_000..];
    let (p_want, p_other) = (power_at(last, want), power_at(last, other));
    println!("tone {want} Hz: power {p_want:.2e}; {other} Hz: {p_other:.2e}");
    // A 0.3-amplitude sine has power ≈ 0.0225 by this measure; Opus keeps most of it.
    ensure!(p_want > 0.005, "{want} Hz barely arrived: {p_want:.2e}");
    ensure!(
        p_want > 100.0 * p_other,
        "{other} Hz is there too: {p_other:.2e}"
    );
    Ok(())
}

async fn call_event(
    device: &mut Device,
    what: &str,
    pred: impl Fn(&CallInfo) -> bool,
) -> Result<CallInfo> {
    device
        .wait_for(what, |e| match e {
            Event::Call(c) if pred(c) => Some(c.clone()),
            _ => None,
        })
        .await
}

async fn ringing(device: &mut Device) -> Result<CallInfo> {
    call_event(device, "an incoming call", |c| {
        c.phase == CallPhase::Ringing
    })
    .await
}

async fn active(device: &mut Device) -> Result<CallInfo> {
    call_event(device, "the call active", |c| c.phase == CallPhase::Active).await
}

async fn ended(device: &mut Device, reason: CallEndReason) -> Result<CallInfo> {
    call_event(device, &format!("the call ended ({reason:?})"), |c| {
        c.phase == CallPhase::Ended && c.reason == Some(reason)
    })
    .await
}

/// Alice calls bob, bob answers; both are active.
async fn connected(alice: &mut Device, bob: &mut Device) -> Result<String> {
    let call = alice.call("bobby").await?;
    assert_eq!(call.phase, CallPhase::Calling);
    let incoming = ringing(bob).await?;
    assert_eq!(
        (incoming.peer.as_str(), incoming.outgoing),
        ("alice", false)
    );
    bob.answer_call(&incoming.call_id, true).await?;
    active(bob).await?;
    active(alice).await?;
    Ok(call.call_id)
}

#[tokio::test]
async fn a_call_through_the_relay_carries_each_voice_to_the_other_side() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;
    alice.set_relay_only(true);
    bob.set_relay_only(true);
    let alice_hears = tone_audio(&alice, 440.0);
    let bob_hears = tone_audio(&bob, 1000.0);
    let call_id = connected(&mut alice, &mut bob).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = alice.call_stats().await.expect("active call has stats");
    println!("alice: {stats:?}");
    assert_eq!(stats.path, natter_core::voice::MediaPath::Relay);
    expect_tone(&bob_hears, 440.0, 1000.0)?;
    expect_tone(&alice_hears, 1000.0, 440.0)?;

    // Muting alice: bob soon hears silence where her tone was.
    alice.set_muted(true).await;
    call_event(&mut alice, "muted", |c| c.muted).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let recording = bob_hears.lock().unwrap().clone().expect("recording");
    let samples = recording.samples();
    let tail = &samples[samples.len().saturating_sub(24_000)..];
    ensure!(
        power_at(tail, 440.0) < 1e-5,
        "alice is muted but bob still hears her: {:.2e}",
        power_at(tail, 440.0)
    );

    alice.hang_up(&call_id).await?;
    ended(&mut alice, CallEndReason::Hangup).await?;
    ended(&mut bob, CallEndReason::Hangup).await?;
    assert!(bob.current_call().await.is_none());
    Ok(())
}

#[tokio::test]
async fn peers_that_can_reach_each_other_talk_directly() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;
    let alice_hears = tone_audio(&alice, 700.0);
    let bob_hears = tone_audio(&bob, 300.0);
    let call_id = connected(&mut alice, &mut bob).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = bob.call_stats().await.expect("stats");
    println!("bob: {stats:?}");
    assert_eq!(stats.path, natter_core::voice::MediaPath::Direct);
    expect_tone(&bob_hears, 700.0, 300.0)?;
    expect_tone(&alice_hears, 300.0, 700.0)?;
    bob.hang_up(&call_id).await?;
    ended(&mut alice, CallEndReason::Hangup).await?;
    Ok(())
}

#[tokio::test]
async fn declined_unanswered_busy_and_offline_calls_end_with_their_reason() -> Result<()> {
    let server = TestServer::start_with(&["--ring-timeout-ms", "1500"]).await?;
    let mut alice = server.core_user("alice").await?;
    let mut bob = server.core_user("bobby").await?;
    let mut carol = server.core_user("carol").await?;
    server.core_register("dave").await?;
    for d in [&alice, &bob, &carol] {
        tone_audio(d, 500.0);
    }

    // Bob declines.
    alice.call("bobby").await?;
    let incoming = ringing(&mut bob).await?;
    bob.answer_call(&incoming.call_id, false).await?;
    ended(&mut alice, CallEndReason::Rejected).await?;
    ended(&mut bob, CallEndReason::Rejected).await?;

    // Nobody answers: the server's ring timeout ends it for both.
    alice.call("bobby").await?;
    ringing(&mut bob).await?;
    ended(&mut alice, CallEndReason::NoAnswer).await?;
    ended(&mut bob, CallEndReason::NoAnswer).await?;

    // Alice cancels while it rings.
    let call = alice.call("bobby").await?;
    ringing(&mut bob).await?;
    alice.hang_up(&call.call_id).await?;
    ended(&mut bob, CallEndReason::Hangup).await?;

    // Busy: bob is talking to carol.
    carol.call("bobby").await?;
    let incoming = ringing(&mut bob).await?;
    bob.answer_call(&incoming.call_id, true).await?;
    active(&mut carol).await?;
    alice.catch_up()?;
    let busy = alice.call("bobby").await;
    match busy {
        Ok(c) if c.phase == CallPhase::Ended => assert_eq!(c.reason, Some(CallEndReason::Busy)),
        Ok(_) => {
            ended(&mut alice, CallEndReason::Busy).await?;
        }
        Err(e) => bail!("calling a busy user: {e}"),
    }
    // And bob, in a call, cannot start a second one.
    let second = bob.call("alice").await.expect_err("one call at a time");
    assert!(matches!(second, ClientError::Invalid { .. }), "{second:?}");

    // Dave is offline.
    let offline = alice.call("dave").await;
    match offline {
        Ok(c) if c.phase == CallPhase::Ended => {
            assert_eq!(c.reason, Some(CallEndReason::Offline))
        }
        Ok(_) => {
            ended(&mut alice, CallEndReason::Offline).await?;
        }
        Err(e) => bail!("calling an offline user: {e}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_dropped_connection_ends_the_call_on_both_sides() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;
    tone_audio(&alice, 440.0);
    tone_audio(&bob, 880.0);
    connected(&mut alice, &mut bob).await?;
    // Bob's app goes away without hanging up: the server tells alice, bob's side ends too.
    bob.shutdown().await;
    ended(&mut alice, CallEndReason::ConnectionLost).await?;
    assert!(alice.current_call().await.is_none());
    Ok(())
}

#[tokio::test]
async fn a_server_crash_ends_the_call_on_both_sides_and_they_can_call_again() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;
    tone_audio(&alice, 440.0);
    let bob_hears = tone_audio(&bob, 880.0);
    connected(&mut alice, &mut bob).await?;
    server.kill9()?;
    ended(&mut alice, CallEndReason::ConnectionLost).await?;
    ended(&mut bob, CallEndReason::ConnectionLost).await?;
    server.restart().await?;
    alice
        .wait_for("alice back", |e| {
            matches!(e, Event::LoggedIn(_)).then_some(())
        })
        .await?;
    bob.wait_for("bob back", |e| {
        matches!(e, Event::LoggedIn(_)).then_some(())
    })
    .await?;
    connected(&mut alice, &mut bob).await?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    expect_tone(&bob_hears, 440.0, 880.0)?;
    Ok(())
}
