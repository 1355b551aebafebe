//! The session: logging in (password, guest, token), keeping the session across reconnects, and
//! losing it. After a reconnect the engine resumes by token; a token the server no longer knows
//! falls back to the remembered password or guest name.

use natter_proto::{ClientMessage, ErrorCode, ServerMessage};

use super::{request_id, server_error, Engine, LoginReply, Pending};
use crate::store::Store;
use crate::{ClientError, ConnectionState, Event, LoginInfo};

/// How the engine logs in again after a reconnect, if the token no longer works.
#[derive(Clone)]
pub(crate) enum Credentials {
    Password { username: String, password: String },
    Guest { username: String },
}

impl Credentials {
    fn username(&self) -> &str {
        match self {
            Credentials::Password { username, .. } | Credentials::Guest { username } => username,
        }
    }

    fn login_message(&self) -> ClientMessage {
        match self {
            Credentials::Password { username, password } => ClientMessage::Login {
                id: request_id(),
                username: username.clone(),
                password: password.clone(),
            },
            Credentials::Guest { username } => ClientMessage::GuestLogin {
                id: request_id(),
                username: username.clone(),
            },
        }
    }
}

/// A session the engine keeps alive.
pub(super) struct Session {
    token: Option<String>,
    credentials: Option<Credentials>,
}

fn resume_message(token: String) -> ClientMessage {
    ClientMessage::Resume {
        id: request_id(),
        token,
    }
}

impl Engine {
    pub(super) async fn login(&mut self, credentials: Credentials, reply: LoginReply) {
        let pending = Pending::Login {
            credentials: Some(credentials.clone()),
            reply: Some(reply),
        };
        self.send_pending(credentials.login_message(), pending)
            .await;
    }

    pub(super) async fn resume(
        &mut self,
        token: String,
        credentials: Option<Credentials>,
        reply: LoginReply,
    ) {
        self.session = Some(Session {
            token: Some(token.clone()),
            credentials: credentials.clone(),
        });
        let pending = Pending::Login {
            credentials,
            reply: Some(reply),
        };
        self.send_pending(resume_message(token), pending).await;
    }

    /// Keeps a saved session and resumes it as soon as the server answers.
    pub(super) async fn hold_session(&mut self, token: String, greeted: bool) {
        if self.session.is_some() {
            return;
        }
        self.session = Some(Session {
            token: Some(token.clone()),
            credentials: None,
        });
        if greeted {
            let pending = Pending::Login {
                credentials: None,
                reply: None,
            };
            self.send_pending(resume_message(token), pending).await;
        } else if self.retry_at.is_none() && self.live.is_none() {
            self.schedule_retry();
        }
    }

    /// Logout or erase was answered: stop reconnecting and close the account's store.
    pub(super) fn end_session(&mut self) {
        self.session = None;
        self.attempts = 0;
        self.retry_at = None;
        if let Some(live) = self.live.as_mut() {
            live.logged_in = false;
        }
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// On a fresh connection: log the session back in, by token or by credentials.
    pub(super) async fn restore_session(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        let message = match (&session.token, &session.credentials) {
            (Some(token), _) => resume_message(token.clone()),
            (None, Some(c)) => c.login_message(),
            (None, None) => return,
        };
        let pending = Pending::Login {
            credentials: session.credentials.clone(),
            reply: None,
        };
        self.send_pending(message, pending).await;
    }

    /// The answer to `login`, `guest_login` or `resume`.
    pub(super) async fn login_reply(
        &mut self,
        credentials: Option<Credentials>,
        reply: Option<LoginReply>,
        message: ServerMessage,
    ) {
        match message {
            ServerMessage::LoginOk {
                token,
                profile,
                online,
                friends,
                incoming_requests,
                outgoing_requests,
                resumed,
                ..
            } => {
                let info = LoginInfo {
                    profile,
                    online,
                    friends,
                    incoming_requests,
                    outgoing_requests,
                    resumed,
                    offline: false,
                };
                self.login_ok(&token, credentials, reply, info).await
            }
            ServerMessage::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => {
                let error = server_error(code, message, retry_after_ms);
                match reply {
                    Some(reply) => self.login_refused(code, error, credentials, reply).await,
                    None => self.restore_refused(code, error, credentials).await,
                }
            }
            other => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(ClientError::Protocol(format!(
                        "unexpected reply to login: {other:?}"
                    ))));
                }
            }
        }
    }

    async fn login_ok(
        &mut self,
        token: &str,
        credentials: Option<Credentials>,
        reply: Option<LoginReply>,
        info: LoginInfo,
    ) {
        let opened = self
            .logged_in(&info.profile.username, token, credentials)
            .await;
        if let Err(e) = opened {
            tracing::error!(error = %e, "cannot open the local store");
            if let Some(reply) = reply {
                let _ = reply.send(Err(e));
            }
            return;
        }
        if let Some(store) = self.store() {
            if let Err(e) = store.save_friends(&info.friends).await {
                tracing::warn!(error = %e, "cannot cache friends");
            }
            // For starting offline next time (`Client::open_offline`).
            if let Ok(json) = serde_json::to_string(&info.profile) {
                if let Err(e) = store.set("profile", &json).await {
                    tracing::warn!(error = %e, "cannot cache the profile");
                }
            }
        }
        self.emit(Event::LoggedIn(info.clone()));
        if let Some(reply) = reply {
            let _ = reply.send(Ok(info));
        }
        self.flush_outbox().await;
    }

    /// A login someone waits for was refused: they decide, except that a failed resume with
    /// credentials falls back to them.
    async fn login_refused(
        &mut self,
        code: ErrorCode,
        error: ClientError,
        credentials: Option<Credentials>,
        reply: LoginReply,
    ) {
        if code == ErrorCode::SessionExpired {
            if let Some(c) = credentials {
                let pending = Pending::Login {
                    credentials: Some(c.clone()),
                    reply: Some(reply),
                };
                return self.send_pending(c.login_message(), pending).await;
            }
            self.session = None;
        }
        let _ = reply.send(Err(error));
    }

    /// The engine's own re-login after a reconnect was refused.
    async fn restore_refused(
        &mut self,
        code: ErrorCode,
        error: ClientError,
        credentials: Option<Credentials>,
    ) {
        match (code, credentials) {
            (ErrorCode::SessionExpired, Some(c)) => {
                if let Some(s) = self.session.as_mut() {
                    s.token = None;
                }
                let pending = Pending::Login {
                    credentials: Some(c.clone()),
                    reply: None,
                };
                self.send_pending(c.login_message(), pending).await;
            }
            // Transient on the server's side: a fresh connection, later, may work. The
            // same connection may not: the server can already count the session there.
            (ErrorCode::RateLimited | ErrorCode::Internal | ErrorCode::ServerBusy, _) => {
                self.drop_connection("the server could not restore the session yet")
            }
            _ => {
                tracing::warn!(error = %error, "the session could not be restored");
                self.session = None;
                self.emit(Event::SessionLost(error));
                self.set_state(ConnectionState::Offline);
            }
        }
    }

    /// Records a login: the account's store is open, the token saved, the state online.
    async fn logged_in(
        &mut self,
        username: &str,
        token: &str,
        credentials: Option<Credentials>,
    ) -> Result<(), ClientError> {
        let has_store = self
            .store()
            .is_some_and(|s| s.user().eq_ignore_ascii_case(username));
        if !has_store {
            let path = crate::store_path(&self.config.data_dir, &self.config.server, username);
            let store = Store::open(&path, username).await?;
            *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
        }
        let credentials = credentials.or_else(|| {
            self.session
                .as_ref()
                .and_then(|s| s.credentials.clone())
                .filter(|c| c.username().eq_ignore_ascii_case(username))
        });
        self.session = Some(Session {
            token: Some(token.to_owned()),
            credentials,
        });
        if let Some(store) = self.store() {
            store.set("token", token).await?;
        }
        if let Some(live) = self.live.as_mut() {
            live.logged_in = true;
        }
        self.attempts = 0;
        self.set_state(ConnectionState::Online);
        Ok(())
    }

    /// The server ended the session on this connection.
    pub(super) fn kicked(&mut self, reason: String) {
        tracing::warn!(%reason, "kicked by the server");
        if reason == "logged_in_elsewhere" {
            // Another device has the session now; do not fight it for the account.
            self.session = None;
        }
        self.emit(Event::Kicked { reason });
    }
}
