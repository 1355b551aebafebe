//! natter-cli driven from a terminal's point of view: separate processes that register, chat,
//! follow events, run an interactive shell, manage friends, and talk TLS with a pinned
//! certificate — against the real server.

use anyhow::{ensure, Context, Result};
use natter_e2e::harness::core::*;
use natter_e2e::*;
use serde_json::Value;

fn is_event(v: &Value, kind: &str) -> bool {
    v["event"] == kind
}

fn is_message(v: &Value, from: &str, text: &str) -> bool {
    is_event(v, "message") && v["from"] == from && v["text"] == text
}

/// The friend list a `friends` run printed.
fn friend_list(out: &CliOutput) -> Result<Value> {
    out.find_json("friend list", |v| {
        v.get("event").is_none() && v.get("friends").is_some()
    })
}

/// Registers `name` with its world password through the CLI.
async fn cli_register(server: &TestServer, name: &str) -> Result<CliRunner> {
    let terminal = CliRunner::plain(server)?.as_user(name);
    let out = terminal.run(&["register", name]).await?.success()?;
    out.find_json("registration", |v| v["registered"] == name)?;
    Ok(terminal)
}

#[tokio::test]
async fn two_terminals_chat_alice_sends_and_bobs_follow_prints_it() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = cli_register(&server, "alice").await?;
    let bob = cli_register(&server, "bobby").await?;

    let mut follow = bob.spawn(&["follow", "--for-secs", "60"])?;
    let login = follow
        .expect_json("login", |v| is_event(v, "logged_in"))
        .await?;
    assert_eq!(login["username"], "bobby");

    let out = alice
        .run(&["send", "bobby", "hello from the terminal"])
        .await?
        .success()?;
    let sent = out.find_json("sent event", |v| is_event(v, "sent"))?;
    ensure!(
        sent["msg_id"].is_i64(),
        "sent carries the server id: {sent}"
    );
    let got = follow
        .expect_json("alice's message", |v| {
            is_message(v, "alice", "hello from the terminal")
        })
        .await?;
    assert_eq!(got["msg_id"], sent["msg_id"]);
    assert_eq!(got["client_msg_id"], sent["client_msg_id"]);
    assert_eq!(got["state"], "received");

    alice.run(&["say", "hello, square"]).await?.success()?;
    let said = follow
        .expect_json("alice in the square", |v| {
            is_message(v, "alice", "hello, square")
        })
        .await?;
    assert_eq!(said["to"], serde_json::json!({"kind": "square"}));

    // Bob answers from another process; alice's history shows the conversation in order.
    bob.run(&["send", "alice", "hi alice"]).await?.success()?;
    let history = alice.run(&["history", "bobby"]).await?.success()?;
    let lines: Vec<(String, String)> = history
        .json_lines()?
        .into_iter()
        .filter(|v| is_event(v, "history"))
        .map(|v| {
            (
                v["from"].as_str().unwrap_or("").to_owned(),
                v["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("alice".to_owned(), "hello from the terminal".to_owned()),
            ("bobby".to_owned(), "hi alice".to_owned()),
        ]
    );
    follow.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_guest_shell_reads_commands_from_stdin_and_prints_what_arrives() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    let visitor = CliRunner::plain(&server)?.as_guest("visitor");

    let mut shell = visitor.spawn(&["shell"])?;
    let login = shell
        .expect_json("login", |v| is_event(v, "logged_in"))
        .await?;
    assert_eq!(login["is_guest"], true);
    alice.expect_online("visitor").await?;

    shell.type_line("send alice hello from the shell").await?;
    let got = alice
        .expect_message("visitor", "hello from the shell")
        .await?;
    assert!(got.from_guest);
    shell
        .expect_json("sent event", |v| is_event(v, "sent"))
        .await?;
    shell
        .expect_json("delivered event", |v| {
            is_event(v, "delivered") && v["to"] == "alice"
        })
        .await?;

    alice
        .send_and_confirm(user("visitor"), "welcome, visitor")
        .await?;
    shell
        .expect_json("alice's reply", |v| {
            is_message(v, "alice", "welcome, visitor")
        })
        .await?;

    shell.type_line("online").await?;
    let online = shell
        .expect_json("online list", |v| v.get("online").is_some())
        .await?;
    let names: Vec<&str> = online["online"]
        .as_array()
        .context("online is a list")?
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    ensure!(
        names.contains(&"alice") && names.contains(&"visitor"),
        "{names:?}"
    );

    shell.type_line("say good morning, square").await?;
    let square = alice
        .expect_message("visitor", "good morning, square")
        .await?;
    assert_eq!(square.to, Target::Square);

    shell.type_line("history alice").await?;
    shell
        .expect_json("history line", |v| {
            is_event(v, "history") && v["text"] == "welcome, visitor"
        })
        .await?;
    shell.type_line("no such command").await?;
    shell.type_line("quit").await?;
    let (code, _) = shell.finish().await?;
    assert_eq!(code, Some(0));
    alice.expect_offline("visitor").await?;
    Ok(())
}

#[tokio::test]
async fn friends_are_asked_accepted_listed_and_removed_from_the_terminal() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = cli_register(&server, "alice").await?;
    let bob = cli_register(&server, "bobby").await?;
    let carol = cli_register(&server, "carol").await?;

    alice
        .run(&["add", "bobby", "remember me?"])
        .await?
        .success()?;
    carol.run(&["add", "bobby"]).await?.success()?;
    let list = bob.run(&["friends"]).await?.success()?;
    let list = friend_list(&list)?;
    let from: Vec<&str> = list["incoming"]
        .as_array()
        .context("incoming is a list")?
        .iter()
        .filter_map(|r| r["from"].as_str())
        .collect();
    assert_eq!(from, ["alice", "carol"]);

    bob.run(&["accept", "alice"]).await?.success()?;
    bob.run(&["reject", "carol"]).await?.success()?;
    let list = alice.run(&["friends"]).await?.success()?;
    let list = friend_list(&list)?;
    assert_eq!(list["friends"][0]["username"], "bobby");
    let list = carol.run(&["friends"]).await?.success()?;
    let list = friend_list(&list)?;
    assert_eq!(list["friends"], serde_json::json!([]));
    assert_eq!(list["outgoing"], serde_json::json!([]));

    alice.run(&["unfriend", "bobby"]).await?.success()?;
    let list = bob.run(&["friends"]).await?.success()?;
    let list = friend_list(&list)?;
    assert_eq!(list["friends"], serde_json::json!([]));
    // Unfriending again is refused, with the reason.
    let refused = alice.run(&["unfriend", "bobby"]).await?;
    assert_eq!(refused.code, Some(1));
    refused.find_json("error", |v| {
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("not_friends"))
    })?;
    Ok(())
}

#[tokio::test]
async fn refusals_reach_the_terminal_as_errors_with_their_codes() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = cli_register(&server, "alice").await?;

    let query = alice.run(&["query", "alice"]).await?.success()?;
    let status = query.find_json("status", |v| v["username"] == "alice")?;
    assert_eq!(status["available"], false);
    assert_eq!(status["reason"], "username_taken");
    let free = alice.run(&["query", "newperson"]).await?.success()?;
    free.find_json("status", |v| v["available"] == true)?;

    let taken = alice.run(&["register", "alice"]).await?;
    assert_eq!(taken.code, Some(1));
    taken.find_json("error", |v| {
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("username_taken"))
    })?;

    let reserved = CliRunner::plain(&server)?
        .as_user("admin")
        .run(&["register", "admin"])
        .await?;
    assert_eq!(reserved.code, Some(1), "{reserved:?}");

    let wrong = CliRunner::plain(&server)?;
    let out = wrong
        .run(&["--user", "alice", "--password", "wrong-password", "online"])
        .await?;
    assert_eq!(out.code, Some(1));
    out.find_json("error", |v| {
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("bad_credentials"))
    })?;

    let nobody = alice.run(&["send", "nobodyhere", "hello?"]).await?;
    assert_eq!(nobody.code, Some(1), "{nobody:?}");
    nobody.find_json("failed event", |v| {
        is_event(v, "failed") && v["code"] == "no_such_user"
    })?;

    let anonymous = CliRunner::plain(&server)?.run(&["online"]).await?;
    assert_eq!(
        anonymous.code,
        Some(1),
        "online needs a login: {anonymous:?}"
    );
    Ok(())
}

#[tokio::test]
async fn text_mode_speaks_to_people() -> Result<()> {
    let server = TestServer::start().await?;
    cli_register(&server, "alice").await?;
    let terminal = CliRunner::plain(&server)?.text_mode();

    let out = terminal.run(&["query", "alice"]).await?.success()?;
    assert_eq!(out.stdout.trim(), "alice is not available (username_taken)");
    let out = terminal.run(&["query", "newperson"]).await?.success()?;
    assert_eq!(out.stdout.trim(), "newperson is available");
    Ok(())
}

#[tokio::test]
async fn a_message_for_offline_bob_is_printed_when_his_terminal_logs_in() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = cli_register(&server, "alice").await?;
    let bob = cli_register(&server, "bobby").await?;

    alice
        .run(&["send", "bobby", "read this when you are back"])
        .await?
        .success()?;
    let mut follow = bob.spawn(&["follow", "--for-secs", "60"])?;
    follow
        .expect_json("the waiting message", |v| {
            is_message(v, "alice", "read this when you are back")
        })
        .await?;
    follow.stop().await?;

    // Shown once: the next run of bob's terminal does not print it again.
    let mut again = bob.spawn(&["follow", "--for-secs", "1"])?;
    again
        .expect_json("login", |v| is_event(v, "logged_in"))
        .await?;
    let (code, rest) = again.finish().await?;
    assert_eq!(code, Some(0));
    ensure!(
        !rest
            .iter()
            .any(|l| l.contains("read this when you are back")),
        "the message was printed again: {rest:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_cli_over_tls_pins_the_certificate_and_refuses_a_changed_one() -> Result<()> {
    let mut server = TestServer::start().await?;
    let old = server.ready().cert_sha256.clone().context("fingerprint")?;
    let alice = CliRunner::tls(&server)?.as_user("alice");
    alice.run(&["register", "alice"]).await?.success()?;
    let pins = std::fs::read_to_string(alice.data_dir().path().join("pins.json"))?;
    assert!(pins.contains(&old), "pinned on first use: {pins}");

    let mut bob = server.core_user("bobby").await?;
    let out = alice.run(&["send", "bobby", "sealed"]).await?.success()?;
    out.find_json("sent", |v| is_event(v, "sent"))?;
    bob.expect_message("alice", "sealed").await?;

    // The server gets a new certificate.
    server.terminate().await?;
    std::fs::remove_dir_all(server.data_dir().join("tls"))?;
    server.restart().await?;
    let new = server.ready().cert_sha256.clone().context("fingerprint")?;
    assert_ne!(old, new);

    let refused = alice.run(&["online"]).await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    ensure!(
        refused.stderr.contains(&format!("--accept-cert {new}")),
        "the terminal says how to accept the new certificate; stderr:\n{}",
        refused.stderr
    );
    let pins = std::fs::read_to_string(alice.data_dir().path().join("pins.json"))?;
    assert!(pins.contains(&old) && !pins.contains(&new), "{pins}");

    let accepted = alice
        .run(&["--accept-cert", &new, "online"])
        .await?
        .success()?;
    accepted.find_json("online list", |v| v.get("online").is_some())?;
    // From now on without the flag.
    alice.run(&["online"]).await?.success()?;
    Ok(())
}

#[tokio::test]
async fn a_message_sent_from_the_terminal_while_the_server_is_down_goes_out_on_the_next_run(
) -> Result<()> {
    let mut server = TestServer::start().await?;
    let alice = cli_register(&server, "alice").await?;
    let mut bob = server.core_user("bobby").await?;
    // Alice's terminal has logged in once, so it has a saved session and a local store.
    alice.run(&["online"]).await?.success()?;

    server.kill9()?;
    bob.expect_connection(natter_core::ConnectionState::Connecting)
        .await?;
    let out = alice.run(&["send", "bobby", "written offline"]).await?;
    // `send` promises to queue the message when the server is unreachable.
    let out = out.success()?;
    out.find_json("queued", |v| is_event(v, "queued"))?;

    server.restart().await?;
    // The next run of alice's terminal, whatever it does, sends what waits in its outbox.
    alice.run(&["online"]).await?.success()?;
    bob.expect_message("alice", "written offline").await?;
    bob.settle(SETTLE_WINDOW).await?;
    let seen = count_texts(&bob.messages_seen());
    assert_eq!(seen.get("written offline"), Some(&1), "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn alice_finds_a_chinese_phrase_in_her_history_even_with_the_server_down() -> Result<()> {
    let mut server = TestServer::start().await?;
    let alice = cli_register(&server, "alice").await?;
    // Alice's terminal logs in once, so her local store exists.
    alice.run(&["online"]).await?.success()?;
    let mut bob = server.core_user("bobby").await?;
    bob.send_and_confirm(user("alice"), "我在说话 with Café people")
        .await?;
    bob.send_and_confirm(user("alice"), "说的话不算").await?;
    // Her next run stores what arrived while she was away.
    alice.run(&["history", "bobby"]).await?.success()?;

    server.kill9()?;
    let hits = |out: &CliOutput| -> Result<Vec<String>> {
        Ok(out
            .json_lines()?
            .into_iter()
            .filter(|v| is_event(v, "search_hit"))
            .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
            .collect())
    };
    let out = alice.run(&["search", "说话"]).await?.success()?;
    assert_eq!(
        hits(&out)?,
        vec!["我在说话 with Café people"],
        "说话 is a phrase, 说的话 is not"
    );
    let out = alice.run(&["search", "说"]).await?.success()?;
    assert_eq!(hits(&out)?.len(), 2);
    let out = alice.run(&["search", "cafe 说话"]).await?.success()?;
    assert_eq!(hits(&out)?, vec!["我在说话 with Café people"]);
    let out = alice.run(&["search", "电脑"]).await?.success()?;
    ensure!(
        hits(&out)?.is_empty(),
        "nothing matches 电脑: {}",
        out.stdout
    );
    Ok(())
}
