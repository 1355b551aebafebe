//! Accounts and sessions: username queries, registration, login (password, guest, saved
//! token), opening an account offline from its store, logout, erasure and the profile.

use std::time::Duration;

use natter_proto::{validate, ErrorCode, Profile, ServerMessage};
use serde::Deserialize;

use super::{unexpected, Client};
use crate::engine::{request_id as id, Command, Credentials};
use crate::{store, store_path, ClientError, ClientMessage, LoginInfo};

/// A registration form.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "RegisterForm"))]
pub struct Registration {
    /// Username (4–32 letters and digits).
    pub username: String,
    /// Password (8–128 characters).
    pub password: String,
    /// Nickname (optional).
    pub nickname: String,
    /// Motto (optional).
    pub motto: String,
    /// Phone (optional).
    pub phone: String,
}

impl Client {
    /// Is a username free? `Err(code)` explains why not.
    pub async fn query_username(
        &self,
        username: &str,
    ) -> Result<Result<(), ErrorCode>, ClientError> {
        match self
            .request(ClientMessage::QueryUsername {
                id: id(),
                username: username.to_owned(),
            })
            .await?
        {
            ServerMessage::UsernameStatus {
                available: true, ..
            } => Ok(Ok(())),
            ServerMessage::UsernameStatus { reason, .. } => {
                Ok(Err(reason.unwrap_or(ErrorCode::UsernameTaken)))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Creates an account (does not log in).
    pub async fn register(&self, form: Registration) -> Result<Profile, ClientError> {
        validate::username(&form.username)?;
        validate::password(&form.password)?;
        validate::nickname(&form.nickname)?;
        validate::motto(&form.motto)?;
        validate::phone(&form.phone)?;
        let message = ClientMessage::Register {
            id: id(),
            username: form.username,
            password: form.password,
            nickname: form.nickname,
            motto: form.motto,
            phone: form.phone,
        };
        match self.request(message).await? {
            ServerMessage::Registered { profile, .. } => Ok(profile),
            other => Err(unexpected(other)),
        }
    }

    async fn login_with(&self, credentials: Credentials) -> Result<LoginInfo, ClientError> {
        self.engine_call(|reply| Command::Login { credentials, reply })
            .await
    }

    /// Logs in with a password; the engine then keeps the session alive across reconnects.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginInfo, ClientError> {
        self.login_with(Credentials::Password {
            username: username.to_owned(),
            password: password.to_owned(),
        })
        .await
    }

    /// Logs in as a guest.
    pub async fn guest_login(&self, username: &str) -> Result<LoginInfo, ClientError> {
        validate::username(username)?;
        self.login_with(Credentials::Guest {
            username: username.to_owned(),
        })
        .await
    }

    /// Continues the session saved in `username`'s local store (after an app restart), falling
    /// back to `password` if the token no longer works. The outbox is sent once logged in.
    pub async fn resume_saved(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<LoginInfo, ClientError> {
        let path = store_path(&self.data_dir, &self.server, username);
        let token = if path.exists() {
            let store = store::Store::open(&path, username).await?;
            let token = store.get("token").await?;
            store.close().await;
            token
        } else {
            None
        };
        let credentials = password.map(|p| Credentials::Password {
            username: username.to_owned(),
            password: p.to_owned(),
        });
        match (token, credentials) {
            (Some(token), credentials) => {
                self.engine_call(|reply| Command::Resume {
                    token,
                    credentials,
                    reply,
                })
                .await
            }
            (None, Some(c)) => self.login_with(c).await,
            (None, None) => Err(ClientError::NotLoggedIn),
        }
    }

    /// Continues the saved session like [`Client::resume_saved`], but when the server cannot be
    /// reached within `wait`, opens the account offline instead ([`Client::open_offline`]): the
    /// user sees their history and can write (queued), and the engine keeps trying to resume.
    pub async fn resume_or_open_offline(
        &self,
        username: &str,
        wait: Duration,
    ) -> Result<LoginInfo, ClientError> {
        match tokio::time::timeout(wait, self.resume_saved(username, None)).await {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(ClientError::Offline | ClientError::Timeout | ClientError::Io(_))) | Err(_) => {
                self.open_offline(username).await
            }
            Ok(Err(e)) => Err(e),
        }
    }

    /// Opens an account whose session is saved here, without the server: the profile and friends
    /// from its last login (nobody online), history, search and sending (queued). The engine
    /// resumes the session as soon as the server answers.
    pub async fn open_offline(&self, username: &str) -> Result<LoginInfo, ClientError> {
        if !store_path(&self.data_dir, &self.server, username).exists() {
            return Err(ClientError::NotLoggedIn);
        }
        self.open_local(username).await?;
        let store = self.local_store()?;
        let Some(token) = store.get("token").await? else {
            // Logged out here: there is no session to come back to.
            return Err(ClientError::NotLoggedIn);
        };
        let _ = self.commands.send(Command::HoldSession { token }).await;
        let profile = store
            .get("profile")
            .await?
            .and_then(|json| serde_json::from_str::<Profile>(&json).ok())
            .unwrap_or_else(|| Profile {
                username: username.to_owned(),
                nickname: String::new(),
                motto: String::new(),
                phone: String::new(),
                is_guest: false,
            });
        let mut friends = store.friends().await?;
        for f in &mut friends {
            f.online = false;
        }
        Ok(LoginInfo {
            profile,
            online: Vec::new(),
            friends,
            incoming_requests: Vec::new(),
            outgoing_requests: Vec::new(),
            resumed: false,
            offline: true,
        })
    }

    /// Opens `username`'s local store without the server: history reads and `send_*` work
    /// offline, and what is sent waits in the outbox until a login succeeds.
    pub async fn open_local(&self, username: &str) -> Result<(), ClientError> {
        validate::username(username)?;
        let path = store_path(&self.data_dir, &self.server, username);
        let store = store::Store::open(&path, username).await?;
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
        Ok(())
    }

    /// Ends the session; the connection stays for another login.
    pub async fn logout(&self) -> Result<(), ClientError> {
        if let Ok(store) = self.local_store() {
            store.remove("token").await?;
        }
        self.expect_ok(ClientMessage::Logout { id: id() }).await?;
        self.transfers.stop_all();
        let _ = self.commands.send(Command::SessionEnded).await;
        Ok(())
    }

    /// Deletes the account on the server.
    pub async fn erase_account(&self, password: &str) -> Result<(), ClientError> {
        self.expect_ok(ClientMessage::EraseAccount {
            id: id(),
            password: password.to_owned(),
        })
        .await?;
        self.transfers.stop_all();
        let _ = self.commands.send(Command::SessionEnded).await;
        Ok(())
    }

    /// Changes profile fields that are `Some`.
    pub async fn update_profile(
        &self,
        nickname: Option<String>,
        motto: Option<String>,
        phone: Option<String>,
    ) -> Result<Profile, ClientError> {
        validate::profile_edit(nickname.as_deref(), motto.as_deref(), phone.as_deref())?;
        match self
            .request(ClientMessage::UpdateProfile {
                id: id(),
                nickname,
                motto,
                phone,
            })
            .await?
        {
            ServerMessage::ProfileUpdated { profile, .. } => Ok(profile),
            other => Err(unexpected(other)),
        }
    }
}
