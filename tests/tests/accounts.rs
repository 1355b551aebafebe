//! Accounts: registering, checking names, logging in and out, guests, resuming a session,
//! editing a profile and erasing an account.

use std::time::Duration;

use anyhow::{ensure, Result};
use natter_e2e::*;

#[tokio::test]
async fn hello_reports_the_protocol_version_and_the_configured_timeouts() -> Result<()> {
    let server = TestServer::start_with(&[
        "--heartbeat-interval-ms",
        "1500",
        "--idle-timeout-ms",
        "4500",
        "--max-frame-bytes",
        "65536",
    ])
    .await?;
    let client = TestClient::connect_plain(&server).await?;
    let hello = client.hello().await?;
    assert_eq!(hello.version, natter_proto::PROTOCOL_VERSION);
    assert_eq!(hello.heartbeat_interval_ms, 1500);
    assert_eq!(hello.idle_timeout_ms, 4500);
    assert_eq!(hello.max_frame_bytes, 65536);
    ensure!(
        !hello.server.is_empty(),
        "hello_ok names the server software"
    );
    Ok(())
}

#[tokio::test]
async fn alice_registers_with_a_profile_and_logs_in() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.connect().await?;
    let profile = alice
        .register_full(
            "alice",
            "correct horse",
            "爱丽丝",
            "hello world",
            "+86 138-0000-0000",
        )
        .await?;
    assert_eq!(profile.username, "alice");
    assert_eq!(profile.nickname, "爱丽丝");
    assert_eq!(profile.motto, "hello world");
    assert_eq!(profile.phone, "+86 138-0000-0000");
    assert!(!profile.is_guest);

    let session = alice.login("alice", "correct horse").await?;
    assert_eq!(
        session.profile, profile,
        "login_ok carries the full own profile"
    );
    assert!(!session.resumed);
    // base64url of 32 random bytes: 43 characters, or 44 with padding.
    let unpadded = session.token.trim_end_matches('=');
    ensure!(
        unpadded.len() == 43
            && unpadded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "token is base64url of 32 bytes: {:?}",
        session.token
    );
    ensure!(
        session.lists_online("alice"),
        "the online list includes the user herself"
    );
    assert_eq!(session.online_count, 1);
    assert!(session.friends.is_empty());
    Ok(())
}

#[tokio::test]
async fn registering_does_not_log_in() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.connect().await?;
    alice.register("alice", &password_for("alice")).await?;
    expect_refusal(alice.list_online().await, ErrorCode::NotAuthenticated)?;
    expect_refusal(
        alice.send_text("alice", "hi").await,
        ErrorCode::NotAuthenticated,
    )?;
    Ok(())
}

#[tokio::test]
async fn query_username_tells_free_taken_reserved_and_invalid_names_apart() -> Result<()> {
    let server = TestServer::start().await?;
    let visitor = server.connect().await?;
    assert_eq!(
        visitor.query_username("alice").await?,
        UsernameStatus {
            available: true,
            reason: None
        }
    );
    server.register("alice").await?;
    for spelling in ["alice", "ALICE", "Alice"] {
        assert_eq!(
            visitor.query_username(spelling).await?,
            UsernameStatus {
                available: false,
                reason: Some(ErrorCode::UsernameTaken)
            },
            "`{spelling}` is taken case-insensitively"
        );
    }
    let reserved = visitor.query_username("Admin").await?;
    assert_eq!(
        (reserved.available, reserved.reason),
        (false, Some(ErrorCode::ReservedUsername))
    );
    let invalid = visitor.query_username("bo").await?;
    assert_eq!(
        (invalid.available, invalid.reason),
        (false, Some(ErrorCode::InvalidUsername))
    );
    Ok(())
}

#[tokio::test]
async fn a_taken_name_cannot_be_registered_again_in_any_case() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("alice").await?;
    let mallory = server.connect().await?;
    for spelling in ["alice", "ALICE", "aLiCe"] {
        expect_refusal(
            mallory.register(spelling, "another password").await,
            ErrorCode::UsernameTaken,
        )?;
    }
    Ok(())
}

#[tokio::test]
async fn reserved_words_cannot_be_usernames() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    for name in ["admin", "Administrator", "GUEST", "user", "tAbLe"] {
        expect_refusal(
            client.register(name, "long enough").await,
            ErrorCode::ReservedUsername,
        )?;
    }
    // Only the exact words are reserved.
    client.register("admins", "long enough").await?;
    Ok(())
}

#[tokio::test]
async fn malformed_names_passwords_and_profile_fields_are_refused() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    let long_name = "a".repeat(33);
    for name in [
        "bob",
        long_name.as_str(),
        "ali ce",
        "al_ice",
        "爱丽丝丝",
        "alice!",
        "",
    ] {
        expect_refusal(
            client.register(name, "long enough").await,
            ErrorCode::InvalidUsername,
        )?;
    }
    expect_refusal(
        client.register("alice", "1234567").await,
        ErrorCode::InvalidPassword,
    )?;
    expect_refusal(
        client.register("alice", &"x".repeat(129)).await,
        ErrorCode::InvalidPassword,
    )?;
    let long_nick = "名".repeat(65);
    expect_refusal(
        client
            .register_full("alice", "long enough", &long_nick, "", "")
            .await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        client
            .register_full("alice", "long enough", "", "line\nbreak", "")
            .await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        client
            .register_full("alice", "long enough", "", "", "call me")
            .await,
        ErrorCode::InvalidField,
    )?;
    // None of the refusals took the name; 32 characters and CJK passwords are fine.
    client.register("alice", "密码密码密码密码").await?;
    client.register(&"b".repeat(32), "long enough").await?;
    client.login("alice", "密码密码密码密码").await?;
    Ok(())
}

#[tokio::test]
async fn wrong_password_and_unknown_user_both_get_bad_credentials() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("alice").await?;
    let client = server.connect().await?;
    expect_refusal(
        client.login("alice", "not her password").await,
        ErrorCode::BadCredentials,
    )?;
    expect_refusal(
        client.login("nobody", "whatever pw").await,
        ErrorCode::BadCredentials,
    )?;
    // The connection is still usable for the right password.
    client.login("alice", &password_for("alice")).await?;
    Ok(())
}

#[tokio::test]
async fn login_accepts_any_case_and_keeps_the_registered_spelling() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("Alice").await?;
    let client = server.connect().await?;
    let session = client.login("aLICE", &password_for("Alice")).await?;
    assert_eq!(session.profile.username, "Alice");
    Ok(())
}

#[tokio::test]
async fn logging_in_twice_on_one_connection_is_already_authenticated() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let alice = server.user("alice").await?;
    expect_refusal(
        alice.login("bobby", &password_for("bobby")).await,
        ErrorCode::AlreadyAuthenticated,
    )?;
    expect_refusal(
        alice.guest("visitor").await,
        ErrorCode::AlreadyAuthenticated,
    )?;
    expect_refusal(
        alice.resume(&alice.token()?).await,
        ErrorCode::AlreadyAuthenticated,
    )?;
    assert_eq!(alice.username().as_deref(), Some("alice"));
    alice.list_online().await?;
    Ok(())
}

#[tokio::test]
async fn registering_from_a_session_is_already_authenticated() -> Result<()> {
    // PROTOCOL.md §4.1: in a session, login, guest_login, resume and register are refused.
    let server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    expect_refusal(
        alice.register("carol", &password_for("carol")).await,
        ErrorCode::AlreadyAuthenticated,
    )?;
    let status = alice.query_username("carol").await?;
    ensure!(status.available, "the refused registration took no name");
    Ok(())
}

#[tokio::test]
async fn a_guest_chats_without_registering_and_is_marked_as_guest() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let mut visitor = server.guest("visitor").await?;
    let session = visitor.session().expect("logged in");
    ensure!(
        session.profile.is_guest,
        "guest profile: {:?}",
        session.profile
    );
    ensure!(session.lists_online("alice") && session.lists_online("visitor"));

    let online = alice.expect_user_online("visitor").await?;
    ensure!(online.is_guest, "user_online marks the guest: {online:?}");

    let sent = visitor.send_text("alice", "hi from a guest").await?;
    let message = alice.expect_message_from("visitor").await?;
    assert_eq!(message.msg_id, sent.msg_id);
    ensure!(
        message.from_guest,
        "message marks the guest sender: {message:?}"
    );
    alice.send_text("visitor", "hello guest").await?;
    let reply = visitor.expect_message_from("alice").await?;
    ensure!(!reply.from_guest);
    Ok(())
}

#[tokio::test]
async fn guest_names_follow_the_username_rules() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    expect_refusal(client.guest("abc").await, ErrorCode::InvalidUsername)?;
    expect_refusal(client.guest("a guest").await, ErrorCode::InvalidUsername)?;
    expect_refusal(client.guest("Guest").await, ErrorCode::ReservedUsername)?;
    expect_refusal(client.guest("admin").await, ErrorCode::ReservedUsername)?;
    client.guest("visitor").await?;
    Ok(())
}

#[tokio::test]
async fn a_guest_cannot_take_a_registered_name() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("alice").await?;
    let client = server.connect().await?;
    expect_refusal(client.guest("alice").await, ErrorCode::UsernameTaken)?;
    expect_refusal(client.guest("ALICE").await, ErrorCode::UsernameTaken)?;
    Ok(())
}

#[tokio::test]
async fn an_online_guests_name_is_taken_for_guests_and_registration() -> Result<()> {
    let server = TestServer::start().await?;
    let _visitor = server.guest("visitor").await?;
    let other = server.connect().await?;
    expect_refusal(other.guest("visitor").await, ErrorCode::UsernameTaken)?;
    expect_refusal(other.guest("VISITOR").await, ErrorCode::UsernameTaken)?;
    expect_refusal(
        other.register("visitor", "long enough").await,
        ErrorCode::UsernameTaken,
    )?;
    let status = other.query_username("visitor").await?;
    assert_eq!(
        (status.available, status.reason),
        (false, Some(ErrorCode::UsernameTaken))
    );
    Ok(())
}

#[tokio::test]
async fn a_guest_name_is_free_again_after_the_guest_logs_out() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let visitor = server.guest("visitor").await?;
    alice.expect_user_online("visitor").await?;
    visitor.logout().await?;
    alice.expect_user_offline("visitor").await?;
    assert!(visitor.query_username("visitor").await?.available);
    let again = server.guest("visitor").await?;
    assert_eq!(again.username().as_deref(), Some("visitor"));
    Ok(())
}

#[tokio::test]
async fn a_disconnected_guest_keeps_the_name_for_the_grace_period_and_can_resume() -> Result<()> {
    let server = TestServer::start_with(&["--guest-grace-ms", "60000"]).await?;
    let visitor = server.guest("visitor").await?;
    let token = visitor.token()?;
    visitor.drop_connection().await?;

    let other = server.connect().await?;
    expect_refusal(other.guest("visitor").await, ErrorCode::UsernameTaken)?;

    let (back, session) = server.resume("visitor", &token).await?;
    ensure!(session.resumed);
    ensure!(session.profile.is_guest);
    assert_eq!(session.profile.username, "visitor");
    back.list_online().await?;
    Ok(())
}

#[tokio::test]
async fn a_guest_offline_longer_than_the_grace_is_removed() -> Result<()> {
    let server = TestServer::start_with(&["--guest-grace-ms", "300"]).await?;
    let mut alice = server.user("alice").await?;
    let mut visitor = server.guest("visitor").await?;
    let token = visitor.token()?;
    // A guest's friendships vanish with the guest.
    befriend(&mut visitor, &mut alice).await?;
    visitor.drop_connection().await?;

    // Wait for the server to free the name: poll the public query, with a deadline.
    let observer = server.connect().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if observer.query_username("visitor").await?.available {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the guest name was not freed within 10 s of a 300 ms grace"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    expect_refusal(
        server.resume("visitor", &token).await,
        ErrorCode::SessionExpired,
    )?;
    let list = alice.friend_list().await?;
    ensure!(
        list.friend("visitor").is_none(),
        "the removed guest is no longer a friend: {:?}",
        list.friends
    );
    let newcomer = server.guest("visitor").await?;
    ensure!(newcomer.session().expect("logged in").friends.is_empty());
    Ok(())
}

#[tokio::test]
async fn resume_continues_the_session_after_a_lost_connection() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    let alice = server.user("alice").await?;
    let token = alice.token()?;
    alice.drop_connection().await?;
    bob.expect_user_offline("alice").await?;

    let (alice, session) = server.resume("alice", &token).await?;
    ensure!(session.resumed, "resume says resumed: {session:?}");
    assert_eq!(session.token, token, "resume keeps the token");
    assert_eq!(session.profile.username, "alice");
    ensure!(session.lists_online("bobby"));
    bob.expect_user_online("alice").await?;

    let sent = alice.send_text("bobby", "back again").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    Ok(())
}

#[tokio::test]
async fn a_made_up_token_gets_session_expired() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    expect_refusal(
        client
            .resume("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
        ErrorCode::SessionExpired,
    )?;
    let empty = client.resume("").await;
    let code = match &empty {
        Err(e) => server_error(e).map(|refusal| refusal.code),
        Ok(_) => None,
    };
    // An empty token may also be refused as a malformed field.
    ensure!(
        matches!(
            code,
            Some(ErrorCode::SessionExpired | ErrorCode::InvalidField)
        ),
        "an empty token is refused, got {empty:?}"
    );
    Ok(())
}

#[tokio::test]
async fn logout_announces_offline_revokes_the_token_and_keeps_the_connection() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    let alice = server.user("alice").await?;
    bob.expect_user_online("alice").await?;
    let token = alice.token()?;

    alice.logout().await?;
    bob.expect_user_offline("alice").await?;
    expect_refusal(alice.list_online().await, ErrorCode::NotAuthenticated)?;
    expect_refusal(
        server.resume("alice", &token).await,
        ErrorCode::SessionExpired,
    )?;

    // Same connection, new session.
    alice.login("alice", &password_for("alice")).await?;
    bob.expect_user_online("alice").await?;
    let online = bob.list_online().await?;
    ensure!(online.iter().any(|u| u.username == "alice"));
    Ok(())
}

#[tokio::test]
async fn profile_edits_change_only_the_given_fields_and_persist() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.connect().await?;
    alice
        .register_full("alice", &password_for("alice"), "Al", "old motto", "123")
        .await?;
    alice.login("alice", &password_for("alice")).await?;

    let profile = alice.update_profile(Some("小爱"), None, None).await?;
    assert_eq!(profile.nickname, "小爱");
    assert_eq!(
        profile.motto, "old motto",
        "an absent field stays as it was"
    );
    assert_eq!(profile.phone, "123");

    let profile = alice
        .update_profile(None, Some("new motto"), Some("+1 (555) 0100"))
        .await?;
    assert_eq!(
        (
            profile.nickname.as_str(),
            profile.motto.as_str(),
            profile.phone.as_str()
        ),
        ("小爱", "new motto", "+1 (555) 0100")
    );
    expect_refusal(
        alice.update_profile(None, None, Some("call me")).await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        alice
            .update_profile(Some(&"x".repeat(65)), None, None)
            .await,
        ErrorCode::InvalidField,
    )?;

    let bob = server.user("bobby").await?;
    let seen = bob.list_online().await?;
    let alice_seen = seen
        .iter()
        .find(|u| u.username == "alice")
        .expect("alice is online");
    assert_eq!(alice_seen.nickname, "小爱");

    alice.logout().await?;
    let session = alice.login("alice", &password_for("alice")).await?;
    assert_eq!(session.profile, profile, "the edit survives a new login");
    Ok(())
}

#[tokio::test]
async fn profile_edit_before_login_is_not_authenticated() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.connect().await?;
    expect_refusal(
        client.update_profile(Some("x"), None, None).await,
        ErrorCode::NotAuthenticated,
    )?;
    Ok(())
}

#[tokio::test]
async fn erasing_an_account_removes_it_and_frees_the_name() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    let mut alice = server.user("alice").await?;
    befriend(&mut alice, &mut bob).await?;
    server.register("carol").await?;
    // Waiting for alice: a message she never acked and a request from carol.
    bob.send_text("alice", "unacked").await?;
    alice.expect_message_from("bobby").await?;
    // Waiting for carol, who is offline: alice's request.
    alice.friend_request("carol", "hi").await?;

    expect_refusal(
        alice.erase_account("wrong password").await,
        ErrorCode::BadCredentials,
    )?;
    alice.erase_account(&password_for("alice")).await?;
    bob.expect_user_offline("alice").await?;
    // The connection stays open, without a session.
    expect_refusal(alice.list_online().await, ErrorCode::NotAuthenticated)?;

    let login = server.connect().await?;
    expect_refusal(
        login.login("alice", &password_for("alice")).await,
        ErrorCode::BadCredentials,
    )?;
    assert!(login.query_username("alice").await?.available);
    ensure!(
        bob.friend_list().await?.friend("alice").is_none(),
        "bob's friendship with alice is gone"
    );

    let mut carol = server.login("carol").await?;
    let session = carol.session().expect("logged in");
    ensure!(
        session.incoming_requests.is_empty(),
        "requests from an erased user are gone: {:?}",
        session.incoming_requests
    );
    carol
        .assert_no_push_matching("a request from the erased alice", QUIET_WINDOW, |m| {
            matches!(m, ServerMessage::FriendRequestReceived { .. })
        })
        .await?;

    // A new alice starts from nothing: no friends, no requests, no old messages.
    let mut fresh = server.user("alice").await?;
    let session = fresh.session().expect("logged in");
    ensure!(session.friends.is_empty() && session.outgoing_requests.is_empty());
    fresh.assert_no_message(QUIET_WINDOW).await?;
    ensure!(fresh.history_with("bobby").await?.messages.is_empty());
    Ok(())
}

#[tokio::test]
async fn messages_an_erased_user_left_queued_are_not_delivered() -> Result<()> {
    // "erase_account removes user, friendships, requests, queued messages and notices": the
    // messages alice queued for offline carol go with her, like her requests do.
    let server = TestServer::start().await?;
    server.register("carol").await?;
    let alice = server.user("alice").await?;
    alice.send_text("carol", "are you there").await?;
    alice.erase_account(&password_for("alice")).await?;
    let mut carol = server.login("carol").await?;
    carol.assert_no_message(QUIET_WINDOW).await?;
    Ok(())
}

#[tokio::test]
async fn a_guest_has_no_account_to_erase() -> Result<()> {
    let server = TestServer::start().await?;
    let visitor = server.guest("visitor").await?;
    expect_refusal(
        visitor.erase_account("whatever password").await,
        ErrorCode::Forbidden,
    )?;
    visitor.list_online().await?;
    Ok(())
}

#[tokio::test]
async fn after_logout_the_same_connection_can_become_someone_else() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let client = server.user("alice").await?;
    client.logout().await?;
    let session = client.login("bobby", &password_for("bobby")).await?;
    assert_eq!(session.profile.username, "bobby");
    ensure!(
        !session.lists_online("alice"),
        "alice logged out: {:?}",
        session.online
    );
    Ok(())
}

#[tokio::test]
async fn a_new_guest_under_an_old_guests_name_inherits_nothing() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let mut visitor = server.guest("visitor").await?;
    befriend(&mut alice, &mut visitor).await?;
    alice.send_text("visitor", "private words").await?;
    visitor.expect_message_from("alice").await?; // not acked: still queued for the old guest
    visitor.logout().await?;
    alice.expect_user_offline("visitor").await?;

    let mut newcomer = server.guest("visitor").await?;
    let session = newcomer.session().expect("logged in");
    ensure!(
        session.friends.is_empty(),
        "no friends inherited: {:?}",
        session.friends
    );
    newcomer.assert_no_message(QUIET_WINDOW).await?;
    let history = newcomer.history_with("alice").await?;
    ensure!(
        history.messages.is_empty(),
        "the old guest's conversation is not readable: {history:?}"
    );
    ensure!(alice.friend_list().await?.friend("visitor").is_none());
    Ok(())
}
