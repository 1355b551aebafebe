//! Chat through natter-core: private messages with their sending → sent → delivered states,
//! offline delivery, the square, refusals, and history fetched from the server and merged into
//! the local store without duplicates and in server order.

use std::collections::HashSet;

use anyhow::{ensure, Result};
use natter_core::{ClientError, Event, MessageState};
use natter_e2e::harness::core::*;
use natter_e2e::*;

#[tokio::test]
async fn alice_messages_bob_and_watches_it_go_from_sending_to_sent_to_delivered() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;

    let queued = alice.send_text(user("bobby"), "hi bob").await?;
    assert_eq!(queued.state, MessageState::Sending);
    assert_eq!(queued.msg_id, None);
    assert_eq!(queued.from, "alice");

    let (msg_id, ts) = alice.expect_sent(&queued.client_msg_id).await?;
    let delivered = alice.expect_delivered(&queued.client_msg_id).await?;
    assert_eq!(delivered, msg_id);
    let sent_at = alice
        .log()
        .iter()
        .position(|e| matches!(e, Event::Sent(s) if s.client_msg_id == queued.client_msg_id));
    let delivered_at = alice
        .log()
        .iter()
        .position(|e| matches!(e, Event::Delivered { client_msg_id, .. } if *client_msg_id == queued.client_msg_id));
    ensure!(
        sent_at < delivered_at,
        "Sent must come before Delivered: {:?}",
        alice.log().iter().map(short).collect::<Vec<_>>()
    );
    let mine = alice
        .local_copy(&user("bobby"), &queued.client_msg_id)
        .await?;
    assert_eq!(mine.state, MessageState::Delivered);
    assert_eq!(mine.msg_id, Some(msg_id));
    assert_eq!(mine.ts, ts, "the local copy takes the server's time");

    let got = bob.expect_message("alice", "hi bob").await?;
    assert_eq!(got.msg_id, Some(msg_id));
    assert_eq!(got.client_msg_id, queued.client_msg_id);
    assert_eq!(got.state, MessageState::Received);
    assert!(!got.from_guest);
    assert_eq!(got.to, user("bobby"));
    let theirs = bob.local_history(&user("alice"), None, 50).await?;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].msg_id, Some(msg_id));
    assert_eq!(theirs[0].state, MessageState::Received);

    // And back.
    let reply = bob.send_and_confirm(user("alice"), "hi alice").await?;
    alice.expect_message("bobby", "hi alice").await?;
    bob.expect_delivered(&reply.client_msg_id).await?;
    let conversation = alice.local_history(&user("bobby"), None, 50).await?;
    let texts: Vec<&str> = conversation.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["hi bob", "hi alice"]);
    Ok(())
}

#[tokio::test]
async fn the_sent_state_is_stored_before_the_event_fires() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let mut alice = server.core_user("alice").await?;

    // Bob is offline: the message is stored by the server but not delivered.
    let queued = alice.send_text(user("bobby"), "for later").await?;
    assert_eq!(queued.state, MessageState::Sending);
    alice.expect_sent(&queued.client_msg_id).await?;
    assert_eq!(
        alice
            .local_state(&user("bobby"), &queued.client_msg_id)
            .await?,
        MessageState::Sent
    );
    alice.settle(SETTLE_WINDOW).await?;
    ensure!(
        !alice
            .log()
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. })),
        "nothing can be delivered to offline bob"
    );
    Ok(())
}

#[tokio::test]
async fn bob_offline_gets_alices_messages_at_login_once_and_alice_hears_they_arrived() -> Result<()>
{
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let mut alice = server.core_user("alice").await?;

    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(
            alice
                .send_and_confirm(user("bobby"), &format!("while you were out {n}"))
                .await?,
        );
    }

    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    let got = bob.expect_messages(3).await?;
    assert_eq!(
        got.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        sent.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        "queued messages arrive in server order"
    );
    for m in &sent {
        alice.expect_delivered(&m.client_msg_id).await?;
        assert_eq!(
            alice.local_state(&user("bobby"), &m.client_msg_id).await?,
            MessageState::Delivered
        );
    }

    // Bob's app restarts: nothing is shown twice, nothing is pushed again.
    let mut bob = bob.restart_app().await;
    bob.resume_saved("bobby", Some(&password_for("bobby")))
        .await?;
    bob.settle(SETTLE_WINDOW).await?;
    ensure!(
        bob.messages_seen().is_empty(),
        "acked messages came again: {:?}",
        bob.messages_seen()
    );
    assert_eq!(bob.local_history(&user("alice"), None, 50).await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn alice_says_something_in_the_square_and_everyone_online_hears_it() -> Result<()> {
    let (server, mut alice, mut bob) = core_alice_and_bob().await?;
    let mut carol = server.core_user("carol").await?;
    let mut visitor = server.core_guest("visitor").await?;

    let said = alice
        .send_and_confirm(Target::Square, "hello, square")
        .await?;
    for listener in [&mut bob, &mut carol, &mut visitor] {
        let got = listener.expect_message("alice", "hello, square").await?;
        assert_eq!(got.to, Target::Square);
        assert_eq!(got.msg_id, said.msg_id);
    }
    let guest_says = visitor
        .send_and_confirm(Target::Square, "hi from a guest")
        .await?;
    let got = alice.expect_message("visitor", "hi from a guest").await?;
    assert!(got.from_guest);
    assert_eq!(got.msg_id, guest_says.msg_id);

    alice.settle(SETTLE_WINDOW).await?;
    ensure!(
        !alice
            .log()
            .iter()
            .any(|e| matches!(e, Event::Message(m) if m.from == "alice")),
        "alice's own square message is not pushed back to her"
    );
    ensure!(
        !alice
            .log()
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. })),
        "square messages have no delivery receipts"
    );
    let square = alice.local_history(&Target::Square, None, 50).await?;
    let texts: Vec<&str> = square.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["hello, square", "hi from a guest"]);
    assert_eq!(square[0].state, MessageState::Sent);
    Ok(())
}

#[tokio::test]
async fn square_messages_are_not_kept_for_the_offline_but_history_has_them() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let mut alice = server.core_user("alice").await?;
    alice
        .send_and_confirm(Target::Square, "anyone here?")
        .await?;

    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    bob.settle(SETTLE_WINDOW).await?;
    ensure!(
        bob.messages_seen().is_empty(),
        "square messages are not queued for the offline"
    );
    let page = bob.history(&Target::Square, None, 50).await?;
    let texts: Vec<&str> = page.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["anyone here?"]);
    assert_eq!(page[0].state, MessageState::Received);
    Ok(())
}

#[tokio::test]
async fn a_guest_and_a_user_chat_privately() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    let mut visitor = server.core_guest("visitor").await?;

    let hello = visitor
        .send_and_confirm(user("alice"), "hello from a guest")
        .await?;
    let got = alice
        .expect_message("visitor", "hello from a guest")
        .await?;
    assert!(got.from_guest);
    visitor.expect_delivered(&hello.client_msg_id).await?;
    alice.send_and_confirm(user("visitor"), "welcome").await?;
    visitor.expect_message("alice", "welcome").await?;
    Ok(())
}

#[tokio::test]
async fn messages_the_server_refuses_fail_and_can_be_retried() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;

    let lost = alice.send_text(user("nobodyhere"), "hello?").await?;
    let code = alice.expect_failed(&lost.client_msg_id).await?;
    assert_eq!(code, ErrorCode::NoSuchUser);
    let copy = alice
        .local_copy(&user("nobodyhere"), &lost.client_msg_id)
        .await?;
    assert_eq!(copy.state, MessageState::Failed);
    assert!(copy.error.is_some());

    // Retrying goes through the outbox again (and fails again, the user still does not exist).
    alice.retry(&lost.client_msg_id).await?;
    let code = alice.expect_failed(&lost.client_msg_id).await?;
    assert_eq!(code, ErrorCode::NoSuchUser);

    let to_self = alice.send_text(user("alice"), "note to self").await?;
    let code = alice.expect_failed(&to_self.client_msg_id).await?;
    assert_eq!(code, ErrorCode::SelfTarget);

    // Malformed text never leaves the app.
    expect_invalid(
        alice.send_text(user("bobby"), "").await,
        ErrorCode::InvalidField,
    )?;
    expect_invalid(
        alice
            .send_text(user("bobby"), &"x".repeat(16 * 1024 + 1))
            .await,
        ErrorCode::InvalidField,
    )?;
    Ok(())
}

#[tokio::test]
async fn a_retry_after_the_recipient_registers_delivers_the_failed_message() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;

    let early = alice.send_text(user("newcomer"), "welcome aboard").await?;
    alice
        .wait_for("failed", |e| {
            matches!(e, Event::Failed(f) if f.client_msg_id == early.client_msg_id).then_some(())
        })
        .await?;

    let mut newcomer = server.core_user("newcomer").await?;
    alice.retry(&early.client_msg_id).await?;
    alice.expect_sent(&early.client_msg_id).await?;
    newcomer.expect_message("alice", "welcome aboard").await?;
    alice.expect_delivered(&early.client_msg_id).await?;
    Ok(())
}

#[tokio::test]
async fn history_fills_a_fresh_store_with_what_another_device_received() -> Result<()> {
    let (server, mut alice, mut bob) = core_alice_and_bob().await?;

    // Eleven messages both ways while bob uses his laptop; all delivered and acked there.
    let mut expected = Vec::new();
    for n in 0..11 {
        let (from, to) = if n % 3 == 2 {
            (&mut bob, "alice")
        } else {
            (&mut alice, "bobby")
        };
        let text = format!("message {n}");
        let m = from.send_and_confirm(user(to), &text).await?;
        expected.push((m.msg_id.expect("confirmed"), from.name.clone(), text));
    }
    let last = expected.last().unwrap().2.clone();
    bob.expect_message("alice", &last).await?;
    for m in &alice.messages_seen() {
        ensure!(m.from == "bobby");
    }

    // Bob on a new phone: an empty store, and nothing is pushed (everything was acked).
    let mut phone = Device::fresh("bobby", &server)?;
    phone.log_in().await?;
    phone.settle(SETTLE_WINDOW).await?;
    ensure!(phone.messages_seen().is_empty());
    assert!(phone
        .local_history(&user("alice"), None, 50)
        .await?
        .is_empty());

    // Paging backwards, 4 at a time.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = phone.history(&user("alice"), before, 4).await?;
        if page.is_empty() {
            break;
        }
        ensure!(page.len() <= 4, "a page has at most `limit` messages");
        before = page[0].msg_id;
        pages.push(page);
        ensure!(pages.len() <= 5, "paging does not end: {pages:?}");
    }
    assert_eq!(pages.len(), 3, "11 messages in pages of 4");
    let fetched: Vec<_> = pages.into_iter().rev().flatten().collect();
    let got: Vec<(i64, String, String)> = fetched
        .iter()
        .map(|m| {
            (
                m.msg_id.expect("server messages have ids"),
                m.from.clone(),
                text_in(m).unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, expected, "all of it, in server order");
    for m in &fetched {
        let want = if m.from == "bobby" {
            MessageState::Sent
        } else {
            MessageState::Received
        };
        assert_eq!(m.state, want, "state of {m:?}");
    }

    // Everything is now local; fetching again adds no duplicates.
    let whole = phone.history(&user("alice"), None, 50).await?;
    assert_eq!(whole.len(), 11);
    let local = phone.local_history(&user("alice"), None, 200).await?;
    assert_eq!(local.len(), 11);
    let ids: HashSet<_> = local.iter().map(|m| m.msg_id).collect();
    assert_eq!(ids.len(), 11);
    // No message event was made up for history.
    phone.settle(SETTLE_WINDOW).await?;
    ensure!(phone.messages_seen().is_empty());
    Ok(())
}

#[tokio::test]
async fn history_merges_the_server_page_into_a_store_that_has_part_of_it() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    server.core_register("bobby").await?;

    // Three messages bob never saw on any device, then two he sees live.
    for n in 0..3 {
        alice
            .send_and_confirm(user("bobby"), &format!("early {n}"))
            .await?;
    }
    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    bob.expect_messages(3).await?;
    for n in 0..2 {
        alice
            .send_and_confirm(user("bobby"), &format!("late {n}"))
            .await?;
        bob.expect_message("alice", &format!("late {n}")).await?;
    }
    // Bob's own message is in his store already; the merged page shows it once.
    bob.send_and_confirm(user("alice"), "bob's reply").await?;

    let page = bob.history(&user("alice"), None, 50).await?;
    let texts: Vec<&str> = page.iter().filter_map(text_in).collect();
    assert_eq!(
        texts,
        [
            "early 0",
            "early 1",
            "early 2",
            "late 0",
            "late 1",
            "bob's reply"
        ]
    );
    let ids: Vec<i64> = page.iter().filter_map(|m| m.msg_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "ascending server ids, no duplicates");
    Ok(())
}

#[tokio::test]
async fn private_history_holds_only_the_two_people_in_it() -> Result<()> {
    let (server, mut alice, mut bob) = core_alice_and_bob().await?;
    let mut carol = server.core_user("carol").await?;

    alice.send_and_confirm(user("bobby"), "for bob").await?;
    alice.send_and_confirm(user("carol"), "for carol").await?;
    carol
        .send_and_confirm(user("bobby"), "carol to bob")
        .await?;
    bob.expect_message("carol", "carol to bob").await?;

    let with_alice = bob.history(&user("alice"), None, 50).await?;
    let texts: Vec<&str> = with_alice.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["for bob"]);
    let with_carol = bob.history(&user("carol"), None, 50).await?;
    let texts: Vec<&str> = with_carol.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["carol to bob"]);
    Ok(())
}

#[tokio::test]
async fn history_needs_a_login_and_works_from_the_local_store_while_offline() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;
    alice.send_and_confirm(user("bobby"), "one").await?;
    bob.expect_message("alice", "one").await?;

    let stranger = Device::fresh("carol", &server)?;
    let result = stranger.history(&user("alice"), None, 10).await;
    assert!(
        matches!(result, Err(ClientError::NotLoggedIn)),
        "history of a user nobody logged in as: {result:?}"
    );

    server.kill9()?;
    bob.expect_connection(natter_core::ConnectionState::Connecting)
        .await?;
    let page = bob.history(&user("alice"), None, 10).await?;
    let texts: Vec<&str> = page.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["one"], "offline, history answers from the store");
    Ok(())
}

#[tokio::test]
async fn names_in_another_case_lead_to_the_same_people_and_conversations() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("alice").await?;
    let mut bob = server.core_user("bobby").await?;

    // Alice types her name with a capital; the server knows her as "alice".
    let mut alice = Device::fresh("Alice", &server)?;
    alice.open_local("Alice").await?;
    let info = alice.login("Alice", &password_for("alice")).await?;
    assert_eq!(info.profile.username, "alice");

    let first = alice
        .send_and_confirm(user("BOBBY"), "capital letters")
        .await?;
    let got = bob.expect_message("alice", "capital letters").await?;
    assert_eq!(got.from, "alice", "the server names the sender canonically");
    bob.send_and_confirm(user("alice"), "same conversation")
        .await?;
    alice.expect_message("bobby", "same conversation").await?;
    alice.expect_delivered(&first.client_msg_id).await?;

    let local = alice.local_history(&user("bobby"), None, 50).await?;
    let texts: Vec<&str> = local.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["capital letters", "same conversation"]);
    // Merging the server's page adds nothing: alice's own message is already here.
    let merged = alice.history(&user("Bobby"), None, 50).await?;
    let texts: Vec<&str> = merged.iter().filter_map(text_in).collect();
    assert_eq!(texts, ["capital letters", "same conversation"]);
    assert_eq!(merged[0].state, MessageState::Delivered);
    Ok(())
}

#[tokio::test]
async fn unread_counts_and_the_read_mark_survive_a_restart_and_never_move_back() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let mut alice = server.core_user("alice").await?;
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(
            alice
                .send_and_confirm(user("bobby"), &format!("unread {n}"))
                .await?,
        );
    }
    // Bob's own message in the square is not unread to him; alice's is.
    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    bob.expect_messages(3).await?;
    bob.send_and_confirm(natter_proto::Target::Square, "mine")
        .await?;
    alice
        .send_and_confirm(natter_proto::Target::Square, "hers")
        .await?;
    bob.expect_message("alice", "hers").await?;

    let mut unread = bob.unread().await?;
    unread.sort_by_key(|u| u.count);
    assert_eq!(unread.len(), 2, "{unread:?}");
    assert_eq!(
        (&unread[0].with, unread[0].count),
        (&natter_proto::Target::Square, 1)
    );
    assert_eq!((&unread[1].with, unread[1].count), (&user("alice"), 3));
    assert_eq!(unread[1].read_up_to, 0);
    assert_eq!(Some(unread[1].newest), sent[2].msg_id);

    // Bob reads alice's chat; his app restarts: still read, the square still unread.
    assert_eq!(Some(bob.mark_read(&user("alice")).await?), sent[2].msg_id);
    let mut bob = bob.restart_app().await;
    bob.resume_saved("bobby", Some(&password_for("bobby")))
        .await?;
    let unread = bob.unread().await?;
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert_eq!(unread[0].with, natter_proto::Target::Square);

    // One more from alice: one unread, and the divider goes after what was read.
    let later = alice.send_and_confirm(user("bobby"), "one more").await?;
    bob.expect_message("alice", "one more").await?;
    let unread = bob.unread().await?;
    let chat = unread
        .iter()
        .find(|u| u.with == user("alice"))
        .ok_or_else(|| anyhow::anyhow!("alice's chat is not unread: {unread:?}"))?;
    assert_eq!((chat.count, Some(chat.read_up_to)), (1, sent[2].msg_id));
    assert_eq!(Some(chat.newest), later.msg_id);

    // Older pages fetched after the mark do not make read messages unread again.
    bob.mark_read(&user("alice")).await?;
    bob.history(&user("alice"), None, 50).await?;
    assert!(bob.unread().await?.iter().all(|u| u.with != user("alice")));
    Ok(())
}
