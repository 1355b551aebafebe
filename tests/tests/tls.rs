//! TLS: the same product over the TLS port, with the server's self-signed certificate as the
//! only trust anchor, and TLS and plain clients talking to each other.

use std::time::Duration;

use anyhow::{ensure, Result};
use natter_e2e::harness::tls;
use natter_e2e::*;

#[tokio::test]
async fn alice_and_bob_register_befriend_and_chat_over_tls() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user_tls("alice").await?;
    let mut bob = server.user_tls("bobby").await?;
    alice.expect_user_online("bobby").await?;
    befriend(&mut alice, &mut bob).await?;

    let sent = alice.send_text("bobby", "over TLS 🔒").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    assert_eq!(text_of(&got).as_deref(), Some("over TLS 🔒"));
    bob.ack(&[got.msg_id]).await?;
    alice.expect_receipt(sent.msg_id).await?;
    assert_eq!(bob.history_with("alice").await?.texts(), ["over TLS 🔒"]);

    let token = bob.token()?;
    bob.drop_connection().await?;
    alice.expect_user_offline("bobby").await?;
    alice.send_text("bobby", "while you were gone").await?;
    let mut bob = TestClient::connect_tls(&server).await?;
    bob.hello().await?;
    let session = bob.resume(&token).await?;
    ensure!(session.resumed);
    let queued = bob.expect_message_from("alice").await?;
    assert_eq!(text_of(&queued).as_deref(), Some("while you were gone"));
    Ok(())
}

#[tokio::test]
async fn plain_and_tls_clients_talk_to_each_other() -> Result<()> {
    let server = TestServer::start().await?;
    let mut plain = server.user("alice").await?;
    let mut secure = server.user_tls("bobby").await?;
    plain.expect_user_online("bobby").await?;

    let to_tls = plain.send_text("bobby", "from plain").await?;
    let got = secure.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, to_tls.msg_id);
    let to_plain = secure.send_text("alice", "from tls").await?;
    let got = plain.expect_message_from("bobby").await?;
    assert_eq!(got.msg_id, to_plain.msg_id);

    let visitor = server.connect_tls().await?;
    visitor.guest("visitor").await?;
    let square = visitor.send_square("hello square").await?;
    for member in [&mut plain, &mut secure] {
        let got = member.expect_message_from("visitor").await?;
        assert_eq!(got.msg_id, square.msg_id);
    }
    Ok(())
}

#[tokio::test]
async fn the_certificate_is_valid_for_localhost_and_the_loopback_ip() -> Result<()> {
    let server = TestServer::start().await?;
    let cert = server.cert_der()?;
    for name in ["localhost", "127.0.0.1"] {
        let tcp = tokio::net::TcpStream::connect(server.tls_addr()?).await?;
        tls::handshake(tcp, cert, name).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_client_pinned_to_another_servers_certificate_refuses_the_handshake() -> Result<()> {
    let first = TestServer::start().await?;
    let second = TestServer::start().await?;
    ensure!(
        first.cert_der()? != second.cert_der()?,
        "each data dir gets its own certificate"
    );
    let tcp = tokio::net::TcpStream::connect(second.tls_addr()?).await?;
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        tls::handshake(tcp, first.cert_der()?, tls::SERVER_NAME),
    )
    .await?;
    ensure!(
        result.is_err(),
        "the handshake must fail against an unknown certificate"
    );
    Ok(())
}

#[tokio::test]
async fn plain_bytes_on_the_tls_port_do_not_disturb_tls_clients() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user_tls("alice").await?;
    // A plain-protocol client on the TLS port: not a TLS handshake, so it is dropped.
    let mut confused = tokio::net::TcpStream::connect(server.tls_addr()?).await?;
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let hello =
            natter_proto::frame::frame_bytes(&natter_proto::encode(&ClientMessage::Hello {
                id: "h".into(),
                version: 1,
                client: "wrong port".into(),
                presence: PresenceScope::All,
            }));
        confused.write_all(&hello).await?;
        let mut buf = [0u8; 256];
        // The server answers with a TLS alert or just closes; either way the stream ends.
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match confused.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        ensure!(ended.is_ok(), "the TLS port closes a non-TLS client");
    }
    let bob = server.user("bobby").await?;
    alice.expect_user_online("bobby").await?;
    bob.send_text("alice", "still fine").await?;
    alice.expect_message_from("bobby").await?;
    Ok(())
}

#[tokio::test]
async fn the_server_speaks_tls_1_2_and_tls_1_3() -> Result<()> {
    let server = TestServer::start().await?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.cert_der()?.clone())?;
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(server.tls_addr()?).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let stream = connector.connect(name, tcp).await?;
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
    }
    Ok(())
}
