//! Friends and presence through natter-core: requests, answers, removal, lists with presence,
//! notices that wait for the next login, and who-is-online events among three people.

use anyhow::{ensure, Result};
use natter_core::{ConnectionState, Event};
use natter_e2e::harness::core::*;
use natter_e2e::*;
use natter_proto::FriendAnswer;

async fn expect_friend_request(device: &mut Device, from: &str) -> Result<String> {
    device
        .wait_for(&format!("friend request from {from}"), |e| match e {
            Event::FriendRequest(r) if r.from.eq_ignore_ascii_case(from) => Some(r.message.clone()),
            _ => None,
        })
        .await
}

async fn expect_friend_response(
    device: &mut Device,
    from: &str,
) -> Result<(bool, Option<natter_proto::Friend>)> {
    device
        .wait_for(&format!("friend response from {from}"), |e| match e {
            Event::FriendResponse(FriendAnswer {
                username,
                accepted,
                friend,
            }) if username.eq_ignore_ascii_case(from) => Some((*accepted, friend.clone())),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn alice_asks_bob_to_be_friends_and_bob_accepts() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;

    alice.friend_request("bobby", "we met at the café").await?;
    assert_eq!(
        expect_friend_request(&mut bob, "alice").await?,
        "we met at the café"
    );
    let pending = alice.friend_list().await?;
    assert!(pending.friends.is_empty());
    assert!(pending.outgoing.iter().any(|r| r.to == "bobby"));
    let incoming = bob.friend_list().await?;
    assert!(incoming
        .incoming
        .iter()
        .any(|r| r.from == "alice" && r.message == "we met at the café"));

    bob.friend_respond("alice", true).await?;
    let (accepted, friend) = expect_friend_response(&mut alice, "bobby").await?;
    assert!(accepted);
    let friend = friend.ok_or_else(|| anyhow::anyhow!("an acceptance names the new friend"))?;
    assert_eq!(friend.username, "bobby");
    assert!(friend.online);

    for (device, other) in [(&alice, "bobby"), (&bob, "alice")] {
        let list = device.friend_list().await?;
        ensure!(
            list.friends.iter().any(|f| f.username == other && f.online),
            "{}'s friends should list {other} online: {:?}",
            device.name,
            list.friends
        );
        ensure!(list.incoming.is_empty() && list.outgoing.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn bob_declines_and_alice_hears_no() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;

    alice.friend_request("bobby", "").await?;
    expect_friend_request(&mut bob, "alice").await?;
    bob.friend_respond("alice", false).await?;
    let (accepted, friend) = expect_friend_response(&mut alice, "bobby").await?;
    assert!(!accepted);
    assert!(friend.is_none());

    let list = alice.friend_list().await?;
    assert!(list.friends.is_empty() && list.outgoing.is_empty());
    expect_server_code(
        bob.friend_respond("alice", true).await,
        ErrorCode::NoSuchRequest,
    )?;
    // Alice may ask again.
    alice.friend_request("bobby", "second try").await?;
    assert_eq!(
        expect_friend_request(&mut bob, "alice").await?,
        "second try"
    );
    Ok(())
}

#[tokio::test]
async fn unfriending_tells_the_other_side_and_empties_both_lists() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;
    befriend_devices(&mut alice, &mut bob).await?;

    bob.friend_delete("alice").await?;
    alice
        .wait_for("friend removed by bobby", |e| {
            matches!(e, Event::FriendRemoved { username } if username == "bobby").then_some(())
        })
        .await?;
    assert!(alice.friend_list().await?.friends.is_empty());
    assert!(bob.friend_list().await?.friends.is_empty());
    expect_server_code(alice.friend_delete("bobby").await, ErrorCode::NotFriends)?;
    Ok(())
}

#[tokio::test]
async fn friend_requests_that_make_no_sense_are_refused_with_their_codes() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;

    expect_server_code(
        alice.friend_request("nobodyhere", "").await,
        ErrorCode::NoSuchUser,
    )?;
    expect_server_code(
        alice.friend_request("alice", "").await,
        ErrorCode::SelfTarget,
    )?;
    expect_invalid(
        alice.friend_request("bobby", &"n".repeat(257)).await,
        ErrorCode::InvalidField,
    )?;
    alice.friend_request("bobby", "").await?;
    expect_server_code(
        alice.friend_request("bobby", "again").await,
        ErrorCode::RequestPending,
    )?;
    expect_server_code(
        alice.friend_respond("bobby", true).await,
        ErrorCode::NoSuchRequest,
    )?;
    expect_friend_request(&mut bob, "alice").await?;
    bob.friend_respond("alice", true).await?;
    expect_friend_response(&mut alice, "bobby").await?;
    expect_server_code(
        alice.friend_request("bobby", "").await,
        ErrorCode::AlreadyFriends,
    )?;
    Ok(())
}

#[tokio::test]
async fn asking_someone_who_already_asked_you_makes_you_friends() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;

    alice.friend_request("bobby", "").await?;
    expect_friend_request(&mut bob, "alice").await?;
    bob.friend_request("alice", "").await?;
    let (accepted, _) = expect_friend_response(&mut alice, "bobby").await?;
    assert!(accepted);
    assert!(bob
        .friend_list()
        .await?
        .friends
        .iter()
        .any(|f| f.username == "alice"));
    Ok(())
}

#[tokio::test]
async fn a_request_to_offline_bob_and_his_answer_to_offline_alice_wait_for_their_logins(
) -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let alice = server.core_user("alice").await?;

    alice.friend_request("bobby", "are you there?").await?;
    alice.logout().await?;

    let mut bob = Device::fresh("bobby", &server)?;
    let info = bob.log_in().await?;
    assert!(
        info.incoming_requests
            .iter()
            .any(|r| r.from == "alice" && r.message == "are you there?"),
        "bob's login lists alice's request: {:?}",
        info.incoming_requests
    );
    bob.friend_respond("alice", true).await?;
    bob.settle(SETTLE_WINDOW).await?;

    let mut alice = alice.restart_app().await;
    let info = alice.log_in().await?;
    assert!(
        info.friends
            .iter()
            .any(|f| f.username == "bobby" && f.online),
        "alice's login lists bob as an online friend: {:?}",
        info.friends
    );
    let (accepted, _) = expect_friend_response(&mut alice, "bobby").await?;
    assert!(accepted, "the answer was waiting for alice's login");
    Ok(())
}

#[tokio::test]
async fn friends_are_cached_and_shown_while_the_server_is_away() -> Result<()> {
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;
    befriend_devices(&mut alice, &mut bob).await?;
    alice.friend_list().await?;

    server.kill9()?;
    alice.expect_connection(ConnectionState::Connecting).await?;
    let cached = alice.friend_list().await?;
    assert!(
        cached.friends.iter().any(|f| f.username == "bobby"),
        "the cached list still has bob: {:?}",
        cached.friends
    );
    Ok(())
}

#[tokio::test]
async fn three_people_see_each_other_come_and_go() -> Result<()> {
    let (server, mut alice, mut bob) = core_alice_and_bob().await?;
    alice.expect_online("bobby").await?;
    let mut carol = Device::fresh("carol", &server)?;
    carol.register_me().await?;
    let info = carol.log_in().await?;
    let names: Vec<&str> = info.online.iter().map(|u| u.username.as_str()).collect();
    for name in ["alice", "bobby", "carol"] {
        ensure!(
            names.contains(&name),
            "carol's login lists {name} online: {names:?}"
        );
    }
    alice.expect_online("carol").await?;
    bob.expect_online("carol").await?;

    // A logout and a vanished app both count as going offline.
    bob.logout().await?;
    alice.expect_offline("bobby").await?;
    carol.expect_offline("bobby").await?;
    carol.shutdown().await;
    alice.expect_offline("carol").await?;

    let online = alice.list_online().await?;
    let names: Vec<&str> = online.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice"]);
    Ok(())
}

#[tokio::test]
async fn with_friends_only_presence_alice_hears_about_friends_only() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.core_user("bobby").await?;
    let dir = DataDir::new()?;
    let mut config = test_config(plain_server(&server), &dir);
    config.presence = PresenceScope::Friends;
    let mut alice = Device::start_with("alice", config, dir);
    alice.register_me().await?;
    alice.log_in().await?;
    befriend_devices(&mut alice, &mut bob).await?;

    let _carol = server.core_user("carol").await?;
    bob.logout().await?;
    alice.expect_offline("bobby").await?;
    ensure!(
        !alice
            .log()
            .iter()
            .any(|e| matches!(e, Event::UserOnline(u) if u.username == "carol")),
        "alice asked for friends' presence only, yet heard carol come online"
    );
    Ok(())
}
