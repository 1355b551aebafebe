//! Accounts through natter-core: register, query, log in, guests, resume after an app restart,
//! log out, erase, profile edits, and every refusal as its typed error.

use anyhow::{ensure, Result};
use natter_core::{ClientError, ConnectionState, Event, Registration};
use natter_e2e::harness::core::*;
use natter_e2e::*;

#[tokio::test]
async fn alice_registers_logs_in_and_sees_herself_online() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = Device::fresh("alice", &server)?;
    assert_eq!(alice.query_username("alice").await?, Ok(()));

    let profile = alice
        .register(Registration {
            username: "alice".into(),
            password: password_for("alice"),
            nickname: "Alice A.".into(),
            motto: "curiouser and curiouser".into(),
            phone: "+44 20 7946 0000".into(),
        })
        .await?;
    assert_eq!(profile.username, "alice");
    assert_eq!(profile.nickname, "Alice A.");
    assert!(!profile.is_guest);
    assert_eq!(
        alice.query_username("alice").await?,
        Err(ErrorCode::UsernameTaken)
    );
    assert_eq!(
        alice.query_username("ALICE").await?,
        Err(ErrorCode::UsernameTaken),
        "names are case-insensitive"
    );

    let info = alice.log_in().await?;
    assert!(!info.resumed);
    assert_eq!(info.profile.motto, "curiouser and curiouser");
    assert_eq!(info.profile.phone, "+44 20 7946 0000");
    assert!(info.online.iter().any(|u| u.username == "alice"));
    assert_eq!(alice.connection_state(), ConnectionState::Online);
    let online = alice.list_online().await?;
    assert!(online.iter().any(|u| u.username == "alice"));
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_are_bad_credentials() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("alice").await?;
    let device = Device::fresh("alice", &server)?;

    expect_server_code(
        device.login("alice", "not-alices-password").await,
        ErrorCode::BadCredentials,
    )?;
    expect_server_code(
        device.login("nobodyhere", "whatever-password").await,
        ErrorCode::BadCredentials,
    )?;
    // The right password still works on the same app afterwards.
    device.log_in().await?;
    Ok(())
}

#[tokio::test]
async fn a_taken_name_is_refused_to_a_second_registration_and_to_a_guest() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("alice").await?;
    let other = Device::fresh("ALICE", &server)?;

    expect_server_code(
        other
            .register(Registration {
                username: "ALICE".into(),
                password: "another-password".into(),
                ..Default::default()
            })
            .await,
        ErrorCode::UsernameTaken,
    )?;
    expect_server_code(other.guest_login("Alice").await, ErrorCode::UsernameTaken)?;

    // An online guest's name is taken too, for registration and for another guest.
    let _visitor = server.core_guest("visitor").await?;
    let late = Device::fresh("visitor", &server)?;
    expect_server_code(late.guest_login("visitor").await, ErrorCode::UsernameTaken)?;
    expect_server_code(
        late.register(Registration {
            username: "visitor".into(),
            password: "visitor-password".into(),
            ..Default::default()
        })
        .await,
        ErrorCode::UsernameTaken,
    )?;
    assert_eq!(
        late.query_username("visitor").await?,
        Err(ErrorCode::UsernameTaken)
    );
    Ok(())
}

#[tokio::test]
async fn reserved_and_malformed_input_is_refused_by_the_client_before_sending() -> Result<()> {
    let server = TestServer::start().await?;
    let device = Device::fresh("someone", &server)?;
    let form = |username: &str, password: &str| Registration {
        username: username.into(),
        password: password.into(),
        ..Default::default()
    };

    expect_invalid(
        device.register(form("admin", "long-enough-pw")).await,
        ErrorCode::ReservedUsername,
    )?;
    expect_invalid(
        device.register(form("Guest", "long-enough-pw")).await,
        ErrorCode::ReservedUsername,
    )?;
    expect_invalid(
        device.register(form("bob", "long-enough-pw")).await,
        ErrorCode::InvalidUsername,
    )?;
    expect_invalid(
        device.register(form("bad name!", "long-enough-pw")).await,
        ErrorCode::InvalidUsername,
    )?;
    expect_invalid(
        device.register(form("goodname", "short")).await,
        ErrorCode::InvalidPassword,
    )?;
    let mut long_nick = form("goodname", "long-enough-pw");
    long_nick.nickname = "n".repeat(65);
    expect_invalid(device.register(long_nick).await, ErrorCode::InvalidField)?;
    expect_invalid(
        device.guest_login("table").await,
        ErrorCode::ReservedUsername,
    )?;
    expect_invalid(device.guest_login("x").await, ErrorCode::InvalidUsername)?;

    // query_username asks the server, which gives the reason.
    assert_eq!(
        device.query_username("administrator").await?,
        Err(ErrorCode::ReservedUsername)
    );
    assert_eq!(
        device.query_username("no").await?,
        Err(ErrorCode::InvalidUsername)
    );
    // Nothing above created an account.
    assert_eq!(device.query_username("goodname").await?, Ok(()));
    Ok(())
}

#[tokio::test]
async fn thirty_rapid_username_queries_run_into_the_rate_limit() -> Result<()> {
    let server = TestServer::start().await?;
    let device = Device::fresh("someone", &server)?;

    let mut answered = 0;
    let mut limited = Vec::new();
    for n in 0..30 {
        match device.query_username(&format!("candidate{n}")).await {
            Ok(Ok(())) => answered += 1,
            Ok(Err(code)) => anyhow::bail!("candidate{n} unexpectedly unavailable: {code}"),
            Err(e) => limited.push(expect_server_code(Err::<(), _>(e), ErrorCode::RateLimited)?),
        }
    }
    ensure!(
        answered >= 20,
        "the burst is 20, only {answered} were answered"
    );
    ensure!(
        !limited.is_empty(),
        "30 queries in a burst of 20 were never rate limited"
    );
    match &limited[0] {
        ClientError::Server { retry_after_ms, .. } => ensure!(
            retry_after_ms.is_some_and(|ms| ms > 0),
            "rate_limited without retry_after_ms: {:?}",
            limited[0]
        ),
        other => anyhow::bail!("not a server refusal: {other:?}"),
    }
    // The connection stays usable for other requests.
    device.register_me().await?;
    Ok(())
}

#[tokio::test]
async fn a_visiting_guest_is_seen_by_alice_and_leaves_the_name_free() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    let visitor = Device::fresh("visitor", &server)?;

    let info = visitor.log_in_as_guest().await?;
    assert!(info.profile.is_guest);
    assert_eq!(info.profile.username, "visitor");
    assert!(info.online.iter().any(|u| u.username == "alice"));
    let seen = alice.expect_online("visitor").await?;
    assert!(seen.is_guest);

    visitor.logout().await?;
    alice.expect_offline("visitor").await?;
    assert_eq!(
        alice.query_username("visitor").await?,
        Ok(()),
        "a guest's name is free once they log out"
    );
    Ok(())
}

#[tokio::test]
async fn alice_logs_out_bob_sees_it_and_she_logs_in_again_on_the_same_app() -> Result<()> {
    let (_server, alice, mut bob) = core_alice_and_bob().await?;

    alice.logout().await?;
    bob.expect_offline("alice").await?;
    expect_server_code(alice.list_online().await, ErrorCode::NotAuthenticated)?;
    let result = alice.send_text(user("bobby"), "after logout").await;
    assert!(
        matches!(result, Err(ClientError::NotLoggedIn)),
        "a logged-out app has no conversation to write to, got {result:?}"
    );

    let info = alice.log_in().await?;
    assert!(!info.resumed);
    bob.expect_online("alice").await?;
    Ok(())
}

#[tokio::test]
async fn a_logged_out_app_cannot_resume_without_the_password() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.core_user("alice").await?;
    alice.logout().await?;
    let alice = alice.restart_app().await;

    let result = alice.resume_saved("alice", None).await;
    assert!(
        matches!(result, Err(ClientError::NotLoggedIn)),
        "logout forgets the saved session, got {result:?}"
    );
    let info = alice
        .resume_saved("alice", Some(&password_for("alice")))
        .await?;
    assert!(!info.resumed, "a fresh login, not a resumed session");
    Ok(())
}

#[tokio::test]
async fn alice_erases_her_account_and_the_name_is_free_again() -> Result<()> {
    let (server, mut alice, mut bob) = core_alice_and_bob().await?;
    befriend_devices(&mut bob, &mut alice).await?;

    expect_server_code(
        alice.erase_account("not-the-password").await,
        ErrorCode::BadCredentials,
    )?;
    alice.erase_account(&password_for("alice")).await?;
    bob.expect_offline("alice").await?;
    assert!(
        bob.friend_list().await?.friends.is_empty(),
        "the friendship went with the account"
    );

    let again = Device::fresh("alice", &server)?;
    expect_server_code(
        again.login("alice", &password_for("alice")).await,
        ErrorCode::BadCredentials,
    )?;
    assert_eq!(again.query_username("alice").await?, Ok(()));
    again.register_me().await?;
    let info = again.log_in().await?;
    assert!(info.friends.is_empty());
    Ok(())
}

#[tokio::test]
async fn alice_edits_her_profile_and_keeps_it_at_the_next_login() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.core_user("alice").await?;

    let profile = alice
        .update_profile(Some("Ally".into()), None, Some("12345".into()))
        .await?;
    assert_eq!(profile.nickname, "Ally");
    assert_eq!(profile.phone, "12345");
    assert_eq!(profile.motto, "", "fields not given stay as they were");
    let profile = alice
        .update_profile(None, Some("new motto".into()), None)
        .await?;
    assert_eq!(
        (profile.nickname.as_str(), profile.motto.as_str()),
        ("Ally", "new motto")
    );
    expect_invalid(
        alice
            .update_profile(None, Some("m".repeat(257)), None)
            .await,
        ErrorCode::InvalidField,
    )?;

    let alice = alice.restart_app().await;
    let info = alice.log_in().await?;
    assert_eq!(info.profile.nickname, "Ally");
    assert_eq!(info.profile.motto, "new motto");
    assert_eq!(info.profile.phone, "12345");
    let bob = server.core_user("bobby").await?;
    let online = bob.list_online().await?;
    let seen = online
        .iter()
        .find(|u| u.username == "alice")
        .ok_or_else(|| anyhow::anyhow!("alice is not online: {online:?}"))?;
    assert_eq!(seen.nickname, "Ally");
    Ok(())
}

#[tokio::test]
async fn after_an_app_restart_alice_resumes_her_saved_session() -> Result<()> {
    let (_server, alice, mut bob) = core_alice_and_bob().await?;

    let alice = alice.restart_app().await;
    let info = alice.resume_saved("alice", None).await?;
    assert!(info.resumed, "the saved token continues the session");
    assert_eq!(info.profile.username, "alice");
    assert_eq!(alice.connection_state(), ConnectionState::Online);
    alice.list_online().await?;
    // She is still (or again) online for bob.
    let online = bob.list_online().await?;
    assert!(online.iter().any(|u| u.username == "alice"));
    bob.settle(SETTLE_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn a_token_revoked_by_a_newer_login_falls_back_to_the_password() -> Result<()> {
    let server = TestServer::start().await?;
    let laptop = server.core_user("alice").await?;
    // Alice logs in on her phone while the laptop is online: the laptop's token is revoked.
    let mut phone = Device::fresh("alice", &server)?;
    phone.log_in().await?;
    let laptop = laptop.restart_app().await;

    expect_server_code(
        laptop.resume_saved("alice", None).await,
        ErrorCode::SessionExpired,
    )?;
    let info = laptop
        .resume_saved("alice", Some(&password_for("alice")))
        .await?;
    assert!(!info.resumed, "a new session, not the revoked one");
    // Now the laptop is the newest login and the phone is told so.
    let reason = phone
        .wait_for("kicked", |e| match e {
            Event::Kicked { reason } => Some(reason.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(reason, "logged_in_elsewhere");
    Ok(())
}

#[tokio::test]
async fn logging_in_on_a_second_device_kicks_the_first_which_stays_out() -> Result<()> {
    let server = TestServer::start().await?;
    let mut laptop = server.core_user("alice").await?;
    let mut bob = server.core_user("bobby").await?;

    let phone = Device::fresh("alice", &server)?;
    phone.log_in().await?;
    let reason = laptop
        .wait_for("kicked", |e| match e {
            Event::Kicked { reason } => Some(reason.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(reason, "logged_in_elsewhere");
    laptop.expect_connection(ConnectionState::Offline).await?;
    // The laptop does not fight the phone for the account.
    laptop.settle(std::time::Duration::from_millis(800)).await?;
    let after_kick: Vec<&Event> = laptop
        .log()
        .iter()
        .skip_while(|e| !matches!(e, Event::Kicked { .. }))
        .collect();
    ensure!(
        !after_kick.iter().any(|e| matches!(e, Event::LoggedIn(_))),
        "the kicked laptop logged back in: {:?}",
        after_kick.iter().map(|e| short(e)).collect::<Vec<_>>()
    );
    assert_eq!(laptop.connection_state(), ConnectionState::Offline);
    // The phone's session is the live one.
    phone.list_online().await?;
    bob.settle(SETTLE_WINDOW).await?;
    Ok(())
}
