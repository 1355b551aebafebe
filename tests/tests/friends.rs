//! Friends: requests, answers, removal, the friend list with presence, and requests and
//! answers that wait for an offline user's next login.

use anyhow::{ensure, Result};
use natter_e2e::*;

#[tokio::test]
async fn bob_accepts_alices_request_and_both_see_each_other_online() -> Result<()> {
    let (_server, mut alice, mut bob) = alice_and_bob().await?;

    alice.friend_request("bobby", "we met at the café").await?;
    let request = bob.expect_friend_request_from("alice").await?;
    assert_eq!(request.to, "bobby");
    assert_eq!(request.message, "we met at the café");
    ensure!(request.ts > 0);
    let pending = bob.friend_list().await?;
    ensure!(
        pending.incoming_requests.iter().any(|r| r.from == "alice"),
        "bob's list shows the pending request: {pending:?}"
    );
    let pending = alice.friend_list().await?;
    ensure!(
        pending.outgoing_requests.iter().any(|r| r.to == "bobby"),
        "alice's list shows her pending request: {pending:?}"
    );

    bob.friend_respond("alice", true).await?;
    let (accepted, friend) = alice.expect_friend_response_from("bobby").await?;
    ensure!(accepted);
    let friend = friend.expect("an accepted response carries the new friend");
    assert_eq!(friend.username, "bobby");
    ensure!(friend.online);

    for (me, other) in [(&alice, "bobby"), (&bob, "alice")] {
        let list = me.friend_list().await?;
        let entry = list.friend(other).expect("they are friends");
        ensure!(entry.online, "{other} is shown online: {entry:?}");
        ensure!(list.incoming_requests.is_empty() && list.outgoing_requests.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn a_rejected_request_makes_no_friendship() -> Result<()> {
    let (_server, mut alice, mut bob) = alice_and_bob().await?;
    alice.friend_request("bobby", "").await?;
    bob.expect_friend_request_from("alice").await?;
    bob.friend_respond("alice", false).await?;
    let (accepted, friend) = alice.expect_friend_response_from("bobby").await?;
    ensure!(!accepted);
    ensure!(
        friend.is_none(),
        "a rejection carries no friend: {friend:?}"
    );
    for me in [&alice, &bob] {
        let list = me.friend_list().await?;
        ensure!(list.friends.is_empty(), "no friendship: {list:?}");
        ensure!(list.incoming_requests.is_empty() && list.outgoing_requests.is_empty());
    }
    // Nothing pending any more, so alice may ask again.
    alice.friend_request("bobby", "please?").await?;
    Ok(())
}

#[tokio::test]
async fn impossible_friend_requests_are_refused_with_their_reason() -> Result<()> {
    let (server, mut alice, mut bob) = alice_and_bob().await?;
    let _carol = server.user("carol").await?;

    expect_refusal(
        alice.friend_request("nobody", "").await,
        ErrorCode::NoSuchUser,
    )?;
    expect_refusal(
        alice.friend_request("alice", "").await,
        ErrorCode::SelfTarget,
    )?;
    alice.friend_request("carol", "").await?;
    expect_refusal(
        alice.friend_request("carol", "").await,
        ErrorCode::RequestPending,
    )?;
    expect_refusal(
        alice.friend_respond("carol", true).await,
        ErrorCode::NoSuchRequest,
    )?;
    expect_refusal(
        alice.friend_respond("bobby", true).await,
        ErrorCode::NoSuchRequest,
    )?;
    expect_refusal(alice.friend_delete("bobby").await, ErrorCode::NotFriends)?;
    expect_refusal(
        alice.friend_request("bobby", &"x".repeat(257)).await,
        ErrorCode::InvalidField,
    )?;

    befriend(&mut alice, &mut bob).await?;
    expect_refusal(
        alice.friend_request("bobby", "").await,
        ErrorCode::AlreadyFriends,
    )?;
    expect_refusal(
        bob.friend_request("alice", "").await,
        ErrorCode::AlreadyFriends,
    )?;
    Ok(())
}

#[tokio::test]
async fn crossed_requests_make_a_friendship() -> Result<()> {
    let (_server, mut alice, bob) = alice_and_bob().await?;
    alice.friend_request("bobby", "").await?;
    // bob asks alice instead of answering: that accepts her request.
    bob.friend_request("alice", "").await?;
    let (accepted, friend) = alice.expect_friend_response_from("bobby").await?;
    ensure!(accepted);
    ensure!(friend.is_some());
    ensure!(alice.friend_list().await?.friend("bobby").is_some());
    ensure!(bob.friend_list().await?.friend("alice").is_some());
    Ok(())
}

#[tokio::test]
async fn removing_a_friend_tells_the_other_side() -> Result<()> {
    let (_server, mut alice, mut bob) = alice_and_bob().await?;
    befriend(&mut alice, &mut bob).await?;
    alice.friend_delete("bobby").await?;
    bob.expect_friend_removed("alice").await?;
    ensure!(alice.friend_list().await?.friends.is_empty());
    ensure!(bob.friend_list().await?.friends.is_empty());
    expect_refusal(bob.friend_delete("alice").await, ErrorCode::NotFriends)?;
    Ok(())
}

#[tokio::test]
async fn a_request_reaches_bob_at_his_next_login() -> Result<()> {
    // PROTOCOL.md §4.2: a request that arrived while bob was offline is listed in his
    // login_ok.incoming_requests (not pushed). Either way he can answer it right away.
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let mut alice = server.user("alice").await?;
    alice.friend_request("bobby", "hi bob").await?;

    let bob = server.login("bobby").await?;
    let session = bob.session().expect("logged in");
    let request = session
        .incoming_requests
        .iter()
        .find(|r| r.from == "alice")
        .cloned();
    ensure!(
        matches!(&request, Some(r) if r.to == "bobby" && r.message == "hi bob" && r.ts > 0),
        "login_ok lists the pending request: {:?}",
        session.incoming_requests
    );
    let listed = bob.friend_list().await?;
    ensure!(listed.incoming_requests.iter().any(|r| r.from == "alice"));
    let alices_view = alice.friend_list().await?;
    ensure!(alices_view
        .outgoing_requests
        .iter()
        .any(|r| r.to == "bobby"));

    bob.friend_respond("alice", true).await?;
    let (accepted, friend) = alice.expect_friend_response_from("bobby").await?;
    ensure!(accepted && friend.is_some_and(|f| f.online));
    Ok(())
}

#[tokio::test]
async fn an_answer_reaches_alice_at_her_next_login() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    alice.friend_request("bobby", "").await?;
    bob.expect_friend_request_from("alice").await?;
    alice.logout().await?;
    bob.expect_user_offline("alice").await?;

    bob.friend_respond("alice", true).await?;
    let mut alice = server.login("alice").await?;
    let session = alice.session().expect("logged in");
    let friend = session
        .friend("bobby")
        .expect("the friendship exists at login");
    ensure!(friend.online, "bob is online: {friend:?}");
    ensure!(session.outgoing_requests.is_empty());
    let (accepted, _) = alice.expect_friend_response_from("bobby").await?;
    ensure!(accepted);
    Ok(())
}

#[tokio::test]
async fn a_rejection_reaches_alice_at_her_next_login() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    alice.friend_request("bobby", "").await?;
    bob.expect_friend_request_from("alice").await?;
    alice.logout().await?;
    bob.friend_respond("alice", false).await?;
    let mut alice = server.login("alice").await?;
    let (accepted, friend) = alice.expect_friend_response_from("bobby").await?;
    ensure!(!accepted && friend.is_none());
    Ok(())
}

#[tokio::test]
async fn the_friend_list_follows_a_friends_presence() -> Result<()> {
    let (server, mut alice, mut bob) = alice_and_bob().await?;
    befriend(&mut alice, &mut bob).await?;
    bob.logout().await?;
    alice.expect_user_offline("bobby").await?;
    let entry = alice.friend_list().await?.friend("bobby").cloned();
    ensure!(
        matches!(&entry, Some(f) if !f.online),
        "bob is offline: {entry:?}"
    );
    alice.logout().await?;
    let alice = server.login("alice").await?;
    let entry = alice.session().expect("logged in").friend("bobby").cloned();
    ensure!(
        matches!(&entry, Some(f) if !f.online),
        "login_ok shows bob offline: {entry:?}"
    );
    Ok(())
}

#[tokio::test]
async fn friendship_requests_need_a_session() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let client = server.connect().await?;
    expect_refusal(
        client.friend_request("bobby", "").await,
        ErrorCode::NotAuthenticated,
    )?;
    expect_refusal(
        client.friend_respond("bobby", true).await,
        ErrorCode::NotAuthenticated,
    )?;
    expect_refusal(
        client.friend_delete("bobby").await,
        ErrorCode::NotAuthenticated,
    )?;
    expect_refusal(client.friend_list().await, ErrorCode::NotAuthenticated)?;
    Ok(())
}
