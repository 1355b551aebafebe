//! "Host a server on this computer" and LAN discovery, through natter-core's `host` feature: a
//! server hosted in-process is announced over mDNS, found by a browse in this process and in
//! another, and two apps chat through it over TLS with the announced fingerprint pinned; it
//! leaves the list when it stops and comes back as itself; taken ports and garbage
//! announcements break nothing.
//!
//! Every scenario runs in a network namespace of its own with nothing but `lo`
//! ([`netns::in_private_network`]): no multicast leaves this computer.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use natter_core::lan::{Discovery, HostConfig, HostedServer, LanServer};
use natter_core::{ConnectionState, Event};
use natter_e2e::harness::core::*;
use natter_e2e::harness::netns;
use natter_e2e::user;
use tokio::io::{AsyncBufReadExt, BufReader};

/// mDNS probes for 750 ms before it announces, then a browse resolves SRV and TXT: seconds.
const FIND_TIMEOUT: Duration = Duration::from_secs(10);

/// A goodbye makes browsers drop the record one second later (RFC 6762 §10.1).
const GONE_TIMEOUT: Duration = Duration::from_secs(5);

/// The env var that tells the second-process probe which fingerprint to wait for.
const PROBE_EXPECT: &str = "NATTER_LAN_PROBE_FINGERPRINT";
/// The line prefix the probe prints the server it found after.
const PROBE_FOUND: &str = "LAN_SERVER ";

struct Host {
    server: HostedServer,
    dir: tempfile::TempDir,
}

fn host_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("natter-e2e-host-")
        .tempdir()
        .context("while creating the host's data directory")
}

fn config_in(dir: &tempfile::TempDir) -> HostConfig {
    HostConfig {
        name: "Ada's computer".into(),
        ..HostConfig::new(dir.path())
    }
}

async fn start_host() -> Result<Host> {
    let dir = host_dir()?;
    let server = HostedServer::start(config_in(&dir))
        .await
        .context("while hosting a server")?;
    Ok(Host { server, dir })
}

/// Waits until the discovery lists a server with `fingerprint`.
async fn wait_listed(discovery: &Discovery, fingerprint: &str) -> Result<LanServer> {
    let mut list = discovery.watch();
    let deadline = tokio::time::Instant::now() + FIND_TIMEOUT;
    loop {
        let found = list
            .borrow_and_update()
            .iter()
            .find(|s| s.fingerprint == fingerprint)
            .cloned();
        if let Some(server) = found {
            return Ok(server);
        }
        match tokio::time::timeout_at(deadline, list.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("the discovery stopped before it found {fingerprint}"),
            Err(_) => bail!(
                "no server with fingerprint {fingerprint} listed within {FIND_TIMEOUT:?}; listed: {:?}",
                discovery.servers()
            ),
        }
    }
}

/// Waits until the discovery no longer lists `id`, and says how long after `since` that was.
async fn wait_unlisted(discovery: &Discovery, id: &str, since: Instant) -> Result<Duration> {
    let mut list = discovery.watch();
    let deadline = tokio::time::Instant::now() + GONE_TIMEOUT;
    loop {
        if !list.borrow_and_update().iter().any(|s| s.id == id) {
            return Ok(since.elapsed());
        }
        match tokio::time::timeout_at(deadline, list.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("the discovery stopped"),
            Err(_) => bail!("{id} still listed {GONE_TIMEOUT:?} after its host stopped"),
        }
    }
}

/// An app on the connect screen picks a discovered server: TLS to its address, the announced
/// fingerprint pinned before anything is sent.
fn app_for(name: &str, found: &LanServer) -> Result<Device> {
    let dir = DataDir::new()?;
    let mut config = test_config(found.tls_addr(), &dir);
    config.fallbacks = found.fallbacks();
    let device = Device::start_with(name, config, dir);
    device.accept_certificate(&found.fingerprint)?;
    Ok(device)
}

/// Waits for the app's connection to be anything but online.
async fn expect_connection_lost(device: &mut Device) -> Result<()> {
    device
        .wait_for("the connection to drop", |e| {
            matches!(e, Event::Connection(s) if *s != ConnectionState::Online).then_some(())
        })
        .await
}

/// Files this process has open under `dir` (the database, its journal, transfer files).
fn files_open_under(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let dir = dir.canonicalize()?;
    let mut open = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            if target.starts_with(&dir) {
                open.push(target);
            }
        }
    }
    Ok(open)
}

/// Runs the ignored probe test in a second process and returns the server it found.
async fn find_from_another_process(fingerprint: &str) -> Result<LanServer> {
    let mut probe = netns::sibling_test("probe_lists_the_host_from_a_second_process")?;
    let mut child = probe
        .env(PROBE_EXPECT, fingerprint)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("while starting the probe process")?;
    let stdout = child.stdout.take().context("the probe's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(FIND_TIMEOUT + Duration::from_secs(5), async {
        while let Some(line) = lines.next_line().await? {
            // The test harness may have started the line with the test's name.
            if let Some((_, json)) = line.split_once(PROBE_FOUND) {
                return Ok(Some(serde_json::from_str::<LanServer>(json)?));
            }
            seen.push(line);
        }
        anyhow::Ok(None)
    })
    .await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    match (found, status) {
        (Ok(Ok(Some(server))), Ok(Ok(status))) if status.success() => Ok(server),
        (found, status) => bail!(
            "the probe process found nothing usable ({found:?}, exit {status:?}); it printed:\n{}",
            seen.join("\n")
        ),
    }
}

#[tokio::test]
async fn a_hosted_server_is_found_on_the_lan_and_two_apps_chat_through_it() -> Result<()> {
    if !netns::in_private_network(
        "a_hosted_server_is_found_on_the_lan_and_two_apps_chat_through_it",
    )? {
        return Ok(());
    }
    let host = start_host().await?;
    let info = host.server.info();
    assert_eq!(info.name, "Ada's computer");
    assert_eq!(
        (info.port, info.tls_port),
        (4004, 4399),
        "free default ports are kept"
    );
    ensure!(
        info.fingerprint.len() == 64
            && info
                .fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the fingerprint is lowercase hex SHA-256: {}",
        info.fingerprint
    );
    assert_eq!(
        info.addresses,
        ["127.0.0.1:4399"],
        "with only lo, loopback is the one address"
    );

    let discovery = Discovery::start()?;
    let started = Instant::now();
    let found = wait_listed(&discovery, &info.fingerprint).await?;
    println!("found the host in {:?}", started.elapsed());
    assert_eq!(found.name, "Ada's computer");
    assert_eq!(found.host, "127.0.0.1");
    assert_eq!((found.port, found.tls_port), (4004, 4399));
    assert_eq!(found.protocol_version, natter_proto::PROTOCOL_VERSION);
    assert_eq!(discovery.servers(), std::slice::from_ref(&found));

    let elsewhere = find_from_another_process(&info.fingerprint).await?;
    assert_eq!(
        elsewhere, found,
        "another process sees the same announcement"
    );

    let mut alice = app_for("alice", &found)?;
    alice.register_me().await?;
    alice.log_in().await?;
    let mut bob = app_for("bobby", &found)?;
    bob.log_in_as_guest().await?;
    for app in [&alice, &bob] {
        assert_eq!(
            app.pinned_certificate().as_deref(),
            Some(info.fingerprint.as_str()),
            "the announced fingerprint is the one pinned, and the server's certificate matched it"
        );
    }

    let hi = alice
        .send_and_confirm(user("bobby"), "found you on the LAN")
        .await?;
    bob.expect_message("alice", "found you on the LAN").await?;
    alice.expect_delivered(&hi.client_msg_id).await?;
    let back = bob
        .send_and_confirm(user("alice"), "hi from the guest")
        .await?;
    alice.expect_message("bobby", "hi from the guest").await?;
    bob.expect_delivered(&back.client_msg_id).await?;

    alice.shutdown().await;
    bob.shutdown().await;
    discovery.stop().await;
    host.server.stop().await?;
    Ok(())
}

/// Not a scenario of its own: `find_from_another_process` runs it in a second process inside a
/// scenario's namespace, where it browses until it lists the expected server and prints it.
#[tokio::test]
#[ignore = "started by a_hosted_server_is_found_on_the_lan_and_two_apps_chat_through_it"]
async fn probe_lists_the_host_from_a_second_process() -> Result<()> {
    let Ok(fingerprint) = std::env::var(PROBE_EXPECT) else {
        return Ok(());
    };
    ensure!(
        netns::in_private_network("probe_lists_the_host_from_a_second_process")?,
        "the probe runs only inside a scenario's namespace"
    );
    let discovery = Discovery::start()?;
    let found = wait_listed(&discovery, &fingerprint).await?;
    println!("{PROBE_FOUND}{}", serde_json::to_string(&found)?);
    discovery.stop().await;
    Ok(())
}

#[tokio::test]
async fn when_the_host_stops_apps_go_offline_and_it_leaves_the_list_then_returns_as_itself(
) -> Result<()> {
    if !netns::in_private_network(
        "when_the_host_stops_apps_go_offline_and_it_leaves_the_list_then_returns_as_itself",
    )? {
        return Ok(());
    }
    let Host { server, dir } = start_host().await?;
    let fingerprint = server.info().fingerprint;
    let discovery = Discovery::start()?;
    let found = wait_listed(&discovery, &fingerprint).await?;
    let mut alice = app_for("alice", &found)?;
    alice.register_me().await?;
    alice.log_in().await?;
    let mut bob = app_for("bobby", &found)?;
    bob.register_me().await?;
    bob.log_in().await?;
    alice.catch_up()?;
    bob.catch_up()?;

    ensure!(
        !files_open_under(dir.path())?.is_empty(),
        "a running host has its database open (else the check below proves nothing)"
    );
    let stopping = Instant::now();
    server.stop().await?;
    println!("the host stopped in {:?}", stopping.elapsed());
    expect_connection_lost(&mut alice).await?;
    expect_connection_lost(&mut bob).await?;
    assert_ne!(alice.connection_state(), ConnectionState::Online);
    let gone_after = wait_unlisted(&discovery, &found.id, stopping).await?;
    println!("the host left the list {gone_after:?} after it was told to stop");
    let open = files_open_under(dir.path())?;
    ensure!(
        open.is_empty(),
        "a stopped host keeps nothing open in its data directory: {open:?}"
    );

    // The same data directory: same certificate, same accounts.
    let server = HostedServer::start(config_in(&dir)).await?;
    assert_eq!(
        server.info().fingerprint,
        fingerprint,
        "the certificate is kept"
    );
    let again = wait_listed(&discovery, &fingerprint).await?;
    assert_eq!((again.host, again.tls_port), (found.host.clone(), 4399));
    // The apps were on the connect screen's address all along: they come back by themselves.
    alice.expect_connection(ConnectionState::Online).await?;
    bob.expect_connection(ConnectionState::Online).await?;
    let hi = alice.send_and_confirm(user("bobby"), "you're back").await?;
    bob.expect_message("alice", "you're back").await?;
    alice.expect_delivered(&hi.client_msg_id).await?;
    // And a new app logs in with the password registered before the restart.
    let alice_elsewhere = app_for("alice", &found)?;
    let info = alice_elsewhere.log_in().await?;
    assert_eq!(info.profile.username, "alice");

    alice_elsewhere.shutdown().await;
    alice.shutdown().await;
    bob.shutdown().await;
    discovery.stop().await;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_host_whose_ports_are_taken_starts_on_others_and_announces_those() -> Result<()> {
    if !netns::in_private_network(
        "a_host_whose_ports_are_taken_starts_on_others_and_announces_those",
    )? {
        return Ok(());
    }
    // Another server on this computer has the defaults.
    let _plain = std::net::TcpListener::bind(("0.0.0.0", 4004))?;
    let _tls = std::net::TcpListener::bind(("0.0.0.0", 4399))?;
    let host = start_host().await?;
    let info = host.server.info();
    ensure!(
        info.port != 4004 && info.tls_port != 4399 && info.port != info.tls_port,
        "taken ports are replaced: {info:?}"
    );
    assert_eq!(info.addresses, [format!("127.0.0.1:{}", info.tls_port)]);

    let discovery = Discovery::start()?;
    let found = wait_listed(&discovery, &info.fingerprint).await?;
    assert_eq!((found.port, found.tls_port), (info.port, info.tls_port));
    let visitor = app_for("visitor", &found)?;
    visitor.log_in_as_guest().await?;

    // An explicit preference that is taken moves too.
    let second_dir = host_dir()?;
    let second = HostedServer::start(HostConfig {
        tls_port: Some(info.tls_port),
        port: Some(info.port),
        ..config_in(&second_dir)
    })
    .await?;
    let second_info = second.info();
    ensure!(
        second_info.tls_port != info.tls_port && second_info.port != info.port,
        "{second_info:?} next to {info:?}"
    );
    assert_ne!(second_info.fingerprint, info.fingerprint);
    let second_found = wait_listed(&discovery, &second_info.fingerprint).await?;
    assert_ne!(
        second_found.id, found.id,
        "two hosts of one name are two entries"
    );
    assert_eq!(second_found.tls_port, second_info.tls_port);

    visitor.shutdown().await;
    discovery.stop().await;
    second.stop().await?;
    host.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn garbage_announcements_are_not_listed_and_break_nothing() -> Result<()> {
    use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

    if !netns::in_private_network("garbage_announcements_are_not_listed_and_break_nothing")? {
        return Ok(());
    }
    let discovery = Discovery::start()?;
    let fp = "ab".repeat(32);
    let garbage: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "no fingerprint",
            vec![("proto", "2".into()), ("tls_port", "4399".into())],
        ),
        (
            "short fingerprint",
            vec![
                ("proto", "2".into()),
                ("tls_port", "4399".into()),
                ("cert_sha256", "abc123".into()),
            ],
        ),
        (
            "no tls port",
            vec![("proto", "2".into()), ("cert_sha256", fp.clone())],
        ),
        (
            "tls port zero",
            vec![
                ("proto", "2".into()),
                ("tls_port", "0".into()),
                ("cert_sha256", fp.clone()),
            ],
        ),
        (
            "tls port words",
            vec![
                ("proto", "2".into()),
                ("tls_port", "https".into()),
                ("cert_sha256", fp.clone()),
            ],
        ),
        (
            "no protocol",
            vec![("tls_port", "4399".into()), ("cert_sha256", fp.clone())],
        ),
    ];
    let announcer = ServiceDaemon::new()?;
    let raw_browser = ServiceDaemon::new()?;
    let raw_events = raw_browser.browse(natter_core::lan::SERVICE_TYPE)?;
    for (instance, txt) in &garbage {
        let info = ServiceInfo::new(
            natter_core::lan::SERVICE_TYPE,
            instance,
            "garbage.local.",
            "127.0.0.1",
            4004,
            txt.as_slice(),
        )?;
        announcer.register(info)?;
    }
    // A real host after the garbage: the discovery keeps working.
    let host = start_host().await?;
    let found = wait_listed(&discovery, &host.server.info().fingerprint).await?;

    // A plain browser sees every garbage record on the wire ...
    let mut pending: Vec<String> = garbage.iter().map(|(name, _)| name.to_string()).collect();
    let deadline = tokio::time::Instant::now() + FIND_TIMEOUT;
    while !pending.is_empty() {
        let event = tokio::time::timeout_at(deadline, raw_events.recv_async())
            .await
            .with_context(|| format!("the plain browser never resolved {pending:?}"))??;
        if let ServiceEvent::ServiceResolved(service) = event {
            pending.retain(|name| !service.fullname.starts_with(name.as_str()));
        }
    }
    // ... and the discovery, given a moment to hear them too, lists only the real host.
    tokio::time::sleep(SETTLE_WINDOW).await;
    assert_eq!(discovery.servers(), [found]);

    let _ = raw_browser.shutdown();
    let _ = announcer.shutdown();
    discovery.stop().await;
    host.server.stop().await?;
    Ok(())
}
