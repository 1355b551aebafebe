//! Presence and friends: who is online, requests, answers, removal, and the friend list (cached
//! in the store for starting offline).

use natter_proto::{validate, Friend, FriendRequestInfo, OnlineUser, ServerMessage};
use serde::Serialize;

use super::{unexpected, Client};
use crate::engine::request_id as id;
use crate::{ClientError, ClientMessage};

/// Friends and pending requests.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FriendList {
    /// Friends with presence.
    pub friends: Vec<Friend>,
    /// Pending requests to us.
    pub incoming: Vec<FriendRequestInfo>,
    /// Pending requests from us.
    pub outgoing: Vec<FriendRequestInfo>,
}

impl Client {
    /// Everyone online.
    pub async fn list_online(&self) -> Result<Vec<OnlineUser>, ClientError> {
        match self.request(ClientMessage::ListOnline { id: id() }).await? {
            ServerMessage::OnlineList { users, .. } => Ok(users),
            other => Err(unexpected(other)),
        }
    }

    /// Asks someone to be friends.
    pub async fn friend_request(&self, to: &str, message: &str) -> Result<(), ClientError> {
        validate::friend_note(message)?;
        self.expect_ok(ClientMessage::FriendRequest {
            id: id(),
            to: to.to_owned(),
            message: message.to_owned(),
        })
        .await
    }

    /// Accepts or rejects a request.
    pub async fn friend_respond(&self, from: &str, accept: bool) -> Result<(), ClientError> {
        self.expect_ok(ClientMessage::FriendRespond {
            id: id(),
            from: from.to_owned(),
            accept,
        })
        .await
    }

    /// Ends a friendship.
    pub async fn friend_delete(&self, username: &str) -> Result<(), ClientError> {
        self.expect_ok(ClientMessage::FriendDelete {
            id: id(),
            username: username.to_owned(),
        })
        .await
    }

    /// Friends (from the server, cached locally); the cache when offline.
    pub async fn friend_list(&self) -> Result<FriendList, ClientError> {
        match self.request(ClientMessage::FriendList { id: id() }).await {
            Ok(ServerMessage::FriendListReply {
                friends,
                incoming_requests,
                outgoing_requests,
                ..
            }) => {
                if let Ok(store) = self.local_store() {
                    store.save_friends(&friends).await?;
                }
                Ok(FriendList {
                    friends,
                    incoming: incoming_requests,
                    outgoing: outgoing_requests,
                })
            }
            Ok(other) => Err(unexpected(other)),
            Err(ClientError::Offline | ClientError::Timeout) => Ok(FriendList {
                friends: self.local_store()?.friends().await?,
                incoming: Vec::new(),
                outgoing: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }
}
