//! Presence: who is online at login, online/offline pushes, heartbeats and the idle timeout,
//! and the friends-only presence scope.

use std::time::Duration;

use anyhow::{ensure, Result};
use natter_e2e::*;

#[tokio::test]
async fn login_lists_everyone_online_including_oneself() -> Result<()> {
    let server = TestServer::start().await?;
    let _alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    server.register("dave").await?; // registered, offline
    let carol = server.user("carol").await?;
    let session = carol.session().expect("logged in");
    let mut names: Vec<&str> = session.online.iter().map(|u| u.username.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bobby", "carol"]);
    assert_eq!(session.online_count, 3);
    ensure!(session.online.iter().all(|u| !u.is_guest));
    Ok(())
}

#[tokio::test]
async fn others_see_a_login_and_a_logout() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let bob = server.connect().await?;
    bob.register_full("bobby", &password_for("bobby"), "Bobby", "", "")
        .await?;
    bob.login("bobby", &password_for("bobby")).await?;
    let online = alice.expect_user_online("bobby").await?;
    assert_eq!(online.nickname, "Bobby");
    ensure!(!online.is_guest);

    bob.logout().await?;
    alice.expect_user_offline("bobby").await?;
    let users = alice.list_online().await?;
    ensure!(
        users.iter().all(|u| u.username != "bobby"),
        "bob is gone from list_online: {users:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_lost_connection_is_announced_offline() -> Result<()> {
    let (_server, mut alice, bob) = alice_and_bob().await?;
    alice.expect_user_online("bobby").await?;
    bob.drop_connection().await?;
    alice.expect_user_offline("bobby").await?;
    Ok(())
}

#[tokio::test]
async fn list_online_shows_who_is_connected_now() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    let _visitor = server.guest("visitor").await?;
    let users = alice.list_online().await?;
    let mut names: Vec<(&str, bool)> = users
        .iter()
        .map(|u| (u.username.as_str(), u.is_guest))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [("alice", false), ("bobby", false), ("visitor", true)]
    );
    Ok(())
}

#[tokio::test]
async fn a_quiet_connection_receives_server_heartbeats() -> Result<()> {
    let server = TestServer::start_with(&[
        "--heartbeat-interval-ms",
        "200",
        "--idle-timeout-ms",
        "5000",
    ])
    .await?;
    let mut alice = server.user("alice").await?;
    alice
        .expect_push_map_within("a server heartbeat", Duration::from_secs(3), |m| match m {
            ServerMessage::Heartbeat { ts } => Some(*ts),
            _ => None,
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_client_heartbeat_is_acknowledged_with_the_server_clock() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    // Allowed before login.
    let ts = client.heartbeat().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    ensure!(
        (ts - now).abs() < 60_000,
        "heartbeat_ack ts {ts} is the server's clock in ms (now {now})"
    );
    Ok(())
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_idle_timeout_and_announced_offline() -> Result<()> {
    let server = TestServer::start_with(&[
        "--heartbeat-interval-ms",
        "200",
        "--idle-timeout-ms",
        "800",
        "--no-rate-limits",
    ])
    .await?;
    let mut alice = server.user("alice").await?;
    let _alive = alice.keep_alive(Duration::from_millis(200));
    let mut bob = server.user("bobby").await?;
    alice.expect_user_online("bobby").await?;

    // bob says nothing from now on; the server's own heartbeats do not count as bob speaking.
    bob.expect_closed(Duration::from_secs(5)).await?;
    alice
        .expect_user_offline_within("bobby", Duration::from_secs(5))
        .await?;
    // alice, who kept talking, is still served.
    let users = alice.list_online().await?;
    ensure!(users.iter().any(|u| u.username == "alice"));
    ensure!(users.iter().all(|u| u.username != "bobby"));
    Ok(())
}

#[tokio::test]
async fn a_connection_that_never_says_hello_is_dropped_after_the_idle_timeout() -> Result<()> {
    let server =
        TestServer::start_with(&["--heartbeat-interval-ms", "200", "--idle-timeout-ms", "600"])
            .await?;
    let mut silent = RawSocket::connect(&server).await?;
    silent.expect_closed(Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test]
async fn friends_only_presence_shows_only_friends() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let mut carol = server.user("carol").await?;
    befriend(&mut alice, &mut carol).await?;
    carol.logout().await?;
    let _stranger = server.user("stranger").await?;

    let mut carol = server
        .login_with_presence("carol", PresenceScope::Friends)
        .await?;
    let session = carol.session().expect("logged in");
    ensure!(
        session.lists_online("alice"),
        "carol's online list has her friend alice: {:?}",
        session.online
    );
    ensure!(
        !session.lists_online("stranger"),
        "carol's online list is limited to friends: {:?}",
        session.online
    );
    let friend = session.friend("alice").expect("alice is a friend");
    ensure!(friend.online);

    let bob = server.user("bobby").await?;
    alice.logout().await?;
    carol.expect_user_offline("alice").await?;
    alice.login("alice", &password_for("alice")).await?;
    carol.expect_user_online("alice").await?;
    bob.logout().await?;
    carol
        .assert_no_push_matching("presence of a stranger", QUIET_WINDOW, |m| match m {
            ServerMessage::UserOnline { user } => user.username != "alice",
            ServerMessage::UserOffline { username } => username != "alice",
            _ => false,
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn nobody_hears_about_themself() -> Result<()> {
    let (_server, mut alice, mut bob) = alice_and_bob().await?;
    alice.expect_user_online("bobby").await?;
    alice.logout().await?;
    bob.expect_user_offline("alice").await?;
    alice.login("alice", &password_for("alice")).await?;
    bob.expect_user_online("alice").await?;
    alice
        .assert_no_push_matching("presence news about herself", QUIET_WINDOW, |m| {
            matches!(m, ServerMessage::UserOnline { user } if user.username == "alice")
                || matches!(m, ServerMessage::UserOffline { username } if username == "alice")
        })
        .await?;
    Ok(())
}
