//! Faults: the server killed with SIGKILL and restarted, clients whose sockets die mid-
//! conversation, and a second login of the same user.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use natter_e2e::*;

#[tokio::test]
async fn messages_accepted_before_a_crash_reach_bob_after_the_restart() -> Result<()> {
    let mut server = TestServer::start().await?;
    server.register("bobby").await?;
    let mut alice = server.user("alice").await?;
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(
            alice
                .send_text("bobby", &format!("before the crash {n}"))
                .await?,
        );
    }

    // Killed right after the last `message_accepted`: no shutdown code runs.
    server.kill9()?;
    alice.expect_closed(Duration::from_secs(5)).await?;
    server.restart().await?;

    let mut bob = server.login("bobby").await?;
    let got = bob.expect_messages_from("alice", 5).await?;
    assert_eq!(
        got.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        sent.iter().map(|a| a.msg_id).collect::<Vec<_>>()
    );
    assert_eq!(
        got.iter().filter_map(text_of).collect::<Vec<_>>(),
        (0..5)
            .map(|n| format!("before the crash {n}"))
            .collect::<Vec<_>>()
    );
    bob.assert_no_message(QUIET_WINDOW).await?;
    bob.ack(&got.iter().map(|m| m.msg_id).collect::<Vec<_>>())
        .await?;

    let mut alice = server.login("alice").await?;
    for accepted in &sent {
        alice.expect_receipt(accepted.msg_id).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_burst_loses_no_accepted_message_and_resends_are_exact(
) -> Result<()> {
    const BURST: usize = 100;
    const KILL_AFTER: usize = 30;
    let mut server = TestServer::start().await?;
    server.register("bobby").await?;
    let alice = server.user("alice").await?;

    let mut outstanding = Vec::with_capacity(BURST);
    for n in 0..BURST {
        let cid = format!("burst-{n}");
        let message = ClientMessage::SendMessage {
            id: alice.new_id(),
            client_msg_id: cid.clone(),
            to: user("bobby"),
            body: text(&format!("burst {n}")),
        };
        outstanding.push((cid, n, alice.submit(&message).await?));
    }
    let mut accepted: BTreeMap<usize, Accepted> = BTreeMap::new();
    let mut unanswered = Vec::new();
    for (i, (cid, n, pending)) in outstanding.into_iter().enumerate() {
        if i == KILL_AFTER {
            server.kill9()?;
        }
        match pending.wait_within(Duration::from_secs(5)).await {
            Ok(reply) => {
                accepted.insert(n, accepted_reply(reply, &cid)?);
            }
            Err(_) => unanswered.push((cid, n)),
        }
    }
    ensure!(
        accepted.len() >= KILL_AFTER,
        "at least the first {KILL_AFTER} were accepted before the kill, got {}",
        accepted.len()
    );

    eprintln!(
        "accepted before the crash: {}, unanswered: {}",
        accepted.len(),
        unanswered.len()
    );
    server.restart().await?;
    // alice retries everything she has no answer for, with the same client ids.
    let alice = server.login("alice").await?;
    for (cid, n) in &unanswered {
        let retry = alice
            .send_text_with_id("bobby", cid, &format!("burst {n}"))
            .await?;
        accepted.insert(*n, retry);
    }
    // Replays of what was accepted before the crash are duplicates with the same ids.
    for (n, before) in accepted.clone().iter().take(5) {
        let replay = alice
            .send_text_with_id("bobby", &before.client_msg_id, &format!("burst {n}"))
            .await?;
        ensure!(
            replay.duplicate,
            "burst {n} was stored before the crash: {replay:?}"
        );
        assert_eq!(replay.msg_id, before.msg_id);
    }

    let mut bob = server.login("bobby").await?;
    let got = bob.expect_messages_from("alice", BURST).await?;
    let ids: Vec<i64> = got.iter().map(|m| m.msg_id).collect();
    ensure!(ids.windows(2).all(|w| w[0] < w[1]), "msg_id order: {ids:?}");
    let texts: HashSet<String> = got.iter().filter_map(text_of).collect();
    assert_eq!(texts.len(), BURST, "every message exactly once");
    for (n, a) in &accepted {
        ensure!(
            got.iter()
                .any(|m| m.msg_id == a.msg_id && text_of(m) == Some(format!("burst {n}"))),
            "accepted message {n} ({a:?}) was delivered"
        );
    }
    bob.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_socket_then_resume_and_resend_delivers_exactly_once() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let token = alice.token()?;

    // alice sends, the message is stored and reaches bob, but her socket dies before she
    // reads the answer.
    let cid = new_client_msg_id();
    let _lost_reply = alice
        .submit_text("bobby", &cid, "did this go through?")
        .await?;
    let delivered = bob.expect_message_from("alice").await?;
    alice.drop_connection().await?;

    let (alice, session) = server.resume("alice", &token).await?;
    ensure!(session.resumed);
    let resent = alice
        .send_text_with_id("bobby", &cid, "did this go through?")
        .await?;
    ensure!(resent.duplicate, "the resend is a duplicate: {resent:?}");
    assert_eq!(resent.msg_id, delivered.msg_id);
    bob.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn a_socket_dropped_right_after_sending_still_ends_in_exactly_one_message() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let token = alice.token()?;
    let cid = new_client_msg_id();
    let _lost_reply = alice.submit_text("bobby", &cid, "maybe lost").await?;
    // Cut at once: the server may or may not have read the message.
    alice.drop_connection().await?;

    let (alice, _) = server.resume("alice", &token).await?;
    let resent = alice.send_text_with_id("bobby", &cid, "maybe lost").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, resent.msg_id);
    bob.assert_no_message(QUIET_WINDOW).await?;
    let history = bob.history_with("alice").await?;
    assert_eq!(history.texts(), ["maybe lost"]);
    Ok(())
}

#[tokio::test]
async fn the_newest_login_wins_and_the_old_session_is_kicked() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    let mut old = server.user("alice").await?;
    let old_token = old.token()?;

    bob.expect_user_online("alice").await?;
    let new = server.login("alice").await?;
    let reason = old.expect_kicked().await?;
    assert_eq!(reason, "logged_in_elsewhere");
    old.expect_closed(Duration::from_secs(5)).await?;
    // alice stayed online throughout: bob hears nothing of the takeover.
    bob.assert_no_push_matching("presence news about alice", QUIET_WINDOW, |m| {
        matches!(m, ServerMessage::UserOffline { username } if username == "alice")
            || matches!(m, ServerMessage::UserOnline { user } if user.username == "alice")
    })
    .await?;
    expect_refusal(
        server.resume("alice", &old_token).await,
        ErrorCode::SessionExpired,
    )?;

    ensure!(new.token()? != old_token);
    let sent = new.send_text("bobby", "it's me, on my phone").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    let online = bob.list_online().await?;
    assert_eq!(
        online.iter().filter(|u| u.username == "alice").count(),
        1,
        "alice is online once: {online:?}"
    );
    Ok(())
}

#[tokio::test]
async fn resuming_while_the_old_connection_lingers_kicks_the_old_one_and_keeps_the_token(
) -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    // alice's laptop lost its network; her old socket is still open on the server's side.
    let mut lingering = server.user("alice").await?;
    let token = lingering.token()?;
    bob.expect_user_online("alice").await?;

    let (alice, session) = server.resume("alice", &token).await?;
    ensure!(session.resumed);
    assert_eq!(session.token, token);
    assert_eq!(lingering.expect_kicked().await?, "logged_in_elsewhere");
    lingering.expect_closed(Duration::from_secs(5)).await?;

    alice.send_text("bobby", "back on wifi").await?;
    bob.expect_message_from("alice").await?;
    // The token is still good for the next reconnect.
    alice.drop_connection().await?;
    let (_alice, again) = server.resume("alice", &token).await?;
    ensure!(again.resumed);
    Ok(())
}

#[tokio::test]
async fn a_graceful_shutdown_tells_every_session_why() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let mut visitor = server.guest("visitor").await?;
    let mut greeted = server.connect().await?;
    server.terminate().await?;
    for client in [&mut alice, &mut visitor] {
        assert_eq!(client.expect_kicked().await?, "shutdown");
        client.expect_closed(Duration::from_secs(5)).await?;
    }
    greeted.expect_closed(Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test]
async fn accounts_friends_history_and_certificate_survive_a_restart() -> Result<()> {
    let (mut server, mut alice, mut bob) = alice_and_bob().await?;
    befriend(&mut alice, &mut bob).await?;
    alice.send_text("bobby", "remember me").await?;
    alice.send_square("remember the square").await?;
    let cert_before = server.cert_der()?.clone();
    let plain_before = server.plain_addr();
    drop((alice, bob));

    server.restart().await?;
    assert_eq!(server.plain_addr(), plain_before, "same port after restart");
    assert_eq!(
        server.cert_der()?,
        &cert_before,
        "the certificate is kept in the data dir"
    );

    let alice = server.login("alice").await?;
    let session = alice.session().expect("logged in");
    let bob_entry = session.friend("bobby").context("bob is still a friend")?;
    ensure!(!bob_entry.online);
    assert_eq!(alice.history_with("bobby").await?.texts(), ["remember me"]);
    assert_eq!(
        alice.history(Target::Square, None, None).await?.texts(),
        ["remember the square"]
    );
    let tls_bob = server.connect_tls().await?;
    tls_bob.login("bobby", &password_for("bobby")).await?;
    Ok(())
}

#[tokio::test]
async fn a_session_token_still_resumes_after_a_restart() -> Result<()> {
    let mut server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    let token = alice.token()?;
    server.kill9()?;
    drop(alice);
    server.restart().await?;
    let (_alice, session) = server.resume("alice", &token).await?;
    ensure!(session.resumed);
    assert_eq!(session.profile.username, "alice");
    Ok(())
}

#[tokio::test]
async fn receipts_and_friend_requests_waiting_for_alice_survive_a_crash() -> Result<()> {
    let (mut server, alice, mut bob) = alice_and_bob().await?;
    let sent = alice.send_text("bobby", "ack me").await?;
    alice.logout().await?;
    let got = bob.expect_message_from("alice").await?;
    bob.ack(&[got.msg_id]).await?;
    bob.friend_request("alice", "while you were away").await?;

    server.kill9()?;
    server.restart().await?;
    let mut alice = server.login("alice").await?;
    alice.expect_receipt(sent.msg_id).await?;
    let session = alice.session().expect("logged in");
    ensure!(
        session
            .incoming_requests
            .iter()
            .any(|r| r.from == "bobby" && r.message == "while you were away"),
        "the request is pending after the crash: {:?}",
        session.incoming_requests
    );
    Ok(())
}

#[tokio::test]
async fn clients_see_the_connection_close_when_the_server_dies() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let mut visitor = server.guest("visitor").await?;
    server.kill9()?;
    alice.expect_closed(Duration::from_secs(5)).await?;
    visitor.expect_closed(Duration::from_secs(5)).await?;
    ensure!(
        alice.list_online().await.is_err(),
        "a request on a dead connection fails at once"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_hold_up_the_others() -> Result<()> {
    const FLOOD: usize = 600;
    let server = TestServer::start_with(&["--no-rate-limits"]).await?;
    // sloth logs in and then never reads again; its socket buffers fill up.
    let mut sloth = RawSocket::connect(&server).await?;
    sloth.hello().await?;
    sloth
        .send(&ClientMessage::GuestLogin {
            id: "sloth".into(),
            username: "sloth".into(),
        })
        .await?;
    match sloth.expect_message().await? {
        ServerMessage::LoginOk { .. } => {}
        other => anyhow::bail!("expected login_ok, got {}", show(&other)),
    }
    let alice = server.user("alice").await?;
    let mut bob = server.user("bobby").await?;

    // About 10 MB of square messages: far more than the kernel buffers toward sloth hold.
    let body = "x".repeat(16 * 1024);
    let mut pending = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let client_msg_id = new_client_msg_id();
        let message = ClientMessage::SendMessage {
            id: alice.new_id(),
            client_msg_id: client_msg_id.clone(),
            to: Target::Square,
            body: text(&body),
        };
        pending.push((client_msg_id, alice.submit(&message).await?));
    }
    // A flood this size may outrun the writer; `slow_down` means "not stored, send it again
    // later" (PROTOCOL.md §5.5 rule 8), so alice sends the refused ones again, all at once as a
    // client's outbox does, until every message is accepted. Bob heartbeats meanwhile, as a
    // real client does, so a long retry does not look like silence.
    let _bob_alive = bob.keep_alive(Duration::from_secs(5));
    for round in 0.. {
        let mut refused = Vec::new();
        let mut wait = Duration::ZERO;
        for (client_msg_id, reply) in pending {
            match reply.wait().await? {
                ServerMessage::Error {
                    code: ErrorCode::SlowDown,
                    retry_after_ms,
                    ..
                } => {
                    wait = wait.max(Duration::from_millis(retry_after_ms.unwrap_or(100)));
                    refused.push(client_msg_id);
                }
                reply => {
                    reply
                        .into_result()
                        .context("alice's square message was accepted")?;
                }
            }
        }
        if refused.is_empty() {
            break;
        }
        ensure!(
            round < 50,
            "{} messages still refused after 50 rounds",
            refused.len()
        );
        tokio::time::sleep(wait).await;
        pending = Vec::with_capacity(refused.len());
        for client_msg_id in refused {
            let again = ClientMessage::SendMessage {
                id: alice.new_id(),
                client_msg_id: client_msg_id.clone(),
                to: Target::Square,
                body: text(&body),
            };
            pending.push((client_msg_id, alice.submit(&again).await?));
        }
    }
    let received = bob.expect_messages_from("alice", FLOOD).await?;
    assert_eq!(received.len(), FLOOD);
    // Private chat and new logins are still served.
    let carol = server.user("carol").await?;
    carol.send_text("bobby", "anyone there?").await?;
    bob.expect_message_from("carol").await?;
    drop(sloth);
    Ok(())
}

/// On PostgreSQL (the suites' second pass), every database connection of the server is cut
/// while alice and bob chat: a request that meets a dead connection may fail, and alice resends
/// it under the same id; the server reconnects, and bob gets every message exactly once.
#[tokio::test]
async fn cut_database_connections_are_replaced_and_no_message_is_lost_or_doubled() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    if !server.on_postgres() {
        // The embedded SQLite file has no connection to lose.
        return Ok(());
    }
    let mut sent = Vec::new();
    for n in 0..6 {
        if n == 3 {
            server.cut_database_connections()?;
        }
        let id = alice.new_id();
        let text = format!("through the cut {n}");
        let mut accepted = None;
        for _ in 0..5 {
            match alice.send_text_with_id("bobby", &id, &text).await {
                Ok(a) => {
                    accepted = Some(a);
                    break;
                }
                Err(e) => {
                    eprintln!("send {n} refused, resending: {e:#}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        sent.push(accepted.with_context(|| format!("message {n} was never accepted"))?);
    }
    let got = bob.expect_messages_from("alice", sent.len()).await?;
    assert_eq!(
        got.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        sent.iter().map(|a| a.msg_id).collect::<Vec<_>>()
    );
    bob.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}
