//! Presence at scale and the quieter chat path of protocol version 2 (PROTOCOL.md §5.3, §5.5):
//! a login storm with `presence: "all"` arrives as a few `presence` batches and leaves every
//! client's online list exact; version 1 clients still get one push per change; a quiet `ack`
//! gets no reply and still produces the receipt.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use natter_e2e::*;
use natter_proto::{ClientMessage, MessageBody, PresenceScope, ServerMessage, Target};

/// One raw client that keeps its own online list the way §5.3 says a client must.
struct Watcher {
    name: String,
    socket: RawSocket,
    online: BTreeSet<String>,
    batches: usize,
    single_pushes: usize,
}

impl Watcher {
    async fn join(server: &TestServer, name: &str, version: u32) -> Result<Watcher> {
        let mut socket = RawSocket::connect(server).await?;
        socket
            .send(&ClientMessage::Hello {
                id: "h".into(),
                version,
                client: "presence test".into(),
                presence: PresenceScope::All,
            })
            .await?;
        match socket.expect_message().await? {
            ServerMessage::HelloOk { version: v, .. } if v == version => {}
            other => bail!("{name}: expected hello_ok for version {version}, got {other:?}"),
        }
        socket
            .send(&ClientMessage::GuestLogin {
                id: "g".into(),
                username: name.into(),
            })
            .await?;
        let mut watcher = Watcher {
            name: name.into(),
            socket,
            online: BTreeSet::new(),
            batches: 0,
            single_pushes: 0,
        };
        loop {
            match watcher.socket.expect_message().await? {
                ServerMessage::LoginOk { online, .. } => {
                    watcher.online = online.into_iter().map(|u| u.username).collect();
                    return Ok(watcher);
                }
                other => watcher.apply(other),
            }
        }
    }

    fn apply(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Presence { online, offline } => {
                self.batches += 1;
                self.online.extend(online.into_iter().map(|u| u.username));
                for gone in offline {
                    self.online.remove(&gone);
                }
            }
            ServerMessage::UserOnline { user } => {
                self.single_pushes += 1;
                self.online.insert(user.username);
            }
            ServerMessage::UserOffline { username } => {
                self.single_pushes += 1;
                self.online.remove(&username);
            }
            _ => {}
        }
    }

    /// Applies what arrives until the list equals `expected` (itself included, as in
    /// `login_ok`); fails loudly with the difference when it does not within the timeout.
    async fn settle_on(&mut self, expected: &BTreeSet<String>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut list = self.online.clone();
            list.insert(self.name.clone());
            if &list == expected {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                let missing: Vec<_> = expected.difference(&list).collect();
                let extra: Vec<_> = list.difference(expected).collect();
                bail!(
                    "{}'s online list is wrong: missing {missing:?}, extra {extra:?}",
                    self.name
                );
            }
            match self.socket.read(left).await {
                Ok(RawRead::Message(m)) => self.apply(m),
                Ok(RawRead::Closed) => bail!("{}'s connection closed", self.name),
                Err(_) => {}
            }
        }
    }
}

#[tokio::test]
async fn a_login_storm_with_presence_for_everyone_leaves_every_online_list_right() -> Result<()> {
    const USERS: usize = 60;
    const LEAVERS: usize = 15;
    let server = TestServer::start().await?;
    let names: Vec<String> = (0..USERS).map(|i| format!("storm{i:03}")).collect();
    // Everyone logs in at once, as after a server restart.
    let joins = names.iter().map(|n| Watcher::join(&server, n, 2));
    let mut watchers: Vec<Watcher> = futures::future::try_join_all(joins).await?;

    let everyone: BTreeSet<String> = names.iter().cloned().collect();
    for w in &mut watchers {
        w.settle_on(&everyone).await?;
    }
    // A quarter leave; the rest must see exactly them go.
    for w in watchers.drain(..LEAVERS) {
        drop(w.socket);
    }
    let stayers: BTreeSet<String> = names[LEAVERS..].iter().cloned().collect();
    for w in &mut watchers {
        w.settle_on(&stayers).await?;
    }
    let most_batches = watchers.iter().map(|w| w.batches).max().unwrap_or(0);
    ensure!(
        most_batches < USERS,
        "{USERS} logins and {LEAVERS} logouts came as at most {most_batches} batches per client, \
         not one push each"
    );
    ensure!(
        watchers.iter().all(|w| w.single_pushes == 0),
        "strangers' changes come only in batches to version 2 clients"
    );
    Ok(())
}

#[tokio::test]
async fn a_version_1_client_still_gets_one_push_per_login_and_logout() -> Result<()> {
    let server = TestServer::start().await?;
    let mut old = Watcher::join(&server, "oldclient", 1).await?;
    let newer = Watcher::join(&server, "newclient", 2).await?;
    let expected: BTreeSet<String> = ["oldclient", "newclient"].map(String::from).into();
    old.settle_on(&expected).await?;
    drop(newer.socket);
    old.settle_on(&["oldclient".to_owned()].into()).await?;
    assert_eq!(
        old.batches, 0,
        "a version 1 client never sees a `presence` batch"
    );
    assert_eq!(old.single_pushes, 2, "one user_online, one user_offline");
    Ok(())
}

#[tokio::test]
async fn a_quiet_ack_gets_no_reply_and_still_sends_the_receipt() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = Watcher::join(&server, "alice", 2).await?;
    let mut bob = Watcher::join(&server, "bobby", 2).await?;
    alice
        .socket
        .send(&ClientMessage::SendMessage {
            id: "s1".into(),
            client_msg_id: "c1".into(),
            to: Target::User {
                username: "bobby".into(),
            },
            body: MessageBody::Text {
                text: "你好".into(),
            },
        })
        .await?;
    let msg_id = loop {
        match bob.socket.expect_message().await? {
            ServerMessage::Message { message } => break message.msg_id,
            other => bob.apply(other),
        }
    };
    bob.socket
        .send(&ClientMessage::Ack {
            id: None,
            msg_ids: vec![msg_id],
        })
        .await?;
    // Bob may ack faster than alice's own reply reaches her, so the receipt and
    // `message_accepted` come in either order (PROTOCOL §5.5 rule 5); each comes once.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    while !seen.contains_key("accepted") || !seen.contains_key("receipt") {
        match alice.socket.expect_message().await? {
            ServerMessage::MessageAccepted { .. } => *seen.entry("accepted").or_default() += 1,
            ServerMessage::Receipt { msg_id: id, to, .. } => {
                assert_eq!((id, to.as_str()), (msg_id, "bobby"));
                *seen.entry("receipt").or_default() += 1;
            }
            other => alice.apply(other),
        }
    }
    assert_eq!((seen["accepted"], seen["receipt"]), (1, 1));
    // Bob's next request is answered first: nothing about the quiet ack came before it.
    bob.socket
        .send(&ClientMessage::Heartbeat { id: "hb".into() })
        .await?;
    loop {
        match bob
            .socket
            .expect_message()
            .await
            .context("bob's heartbeat")?
        {
            ServerMessage::HeartbeatAck { id, .. } if id == "hb" => break,
            ServerMessage::Presence { .. } => {}
            other => bail!("a quiet ack must get no reply, bob got {other:?}"),
        }
    }
    Ok(())
}
