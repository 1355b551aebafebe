//! Waiting for pushes. They are kept in arrival order; `expect_*` searches them oldest first,
//! takes the first one that matches and leaves the others queued, so a test can wait for the
//! events it cares about in any order. `assert_no_push_matching` looks at the queue and at what
//! arrives during a short window: bounded waiting only ever shows that something does NOT happen.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use natter_proto::{
    ChatMessage, Friend, FriendAnswer, FriendRequestInfo, MsgId, OnlineUser, ServerMessage,
};

use super::client::{server_log_note, Event, TestClient, PUSH_TIMEOUT};
use super::replies::{show, Receipt};

impl TestClient {
    /// Takes the oldest queued push (heartbeats included), waiting at most `timeout`.
    pub async fn next_push(&mut self, timeout: Duration) -> Result<ServerMessage> {
        if let Some(push) = self.backlog.pop_front() {
            return Ok(push);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        match self.receive_until(deadline).await? {
            Some(push) => Ok(push),
            None => bail!(
                "{}: no push within {timeout:?}{}",
                self.shared.label,
                self.closed_note()
            ),
        }
    }

    /// Waits (default timeout) for the first push for which `pick` returns something; other
    /// pushes stay queued, heartbeats are dropped.
    pub async fn expect_push_map<T>(
        &mut self,
        what: &str,
        pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> Result<T> {
        self.expect_push_map_within(what, PUSH_TIMEOUT, pick).await
    }

    /// [`expect_push_map`](Self::expect_push_map) with an explicit timeout.
    pub async fn expect_push_map_within<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> Result<T> {
        if let Some(pos) = self.backlog.iter().position(|m| pick(m).is_some()) {
            let push = self
                .backlog
                .remove(pos)
                .expect("position came from this backlog");
            return Ok(pick(&push).expect("the same push matched a moment ago"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.receive_until(deadline).await {
                Ok(Some(push)) => {
                    if let Some(found) = pick(&push) {
                        return Ok(found);
                    }
                    if matches!(push, ServerMessage::Heartbeat { .. }) {
                        self.heartbeats_skipped += 1;
                    } else {
                        self.backlog.push_back(push);
                    }
                }
                Ok(None) => bail!(
                    "{}: expected {what} within {timeout:?}, but it did not arrive{}\n{}{}",
                    self.shared.label,
                    self.closed_note(),
                    self.describe_backlog(),
                    server_log_note(self.shared.server_log.as_deref())
                ),
                Err(e) => {
                    return Err(e.context(format!(
                        "{}: while waiting for {what}\n{}",
                        self.shared.label,
                        self.describe_backlog()
                    )))
                }
            }
        }
    }

    /// Waits for the first push that satisfies `pred`.
    pub async fn expect_push(
        &mut self,
        what: &str,
        pred: impl Fn(&ServerMessage) -> bool,
    ) -> Result<ServerMessage> {
        self.expect_push_map(what, |m| pred(m).then(|| m.clone()))
            .await
    }

    /// Asserts that no push satisfying `pred` is queued or arrives within `wait`. Bounded
    /// waiting is only ever used to show that something does NOT happen.
    pub async fn assert_no_push_matching(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&ServerMessage) -> bool,
    ) -> Result<()> {
        if let Some(found) = self.backlog.iter().find(|m| pred(m)) {
            bail!(
                "{}: expected no {what}, but got {}",
                self.shared.label,
                show(found)
            );
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.receive_until(deadline).await {
                Ok(Some(push)) => {
                    if pred(&push) {
                        bail!(
                            "{}: expected no {what}, but got {}",
                            self.shared.label,
                            show(&push)
                        );
                    }
                    if !matches!(push, ServerMessage::Heartbeat { .. }) {
                        self.backlog.push_back(push);
                    }
                }
                Ok(None) => return Ok(()),
                // A closed connection delivers nothing more: the assertion holds.
                Err(_) if self.closed.is_some() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for a private or square `message` from `from`.
    pub async fn expect_message_from(&mut self, from: &str) -> Result<ChatMessage> {
        self.expect_push_map(&format!("a message from {from}"), |m| match m {
            ServerMessage::Message { message } if message.from == from => Some(message.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for `count` messages from `from`, in arrival order.
    pub async fn expect_messages_from(
        &mut self,
        from: &str,
        count: usize,
    ) -> Result<Vec<ChatMessage>> {
        let mut out = Vec::with_capacity(count);
        for n in 0..count {
            let message = self
                .expect_message_from(from)
                .await
                .with_context(|| format!("after {n} of {count} messages from {from}"))?;
            out.push(message);
        }
        Ok(out)
    }

    /// Asserts no `message` push arrives (or is queued) within `wait`.
    pub async fn assert_no_message(&mut self, wait: Duration) -> Result<()> {
        self.assert_no_push_matching("message", wait, |m| {
            matches!(m, ServerMessage::Message { .. })
        })
        .await
    }

    /// Waits for `user_online` about `username`.
    pub async fn expect_user_online(&mut self, username: &str) -> Result<OnlineUser> {
        // Version 2 sessions see strangers' logins in `presence` batches (§5.3).
        self.expect_push_map(&format!("user_online for {username}"), |m| match m {
            ServerMessage::UserOnline { user } if user.username == username => Some(user.clone()),
            ServerMessage::Presence { online, .. } => {
                online.iter().find(|u| u.username == username).cloned()
            }
            _ => None,
        })
        .await
    }

    /// Waits for `user_offline` about `username`.
    pub async fn expect_user_offline(&mut self, username: &str) -> Result<()> {
        self.expect_user_offline_within(username, PUSH_TIMEOUT)
            .await
    }

    /// Waits for `user_offline` about `username`, at most `timeout`.
    pub async fn expect_user_offline_within(
        &mut self,
        username: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.expect_push_map_within(
            &format!("user_offline for {username}"),
            timeout,
            |m| match m {
                ServerMessage::UserOffline { username: who } if who == username => Some(()),
                ServerMessage::Presence { offline, .. }
                    if offline.iter().any(|w| w == username) =>
                {
                    Some(())
                }
                _ => None,
            },
        )
        .await
    }

    /// Waits for the delivery receipt of `msg_id`.
    pub async fn expect_receipt(&mut self, msg_id: MsgId) -> Result<Receipt> {
        self.expect_push_map(&format!("receipt for message {msg_id}"), |m| match m {
            ServerMessage::Receipt {
                msg_id: id,
                client_msg_id,
                to,
                ts,
            } if *id == msg_id => Some(Receipt {
                msg_id: *id,
                client_msg_id: client_msg_id.clone(),
                to: to.clone(),
                ts: *ts,
            }),
            _ => None,
        })
        .await
    }

    /// Waits for `friend_request_received` from `from`.
    pub async fn expect_friend_request_from(&mut self, from: &str) -> Result<FriendRequestInfo> {
        self.expect_push_map(
            &format!("friend_request_received from {from}"),
            |m| match m {
                ServerMessage::FriendRequestReceived { request } if request.from == from => {
                    Some(request.clone())
                }
                _ => None,
            },
        )
        .await
    }

    /// Waits for `friend_response` from `username`; returns (accepted, friend).
    pub async fn expect_friend_response_from(
        &mut self,
        username: &str,
    ) -> Result<(bool, Option<Friend>)> {
        self.expect_push_map(&format!("friend_response from {username}"), |m| match m {
            ServerMessage::FriendResponse(FriendAnswer {
                username: who,
                accepted,
                friend,
            }) if who == username => Some((*accepted, friend.clone())),
            _ => None,
        })
        .await
    }

    /// Waits for `friend_removed` about `username`.
    pub async fn expect_friend_removed(&mut self, username: &str) -> Result<()> {
        self.expect_push_map(&format!("friend_removed for {username}"), |m| match m {
            ServerMessage::FriendRemoved { username: who } if who == username => Some(()),
            _ => None,
        })
        .await
    }

    /// Waits for `kicked`; returns the reason.
    pub async fn expect_kicked(&mut self) -> Result<String> {
        self.expect_push_map("kicked", |m| match m {
            ServerMessage::Kicked { reason } => Some(reason.clone()),
            _ => None,
        })
        .await
    }

    /// Waits until the server closes the connection; pushes that arrive first stay queued.
    pub async fn expect_closed(&mut self, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(reason) = &self.closed {
                return Ok(reason.clone());
            }
            match self.receive_until(deadline).await {
                Ok(Some(push)) => {
                    if !matches!(push, ServerMessage::Heartbeat { .. }) {
                        self.backlog.push_back(push);
                    }
                }
                Ok(None) => bail!(
                    "{}: expected the server to close the connection within {timeout:?}, but it is still open\n{}{}",
                    self.shared.label,
                    self.describe_backlog(),
                    server_log_note(self.shared.server_log.as_deref())
                ),
                Err(_) if self.closed.is_some() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the reader has seen the connection end.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Pushes received so far and not taken by an `expect_*` (heartbeats excluded).
    pub fn queued_pushes(&self) -> Vec<ServerMessage> {
        self.backlog.iter().cloned().collect()
    }

    /// Receives the next event; `Ok(None)` when the deadline passes. Fails on a frame the
    /// protocol cannot decode and once the connection is closed.
    async fn receive_until(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<ServerMessage>> {
        if self.closed.is_some() {
            bail!(
                "{}: the connection is closed{}",
                self.shared.label,
                self.closed_note()
            );
        }
        match tokio::time::timeout_at(deadline, self.events.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => {
                self.closed = Some("reader stopped".into());
                bail!("{}: the connection is closed", self.shared.label)
            }
            Ok(Some(Event::Push(push))) => Ok(Some(*push)),
            Ok(Some(Event::Undecodable(detail))) => {
                bail!(
                    "{}: the server sent a frame the protocol cannot decode: {detail}",
                    self.shared.label
                )
            }
            Ok(Some(Event::Binary(len))) => {
                bail!(
                    "{}: the server sent an unannounced binary frame of {len} bytes",
                    self.shared.label
                )
            }
            Ok(Some(Event::Closed(reason))) => {
                self.closed = Some(reason);
                bail!(
                    "{}: the connection is closed{}",
                    self.shared.label,
                    self.closed_note()
                )
            }
        }
    }

    fn closed_note(&self) -> String {
        match &self.closed {
            Some(reason) => format!(" (connection closed: {reason})"),
            None => String::new(),
        }
    }

    fn describe_backlog(&self) -> String {
        let mut out = format!(
            "pushes queued ({}, plus {} heartbeats skipped):",
            self.backlog.len(),
            self.heartbeats_skipped
        );
        for push in &self.backlog {
            out.push_str("\n  ");
            out.push_str(&show(push));
        }
        out
    }
}
