//! natter-core against failure: the server killed with SIGKILL and restarted under connected
//! clients, a server that stops answering, messages typed while the server is down, and apps
//! restarted with messages still in their outbox. Every acknowledged and every queued message
//! must arrive exactly once — counted by server id and by text at the receiver.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use natter_core::{ClientError, ConnectionState, Event, LocalMessage, MessageState};
use natter_e2e::harness::core::*;
use natter_e2e::*;

/// Waits until `device` has shown a message event for each of `texts`, then watches a little
/// longer, and asserts each text and each server id arrived exactly once.
async fn expect_each_exactly_once(device: &mut Device, texts: &[String]) -> Result<()> {
    for text in texts {
        let already = device
            .messages_seen()
            .iter()
            .any(|m| text_in(m) == Some(text.as_str()));
        if !already {
            let wanted = text.clone();
            device
                .wait_for(&format!("message {wanted:?}"), |e| {
                    matches!(e, Event::Message(m) if text_in(m) == Some(wanted.as_str()))
                        .then_some(())
                })
                .await?;
        }
    }
    device.settle(Duration::from_millis(600)).await?;
    let seen = device.messages_seen();
    let counts = count_texts(&seen);
    let doubled: BTreeMap<_, _> = counts.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(
        doubled.is_empty(),
        "{} was shown some messages more than once: {doubled:?}",
        device.name
    );
    let mut ids = HashSet::new();
    for m in &seen {
        let id = m.msg_id.context("a received message has a server id")?;
        ensure!(
            ids.insert(id),
            "{} was shown message #{id} twice",
            device.name
        );
    }
    let wanted: HashSet<&str> = texts.iter().map(String::as_str).collect();
    let extra: Vec<&LocalMessage> = seen
        .iter()
        .filter(|m| !wanted.contains(text_in(m).unwrap_or("")))
        .collect();
    ensure!(
        extra.is_empty(),
        "{} was shown messages nobody sent in this scenario: {extra:?}",
        device.name
    );
    Ok(())
}

/// Waits until every one of `sent` is `Delivered` for its sender, and checks local history
/// agrees, with one server id per message.
async fn expect_all_delivered(
    sender: &mut Device,
    to: &Target,
    sent: &[LocalMessage],
) -> Result<()> {
    let mut ids = HashSet::new();
    for m in sent {
        let msg_id = sender.expect_delivered(&m.client_msg_id).await?;
        ensure!(ids.insert(msg_id), "two messages got server id #{msg_id}");
        let copy = sender.local_copy(to, &m.client_msg_id).await?;
        assert_eq!(copy.state, MessageState::Delivered, "{copy:?}");
        assert_eq!(copy.msg_id, Some(msg_id));
    }
    Ok(())
}

/// Checks the sender's side after a fault: every one of `sent` left the outbox with the server
/// id the receiver saw for it (delivered, or at least sent: a receipt pushed into a connection
/// that died is not sent again, see `a_receipt_pushed_into_a_dead_connection_still_reaches_alice`).
async fn expect_all_confirmed(
    sender: &mut Device,
    receiver: &Device,
    to: &Target,
    sent: &[LocalMessage],
) -> Result<()> {
    let seen = receiver.messages_seen();
    let mut ids = HashSet::new();
    for m in sent {
        let theirs = seen
            .iter()
            .find(|r| r.client_msg_id == m.client_msg_id)
            .with_context(|| format!("{} never got {:?}", receiver.name, text_in(m)))?;
        let mut copy = sender.local_copy(to, &m.client_msg_id).await?;
        if copy.state == MessageState::Sending {
            sender.expect_sent(&m.client_msg_id).await?;
            copy = sender.local_copy(to, &m.client_msg_id).await?;
        }
        ensure!(
            matches!(copy.state, MessageState::Sent | MessageState::Delivered),
            "{}'s copy of {:?} is {:?}",
            sender.name,
            text_in(m),
            copy.state
        );
        ensure!(
            copy.msg_id == theirs.msg_id,
            "{} has #{:?} for {:?}, {} got #{:?}",
            sender.name,
            copy.msg_id,
            text_in(m),
            receiver.name,
            theirs.msg_id
        );
        ensure!(
            ids.insert(copy.msg_id),
            "two messages share #{:?}",
            copy.msg_id
        );
    }
    Ok(())
}

async fn expect_resumed_online(device: &mut Device) -> Result<()> {
    device.expect_connection(ConnectionState::Online).await?;
    let login = device
        .wait_for("login after the reconnect", |e| match e {
            Event::LoggedIn(login) => Some(login.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        login.resumed,
        "{} logged in afresh instead of resuming its session",
        device.name
    );
    Ok(())
}

#[tokio::test]
async fn the_server_crashes_mid_conversation_and_nothing_is_lost_or_doubled() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;

    // Five the server acknowledged, five still in flight when it dies.
    let mut sent = Vec::new();
    let mut texts = Vec::new();
    for n in 0..5 {
        let text = format!("acknowledged {n}");
        sent.push(alice.send_and_confirm(user("bobby"), &text).await?);
        texts.push(text);
    }
    for n in 0..5 {
        let text = format!("in flight {n}");
        sent.push(alice.send_text(user("bobby"), &text).await?);
        texts.push(text);
    }
    server.kill9()?;

    alice.expect_connection(ConnectionState::Connecting).await?;
    bob.expect_connection(ConnectionState::Connecting).await?;
    // Three more typed while the server is down wait in the outbox.
    for n in 0..3 {
        let text = format!("while down {n}");
        let queued = alice.send_text(user("bobby"), &text).await?;
        assert_eq!(queued.state, MessageState::Sending);
        sent.push(queued);
        texts.push(text);
    }
    assert_eq!(alice.connection_state(), ConnectionState::Connecting);

    server.restart().await?;
    expect_resumed_online(&mut alice).await?;
    expect_resumed_online(&mut bob).await?;

    expect_each_exactly_once(&mut bob, &texts).await?;
    expect_all_confirmed(&mut alice, &bob, &user("bobby"), &sent).await?;
    let local = alice.local_history(&user("bobby"), None, 200).await?;
    assert_eq!(local.len(), texts.len(), "one local copy per message");
    let page = alice.history(&user("bobby"), None, 200).await?;
    let got: Vec<&str> = page.iter().filter_map(text_in).collect();
    let acknowledged: Vec<&str> = got[..5].to_vec();
    assert_eq!(
        acknowledged,
        texts[..5].iter().map(String::as_str).collect::<Vec<_>>(),
        "the acknowledged messages keep their order"
    );
    assert_eq!(page.len(), texts.len(), "the server has each message once");
    Ok(())
}

#[tokio::test]
async fn a_message_typed_while_the_server_is_down_arrives_once_it_is_back() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;

    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    let queued = alice
        .send_text(user("bobby"), "are you still there?")
        .await?;
    // It is in local history already, waiting.
    assert_eq!(
        alice
            .local_state(&user("bobby"), &queued.client_msg_id)
            .await?,
        MessageState::Sending
    );

    server.restart().await?;
    alice.expect_sent(&queued.client_msg_id).await?;
    expect_each_exactly_once(&mut bob, &["are you still there?".to_owned()]).await?;
    expect_all_delivered(&mut alice, &user("bobby"), &[queued]).await?;
    Ok(())
}

#[tokio::test]
async fn messages_for_offline_bob_survive_a_crash_and_reach_him_once() -> Result<()> {
    let mut server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let mut alice = server.core_user("alice").await?;
    let mut sent = Vec::new();
    for n in 0..4 {
        sent.push(
            alice
                .send_and_confirm(user("bobby"), &format!("stored {n}"))
                .await?,
        );
    }
    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    server.restart().await?;
    alice.expect_connection(ConnectionState::Online).await?;

    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    let texts: Vec<String> = (0..4).map(|n| format!("stored {n}")).collect();
    expect_each_exactly_once(&mut bob, &texts).await?;
    let ids: Vec<_> = bob.messages_seen().iter().map(|m| m.msg_id).collect();
    assert_eq!(
        ids,
        sent.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        "in server order"
    );
    expect_all_delivered(&mut alice, &user("bobby"), &sent).await?;
    Ok(())
}

#[tokio::test]
async fn a_message_queued_while_the_server_is_down_survives_a_restart_of_alices_app() -> Result<()>
{
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;

    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    let queued = alice.send_text(user("bobby"), "typed on the train").await?;
    let alice = alice.restart_app().await;

    // The reopened app shows the message as still sending before it is online.
    alice.open_local("alice").await?;
    assert_eq!(
        alice
            .local_state(&user("bobby"), &queued.client_msg_id)
            .await?,
        MessageState::Sending
    );

    server.restart().await?;
    let mut alice = alice;
    let info = alice
        .resume_saved("alice", Some(&password_for("alice")))
        .await?;
    assert!(info.resumed, "the saved token survives the crash");
    alice.expect_sent(&queued.client_msg_id).await?;
    expect_each_exactly_once(&mut bob, &["typed on the train".to_owned()]).await?;
    expect_all_delivered(&mut alice, &user("bobby"), &[queued]).await?;
    Ok(())
}

#[tokio::test]
async fn messages_written_with_the_app_offline_go_out_at_the_next_password_login() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("alice").await?;
    let mut bob = server.core_user("bobby").await?;

    // The app opens its store without the network and queues two messages, then quits.
    let offline = Device::fresh("alice", &server)?;
    offline.open_local("alice").await?;
    let first = offline
        .send_text(user("bobby"), "written offline 1")
        .await?;
    let second = offline
        .send_text(user("bobby"), "written offline 2")
        .await?;
    assert_eq!(offline.connection_state(), ConnectionState::Offline);
    let mut alice = offline.restart_app().await;

    alice.open_local("alice").await?;
    alice.log_in().await?;
    alice.expect_sent(&first.client_msg_id).await?;
    alice.expect_sent(&second.client_msg_id).await?;
    let texts = [
        "written offline 1".to_owned(),
        "written offline 2".to_owned(),
    ];
    expect_each_exactly_once(&mut bob, &texts).await?;
    let order: Vec<String> = bob
        .messages_seen()
        .iter()
        .filter_map(|m| text_in(m).map(str::to_owned))
        .collect();
    assert_eq!(
        order, texts,
        "the outbox goes out in the order it was written"
    );
    expect_all_delivered(&mut alice, &user("bobby"), &[first, second]).await?;
    Ok(())
}

#[tokio::test]
async fn quitting_the_app_right_after_sending_never_doubles_the_message() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.core_user("bobby").await?;
    let alice = server.core_user("alice").await?;

    let mut texts = Vec::new();
    let mut sent = Vec::new();
    for n in 0..5 {
        let text = format!("sent then quit {n}");
        sent.push(alice.send_text(user("bobby"), &text).await?);
        texts.push(text);
    }
    // Whether or not the server got them, the next start sends what it did not confirm.
    let mut alice = alice.restart_app().await;
    alice.open_local("alice").await?;
    alice.resume_saved("alice", None).await?;

    expect_each_exactly_once(&mut bob, &texts).await?;
    expect_all_confirmed(&mut alice, &bob, &user("bobby"), &sent).await?;
    Ok(())
}

#[tokio::test]
async fn a_graceful_server_restart_is_survived_the_same_way() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;

    server.terminate().await?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    let queued = alice.send_text(user("bobby"), "after the upgrade").await?;
    server.restart().await?;

    expect_resumed_online(&mut alice).await?;
    expect_resumed_online(&mut bob).await?;
    expect_each_exactly_once(&mut bob, &["after the upgrade".to_owned()]).await?;
    expect_all_delivered(&mut alice, &user("bobby"), &[queued]).await?;
    Ok(())
}

#[tokio::test]
async fn two_crashes_in_a_row_are_survived() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;
    let mut sent = Vec::new();
    let mut texts = Vec::new();
    for round in 0..2 {
        server.kill9()?;
        alice.expect_connection(ConnectionState::Connecting).await?;
        let text = format!("crash {round}");
        sent.push(alice.send_text(user("bobby"), &text).await?);
        texts.push(text);
        server.restart().await?;
        alice.expect_connection(ConnectionState::Online).await?;
        bob.expect_connection(ConnectionState::Online).await?;
    }
    expect_each_exactly_once(&mut bob, &texts).await?;
    expect_all_delivered(&mut alice, &user("bobby"), &sent).await?;
    Ok(())
}

/// Sends SIGCONT to a stopped server when dropped, so a failing test never leaves it frozen.
struct Frozen(u32);

impl Frozen {
    fn freeze(server: &TestServer) -> Result<Self> {
        let pid = server.pid().context("the server is running")?;
        signal(pid, "-STOP")?;
        Ok(Frozen(pid))
    }

    fn thaw(self) -> Result<()> {
        signal(self.0, "-CONT")?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .context("while running kill")?;
    ensure!(status.success(), "kill {sig} {pid} failed: {status}");
    Ok(())
}

#[tokio::test]
async fn a_server_that_goes_silent_is_noticed_by_the_idle_timeout_and_rejoined() -> Result<()> {
    let server = TestServer::start_with(&[
        "--heartbeat-interval-ms",
        "200",
        "--idle-timeout-ms",
        "1000",
    ])
    .await?;
    let mut alice = server.core_user("alice").await?;
    let mut bob = server.core_user("bobby").await?;
    // Quiet connections stay up: heartbeats keep them alive for longer than the idle timeout.
    let before = alice.log().len();
    alice.settle(Duration::from_millis(1500)).await?;
    ensure!(
        !alice
            .log_since(before)
            .iter()
            .any(|e| matches!(e, Event::Connection(_))),
        "an idle but healthy connection was dropped: {:?}",
        alice
            .log_since(before)
            .iter()
            .map(short)
            .collect::<Vec<_>>()
    );

    // The server process freezes: its sockets stay open but nothing comes back.
    let frozen = Frozen::freeze(&server)?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    let queued = alice.send_text(user("bobby"), "hello, anyone?").await?;
    frozen.thaw()?;

    alice.expect_connection(ConnectionState::Online).await?;
    alice.expect_sent(&queued.client_msg_id).await?;
    expect_each_exactly_once(&mut bob, &["hello, anyone?".to_owned()]).await?;
    expect_all_delivered(&mut alice, &user("bobby"), &[queued]).await?;
    Ok(())
}

/// A server that notices a silent client after 1.5 s and keeps healthy connections busy.
async fn quick_server() -> Result<TestServer> {
    TestServer::start_with(&[
        "--heartbeat-interval-ms",
        "200",
        "--idle-timeout-ms",
        "1500",
    ])
    .await
}

/// Alice, logged in through `proxy`, with her recorder past the login.
async fn alice_behind(proxy: &Proxy) -> Result<Device> {
    let mut alice = Device::start("alice", proxy.server_addr(), DataDir::new()?);
    alice.register_me().await?;
    alice.log_in().await?;
    alice.catch_up()?;
    Ok(alice)
}

#[tokio::test]
async fn a_dead_network_path_is_noticed_and_what_was_pushed_into_it_comes_again_once() -> Result<()>
{
    let server = quick_server().await?;
    let proxy = Proxy::start(server.plain_addr()).await?;
    let mut alice = alice_behind(&proxy).await?;
    let mut bob = server.core_user("bobby").await?;

    proxy.blackhole();
    // Bob's messages go into the dead connection; alice's own goes nowhere.
    let mut from_bob = Vec::new();
    let mut texts = Vec::new();
    for n in 0..3 {
        let text = format!("into the void {n}");
        from_bob.push(bob.send_and_confirm(user("alice"), &text).await?);
        texts.push(text);
    }
    let from_alice = alice.send_text(user("bobby"), "can you hear me?").await?;

    alice.expect_connection(ConnectionState::Connecting).await?;
    alice.expect_connection(ConnectionState::Online).await?;
    expect_each_exactly_once(&mut alice, &texts).await?;
    expect_each_exactly_once(&mut bob, &["can you hear me?".to_owned()]).await?;
    expect_all_delivered(&mut bob, &user("alice"), &from_bob).await?;
    expect_all_delivered(&mut alice, &user("bobby"), &[from_alice]).await?;
    Ok(())
}

#[tokio::test]
async fn a_receipt_pushed_into_a_dead_connection_still_reaches_alice() -> Result<()> {
    let server = quick_server().await?;
    server.core_register("bobby").await?;
    let proxy = Proxy::start(server.plain_addr()).await?;
    let mut alice = alice_behind(&proxy).await?;

    let hello = alice.send_and_confirm(user("bobby"), "see you").await?;
    // Alice's path dies without a close; the server still counts her online for a moment.
    proxy.blackhole();
    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    bob.expect_message("alice", "see you").await?;
    // Bob's device has it: the receipt goes to alice's (dead) connection.

    alice.expect_connection(ConnectionState::Connecting).await?;
    alice.expect_connection(ConnectionState::Online).await?;
    alice.expect_delivered(&hello.client_msg_id).await?;
    assert_eq!(
        alice
            .local_state(&user("bobby"), &hello.client_msg_id)
            .await?,
        MessageState::Delivered
    );
    Ok(())
}

#[tokio::test]
async fn ten_people_all_come_back_after_a_crash_and_keep_talking() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut people = Vec::new();
    for n in 0..10 {
        people.push(server.core_user(&format!("person{n}")).await?);
    }
    server.kill9()?;
    for person in people.iter_mut() {
        person
            .expect_connection(ConnectionState::Connecting)
            .await?;
    }
    server.restart().await?;
    // Everyone resumes at about the same moment, as after any real restart.
    for person in people.iter_mut() {
        expect_resumed_online(person).await?;
    }
    // Each tells the next one something; each hears it exactly once.
    for (n, person) in people.iter_mut().enumerate() {
        let to = format!("person{}", (n + 1) % 10);
        person
            .send_and_confirm(user(&to), &format!("from person{n}"))
            .await?;
    }
    let checks = people.iter_mut().enumerate().map(|(n, person)| async move {
        let from = (n + 9) % 10;
        expect_each_exactly_once(person, &[format!("from person{from}")]).await
    });
    for result in futures::future::join_all(checks).await {
        result?;
    }
    Ok(())
}

#[tokio::test]
async fn a_guest_comes_back_after_a_crash_too() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    let mut visitor = server.core_guest("visitor").await?;

    server.kill9()?;
    visitor
        .expect_connection(ConnectionState::Connecting)
        .await?;
    let queued = visitor.send_text(user("alice"), "still here").await?;
    server.restart().await?;

    visitor.expect_connection(ConnectionState::Online).await?;
    visitor.expect_sent(&queued.client_msg_id).await?;
    let got = alice.expect_message("visitor", "still here").await?;
    assert!(got.from_guest);
    Ok(())
}

#[tokio::test]
async fn requests_fail_fast_as_offline_while_the_app_reconnects() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;

    let started = std::time::Instant::now();
    let result = alice.list_online().await;
    assert!(
        matches!(result, Err(natter_core::ClientError::Offline)),
        "got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "offline requests answer at once, took {:?}",
        started.elapsed()
    );
    // A fresh app cannot reach the server either, and says so.
    let other = Device::fresh("bobby", &server)?;
    let result = other.query_username("bobby").await;
    assert!(
        matches!(result, Err(natter_core::ClientError::Io(_))),
        "got {result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_login_against_a_server_that_never_answers_times_out() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("alice").await?;
    let dir = DataDir::new()?;
    let mut config = test_config(plain_server(&server), &dir);
    config.request_timeout = Duration::from_secs(1);
    let alice = Device::start_with("alice", config, dir);

    // The server accepts connections (the kernel does) but never says a word.
    let frozen = Frozen::freeze(&server)?;
    let result = tokio::time::timeout(Duration::from_secs(8), alice.log_in()).await;
    frozen.thaw()?;
    let error = match result {
        Err(_) => anyhow::bail!("login was still waiting after 8 s with a 1 s request timeout"),
        Ok(Ok(info)) => anyhow::bail!("login succeeded against a frozen server: {info:?}"),
        Ok(Err(e)) => e,
    };
    let cause = error.downcast_ref::<natter_core::ClientError>();
    assert!(
        matches!(cause, Some(natter_core::ClientError::Timeout)),
        "expected Timeout, got {error:#}"
    );
    Ok(())
}

#[tokio::test]
async fn a_server_error_while_resuming_is_retried_and_the_session_kept() -> Result<()> {
    let mut server = TestServer::start().await?;
    let proxy = Proxy::start(server.plain_addr()).await?;
    let mut alice = alice_behind(&proxy).await?;
    let mut bob = server.core_user("bobby").await?;

    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    // The restarted server is in trouble for a moment: the first resume answers `internal`,
    // which the protocol documents as "the request may be retried".
    proxy.fail_next_resume(ErrorCode::Internal);
    server.restart().await?;

    alice.expect_connection(ConnectionState::Online).await?;
    ensure!(
        proxy.fault_used(),
        "the resume went through without meeting the fault"
    );
    let lost = alice
        .log()
        .iter()
        .find(|e| matches!(e, Event::SessionLost(_)))
        .map(short);
    ensure!(lost.is_none(), "alice gave up her session: {lost:?}");
    bob.expect_connection(ConnectionState::Online).await?;
    bob.send_and_confirm(user("alice"), "you are back").await?;
    expect_each_exactly_once(&mut alice, &["you are back".to_owned()]).await?;
    Ok(())
}

#[tokio::test]
async fn the_app_started_while_the_server_is_down_opens_offline_and_logs_in_when_it_returns(
) -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;
    befriend_devices(&mut alice, &mut bob).await?;
    alice
        .update_profile(Some("爱丽丝".into()), None, None)
        .await?;
    let first = alice.send_text(user("bobby"), "before the outage").await?;
    alice.expect_sent(&first.client_msg_id).await?;
    // The cached profile is the one of the last login.
    alice.logout().await?;
    alice.log_in().await?;

    let alice = alice.restart_app().await;
    server.kill9()?;
    let mut alice = alice;
    let info = alice
        .resume_or_open_offline("alice", Duration::from_secs(2))
        .await?;
    assert!(info.offline, "opened from the local store");
    assert_eq!(info.profile.nickname, "爱丽丝");
    assert_eq!(info.friends.len(), 1);
    assert!(
        !info.friends[0].online,
        "nobody is known to be online offline"
    );
    let history = alice.local_history(&user("bobby"), None, 50).await?;
    assert!(history
        .iter()
        .any(|m| m.client_msg_id == first.client_msg_id));
    let queued = alice.send_text(user("bobby"), "written offline").await?;

    server.restart().await?;
    expect_resumed_online(&mut alice).await?;
    alice.expect_sent(&queued.client_msg_id).await?;
    expect_each_exactly_once(
        &mut bob,
        &["before the outage".to_owned(), "written offline".to_owned()],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_account_never_used_on_this_computer_cannot_open_offline() -> Result<()> {
    let mut server = TestServer::start().await?;
    let alice = server.core_user("alice").await?;
    let stranger = Device::fresh("carol", &server)?;
    server.kill9()?;
    let refused = stranger
        .resume_or_open_offline("carol", Duration::from_millis(500))
        .await;
    assert!(
        matches!(refused, Err(ClientError::NotLoggedIn)),
        "{refused:?}"
    );
    drop(alice);
    Ok(())
}
