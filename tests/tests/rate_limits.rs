//! Rate limits: bursts beyond the agreed token buckets get `rate_limited` with a retry hint,
//! the connection stays open, and waiting as told makes the server answer again.

use std::time::Duration;

use anyhow::{ensure, Result};
use natter_e2e::*;

/// Sends `count` requests back to back without waiting, then collects every reply in order.
async fn burst(
    client: &TestClient,
    count: usize,
    build: impl Fn(String) -> ClientMessage,
) -> Result<Vec<ServerMessage>> {
    let mut pending = Vec::with_capacity(count);
    for _ in 0..count {
        pending.push(client.submit(&build(client.new_id())).await?);
    }
    let mut replies = Vec::with_capacity(count);
    for reply in pending {
        replies.push(reply.wait().await?);
    }
    Ok(replies)
}

fn rate_limited(replies: &[ServerMessage]) -> Vec<Option<u64>> {
    replies
        .iter()
        .filter_map(|r| match r {
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                retry_after_ms,
                ..
            } => Some(*retry_after_ms),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn rapid_username_queries_get_rate_limited_and_the_connection_still_works() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    let replies = burst(&client, 30, |id| ClientMessage::QueryUsername {
        id,
        username: "alice".into(),
    })
    .await?;
    let answered = replies
        .iter()
        .filter(|r| matches!(r, ServerMessage::UsernameStatus { .. }))
        .count();
    let limited = rate_limited(&replies);
    ensure!(
        answered >= 20,
        "the burst of 20 is served, got {answered} answers"
    );
    ensure!(
        !limited.is_empty(),
        "30 queries at once exceed a burst of 20: {:?}",
        replies.iter().map(show).collect::<Vec<_>>()
    );
    assert_eq!(answered + limited.len(), 30, "every query got an answer");
    let retry_after = limited
        .iter()
        .map(|r| r.ok_or_else(|| anyhow::anyhow!("rate_limited carries retry_after_ms")))
        .collect::<Result<Vec<u64>>>()?;
    ensure!(retry_after.iter().all(|ms| *ms > 0 && *ms <= 60_000));

    // Other requests are not held up, and the connection is still open.
    client.heartbeat().await?;
    client.register("alice", &password_for("alice")).await?;
    // Waiting as told makes queries work again.
    let wait = retry_after.iter().copied().max().unwrap_or(200);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert!(!client.query_username("alice").await?.available);
    Ok(())
}

#[tokio::test]
async fn a_limit_on_one_connection_does_not_limit_another() -> Result<()> {
    let server = TestServer::start().await?;
    let noisy = server.connect().await?;
    let replies = burst(&noisy, 40, |id| ClientMessage::QueryUsername {
        id,
        username: "alice".into(),
    })
    .await?;
    ensure!(!rate_limited(&replies).is_empty());
    let quiet = server.connect().await?;
    quiet.query_username("alice").await?;
    Ok(())
}

#[tokio::test]
async fn rapid_heartbeats_get_rate_limited() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    let replies = burst(&client, 15, |id| ClientMessage::Heartbeat { id }).await?;
    let acked = replies
        .iter()
        .filter(|r| matches!(r, ServerMessage::HeartbeatAck { .. }))
        .count();
    ensure!(acked >= 5, "the burst of 5 is acked, got {acked}");
    ensure!(
        !rate_limited(&replies).is_empty(),
        "15 heartbeats at once exceed a burst of 5"
    );
    client.query_username("alice").await?;
    Ok(())
}

#[tokio::test]
async fn rapid_session_attempts_get_rate_limited() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    // Bogus resumes cost the server nothing but count as login attempts (burst 10).
    let replies = burst(&client, 20, |id| ClientMessage::Resume {
        id,
        token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    })
    .await?;
    let expired = replies
        .iter()
        .filter(|r| r.error_code() == Some(ErrorCode::SessionExpired))
        .count();
    let limited = rate_limited(&replies).len();
    ensure!(
        expired >= 10,
        "the first 10 attempts are judged, got {expired}"
    );
    ensure!(limited > 0, "20 attempts at once exceed a burst of 10");
    assert_eq!(expired + limited, 20);
    // The connection still answers requests of other kinds.
    client.query_username("alice").await?;
    Ok(())
}

#[tokio::test]
async fn no_rate_limits_turns_every_limit_off() -> Result<()> {
    let server = TestServer::start_with(&["--no-rate-limits"]).await?;
    let client = server.connect().await?;
    let replies = burst(&client, 60, |id| ClientMessage::QueryUsername {
        id,
        username: "alice".into(),
    })
    .await?;
    ensure!(
        rate_limited(&replies).is_empty(),
        "--no-rate-limits: nothing is limited"
    );
    let replies = burst(&client, 30, |id| ClientMessage::Heartbeat { id }).await?;
    ensure!(rate_limited(&replies).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_busy_chat_is_not_rate_limited() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    // 200 messages at once are far below the 1000-request burst.
    let replies = burst(&alice, 200, |id| ClientMessage::SendMessage {
        id,
        client_msg_id: new_client_msg_id(),
        to: user("bobby"),
        body: text("chatty"),
    })
    .await?;
    ensure!(rate_limited(&replies).is_empty());
    ensure!(replies
        .iter()
        .all(|r| matches!(r, ServerMessage::MessageAccepted { .. })));
    bob.expect_messages_from("alice", 200).await?;
    Ok(())
}

#[tokio::test]
async fn many_registrations_from_one_address_get_rate_limited() -> Result<()> {
    let server = TestServer::start().await?;
    // 30 registrations over 6 connections: few per connection, too many for one address.
    let mut connections = Vec::new();
    for _ in 0..6 {
        connections.push(server.connect().await?);
    }
    let mut pending = Vec::new();
    for (c, client) in connections.iter().enumerate() {
        for n in 0..5 {
            let message = ClientMessage::Register {
                id: client.new_id(),
                username: format!("user{c}x{n}"),
                password: "long enough".into(),
                nickname: String::new(),
                motto: String::new(),
                phone: String::new(),
            };
            pending.push(client.submit(&message).await?);
        }
    }
    let mut replies = Vec::new();
    for reply in pending {
        replies.push(reply.wait().await?);
    }
    let registered = replies
        .iter()
        .filter(|r| matches!(r, ServerMessage::Registered { .. }))
        .count();
    let limited = rate_limited(&replies).len();
    ensure!(
        registered >= 20,
        "the burst of 20 registers, got {registered}"
    );
    ensure!(
        limited > 0,
        "30 registrations at once from one address exceed a burst of 20"
    );
    assert_eq!(registered + limited, 30);
    Ok(())
}

#[tokio::test]
async fn many_session_attempts_from_one_address_get_rate_limited() -> Result<()> {
    let server = TestServer::start().await?;
    // 80 attempts over 8 connections: within each connection's 10, beyond the address's 60.
    let mut connections = Vec::new();
    for _ in 0..8 {
        connections.push(server.connect().await?);
    }
    let mut pending = Vec::new();
    for client in &connections {
        for _ in 0..10 {
            let message = ClientMessage::Resume {
                id: client.new_id(),
                token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            };
            pending.push(client.submit(&message).await?);
        }
    }
    let mut replies = Vec::new();
    for reply in pending {
        replies.push(reply.wait().await?);
    }
    let judged = replies
        .iter()
        .filter(|r| r.error_code() == Some(ErrorCode::SessionExpired))
        .count();
    let limited = rate_limited(&replies).len();
    ensure!(
        judged >= 60,
        "the address's burst of 60 is judged, got {judged}"
    );
    ensure!(
        limited > 0,
        "80 attempts from one address exceed a burst of 60"
    );
    assert_eq!(judged + limited, 80);
    Ok(())
}
