//! Bad input on raw sockets: oversize and truncated frames, bytes that are not UTF-8 or not
//! JSON, unknown types, wrong fields, requests out of order. Each gets its error code, and a
//! well-behaved client on the same server keeps being served throughout.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use natter_e2e::*;

const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// alice and bob, logged in and talking: the well-behaved clients.
struct Bystanders {
    alice: TestClient,
    bob: TestClient,
    rounds: usize,
}

impl Bystanders {
    async fn join(server: &TestServer) -> Result<Bystanders> {
        Ok(Bystanders {
            alice: server.user("alice").await?,
            bob: server.user("bobby").await?,
            rounds: 0,
        })
    }

    /// alice writes bob and bob receives it: the server still serves its good clients.
    async fn still_served(&mut self) -> Result<()> {
        self.rounds += 1;
        let body = format!("still here {}", self.rounds);
        let sent = self.alice.send_text("bobby", &body).await?;
        let got = self.bob.expect_message_from("alice").await?;
        ensure!(
            got.msg_id == sent.msg_id && text_of(&got) == Some(body),
            "bob got alice's message"
        );
        Ok(())
    }
}

fn length_header(len: u32) -> [u8; 4] {
    len.to_be_bytes()
}

#[tokio::test]
async fn an_oversize_length_header_gets_frame_too_large_and_the_connection_closes() -> Result<()> {
    let server = TestServer::start_with(&["--max-frame-bytes", "1024"]).await?;
    let mut good = Bystanders::join(&server).await?;

    for header in [1025u32, 0x7fff_ffff, 0x8000_0000 | 4096] {
        let mut raw = RawSocket::connect(&server).await?;
        raw.hello().await?;
        raw.send_bytes(&length_header(header)).await?;
        let before_close = raw.expect_closed(CLOSE_TIMEOUT).await?;
        match before_close.as_slice() {
            [ServerMessage::Error {
                id: None,
                code: ErrorCode::FrameTooLarge,
                ..
            }] => {}
            other => bail!(
                "header {header:#x}: expected one error frame_too_large (id null) then close, got {:?}",
                other.iter().map(show).collect::<Vec<_>>()
            ),
        }
        good.still_served().await?;
    }

    // Before hello too.
    let mut raw = RawSocket::connect(&server).await?;
    raw.send_bytes(&length_header(u32::MAX >> 1)).await?;
    let before_close = raw.expect_closed(CLOSE_TIMEOUT).await?;
    ensure!(
        matches!(
            before_close.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::FrameTooLarge,
                ..
            }]
        ),
        "frame_too_large before hello: {:?}",
        before_close.iter().map(show).collect::<Vec<_>>()
    );
    good.still_served().await?;
    Ok(())
}

#[tokio::test]
async fn a_frame_of_exactly_the_maximum_size_is_accepted() -> Result<()> {
    let server = TestServer::start_with(&["--max-frame-bytes", "1024"]).await?;
    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;
    let mut payload = br#"{"type":"heartbeat","id":"big"}"#.to_vec();
    payload.resize(1024, b' ');
    raw.send_payload(&payload).await?;
    match raw.expect_message().await? {
        ServerMessage::HeartbeatAck { id, .. } if id == "big" => Ok(()),
        other => bail!("expected heartbeat_ack, got {}", show(&other)),
    }
}

#[tokio::test]
async fn a_truncated_frame_then_close_ends_only_that_connection() -> Result<()> {
    let server = TestServer::start().await?;
    let mut good = Bystanders::join(&server).await?;

    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;
    let mut bytes = length_header(100).to_vec();
    bytes.extend_from_slice(br#"{"type":"hea"#);
    raw.send_bytes(&bytes).await?;
    raw.shutdown_write().await?;
    let before_close = raw.expect_closed(CLOSE_TIMEOUT).await?;
    ensure!(
        before_close
            .iter()
            .all(|m| matches!(m, ServerMessage::Error { .. })),
        "nothing but possibly an error before the close: {:?}",
        before_close.iter().map(show).collect::<Vec<_>>()
    );
    good.still_served().await?;

    // A header cut in half, then close.
    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;
    raw.send_bytes(&[0, 0]).await?;
    raw.shutdown_write().await?;
    raw.expect_closed(CLOSE_TIMEOUT).await?;
    good.still_served().await?;
    Ok(())
}

#[tokio::test]
async fn payloads_that_are_not_messages_get_their_codes_and_the_connection_stays_open() -> Result<()>
{
    let server = TestServer::start().await?;
    let mut good = Bystanders::join(&server).await?;
    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;

    let cases: &[(&[u8], ErrorCode, Option<&str>)] = &[
        (
            b"\xff\xfe{\"type\":\"heartbeat\"}",
            ErrorCode::InvalidUtf8,
            None,
        ),
        (
            b"{\"type\":\"heartbeat\",\"id\":\"\xc3\x28\"}",
            ErrorCode::InvalidUtf8,
            None,
        ),
        (b"{not json", ErrorCode::InvalidJson, None),
        (b"", ErrorCode::InvalidJson, None),
        (b"[1,2,3]", ErrorCode::InvalidJson, None),
        (b"\"just a string\"", ErrorCode::InvalidJson, None),
        (
            br#"{"type":"teleport","id":"u1"}"#,
            ErrorCode::UnknownType,
            Some("u1"),
        ),
        (br#"{"id":"u2"}"#, ErrorCode::UnknownType, Some("u2")),
        (
            br#"{"type":42,"id":"u3"}"#,
            ErrorCode::UnknownType,
            Some("u3"),
        ),
        (
            br#"{"type":"query_username","id":"w1","username":5}"#,
            ErrorCode::InvalidMessage,
            Some("w1"),
        ),
        (
            br#"{"type":"query_username","id":"w2"}"#,
            ErrorCode::InvalidMessage,
            Some("w2"),
        ),
        (
            br#"{"type":"login","id":"w3","username":"alice","password":["x"]}"#,
            ErrorCode::InvalidMessage,
            Some("w3"),
        ),
        (
            br#"{"type":"heartbeat","id":17}"#,
            ErrorCode::InvalidMessage,
            None,
        ),
    ];
    for (payload, code, echoed) in cases {
        raw.send_payload(payload).await?;
        let id = raw
            .expect_error(*code)
            .await
            .map_err(|e| e.context(format!("payload {:?}", String::from_utf8_lossy(payload))))?;
        if let Some(expected) = echoed {
            assert_eq!(
                id.as_deref(),
                Some(*expected),
                "the id of {:?} is echoed",
                String::from_utf8_lossy(payload)
            );
        }
        raw.assert_still_open().await?;
    }
    good.still_served().await?;
    Ok(())
}

#[tokio::test]
async fn a_logged_in_session_survives_bad_payloads() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    let alice = server.user("alice").await?;
    let reply = alice
        .request_json(serde_json::json!({"type": "send_message", "to": "bobby", "body": "hi"}))
        .await?;
    reply.expect_error(ErrorCode::InvalidMessage)?;
    let reply = alice
        .request_json(serde_json::json!({"type": "ack", "msg_ids": ["one"]}))
        .await?;
    reply.expect_error(ErrorCode::InvalidMessage)?;
    let reply = alice
        .request_json(serde_json::json!({"type": "fly_to_the_moon"}))
        .await?;
    reply.expect_error(ErrorCode::UnknownType)?;
    // Still alice's session.
    alice.send_text("bobby", "after the noise").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(text_of(&got).as_deref(), Some("after the noise"));
    Ok(())
}

#[tokio::test]
async fn requests_before_hello_get_hello_required_and_hello_still_works() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("alice").await?;
    let client = TestClient::connect_plain(&server).await?;
    for reply in [
        client
            .request_with(|id| ClientMessage::Login {
                id,
                username: "alice".into(),
                password: password_for("alice"),
            })
            .await?,
        client
            .request_with(|id| ClientMessage::QueryUsername {
                id,
                username: "alice".into(),
            })
            .await?,
        client
            .request_with(|id| ClientMessage::Heartbeat { id })
            .await?,
        client
            .request_with(|id| ClientMessage::ListOnline { id })
            .await?,
    ] {
        reply.expect_error(ErrorCode::HelloRequired)?;
    }
    client.hello().await?;
    client.login("alice", &password_for("alice")).await?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_protocol_version_is_refused_and_closed() -> Result<()> {
    let server = TestServer::start().await?;
    let mut good = Bystanders::join(&server).await?;
    let mut raw = RawSocket::connect(&server).await?;
    raw.send(&ClientMessage::Hello {
        id: "v2".into(),
        version: natter_proto::PROTOCOL_VERSION + 1,
        client: "from the future".into(),
        presence: PresenceScope::All,
    })
    .await?;
    let before_close = raw.expect_closed(CLOSE_TIMEOUT).await?;
    ensure!(
        matches!(
            before_close.as_slice(),
            [ServerMessage::Error { id: Some(id), code: ErrorCode::UnsupportedVersion, .. }] if id == "v2"
        ),
        "expected unsupported_version (id v2) then close, got {:?}",
        before_close.iter().map(show).collect::<Vec<_>>()
    );
    good.still_served().await?;
    Ok(())
}

#[tokio::test]
async fn requests_before_login_get_not_authenticated() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let client = server.connect().await?;
    let refused: Vec<ClientMessage> = vec![
        ClientMessage::Logout { id: "a".into() },
        ClientMessage::EraseAccount {
            id: "b".into(),
            password: "whatever1".into(),
        },
        ClientMessage::UpdateProfile {
            id: "c".into(),
            nickname: Some("x".into()),
            motto: None,
            phone: None,
        },
        ClientMessage::ListOnline { id: "d".into() },
        ClientMessage::FriendList { id: "e".into() },
        ClientMessage::SendMessage {
            id: "f".into(),
            client_msg_id: "c1".into(),
            to: Target::Square,
            body: text("hi"),
        },
        ClientMessage::Ack {
            id: Some("g".into()),
            msg_ids: vec![1],
        },
        ClientMessage::History {
            id: "h".into(),
            with: Target::Square,
            before: None,
            limit: None,
        },
        ClientMessage::FileOffer {
            id: "i".into(),
            to: Target::User {
                username: "bobby".into(),
            },
            name: "a.txt".into(),
            size: 1,
            sha256: Some("0".repeat(64)),
            kind: FileKind::File,
        },
        ClientMessage::FileComplete {
            id: "k".into(),
            file_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            sha256: "0".repeat(64),
        },
        ClientMessage::CallInvite {
            id: "j".into(),
            to: "bobby".into(),
        },
    ];
    for message in refused {
        let what = format!("{message:?}");
        client
            .request(message)
            .await?
            .expect_error(ErrorCode::NotAuthenticated)
            .map_err(|e| e.context(what))?;
    }
    // The pre-session requests work.
    assert!(!client.query_username("bobby").await?.available);
    client.heartbeat().await?;
    Ok(())
}

#[tokio::test]
async fn malformed_call_requests_are_refused_and_unknown_calls_are_not_found() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    for json in [
        serde_json::json!({"type": "call_invite"}),
        serde_json::json!({"type": "call_invite", "to": 7}),
        serde_json::json!({"type": "call_answer", "call_id": "c"}),
        serde_json::json!({"type": "call_answer", "call_id": "c", "accept": "yes"}),
        serde_json::json!({"type": "call_hangup"}),
    ] {
        let what = json.to_string();
        alice
            .request_json(json)
            .await?
            .expect_error(ErrorCode::InvalidMessage)
            .map_err(|e| e.context(what))?;
    }
    let unknown: Vec<ClientMessage> = vec![
        ClientMessage::CallAnswer {
            id: alice.new_id(),
            call_id: "c".into(),
            accept: true,
        },
        ClientMessage::CallHangup {
            id: alice.new_id(),
            call_id: "x".repeat(10_000),
        },
    ];
    for message in unknown {
        let what = format!("{message:?}");
        alice
            .request(message)
            .await?
            .expect_error(ErrorCode::NotFound)
            .map_err(|e| e.context(what))?;
    }
    alice.list_online().await?;
    Ok(())
}

#[tokio::test]
async fn an_unannounced_binary_frame_gets_unexpected_binary() -> Result<()> {
    let server = TestServer::start().await?;
    let mut good = Bystanders::join(&server).await?;
    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;
    raw.send_binary(b"\x00\x01\x02 raw file bytes").await?;
    let id = raw.expect_error(ErrorCode::UnexpectedBinary).await?;
    ensure!(id.is_none(), "a binary frame has no id to echo: {id:?}");
    raw.assert_still_open().await?;
    good.still_served().await?;
    Ok(())
}

#[tokio::test]
async fn a_frame_split_into_single_bytes_is_still_understood() -> Result<()> {
    let server = TestServer::start().await?;
    let mut raw = RawSocket::connect(&server).await?;
    let frame = natter_proto::frame::frame_bytes(&natter_proto::encode(&ClientMessage::Hello {
        id: "slow".into(),
        version: 1,
        client: "one byte at a time".into(),
        presence: PresenceScope::All,
    }));
    for byte in frame {
        raw.send_bytes(&[byte]).await?;
    }
    match raw.expect_message().await? {
        ServerMessage::HelloOk { id, .. } if id == "slow" => {}
        other => bail!("expected hello_ok, got {}", show(&other)),
    }
    // And several frames in one write are answered in order.
    let mut burst = Vec::new();
    for n in 0..5 {
        burst.extend(natter_proto::frame::frame_bytes(&natter_proto::encode(
            &ClientMessage::Heartbeat {
                id: format!("hb{n}"),
            },
        )));
    }
    raw.send_bytes(&burst).await?;
    for n in 0..5 {
        match raw.expect_message().await? {
            ServerMessage::HeartbeatAck { id, .. } if id == format!("hb{n}") => {}
            other => bail!("expected heartbeat_ack hb{n}, got {}", show(&other)),
        }
    }
    Ok(())
}

#[tokio::test]
async fn random_garbage_on_many_sockets_never_stops_the_server() -> Result<()> {
    let server = TestServer::start_with(&["--max-frame-bytes", "4096"]).await?;
    let mut good = Bystanders::join(&server).await?;
    // A fixed-seed xorshift: the same garbage every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..12 {
        let mut raw = RawSocket::connect(&server).await?;
        if round % 2 == 0 {
            raw.hello().await?;
        }
        let len = 16 + (next() % 2048) as usize;
        let mut garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 {
            // A plausible small header in front, so the payload reaches the JSON decoder.
            let payload_len = (garbage.len() - 4) as u32;
            garbage[..4].copy_from_slice(&payload_len.to_be_bytes());
        }
        raw.send_bytes(&garbage).await.ok();
        raw.shutdown_write().await.ok();
        // Whatever comes back, the server must end this connection and nothing else.
        let _ = raw.expect_closed(CLOSE_TIMEOUT).await?;
        good.still_served().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_well_behaved_client_is_served_while_others_misbehave() -> Result<()> {
    let server = TestServer::start_with(&["--max-frame-bytes", "2048"]).await?;
    let mut good = Bystanders::join(&server).await?;
    let abuse: Vec<Vec<u8>> = vec![
        length_header(1 << 30).to_vec(),
        {
            let mut v = length_header(500).to_vec();
            v.extend_from_slice(b"{\"type\":");
            v
        },
        natter_proto::frame::frame_bytes(&natter_proto::Frame::Json(bytes::Bytes::from_static(
            b"\xc0\xc1\xf5\xff",
        ))),
        natter_proto::frame::frame_bytes(&natter_proto::Frame::Json(bytes::Bytes::from_static(
            b"{\"type\":\"login\",\"id\":1}",
        ))),
        b"GET / HTTP/1.1\r\nHost: natter\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
    ];
    let mut sockets = Vec::new();
    for bytes in &abuse {
        let mut raw = RawSocket::connect(&server).await?;
        raw.send_bytes(bytes).await?;
        // Keep the socket open: a half-sent frame must not hold up anyone else.
        sockets.push(raw);
        good.still_served().await?;
    }
    let mut tls_raw = RawSocket::connect_tls(&server).await?;
    tls_raw.send_bytes(&length_header(1 << 30)).await?;
    let before_close = tls_raw.expect_closed(CLOSE_TIMEOUT).await?;
    ensure!(
        matches!(
            before_close.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::FrameTooLarge,
                ..
            }]
        ),
        "over TLS too: {:?}",
        before_close.iter().map(show).collect::<Vec<_>>()
    );
    good.still_served().await?;
    // A guest can still come and go.
    let visitor = server.guest("visitor").await?;
    good.alice.expect_user_online("visitor").await?;
    drop(visitor);
    good.alice.expect_user_offline("visitor").await?;
    Ok(())
}

#[tokio::test]
async fn request_ids_that_break_the_rules_get_invalid_field() -> Result<()> {
    let server = TestServer::start().await?;
    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;
    let too_long = "i".repeat(65);
    for id in ["has space", too_long.as_str(), "", "ид", "tab\there"] {
        let payload = serde_json::json!({"type": "query_username", "id": id, "username": "alice"});
        raw.send_payload(payload.to_string().as_bytes()).await?;
        let echoed = raw
            .expect_error(ErrorCode::InvalidField)
            .await
            .map_err(|e| e.context(format!("request id {id:?}")))?;
        assert_eq!(echoed.as_deref(), Some(id), "the id is echoed as received");
    }
    raw.assert_still_open().await?;
    Ok(())
}
