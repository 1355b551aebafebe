//! A cluster: three natter-server nodes on one real PostgreSQL and one real nats-server
//! (`scripts/cluster-services.sh`). Users on different nodes see each other online, befriend,
//! chat both ways with receipts, share the square and get what was sent while they were away;
//! a node killed with SIGKILL takes its users offline everywhere, and they carry on at another
//! node with nothing lost or duplicated.

use std::time::Duration;

use anyhow::{ensure, Result};
use natter_e2e::harness::cluster::NODE_TIMEOUT_MS;
use natter_e2e::harness::files::file_bytes;
use natter_e2e::*;

/// How long a change may take to cross the bus (it usually takes milliseconds).
const BUS_PATIENCE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn users_on_different_nodes_chat_and_survive_a_node_dying() -> Result<()> {
    let Some(cluster) = TestCluster::from_env()? else {
        return Ok(());
    };
    let node1 = cluster.node().await?;
    let mut node2 = cluster.node().await?;
    let node3 = cluster.node().await?;

    // Accounts made on one node exist on all of them.
    let mut alice = node1.user("alice").await?;
    node3.register("carol").await?;
    let mut bob = node2.user("bobby").await?;

    // Presence crosses nodes: alice (presence "all") sees bob log in at node 2.
    alice.expect_user_online("bobby").await?;
    let who = bob.session().map(|s| s.online).unwrap_or_default();
    ensure!(
        who.iter().any(|u| u.username == "alice"),
        "bob's login_ok on node 2 lists alice, online at node 1: {who:?}"
    );

    befriend(&mut alice, &mut bob).await?;

    // Private messages both ways, each with its receipt.
    let sent = alice.send_text("bobby", "hello from node 1").await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, sent.msg_id);
    assert_eq!(text_of(&got).as_deref(), Some("hello from node 1"));
    bob.ack(&[got.msg_id]).await?;
    alice.expect_receipt(sent.msg_id).await?;

    let reply = bob.send_text("alice", "hi from node 2").await?;
    let got = alice.expect_message_from("bobby").await?;
    assert_eq!(got.msg_id, reply.msg_id);
    alice.ack(&[got.msg_id]).await?;
    bob.expect_receipt(reply.msg_id).await?;

    // The square reaches every node.
    let mut carol = node3.login("carol").await?;
    let square = alice.send_square("everyone, from node 1").await?;
    for reader in [&mut bob, &mut carol] {
        let got = reader.expect_message_from("alice").await?;
        assert_eq!(got.msg_id, square.msg_id);
        assert_eq!(got.to, Target::Square);
    }

    // Offline delivery: carol leaves node 3, alice writes, carol comes back at node 2.
    carol.drop_connection().await?;
    alice
        .expect_user_offline_within("carol", BUS_PATIENCE)
        .await?;
    let queued = alice.send_text("carol", "while you were away").await?;
    let mut carol = node2.login("carol").await?;
    let got = carol.expect_message_from("alice").await?;
    assert_eq!(got.msg_id, queued.msg_id);
    carol.ack(&[got.msg_id]).await?;
    alice.expect_receipt(queued.msg_id).await?;

    // A second login at another node ends the first session.
    let mut carol_again = node3.login("carol").await?;
    carol.expect_kicked().await?;
    alice
        .assert_no_push_matching(
            "carol going offline while she moved nodes",
            Duration::from_millis(500),
            |m| matches!(m, ServerMessage::UserOffline { username } if username == "carol"),
        )
        .await?;

    // A file from alice at node 1 to bob at node 2; alice's upload breaks off halfway and
    // resumes at node 3, which holds exactly what node 1 stored.
    let data = file_bytes(700_000, 7);
    let offer = alice.offer_file("bobby", "notes.pdf", &data).await?;
    let offered = bob.expect_file_offered("alice").await?;
    assert_eq!(offered.file_id, offer.file_id);
    bob.file_answer(&offer.file_id, true).await?;
    ensure!(alice.expect_file_answered(&offer.file_id).await?);
    let half = (offer.chunk_size as usize) * 5;
    alice.upload_part(&offer, &data, 0..half).await?;
    let alice_token = alice.token()?;
    alice.drop_connection().await?;
    let (mut alice, _) = node3.resume("alice", &alice_token).await?;
    let status = alice.file_status(&offer.file_id).await?;
    assert_eq!(
        status.have,
        vec![(0, half as u64)],
        "node 3 sees node 1's chunks"
    );
    alice.upload_part(&offer, &data, half..data.len()).await?;
    let deadline = std::time::Instant::now() + BUS_PATIENCE;
    while !bob.file_status(&offer.file_id).await?.complete {
        ensure!(
            std::time::Instant::now() < deadline,
            "the file was verified complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fetched = bob.fetch_all(&offer.file_id, data.len() as u64).await?;
    ensure!(
        fetched == data,
        "bob fetched at node 2 the bytes alice uploaded at 1 and 3"
    );

    // Node 2 dies with bob on it. Messages to him wait in the database.
    let token = bob.token()?;
    let mut in_flight = Vec::new();
    for n in 0..10 {
        in_flight.push(
            alice
                .send_text("bobby", &format!("are you there? {n}"))
                .await?,
        );
    }
    // Some reach bob at node 2 before it dies; he acks none of them.
    bob.expect_message_from("alice").await?;
    node2.kill9()?;
    alice
        .expect_user_offline_within(
            "bobby",
            Duration::from_millis(NODE_TIMEOUT_MS) + BUS_PATIENCE,
        )
        .await?;
    carol_again
        .expect_user_offline_within(
            "bobby",
            Duration::from_millis(NODE_TIMEOUT_MS) + BUS_PATIENCE,
        )
        .await?;

    // Bob's client fails over to node 3 and resumes his session there.
    let (mut bob, session) = node3.resume("bobby", &token).await?;
    assert_eq!(session.profile.username, "bobby");
    alice.expect_user_online("bobby").await?;
    // Everything accepted reaches him, once on this connection and in order: delivered but
    // unacked messages come again (he acked none of these), nothing acked does.
    let got = bob.expect_messages_from("alice", in_flight.len()).await?;
    assert_eq!(
        got.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        in_flight.iter().map(|a| a.msg_id).collect::<Vec<_>>(),
        "the messages sent as node 2 died"
    );
    bob.ack(&got.iter().map(|m| m.msg_id).collect::<Vec<_>>())
        .await?;
    for sent in &in_flight {
        alice.expect_receipt(sent.msg_id).await?;
    }
    bob.assert_no_message(QUIET_WINDOW).await?;

    // Presence is right on every node that is still up.
    for node in [&node1, &node3] {
        let probe = node.connect().await?;
        let session = probe
            .guest(&format!("probe{}", node.plain_addr().port()))
            .await?;
        let online: Vec<String> = session.online.into_iter().map(|u| u.username).collect();
        for name in ["alice", "bobby", "carol"] {
            ensure!(
                online.iter().any(|u| u == name),
                "{name} is online per node {}: {online:?}",
                node.plain_addr()
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_natter_core_client_fails_over_to_the_next_node_and_its_outbox_drains_there() -> Result<()>
{
    use natter_core::ConnectionState;
    use natter_e2e::harness::core::*;
    let Some(cluster) = TestCluster::from_env()? else {
        return Ok(());
    };
    let mut first = cluster.node().await?;
    let second = cluster.node().await?;
    let mut erin = second.user("erin").await?;

    // dave's app knows both nodes; it talks to the first while it lives.
    let dir = DataDir::new()?;
    let mut config = test_config(plain_server(&first), &dir);
    config.fallbacks = vec![plain_server(&second)];
    let mut dave = Device::start_with("dave", config, dir);
    dave.register_me().await?;
    dave.log_in().await?;
    erin.expect_user_online("dave").await?;
    let before = dave.send_and_confirm(user("erin"), "before").await?;
    let got = erin.expect_message_from("dave").await?;
    assert_eq!(Some(got.msg_id), before.msg_id);
    erin.ack(&[got.msg_id]).await?;

    // The first node dies; what dave types meanwhile waits in his outbox.
    first.kill9()?;
    dave.expect_connection(ConnectionState::Connecting).await?;
    let queued = dave.send_text(user("erin"), "after the crash").await?;
    dave.expect_connection(ConnectionState::Online).await?;
    let got = erin.expect_message_from("dave").await?;
    assert_eq!(text_of(&got).as_deref(), Some("after the crash"));
    erin.ack(&[got.msg_id]).await?;
    dave.expect_delivered(&queued.client_msg_id).await?;
    erin.assert_no_message(QUIET_WINDOW).await?;

    // And the session is whole on the second node: erin's reply reaches him there.
    erin.send_text("dave", "welcome to node 2").await?;
    dave.expect_message("erin", "welcome to node 2").await?;
    Ok(())
}

#[tokio::test]
async fn a_call_between_nodes_rings_connects_carries_audio_and_ends_for_both() -> Result<()> {
    use natter_e2e::harness::calls::MediaSocket;
    use natter_proto::media::Role;
    use natter_proto::CallEndReason;
    let Some(cluster) = TestCluster::from_env()? else {
        return Ok(());
    };
    let node1 = cluster.node().await?;
    let node2 = cluster.node().await?;
    let mut alice = node1.user("alice").await?;
    let mut bob = node2.user("bobby").await?;
    alice.expect_user_online("bobby").await?;

    // The call lives on alice's node: bob hears it ring at node 2 and answers there.
    let call_id = alice.call_invite("bobby").await?;
    let incoming = bob.expect_call_incoming("alice").await?;
    assert_eq!(incoming.call_id, call_id);
    let relay = node1.relay_addr()?;
    assert_eq!(
        incoming.media.relay_addr,
        relay.to_string(),
        "both use the caller's node's relay"
    );
    bob.call_answer(&call_id, true).await?;
    let accepted = alice.expect_call_accepted(&call_id).await?;
    assert_eq!(accepted.token, incoming.media.token);

    // bob is busy for everyone, also for carol at his own node, where this call does not live.
    let mut carol = node2.user("carol").await?;
    let tried = carol.call_invite("bobby").await?;
    assert_eq!(carol.expect_call_ended(&tried).await?, CallEndReason::Busy);

    // Audio both ways through node 1's relay.
    let a = MediaSocket::open(&accepted, Role::Caller).await?;
    let b = MediaSocket::open(&incoming.media, Role::Callee).await?;
    a.bind_until_acked().await?;
    b.bind_until_acked().await?;
    alice.expect_call_peer(&call_id).await?;
    bob.expect_call_peer(&call_id).await?;
    for seq in 0..3u16 {
        let sent = a.send_audio(seq, b"hello across nodes").await?;
        let (got, from) = b.expect_datagram(PUSH_TIMEOUT).await?;
        assert_eq!((got, from), (sent, relay));
        let sent = b.send_audio(seq, b"loud and clear").await?;
        let (got, _) = a.expect_datagram(PUSH_TIMEOUT).await?;
        assert_eq!(got, sent);
    }

    // bob hangs up at node 2: node 1 ends the call for both; a second hang-up finds nothing.
    bob.call_hangup(&call_id).await?;
    assert_eq!(
        alice.expect_call_ended(&call_id).await?,
        CallEndReason::Hangup
    );
    assert_eq!(
        bob.expect_call_ended(&call_id).await?,
        CallEndReason::Hangup
    );
    let again = bob.call_hangup(&call_id).await;
    ensure!(
        again.is_err(),
        "hanging up an ended call is refused: {again:?}"
    );

    // A second call; bob's connection drops mid-call, and node 1 ends it for alice.
    let call_id = alice.call_invite("bobby").await?;
    bob.expect_call_incoming("alice").await?;
    bob.call_answer(&call_id, true).await?;
    alice.expect_call_accepted(&call_id).await?;
    bob.drop_connection().await?;
    assert_eq!(
        alice.expect_call_ended(&call_id).await?,
        CallEndReason::ConnectionLost
    );
    Ok(())
}
