//! One method per protocol request, returning the typed reply or a [`ServerError`] refusal;
//! logging in records the session on the client.
//!
//! [`ServerError`]: super::replies::ServerError

use anyhow::{bail, Result};
use natter_proto::{
    ClientMessage, MessageBody, MsgId, OnlineUser, PresenceScope, Profile, ServerMessage, Target,
    PROTOCOL_VERSION,
};

use super::client::{PendingReply, TestClient};
use super::replies::{
    accepted, new_client_msg_id, show, text, user, Accepted, FriendList, HelloOk, HistoryPage,
    LoginOk, Reply, UsernameStatus,
};

impl TestClient {
    /// `hello` with version 1 and presence for everyone.
    pub async fn hello(&self) -> Result<HelloOk> {
        self.hello_with(PresenceScope::All).await
    }

    /// `hello` with a chosen presence scope.
    pub async fn hello_with(&self, presence: PresenceScope) -> Result<HelloOk> {
        let reply = self
            .request_with(|id| ClientMessage::Hello {
                id,
                version: PROTOCOL_VERSION,
                client: "natter-e2e".into(),
                presence,
            })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::HelloOk {
                version,
                server,
                heartbeat_interval_ms,
                idle_timeout_ms,
                max_frame_bytes,
                ..
            } => Ok(HelloOk {
                version,
                server,
                heartbeat_interval_ms,
                idle_timeout_ms,
                max_frame_bytes,
            }),
            other => bail!("expected hello_ok, got {}", show(&other)),
        }
    }

    /// `query_username`.
    pub async fn query_username(&self, username: &str) -> Result<UsernameStatus> {
        let reply = self
            .request_with(|id| ClientMessage::QueryUsername {
                id,
                username: username.into(),
            })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::UsernameStatus {
                username: echoed,
                available,
                reason,
                ..
            } => {
                if echoed != username {
                    bail!("username_status names `{echoed}`, the query was for `{username}`");
                }
                Ok(UsernameStatus { available, reason })
            }
            other => bail!("expected username_status, got {}", show(&other)),
        }
    }

    /// `register` with a bare profile.
    pub async fn register(&self, username: &str, password: &str) -> Result<Profile> {
        self.register_full(username, password, "", "", "").await
    }

    /// `register` with nickname, motto and phone.
    pub async fn register_full(
        &self,
        username: &str,
        password: &str,
        nickname: &str,
        motto: &str,
        phone: &str,
    ) -> Result<Profile> {
        let reply = self
            .request_with(|id| ClientMessage::Register {
                id,
                username: username.into(),
                password: password.into(),
                nickname: nickname.into(),
                motto: motto.into(),
                phone: phone.into(),
            })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::Registered { profile, .. } => Ok(profile),
            other => bail!("expected registered, got {}", show(&other)),
        }
    }

    /// `login`.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginOk> {
        let reply = self
            .request_with(|id| ClientMessage::Login {
                id,
                username: username.into(),
                password: password.into(),
            })
            .await?;
        self.take_login_ok(reply)
    }

    /// `guest_login`.
    pub async fn guest(&self, username: &str) -> Result<LoginOk> {
        let reply = self
            .request_with(|id| ClientMessage::GuestLogin {
                id,
                username: username.into(),
            })
            .await?;
        self.take_login_ok(reply)
    }

    /// `resume` with a token from an earlier `login_ok`.
    pub async fn resume(&self, token: &str) -> Result<LoginOk> {
        let reply = self
            .request_with(|id| ClientMessage::Resume {
                id,
                token: token.into(),
            })
            .await?;
        self.take_login_ok(reply)
    }

    fn take_login_ok(&self, reply: ServerMessage) -> Result<LoginOk> {
        match reply.into_result()? {
            ServerMessage::LoginOk {
                token,
                profile,
                online,
                online_count,
                friends,
                incoming_requests,
                outgoing_requests,
                resumed,
                ..
            } => {
                let session = LoginOk {
                    token,
                    profile,
                    online,
                    online_count,
                    friends,
                    incoming_requests,
                    outgoing_requests,
                    resumed,
                };
                self.set_session(session.clone());
                Ok(session)
            }
            other => bail!("expected login_ok, got {}", show(&other)),
        }
    }

    /// `logout`.
    pub async fn logout(&self) -> Result<()> {
        self.request_with(|id| ClientMessage::Logout { id })
            .await?
            .expect_ok()
    }

    /// `erase_account`.
    pub async fn erase_account(&self, password: &str) -> Result<()> {
        self.request_with(|id| ClientMessage::EraseAccount {
            id,
            password: password.into(),
        })
        .await?
        .expect_ok()
    }

    /// `update_profile`; `None` leaves a field as it is.
    pub async fn update_profile(
        &self,
        nickname: Option<&str>,
        motto: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Profile> {
        let reply = self
            .request_with(|id| ClientMessage::UpdateProfile {
                id,
                nickname: nickname.map(str::to_owned),
                motto: motto.map(str::to_owned),
                phone: phone.map(str::to_owned),
            })
            .await?
            .into_result()?;
        match reply {
            ServerMessage::ProfileUpdated { profile, .. } => Ok(profile),
            other => bail!("expected profile_updated, got {}", show(&other)),
        }
    }

    /// `heartbeat`; returns the server clock.
    pub async fn heartbeat(&self) -> Result<i64> {
        match self
            .request_with(|id| ClientMessage::Heartbeat { id })
            .await?
            .into_result()?
        {
            ServerMessage::HeartbeatAck { ts, .. } => Ok(ts),
            other => bail!("expected heartbeat_ack, got {}", show(&other)),
        }
    }

    /// `list_online`.
    pub async fn list_online(&self) -> Result<Vec<OnlineUser>> {
        match self
            .request_with(|id| ClientMessage::ListOnline { id })
            .await?
            .into_result()?
        {
            ServerMessage::OnlineList { users, .. } => Ok(users),
            other => bail!("expected online_list, got {}", show(&other)),
        }
    }

    /// `friend_request`.
    pub async fn friend_request(&self, to: &str, note: &str) -> Result<()> {
        self.request_with(|id| ClientMessage::FriendRequest {
            id,
            to: to.into(),
            message: note.into(),
        })
        .await?
        .expect_ok()
    }

    /// `friend_respond`.
    pub async fn friend_respond(&self, from: &str, accept: bool) -> Result<()> {
        self.request_with(|id| ClientMessage::FriendRespond {
            id,
            from: from.into(),
            accept,
        })
        .await?
        .expect_ok()
    }

    /// `friend_delete`.
    pub async fn friend_delete(&self, username: &str) -> Result<()> {
        self.request_with(|id| ClientMessage::FriendDelete {
            id,
            username: username.into(),
        })
        .await?
        .expect_ok()
    }

    /// `friend_list`.
    pub async fn friend_list(&self) -> Result<FriendList> {
        match self
            .request_with(|id| ClientMessage::FriendList { id })
            .await?
            .into_result()?
        {
            ServerMessage::FriendListReply {
                friends,
                incoming_requests,
                outgoing_requests,
                ..
            } => Ok(FriendList {
                friends,
                incoming_requests,
                outgoing_requests,
            }),
            other => bail!("expected friend_list_reply, got {}", show(&other)),
        }
    }

    /// A private text message with a fresh client message id.
    pub async fn send_text(&self, to: &str, body: &str) -> Result<Accepted> {
        self.send_text_with_id(to, &new_client_msg_id(), body).await
    }

    /// A private text message with a chosen client message id (resending it is harmless).
    pub async fn send_text_with_id(
        &self,
        to: &str,
        client_msg_id: &str,
        body: &str,
    ) -> Result<Accepted> {
        self.send(user(to), client_msg_id, text(body)).await
    }

    /// A private text message whose answer is not waited for (the socket may die first).
    pub async fn submit_text(
        &self,
        to: &str,
        client_msg_id: &str,
        body: &str,
    ) -> Result<PendingReply> {
        self.submit(&ClientMessage::SendMessage {
            id: self.new_id(),
            client_msg_id: client_msg_id.into(),
            to: user(to),
            body: text(body),
        })
        .await
    }

    /// A text message to the square.
    pub async fn send_square(&self, body: &str) -> Result<Accepted> {
        self.post(Target::Square, text(body)).await
    }

    /// `send_message` with a fresh client message id.
    pub async fn post(&self, to: Target, body: MessageBody) -> Result<Accepted> {
        self.send(to, &new_client_msg_id(), body).await
    }

    /// `send_message`.
    pub async fn send(
        &self,
        to: Target,
        client_msg_id: &str,
        body: MessageBody,
    ) -> Result<Accepted> {
        let reply = self
            .request_with(|id| ClientMessage::SendMessage {
                id,
                client_msg_id: client_msg_id.into(),
                to,
                body,
            })
            .await?;
        accepted(reply, client_msg_id)
    }

    /// `ack`.
    pub async fn ack(&self, msg_ids: &[MsgId]) -> Result<()> {
        self.request_with(|id| ClientMessage::Ack {
            id: Some(id),
            msg_ids: msg_ids.to_vec(),
        })
        .await?
        .expect_ok()
    }

    /// `history`.
    pub async fn history(
        &self,
        with: Target,
        before: Option<MsgId>,
        limit: Option<u32>,
    ) -> Result<HistoryPage> {
        match self
            .request_with(|id| ClientMessage::History {
                id,
                with,
                before,
                limit,
            })
            .await?
            .into_result()?
        {
            ServerMessage::HistoryPage {
                with,
                messages,
                has_more,
                ..
            } => Ok(HistoryPage {
                with,
                messages,
                has_more,
            }),
            other => bail!("expected history_page, got {}", show(&other)),
        }
    }

    /// The newest page (default size) of the conversation with `username`.
    pub async fn history_with(&self, username: &str) -> Result<HistoryPage> {
        self.history(user(username), None, None).await
    }
}
