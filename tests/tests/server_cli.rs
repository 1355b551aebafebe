//! The server as an operator sees it: the ready file, settings by flag and by environment
//! variable, the connection limit.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use natter_e2e::*;

#[tokio::test]
async fn the_ready_file_says_where_the_server_listens_and_which_certificate_it_uses() -> Result<()>
{
    let server = TestServer::start().await?;
    let ready = server.ready().clone();
    assert_eq!(Some(ready.pid), server.pid(), "pid is the server's own");
    ensure!(ready.plain.ip().is_loopback() && ready.plain.port() != 0);
    let tls = server.tls_addr()?;
    ensure!(tls.port() != 0 && tls.port() != ready.plain.port());
    let fingerprint = ready.cert_sha256.clone().unwrap_or_default();
    ensure!(
        fingerprint.len() == 64
            && fingerprint
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "cert_sha256 is 64 lowercase hex digits: {fingerprint:?}"
    );
    let pem = server.cert_pem_path()?;
    ensure!(pem.is_absolute(), "cert_pem is absolute: {}", pem.display());
    ensure!(
        pem.starts_with(server.data_dir()),
        "the certificate lives in the data dir: {}",
        pem.display()
    );
    // TestServer::start checked that the PEM file hashes to cert_sha256.
    Ok(())
}

#[tokio::test]
async fn every_flag_can_also_be_given_as_an_environment_variable() -> Result<()> {
    let server = TestServer::start_with_env(
        &[],
        &[
            ("NATTER_HEARTBEAT_INTERVAL_MS", "1234"),
            ("NATTER_IDLE_TIMEOUT_MS", "5678"),
            ("NATTER_MAX_FRAME_BYTES", "4096"),
        ],
    )
    .await?;
    let client = TestClient::connect_plain(&server).await?;
    let hello = client.hello().await?;
    assert_eq!(
        (
            hello.heartbeat_interval_ms,
            hello.idle_timeout_ms,
            hello.max_frame_bytes
        ),
        (1234, 5678, 4096)
    );
    Ok(())
}

#[tokio::test]
async fn no_tls_runs_only_the_plain_listener() -> Result<()> {
    let server = TestServer::start_with(&["--no-tls"]).await?;
    ensure!(
        server.tls_addr().is_err(),
        "--no-tls: the ready file says tls: null"
    );
    let alice = server.user("alice").await?;
    alice.list_online().await?;
    Ok(())
}

#[tokio::test]
async fn beyond_the_connection_limit_a_newcomer_gets_server_busy() -> Result<()> {
    let server = TestServer::start_with(&["--max-connections", "2"]).await?;
    let alice = server.user("alice").await?;
    let bob = server.connect().await?;

    let mut third = RawSocket::connect(&server).await?;
    let before_close = third.expect_closed(Duration::from_secs(5)).await?;
    match before_close.as_slice() {
        [ServerMessage::Error {
            id: None,
            code: ErrorCode::ServerBusy,
            ..
        }] => {}
        other => bail!(
            "expected one error server_busy (id null) then close, got {:?}",
            other.iter().map(show).collect::<Vec<_>>()
        ),
    }
    alice.list_online().await?;

    // Once someone leaves, there is room again. The server notices the close a moment later:
    // retry until it does, with a deadline.
    drop(bob);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let client = TestClient::connect_plain(&server).await?;
        if client.hello().await.is_ok() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no room for a new connection 10 s after one closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn flags_and_environment_override_the_config_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("natter.toml");
    std::fs::write(
        &config,
        "heartbeat_interval_ms = 2222\nidle_timeout_ms = 7777\nmax_frame_bytes = 8192\n",
    )?;
    let config_arg = config.to_string_lossy().into_owned();
    let server = TestServer::start_with_env(
        &["--config", &config_arg, "--idle-timeout-ms", "9999"],
        &[("NATTER_MAX_FRAME_BYTES", "4096")],
    )
    .await?;
    let client = TestClient::connect_plain(&server).await?;
    let hello = client.hello().await?;
    assert_eq!(hello.heartbeat_interval_ms, 2222, "from the file");
    assert_eq!(hello.idle_timeout_ms, 9999, "the flag wins over the file");
    assert_eq!(
        hello.max_frame_bytes, 4096,
        "the environment wins over the file"
    );
    Ok(())
}
