//! How natter-core answers `slow_down` (PROTOCOL.md §5.5 rule 8), against a scripted server.
//!
//! The real server says `slow_down` only when it is overloaded, which a test cannot bring about
//! reliably on a shared CI machine; the refusal itself is tested against the real writer in
//! natter-server's `persist` unit tests. Here a scripted peer on 127.0.0.1 speaks the protocol
//! and refuses the first message, so the test can watch, to the millisecond, what the client
//! sends during and after the wait.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use futures::{SinkExt, StreamExt};
use natter_core::{Client, Event, ServerAddr};
use natter_e2e::harness::core::*;
use natter_e2e::*;
use natter_proto::{
    decode_client, encode, ClientMessage, ErrorCode, Frame, FrameCodec, Profile, ServerMessage,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_millis(600);
/// Time for the refusal to reach the client before the user types on (loopback: well under).
const HEARD: Duration = Duration::from_millis(200);
/// How long the scripted server holds its answer to the first message after the wait.
const HOLD: Duration = Duration::from_millis(300);

/// What the scripted server saw and did, in order.
#[derive(Debug)]
enum Seen {
    Refused(Instant),
    Send(Instant, String),
    Accepted(Instant, String),
}

/// One connection: hello, guest login, then every `send_message` is recorded; the first is
/// refused with `slow_down`, the first after it is answered only after [`HOLD`], the rest at once.
async fn scripted_server(listener: TcpListener, seen: mpsc::UnboundedSender<Seen>) -> Result<()> {
    let (socket, _) = listener.accept().await?;
    let mut framed = Framed::new(socket, FrameCodec::default());
    let mut sends = 0u32;
    let mut held: Option<(Instant, String, String)> = None;
    loop {
        let due = held.as_ref().map(|(at, ..)| *at);
        let frame = tokio::select! {
            frame = framed.next() => frame,
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some((_, id, client_msg_id)) = held.take() {
                    framed.send(encode(&accepted(id, &client_msg_id, 99))).await?;
                    let _ = seen.send(Seen::Accepted(Instant::now(), client_msg_id));
                }
                continue;
            }
        };
        let Some(frame) = frame else { return Ok(()) };
        let Frame::Json(payload) = frame? else {
            bail!("the client sent a binary frame")
        };
        let reply = match decode_client(&payload)? {
            ClientMessage::Hello { id, .. } => ServerMessage::HelloOk {
                id,
                version: 2,
                server: "scripted".into(),
                heartbeat_interval_ms: 30_000,
                idle_timeout_ms: 90_000,
                max_frame_bytes: 1 << 20,
                presence_interval_ms: 200,
            },
            ClientMessage::GuestLogin { id, username } => ServerMessage::LoginOk {
                id,
                token: "t".repeat(43),
                profile: Profile {
                    username,
                    nickname: String::new(),
                    motto: String::new(),
                    phone: String::new(),
                    is_guest: true,
                },
                online: Vec::new(),
                online_count: 1,
                friends: Vec::new(),
                incoming_requests: Vec::new(),
                outgoing_requests: Vec::new(),
                resumed: false,
            },
            ClientMessage::SendMessage {
                id, client_msg_id, ..
            } => {
                sends += 1;
                let _ = seen.send(Seen::Send(Instant::now(), client_msg_id.clone()));
                match sends {
                    1 => {
                        let _ = seen.send(Seen::Refused(Instant::now()));
                        ServerMessage::Error {
                            id: Some(id),
                            code: ErrorCode::SlowDown,
                            message: "busy".into(),
                            retry_after_ms: Some(WAIT.as_millis() as u64),
                        }
                    }
                    2 => {
                        held = Some((Instant::now() + HOLD, id, client_msg_id));
                        continue;
                    }
                    n => {
                        let _ = seen.send(Seen::Accepted(Instant::now(), client_msg_id.clone()));
                        accepted(id, &client_msg_id, i64::from(n))
                    }
                }
            }
            ClientMessage::Heartbeat { id } => ServerMessage::HeartbeatAck { id, ts: 1 },
            other => match other.id() {
                Some(id) => ServerMessage::error(Some(id), ErrorCode::Internal, "not scripted"),
                None => continue,
            },
        };
        framed.send(encode(&reply)).await?;
    }
}

fn accepted(id: String, client_msg_id: &str, msg_id: i64) -> ServerMessage {
    ServerMessage::MessageAccepted {
        id,
        client_msg_id: client_msg_id.to_owned(),
        msg_id,
        ts: 1,
        duplicate: false,
    }
}

#[tokio::test]
async fn after_slow_down_the_client_sends_nothing_until_the_wait_is_over_then_one_message_first(
) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(scripted_server(listener, tx));

    let dir = DataDir::new()?;
    let server_addr = ServerAddr {
        host: "127.0.0.1".into(),
        port,
        tls: false,
    };
    let client = Client::start(test_config(server_addr, &dir));
    let mut events = client.events();
    client.guest_login("alice").await?;

    let first = client.send_text(user("bobby"), "one").await?;
    let refused_at = loop {
        match seen.recv().await.context("the server stopped")? {
            Seen::Refused(at) => break at,
            Seen::Send(..) => {}
            other => bail!("unexpected before the refusal: {other:?}"),
        }
    };
    // The user goes on typing during the wait.
    tokio::time::sleep_until(refused_at + HEARD).await;
    let second = client.send_text(user("bobby"), "two").await?;
    let third = client.send_text(user("bobby"), "three").await?;

    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    while sent < 3 {
        tokio::select! {
            s = seen.recv() => log.push(s.context("the server stopped")?),
            e = events.recv() => if let Ok(Event::Sent(_)) = e { sent += 1 },
            _ = tokio::time::sleep_until(deadline) => bail!("not all sent; the server saw {log:?}"),
        }
    }
    while let Ok(s) = seen.try_recv() {
        log.push(s);
    }

    let sends: Vec<(Instant, &str)> = log
        .iter()
        .filter_map(|s| match s {
            Seen::Send(at, c) => Some((*at, c.as_str())),
            _ => None,
        })
        .collect();
    ensure!(sends.len() == 3, "three sends after the refusal: {log:?}");
    let waited = sends[0].0 - refused_at;
    ensure!(
        waited >= WAIT - Duration::from_millis(20),
        "nothing goes out during the wait, but a send came {waited:?} after the refusal: {log:?}"
    );
    ensure!(
        sends[0].1 == first.client_msg_id,
        "the refused message goes first, with its own client_msg_id: {log:?}"
    );
    let released = log
        .iter()
        .find_map(|s| match s {
            Seen::Accepted(at, c) if *c == first.client_msg_id => Some(*at),
            _ => None,
        })
        .context("the first message was accepted")?;
    for (at, c) in &sends[1..] {
        ensure!(
            *at >= released,
            "{c} was sent before the server took the first message after the wait: {log:?}"
        );
    }
    let rest: Vec<&str> = sends[1..].iter().map(|(_, c)| *c).collect();
    ensure!(
        rest == [second.client_msg_id.as_str(), third.client_msg_id.as_str()],
        "then the others, in order: {log:?}"
    );
    client.shutdown().await;
    server.abort();
    Ok(())
}
