//! Chat: private messages with acceptance, delivery and receipts; the offline queue; idempotent
//! resends; the square; history paging and privacy; who a message is from.

use std::collections::HashSet;

use anyhow::{ensure, Result};
use natter_e2e::*;

#[tokio::test]
async fn alice_writes_bob_he_gets_it_and_she_gets_a_delivered_receipt() -> Result<()> {
    let (_server, mut alice, mut bob) = alice_and_bob().await?;

    let sent = alice.send_text("bobby", "hi bob 👋").await?;
    ensure!(!sent.duplicate);
    ensure!(sent.msg_id > 0 && sent.ts > 0);

    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    assert_eq!(got.client_msg_id, sent.client_msg_id);
    assert_eq!(got.ts, sent.ts);
    assert_eq!(got.to, user("bobby"));
    assert_eq!(text_of(&got).as_deref(), Some("hi bob 👋"));
    ensure!(!got.from_guest);

    bob.ack(&[got.msg_id]).await?;
    let receipt = alice.expect_receipt(sent.msg_id).await?;
    assert_eq!(receipt.client_msg_id, sent.client_msg_id);
    assert_eq!(receipt.to, "bobby");
    ensure!(receipt.ts >= sent.ts);
    Ok(())
}

#[tokio::test]
async fn messages_arrive_in_the_order_they_were_sent() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            alice
                .send_text("bobby", &format!("message {n}"))
                .await?
                .msg_id,
        );
    }
    ensure!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "msg_ids increase: {ids:?}"
    );
    let got = bob.expect_messages_from("alice", 20).await?;
    let texts: Vec<String> = got.iter().filter_map(text_of).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("message {n}")).collect();
    assert_eq!(texts, expected);
    Ok(())
}

#[tokio::test]
async fn alice_sends_while_bob_offline_bob_gets_it_once() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let mut alice = server.user("alice").await?;
    let mut sent = Vec::new();
    for body in ["first", "second", "third"] {
        sent.push(alice.send_text("bobby", body).await?);
    }

    let mut bob = server.login("bobby").await?;
    let got = bob.expect_messages_from("alice", 3).await?;
    assert_eq!(
        got.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        sent.iter().map(|a| a.msg_id).collect::<Vec<_>>(),
        "queued messages arrive in msg_id order"
    );
    assert_eq!(
        got.iter().filter_map(text_of).collect::<Vec<_>>(),
        ["first", "second", "third"]
    );
    bob.assert_no_message(QUIET_WINDOW).await?;
    bob.ack(&got.iter().map(|m| m.msg_id).collect::<Vec<_>>())
        .await?;
    for accepted in &sent {
        alice.expect_receipt(accepted.msg_id).await?;
    }

    // Acked messages never come again.
    bob.logout().await?;
    let mut bob = server.login("bobby").await?;
    bob.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn unacked_messages_come_again_at_the_next_login_but_never_twice_in_one_connection(
) -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let sent = alice.send_text("bobby", "did you get this?").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    // bob does not ack. Other traffic on his connection must not repeat the message.
    alice.send_text("bobby", "and this?").await?;
    bob.expect_message_from("alice").await?;
    bob.assert_no_message(QUIET_WINDOW).await?;

    bob.logout().await?;
    let mut bob = server.login("bobby").await?;
    let again = bob.expect_messages_from("alice", 2).await?;
    assert_eq!(again[0].msg_id, sent.msg_id);
    bob.assert_no_message(QUIET_WINDOW).await?;
    bob.ack(&[again[0].msg_id, again[1].msg_id]).await?;
    bob.logout().await?;

    let mut bob = server.login("bobby").await?;
    bob.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn a_receipt_reaches_alice_at_her_next_login() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let sent = alice.send_text("bobby", "read me later").await?;
    alice.logout().await?;
    let got = bob.expect_message_from("alice").await?;
    bob.ack(&[got.msg_id]).await?;

    let mut alice = server.login("alice").await?;
    let receipt = alice.expect_receipt(sent.msg_id).await?;
    assert_eq!(receipt.to, "bobby");
    assert_eq!(receipt.client_msg_id, sent.client_msg_id);
    Ok(())
}

#[tokio::test]
async fn resending_the_same_client_msg_id_delivers_once() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let cid = new_client_msg_id();
    let first = alice.send_text_with_id("bobby", &cid, "only once").await?;
    ensure!(!first.duplicate);
    let second = alice.send_text_with_id("bobby", &cid, "only once").await?;
    ensure!(second.duplicate, "the resend is reported as a duplicate");
    assert_eq!(
        (second.msg_id, second.ts),
        (first.msg_id, first.ts),
        "the resend gets the original id and time"
    );
    bob.expect_message_from("alice").await?;
    bob.assert_no_message(QUIET_WINDOW).await?;
    let history = bob.history_with("alice").await?;
    assert_eq!(history.messages.len(), 1);

    // The key is per sender: bob may use the same client id for his own message.
    let bobs = bob.send_text_with_id("alice", &cid, "my own").await?;
    ensure!(!bobs.duplicate);
    ensure!(bobs.msg_id != first.msg_id);
    Ok(())
}

#[tokio::test]
async fn the_square_reaches_every_other_online_user_and_is_kept_for_history() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("dave").await?; // offline: square messages are not queued for him
    let mut alice = server.user("alice").await?;
    let mut bob = server.user("bobby").await?;
    let mut carol = server.user("carol").await?;
    let mut visitor = server.guest("visitor").await?;

    let sent = alice.send_square("hello everyone").await?;
    for member in [&mut bob, &mut carol, &mut visitor] {
        let got = member.expect_message_from("alice").await?;
        assert_eq!(got.msg_id, sent.msg_id);
        assert_eq!(got.to, Target::Square);
        assert_eq!(text_of(&got).as_deref(), Some("hello everyone"));
    }
    alice
        .assert_no_push_matching("her own square message", QUIET_WINDOW, |m| {
            matches!(m, ServerMessage::Message { .. })
        })
        .await?;
    let from_guest = visitor.send_square("hi from a guest").await?;
    let got = bob.expect_message_from("visitor").await?;
    assert_eq!(got.msg_id, from_guest.msg_id);
    ensure!(got.from_guest);

    let mut dave = server.login("dave").await?;
    dave.assert_no_message(QUIET_WINDOW).await?;
    let page = dave.history(Target::Square, None, None).await?;
    assert_eq!(page.texts(), ["hello everyone", "hi from a guest"]);
    assert_eq!(page.with, Target::Square);
    Ok(())
}

#[tokio::test]
async fn history_pages_backwards_from_the_newest() -> Result<()> {
    let (_server, alice, bob) = alice_and_bob().await?;
    for n in 0..7 {
        let (from, to) = if n % 2 == 0 {
            (&alice, "bobby")
        } else {
            (&bob, "alice")
        };
        from.send_text(to, &format!("m{n}")).await?;
    }

    let newest = bob.history(user("alice"), None, Some(3)).await?;
    assert_eq!(newest.texts(), ["m4", "m5", "m6"]);
    ensure!(newest.has_more);
    assert_eq!(newest.with, user("alice"));
    let middle = bob
        .history(user("alice"), Some(newest.messages[0].msg_id), Some(3))
        .await?;
    assert_eq!(middle.texts(), ["m1", "m2", "m3"]);
    ensure!(middle.has_more);
    let oldest = bob
        .history(user("alice"), Some(middle.messages[0].msg_id), Some(3))
        .await?;
    assert_eq!(oldest.texts(), ["m0"]);
    ensure!(!oldest.has_more);

    // Both participants see the same conversation; the default page holds all 7.
    let alices = alice.history_with("bobby").await?;
    assert_eq!(alices.texts(), ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    ensure!(!alices.has_more);
    let senders: Vec<&str> = alices.messages.iter().map(|m| m.from.as_str()).collect();
    assert_eq!(
        senders,
        ["alice", "bobby", "alice", "bobby", "alice", "bobby", "alice"]
    );
    Ok(())
}

#[tokio::test]
async fn carol_cannot_read_alice_and_bobs_conversation() -> Result<()> {
    let (server, alice, bob) = alice_and_bob().await?;
    let carol = server.user("carol").await?;
    alice.send_text("bobby", "secret for bob").await?;
    bob.send_text("alice", "secret for alice").await?;
    alice.send_text("carol", "hello carol").await?;

    let with_alice = carol.history_with("alice").await?;
    assert_eq!(with_alice.texts(), ["hello carol"]);
    let with_bob = carol.history_with("bobby").await?;
    ensure!(
        with_bob.messages.is_empty(),
        "carol and bob never talked: {with_bob:?}"
    );
    let square = carol.history(Target::Square, None, None).await?;
    ensure!(
        square.messages.is_empty(),
        "private messages are not in the square"
    );
    Ok(())
}

#[tokio::test]
async fn a_message_is_always_from_the_session_user() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let _carol = server.user("carol").await?;
    // A forged `from` field is not part of send_message and must change nothing.
    let reply = alice
        .request_json(serde_json::json!({
            "type": "send_message",
            "client_msg_id": "forged-1",
            "from": "carol",
            "to": {"kind": "user", "username": "bobby"},
            "body": {"kind": "text", "text": "it is me, carol"},
        }))
        .await?;
    let accepted = accepted_reply(reply, "forged-1")?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, accepted.msg_id);
    bob.assert_no_push_matching(
        "a message claiming to be from carol",
        QUIET_WINDOW,
        |m| matches!(m, ServerMessage::Message { message } if message.from == "carol"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn bad_messages_are_refused_with_their_reason() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    expect_refusal(alice.send_text("nobody", "hi").await, ErrorCode::NoSuchUser)?;
    expect_refusal(
        alice.send_text("alice", "hi me").await,
        ErrorCode::SelfTarget,
    )?;
    expect_refusal(alice.send_text("bobby", "").await, ErrorCode::InvalidField)?;
    expect_refusal(
        alice.send_text("bobby", " \n\t ").await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        alice.send_text("bobby", &"x".repeat(16 * 1024 + 1)).await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        alice
            .send_text_with_id("bobby", &"c".repeat(65), "hi")
            .await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        alice.send_text_with_id("bobby", "", "hi").await,
        ErrorCode::InvalidField,
    )?;
    let image = MessageBody::Image {
        file_id: "f1".into(),
        name: "cat.png".into(),
        mime: "image/png".into(),
        size: 10,
        width: 1,
        height: 1,
        thumbnail: "AAAA".into(),
        sha256: None,
    };
    // An image body must name a transfer of the sender (PROTOCOL.md §5.7 rule 10).
    expect_refusal(
        alice.send(user("bobby"), &new_client_msg_id(), image).await,
        ErrorCode::NotFound,
    )?;
    bob.assert_no_message(QUIET_WINDOW).await?;
    // Exactly 16 KiB of multi-byte text is fine.
    let big = "字".repeat(16 * 1024 / 3);
    alice.send_text("bobby", &big).await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(text_of(&got).as_deref(), Some(big.as_str()));
    Ok(())
}

#[tokio::test]
async fn cjk_emoji_and_multiline_text_survive_the_round_trip() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let body = "你好，鲍勃！\n第二行 🎉\ttab \"quotes\" \\ backslash";
    alice.send_text("bobby", body).await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(text_of(&got).as_deref(), Some(body));
    assert_eq!(bob.history_with("alice").await?.texts(), [body]);
    Ok(())
}

#[tokio::test]
async fn chat_needs_a_session() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let client = server.connect().await?;
    expect_refusal(
        client.send_text("bobby", "hi").await,
        ErrorCode::NotAuthenticated,
    )?;
    expect_refusal(client.send_square("hi").await, ErrorCode::NotAuthenticated)?;
    expect_refusal(client.ack(&[1]).await, ErrorCode::NotAuthenticated)?;
    expect_refusal(
        client.history_with("bobby").await,
        ErrorCode::NotAuthenticated,
    )?;
    Ok(())
}

#[tokio::test]
async fn many_messages_to_an_offline_user_arrive_complete_and_in_order() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let alice = server.user("alice").await?;
    let carol = server.user("carol").await?;
    let mut expected = Vec::new();
    for n in 0..30 {
        let (from, label) = if n % 3 == 0 {
            (&carol, "carol")
        } else {
            (&alice, "alice")
        };
        let accepted = from.send_text("bobby", &format!("{label} {n}")).await?;
        expected.push(accepted.msg_id);
    }
    let mut bob = server.login("bobby").await?;
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let message = bob
            .expect_push_map("a queued message", |m| match m {
                ServerMessage::Message { message } => Some(message.clone()),
                _ => None,
            })
            .await?;
        got.push(message.msg_id);
    }
    assert_eq!(got, expected, "all 30, in msg_id order");
    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len());
    bob.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn acking_someone_elses_message_gives_its_sender_no_receipt() -> Result<()> {
    let (server, mut alice, mut bob) = alice_and_bob().await?;
    let mut carol = server.user("carol").await?;
    let sent = alice.send_text("bobby", "for bob only").await?;
    let square = alice.send_square("for everyone").await?;
    carol.expect_message_from("alice").await?;

    // carol acks bob's message and a square message: ignored, but not an error.
    carol.ack(&[sent.msg_id, square.msg_id]).await?;
    bob.ack(&[square.msg_id]).await?;
    alice
        .assert_no_push_matching("a receipt nobody earned", QUIET_WINDOW, |m| {
            matches!(m, ServerMessage::Receipt { .. })
        })
        .await?;

    let got = bob.expect_push_map("alice's private message", |m| match m {
        ServerMessage::Message { message } if message.msg_id == sent.msg_id => {
            Some(message.clone())
        }
        _ => None,
    });
    let got = got.await?;
    bob.ack(&[got.msg_id]).await?;
    let receipt = alice.expect_receipt(sent.msg_id).await?;
    assert_eq!(receipt.to, "bobby");
    // Acking twice sends no second receipt.
    bob.ack(&[got.msg_id]).await?;
    alice
        .assert_no_push_matching("a second receipt", QUIET_WINDOW, |m| {
            matches!(m, ServerMessage::Receipt { .. })
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn history_refuses_bad_page_sizes_and_unknown_users() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    for limit in [0, 201] {
        expect_refusal(
            alice.history(user("bobby"), None, Some(limit)).await,
            ErrorCode::InvalidField,
        )?;
    }
    alice.history(user("bobby"), None, Some(200)).await?;
    alice.history(user("bobby"), None, Some(1)).await?;
    expect_refusal(alice.history_with("nobody").await, ErrorCode::NoSuchUser)?;
    Ok(())
}

#[tokio::test]
async fn names_in_requests_match_in_any_case() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let sent = alice.send_text("BOBBY", "shouting your name").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    assert_eq!(
        alice.history_with("BoBbY").await?.texts(),
        ["shouting your name"]
    );
    alice.friend_request("Bobby", "").await?;
    bob.expect_friend_request_from("alice").await?;
    bob.friend_respond("ALICE", true).await?;
    ensure!(alice.friend_list().await?.friend("bobby").is_some());
    Ok(())
}

#[tokio::test]
async fn at_login_queued_notices_come_before_queued_messages() -> Result<()> {
    let (server, alice, bob) = alice_and_bob().await?;
    let mut carol = server.user("carol").await?;
    alice.friend_request("bobby", "").await?;
    let to_carol = alice.send_text("carol", "please ack").await?;
    alice.logout().await?;

    // While alice is away: an answer, a receipt and two messages wait for her.
    bob.friend_respond("alice", true).await?;
    let got = carol.expect_message_from("alice").await?;
    carol.ack(&[got.msg_id]).await?;
    bob.send_text("alice", "one").await?;
    carol.send_text("alice", "two").await?;

    let mut alice = server.login("alice").await?;
    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        match alice.next_push(PUSH_TIMEOUT).await? {
            ServerMessage::Heartbeat { .. } => {}
            ServerMessage::FriendResponse { .. } => kinds.push("notice"),
            ServerMessage::Receipt { msg_id, .. } => {
                assert_eq!(msg_id, to_carol.msg_id);
                kinds.push("notice")
            }
            ServerMessage::Message { .. } => kinds.push("message"),
            other => anyhow::bail!("unexpected push at login: {}", show(&other)),
        }
    }
    assert_eq!(kinds, ["notice", "notice", "message", "message"]);
    Ok(())
}
