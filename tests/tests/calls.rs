//! Voice calls against the real server (PROTOCOL.md §5.8): ringing, answering, every way a call
//! ends, and the UDP relay — what it forwards between the two participants' real sockets and
//! everything it drops.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Result};
use natter_e2e::harness::calls::{IncomingCall, MediaSocket};
use natter_e2e::*;
use natter_proto::media::{Packet, Role};
use natter_proto::{CallEndReason, CallMedia};

/// How long "nothing arrives" checks listen.
const SILENCE: Duration = Duration::from_millis(300);

/// alice calls bobby and bobby's phone rings.
async fn ringing(server: &TestServer) -> Result<(TestClient, TestClient, String, IncomingCall)> {
    let alice = server.user("alice").await?;
    let mut bobby = server.user("bobby").await?;
    let call_id = alice.call_invite("bobby").await?;
    let incoming = bobby.expect_call_incoming("alice").await?;
    assert_eq!(incoming.call_id, call_id);
    Ok((alice, bobby, call_id, incoming))
}

/// An accepted call between alice (caller) and bobby (callee).
struct Call {
    alice: TestClient,
    bobby: TestClient,
    call_id: String,
    alice_media: CallMedia,
    bobby_media: CallMedia,
}

async fn accepted(server: &TestServer) -> Result<Call> {
    let (mut alice, bobby, call_id, incoming) = ringing(server).await?;
    bobby.call_answer(&call_id, true).await?;
    let alice_media = alice.expect_call_accepted(&call_id).await?;
    Ok(Call {
        alice,
        bobby,
        call_id,
        alice_media,
        bobby_media: incoming.media,
    })
}

/// Both participants' sockets bound at the relay, each told the other's address.
async fn media_path(call: &mut Call) -> Result<(MediaSocket, MediaSocket)> {
    let a = MediaSocket::open(&call.alice_media, Role::Caller).await?;
    let b = MediaSocket::open(&call.bobby_media, Role::Callee).await?;
    a.bind_until_acked().await?;
    b.bind_until_acked().await?;
    assert_eq!(
        call.alice.expect_call_peer(&call.call_id).await?,
        b.local_addr()?
    );
    assert_eq!(
        call.bobby.expect_call_peer(&call.call_id).await?,
        a.local_addr()?
    );
    Ok((a, b))
}

async fn both_hear_ended(
    alice: &mut TestClient,
    bobby: &mut TestClient,
    call_id: &str,
    reason: CallEndReason,
) -> Result<()> {
    assert_eq!(alice.expect_call_ended(call_id).await?, reason, "alice");
    assert_eq!(bobby.expect_call_ended(call_id).await?, reason, "bobby");
    // Exactly one call_ended each.
    alice.assert_no_call_push(SILENCE).await?;
    bobby.assert_no_call_push(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test]
async fn alice_calls_bobby_he_accepts_and_a_hangup_ends_it_for_both() -> Result<()> {
    let server = TestServer::start().await?;
    let relay = server.relay_addr()?;
    let (mut alice, mut bobby, call_id, incoming) = ringing(&server).await?;
    ensure!(call_id.len() >= 32, "call ids are unguessable: {call_id}");
    let media = &incoming.media;
    assert_eq!(media.peer_addr, None);
    assert_eq!(
        media.relay_addr,
        relay.to_string(),
        "the relay as bobby reached the server"
    );
    ensure!(
        media.token.len() == 32
            && media
                .token
                .chars()
                .all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "token is 32 lowercase hex digits: {}",
        media.token
    );

    bobby.call_answer(&call_id, true).await?;
    let accepted = alice.expect_call_accepted(&call_id).await?;
    assert_eq!(accepted.token, media.token, "one token per call");
    assert_eq!(accepted.relay_addr, relay.to_string());
    expect_refusal(bobby.call_answer(&call_id, true).await, ErrorCode::NotFound)?;

    alice.call_hangup(&call_id).await?;
    both_hear_ended(&mut alice, &mut bobby, &call_id, CallEndReason::Hangup).await?;
    expect_refusal(bobby.call_hangup(&call_id).await, ErrorCode::NotFound)?;

    // Both are free again, and a second call gets a new id and token.
    let again = bobby.call_invite("alice").await?;
    ensure!(again != call_id);
    let second = alice.expect_call_incoming("bobby").await?;
    ensure!(second.media.token != media.token);
    alice.call_hangup(&again).await?;
    both_hear_ended(&mut bobby, &mut alice, &again, CallEndReason::Hangup).await?;
    Ok(())
}

#[tokio::test]
async fn bobby_rejects_and_both_hear_rejected() -> Result<()> {
    let server = TestServer::start().await?;
    let (mut alice, mut bobby, call_id, _) = ringing(&server).await?;
    bobby.call_answer(&call_id, false).await?;
    both_hear_ended(&mut alice, &mut bobby, &call_id, CallEndReason::Rejected).await
}

#[tokio::test]
async fn alice_cancels_while_it_rings() -> Result<()> {
    let server = TestServer::start().await?;
    let (mut alice, mut bobby, call_id, _) = ringing(&server).await?;
    alice.call_hangup(&call_id).await?;
    both_hear_ended(&mut alice, &mut bobby, &call_id, CallEndReason::Hangup).await?;
    expect_refusal(bobby.call_answer(&call_id, true).await, ErrorCode::NotFound)?;
    Ok(())
}

#[tokio::test]
async fn nobody_answers_and_the_ring_timeout_ends_the_call() -> Result<()> {
    let server = TestServer::start_with(&["--ring-timeout-ms", "400"]).await?;
    let (mut alice, mut bobby, call_id, _) = ringing(&server).await?;
    let started = std::time::Instant::now();
    both_hear_ended(&mut alice, &mut bobby, &call_id, CallEndReason::NoAnswer).await?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "ended after {:?}",
        started.elapsed()
    );
    expect_refusal(bobby.call_answer(&call_id, true).await, ErrorCode::NotFound)?;
    Ok(())
}

#[tokio::test]
async fn an_accepted_call_does_not_time_out() -> Result<()> {
    let server = TestServer::start_with(&["--ring-timeout-ms", "200"]).await?;
    let mut call = accepted(&server).await?;
    call.alice
        .assert_no_call_push(Duration::from_millis(600))
        .await?;
    call.bobby.assert_no_call_push(Duration::ZERO).await?;
    call.bobby.call_hangup(&call.call_id).await?;
    both_hear_ended(
        &mut call.alice,
        &mut call.bobby,
        &call.call_id,
        CallEndReason::Hangup,
    )
    .await
}

#[tokio::test]
async fn calling_someone_offline_rings_then_ends_with_offline() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let mut alice = server.user("alice").await?;
    let call_id = alice.call_invite("BOBBY").await?;
    assert_eq!(
        alice.expect_call_ended(&call_id).await?,
        CallEndReason::Offline
    );
    alice.assert_no_call_push(SILENCE).await?;
    expect_refusal(alice.call_hangup(&call_id).await, ErrorCode::NotFound)?;

    expect_refusal(alice.call_invite("nobody42").await, ErrorCode::NoSuchUser)?;
    expect_refusal(alice.call_invite("Alice").await, ErrorCode::SelfTarget)?;

    // None of that left alice in a call.
    let mut carol = server.user("carol").await?;
    let call_id = alice.call_invite("carol").await?;
    carol.expect_call_incoming("alice").await?;
    alice.call_hangup(&call_id).await?;
    both_hear_ended(&mut alice, &mut carol, &call_id, CallEndReason::Hangup).await
}

#[tokio::test]
async fn a_callee_in_a_call_is_busy_and_a_caller_in_a_call_is_refused() -> Result<()> {
    let server = TestServer::start().await?;
    let (mut alice, mut bobby, call_id, _) = ringing(&server).await?;
    let mut carol = server.user("carol").await?;
    let _dave = server.user("dave").await?;

    let carols = carol.call_invite("bobby").await?;
    assert_eq!(carol.expect_call_ended(&carols).await?, CallEndReason::Busy);
    bobby.assert_no_call_push(SILENCE).await?;

    expect_refusal(alice.call_invite("dave").await, ErrorCode::Forbidden)?;
    expect_refusal(bobby.call_invite("dave").await, ErrorCode::Forbidden)?;

    bobby.call_answer(&call_id, true).await?;
    alice.expect_call_accepted(&call_id).await?;
    let carols = carol.call_invite("alice").await?;
    assert_eq!(carol.expect_call_ended(&carols).await?, CallEndReason::Busy);
    expect_refusal(alice.call_invite("carol").await, ErrorCode::Forbidden)?;

    alice.call_hangup(&call_id).await?;
    both_hear_ended(&mut alice, &mut bobby, &call_id, CallEndReason::Hangup).await
}

#[tokio::test]
async fn strangers_cannot_answer_or_hang_up_someone_elses_call() -> Result<()> {
    let server = TestServer::start().await?;
    let (mut alice, mut bobby, call_id, _) = ringing(&server).await?;
    let carol = server.user("carol").await?;
    expect_refusal(carol.call_answer(&call_id, true).await, ErrorCode::NotFound)?;
    expect_refusal(carol.call_hangup(&call_id).await, ErrorCode::NotFound)?;
    expect_refusal(
        alice.call_answer(&call_id, true).await,
        ErrorCode::Forbidden,
    )?;
    expect_refusal(
        carol.call_answer("call-made-up", true).await,
        ErrorCode::NotFound,
    )?;
    alice.assert_no_call_push(SILENCE).await?;
    bobby.assert_no_call_push(Duration::ZERO).await?;

    bobby.call_answer(&call_id, true).await?;
    alice.expect_call_accepted(&call_id).await?;
    expect_refusal(carol.call_hangup(&call_id).await, ErrorCode::NotFound)?;
    alice.assert_no_call_push(SILENCE).await?;
    Ok(())
}

#[tokio::test]
async fn call_requests_need_a_session() -> Result<()> {
    let server = TestServer::start().await?;
    let stranger = server.connect().await?;
    expect_refusal(
        stranger.call_invite("alice").await,
        ErrorCode::NotAuthenticated,
    )?;
    expect_refusal(stranger.call_hangup("x").await, ErrorCode::NotAuthenticated)?;
    Ok(())
}

#[tokio::test]
async fn bobby_dropping_off_while_it_rings_ends_the_call_for_alice() -> Result<()> {
    let server = TestServer::start().await?;
    let (mut alice, bobby, call_id, _) = ringing(&server).await?;
    bobby.drop_connection().await?;
    assert_eq!(
        alice.expect_call_ended(&call_id).await?,
        CallEndReason::ConnectionLost
    );
    alice.assert_no_call_push(SILENCE).await?;
    Ok(())
}

#[tokio::test]
async fn alice_dropping_off_mid_call_ends_it_for_bobby_and_the_relay_forgets_it() -> Result<()> {
    let server = TestServer::start().await?;
    let mut call = accepted(&server).await?;
    let (a, b) = media_path(&mut call).await?;
    call.alice.drop_connection().await?;
    assert_eq!(
        call.bobby.expect_call_ended(&call.call_id).await?,
        CallEndReason::ConnectionLost
    );
    a.send_audio(1, b"after the end").await?;
    b.assert_silent(SILENCE).await?;
    Ok(())
}

#[tokio::test]
async fn logging_out_mid_call_ends_it_for_both() -> Result<()> {
    let server = TestServer::start().await?;
    let mut call = accepted(&server).await?;
    call.bobby.logout().await?;
    // bobby's connection is still open (state GREETED), so he hears the end too.
    both_hear_ended(
        &mut call.alice,
        &mut call.bobby,
        &call.call_id,
        CallEndReason::ConnectionLost,
    )
    .await
}

#[tokio::test]
async fn a_second_login_elsewhere_ends_the_call_of_the_first() -> Result<()> {
    let server = TestServer::start().await?;
    let (mut alice, mut bobby, call_id, _) = ringing(&server).await?;
    let mut bobby_laptop = server.login("bobby").await?;
    bobby.expect_kicked().await?;
    assert_eq!(
        alice.expect_call_ended(&call_id).await?,
        CallEndReason::ConnectionLost
    );
    bobby_laptop.assert_no_call_push(SILENCE).await?;
    // The new session is free to take calls.
    let again = alice.call_invite("bobby").await?;
    let incoming = bobby_laptop.expect_call_incoming("alice").await?;
    assert_eq!(incoming.call_id, again);
    Ok(())
}

#[tokio::test]
async fn audio_crosses_the_relay_byte_for_byte_both_ways() -> Result<()> {
    let server = TestServer::start().await?;
    let mut call = accepted(&server).await?;
    let relay = server.relay_addr()?;
    let (a, b) = media_path(&mut call).await?;

    for seq in 0..5u16 {
        let sent = a
            .send_audio(seq, format!("alice frame {seq}").as_bytes())
            .await?;
        let (got, from) = b.expect_datagram(PUSH_TIMEOUT).await?;
        assert_eq!(got, sent, "forwarded unchanged");
        assert_eq!(from, relay, "through the relay");
    }
    let big = vec![0x5a; 1275];
    let sent = b.send_audio(7, &big).await?;
    let (got, _) = a.expect_datagram(PUSH_TIMEOUT).await?;
    assert_eq!(got, sent, "the largest Opus frame goes through whole");

    // A keep-alive bind from the recorded address is acked again, call_peer is not repeated.
    a.bind_until_acked().await?;
    call.alice.assert_no_call_push(SILENCE).await?;

    call.alice.call_hangup(&call.call_id).await?;
    both_hear_ended(
        &mut call.alice,
        &mut call.bobby,
        &call.call_id,
        CallEndReason::Hangup,
    )
    .await?;
    a.send_audio(99, b"after the hangup").await?;
    b.send_audio(99, b"after the hangup").await?;
    a.bind().await?;
    a.assert_silent(SILENCE).await?;
    b.assert_silent(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test]
async fn the_relay_drops_everything_that_is_not_this_calls_audio_from_its_own_leg() -> Result<()> {
    let server = TestServer::start().await?;
    let relay = server.relay_addr()?;
    let mut call = accepted(&server).await?;
    let (a, b) = media_path(&mut call).await?;

    // Someone who learned the token, from a socket the relay never recorded.
    let thief = MediaSocket::with_token(relay, a.token(), Role::Caller).await?;
    thief.send_audio(1, b"spoofed").await?;
    thief.bind().await?;
    thief.send_audio(2, b"spoofed after a bind").await?;
    thief.assert_silent(SILENCE).await?;

    // The right socket with a wrong token.
    let mut wrong = a.token();
    wrong[0] ^= 0xff;
    a.send_packet(Packet::Audio {
        role: Role::Caller,
        token: wrong,
        stream: 1,
        seq: 1,
        ts: 0,
        payload: b"wrong token",
    })
    .await?;
    // alice's socket claiming bobby's role, and a bind_ack sent to the relay.
    a.send_packet(Packet::Audio {
        role: Role::Callee,
        token: a.token(),
        stream: 1,
        seq: 1,
        ts: 0,
        payload: b"wrong role",
    })
    .await?;
    a.send_packet(Packet::BindAck {
        role: Role::Caller,
        token: a.token(),
    })
    .await?;
    // Garbage: not ours, truncated, oversized, unknown kind.
    let mut audio = Vec::new();
    Packet::Audio {
        role: Role::Caller,
        token: a.token(),
        stream: 1,
        seq: 1,
        ts: 0,
        payload: b"x",
    }
    .encode(&mut audio);
    let mut unknown_kind = audio.clone();
    unknown_kind[1] = 9;
    let mut oversized = audio.clone();
    oversized.resize(1600, 0);
    for junk in [
        b"hello relay".to_vec(),
        Vec::new(),
        audio[..20].to_vec(),
        unknown_kind,
        oversized,
    ] {
        a.send_raw(&junk).await?;
    }
    b.assert_silent(SILENCE).await?;
    a.assert_silent(Duration::ZERO).await?;

    // The real path still works afterwards: nothing above disturbed it.
    let sent = a.send_audio(3, b"the real thing").await?;
    assert_eq!(b.expect_datagram(PUSH_TIMEOUT).await?.0, sent);
    call.alice.assert_no_call_push(Duration::ZERO).await?;
    Ok(())
}

#[tokio::test]
async fn the_relay_ignores_a_call_that_only_rings() -> Result<()> {
    let server = TestServer::start().await?;
    let (_alice, _bobby, _call_id, incoming) = ringing(&server).await?;
    let b = MediaSocket::open(&incoming.media, Role::Callee).await?;
    b.bind().await?;
    b.send_audio(1, b"too early").await?;
    b.assert_silent(SILENCE).await?;
    Ok(())
}

#[tokio::test]
async fn the_ready_file_names_the_relay_and_a_restart_keeps_its_port() -> Result<()> {
    let mut server = TestServer::start().await?;
    let relay: SocketAddr = server.relay_addr()?;
    ensure!(relay.ip().is_loopback() && relay.port() != 0, "{relay}");
    server.restart().await?;
    assert_eq!(server.relay_addr()?, relay);
    Ok(())
}

#[tokio::test]
async fn relay_host_is_what_calls_advertise() -> Result<()> {
    let server = TestServer::start_with(&["--relay-host", "voice.example.org"]).await?;
    let (_alice, _bobby, _call_id, incoming) = ringing(&server).await?;
    assert_eq!(
        incoming.media.relay_addr,
        format!("voice.example.org:{}", server.relay_addr()?.port())
    );
    Ok(())
}
