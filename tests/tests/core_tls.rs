//! natter-core over TLS: the server's certificate is pinned on first use, a changed certificate
//! is refused (nothing is sent) until the user accepts the new fingerprint, and TLS and plain
//! clients talk to each other.

use anyhow::{Context, Result};
use natter_core::{ClientError, ConnectionState, Event};
use natter_e2e::harness::core::*;
use natter_e2e::*;

fn fingerprint_of(server: &TestServer) -> Result<String> {
    server
        .ready()
        .cert_sha256
        .clone()
        .context("the ready file names the certificate's fingerprint")
}

/// Stops the server, throws its certificate away and starts it again on the same ports: it
/// makes a new self-signed certificate, as a reinstalled server would.
async fn replace_certificate(server: &mut TestServer) -> Result<()> {
    server.terminate().await?;
    std::fs::remove_dir_all(server.data_dir().join("tls"))
        .context("while deleting the server's certificate")?;
    server.restart().await
}

#[tokio::test]
async fn alice_pins_the_servers_certificate_on_first_use() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = Device::fresh_tls("alice", &server)?;
    assert_eq!(alice.pinned_certificate(), None);

    alice.register_me().await?;
    assert_eq!(
        alice.pinned_certificate(),
        Some(fingerprint_of(&server)?),
        "the first TLS connection pins what the server showed"
    );
    let pins = std::fs::read_to_string(alice.data_dir().path().join("pins.json"))
        .context("pins are saved in the data directory")?;
    assert!(pins.contains(&fingerprint_of(&server)?));

    let info = alice.log_in().await?;
    assert_eq!(info.profile.username, "alice");
    // A restarted app trusts the same server without asking.
    let alice = alice.restart_app().await;
    assert_eq!(alice.pinned_certificate(), Some(fingerprint_of(&server)?));
    alice.resume_saved("alice", None).await?;
    Ok(())
}

#[tokio::test]
async fn tls_and_plain_clients_chat_with_each_other() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user_tls("alice").await?;
    let mut bob = server.core_user("bobby").await?;

    let hi = alice.send_and_confirm(user("bobby"), "over TLS").await?;
    bob.expect_message("alice", "over TLS").await?;
    alice.expect_delivered(&hi.client_msg_id).await?;
    bob.send_and_confirm(user("alice"), "over plain TCP")
        .await?;
    alice.expect_message("bobby", "over plain TCP").await?;
    alice.send_and_confirm(Target::Square, "tls square").await?;
    bob.expect_message("alice", "tls square").await?;
    Ok(())
}

#[tokio::test]
async fn a_changed_certificate_is_refused_until_alice_accepts_it() -> Result<()> {
    let mut server = TestServer::start().await?;
    let alice = server.core_user_tls("alice").await?;
    let old = fingerprint_of(&server)?;
    let alice = alice.restart_app().await;

    replace_certificate(&mut server).await?;
    let new = fingerprint_of(&server)?;
    assert_ne!(old, new, "the restarted server made a new certificate");

    let refused = alice.login("alice", &password_for("alice")).await;
    match refused {
        Err(ClientError::CertificateChanged {
            expected, actual, ..
        }) => {
            assert_eq!(expected, old);
            assert_eq!(actual, new);
        }
        other => anyhow::bail!("expected CertificateChanged, got {other:?}"),
    }
    assert_eq!(
        alice.pinned_certificate(),
        Some(old.clone()),
        "a refused certificate does not replace the pin"
    );
    // Every attempt is refused the same way, also a query that needs no login.
    let again = alice.query_username("somebody").await;
    assert!(
        matches!(&again, Err(ClientError::CertificateChanged { .. })),
        "got {again:?}"
    );

    alice.accept_certificate(&new)?;
    assert_eq!(alice.pinned_certificate(), Some(new.clone()));
    let info = alice.log_in().await?;
    assert_eq!(info.profile.username, "alice");
    // The acceptance is saved: the next app start trusts the new certificate.
    let alice = alice.restart_app().await;
    assert_eq!(alice.pinned_certificate(), Some(new));
    alice.resume_saved("alice", None).await?;
    Ok(())
}

#[tokio::test]
async fn a_connected_app_meets_a_changed_certificate_while_reconnecting() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut alice = server.core_user_tls("alice").await?;
    let old = fingerprint_of(&server)?;

    replace_certificate(&mut server).await?;
    let new = fingerprint_of(&server)?;
    let error = alice
        .wait_for("certificate changed", |e| match e {
            Event::CertificateChanged(error) => Some(error.clone()),
            _ => None,
        })
        .await?;
    match &error {
        ClientError::CertificateChanged {
            expected, actual, ..
        } => {
            assert_eq!(*expected, old);
            assert_eq!(*actual, new);
        }
        other => anyhow::bail!("the event carries {other:?}"),
    }
    assert_ne!(alice.connection_state(), ConnectionState::Online);
    // What she writes meanwhile waits.
    let queued = alice.send_text(user("alice"), "to myself").await?;

    alice.accept_certificate(&new)?;
    alice.expect_connection(ConnectionState::Online).await?;
    let code = alice.expect_failed(&queued.client_msg_id).await?;
    assert_eq!(
        code,
        ErrorCode::SelfTarget,
        "the server, reached again, answered it"
    );
    Ok(())
}

#[tokio::test]
async fn the_same_certificate_after_a_plain_restart_is_trusted_silently() -> Result<()> {
    let mut server = TestServer::start().await?;
    let mut alice = server.core_user_tls("alice").await?;
    let old = fingerprint_of(&server)?;

    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    server.restart().await?;
    assert_eq!(
        fingerprint_of(&server)?,
        old,
        "the server kept its certificate"
    );
    alice.expect_connection(ConnectionState::Online).await?;
    let changed = alice
        .log()
        .iter()
        .any(|e| matches!(e, Event::CertificateChanged(_)));
    assert!(!changed, "nothing changed, so nothing to accept");
    Ok(())
}

#[tokio::test]
async fn pins_are_per_server_address() -> Result<()> {
    let first = TestServer::start().await?;
    let second = TestServer::start().await?;
    // One app data directory used for two servers (two addresses): each gets its own pin.
    let dir = DataDir::new()?;
    let a = Device::start("alice", tls_server(&first)?, dir.clone());
    a.register_me().await?;
    a.shutdown().await;
    let b = Device::start("alice", tls_server(&second)?, dir.clone());
    b.register_me().await?;
    assert_eq!(b.pinned_certificate(), Some(fingerprint_of(&second)?));
    let a = Device::start("alice", tls_server(&first)?, dir);
    assert_eq!(a.pinned_certificate(), Some(fingerprint_of(&first)?));
    a.log_in().await?;
    Ok(())
}
