//! natter-core: the headless Natter client engine.
//!
//! [`Client`] is a cheap handle; the work happens in one engine task ([`engine`]) that owns the
//! connection. Callers use async methods and subscribe to [`Event`]s. Outgoing messages are
//! written to the local [`store`] (history + outbox) before anything is sent, so nothing the user
//! typed is lost to a dropped connection, a server restart or an app restart; the server
//! deduplicates resends by client message id. TLS servers are pinned on first use
//! ([`transport`]). No Tauri, no UI: everything here is driven headless by tests and the CLI.

pub mod calls;
mod engine;
pub mod error;
pub mod image;
pub mod notice;
pub mod search;
pub mod store;
pub mod transfer;
mod transfers;
pub mod transport;
pub mod voice;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natter_proto::{
    validate, ChatMessage, ErrorCode, Friend, FriendRequestInfo, MessageBody, MsgId, OnlineUser,
    PresenceScope, Profile, ServerMessage, Target,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use calls::{AudioFactory, CallInfo, CallPhase};
pub use engine::EngineConfig;
use engine::{Command, Credentials, Engine};
pub use error::ClientError;
pub use store::{LocalMessage, MessageState, SearchHit};
pub use transfer::{Direction, TransferInfo, TransferState};
use transfers::Transfers;
pub use transport::{PinStore, ServerAddr};

/// Most message ids per `ack`.
pub const MAX_ACK: usize = 1000;

type SharedStore = Arc<Mutex<Option<store::Store>>>;

/// The connection as the UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Not connected and not trying (logged out, or never connected).
    Offline,
    /// Dialling or logging back in.
    Connecting,
    /// Connected (and logged in, if a session exists).
    Online,
}

/// What the engine tells its users.
#[derive(Debug, Clone)]
pub enum Event {
    /// The connection state changed.
    Connection(ConnectionState),
    /// Logged in (or resumed); the server's `login_ok`.
    LoggedIn(Box<ServerMessage>),
    /// A new message arrived and is stored (never emitted twice for one message).
    Message(LocalMessage),
    /// The server stored an outgoing message.
    Sent {
        /// Sender's id of the message.
        client_msg_id: String,
        /// Server id.
        msg_id: MsgId,
        /// Server time.
        ts: i64,
    },
    /// The server refused an outgoing message for good.
    Failed {
        /// Sender's id of the message.
        client_msg_id: String,
        /// Why.
        code: ErrorCode,
        /// Server's text.
        message: String,
    },
    /// The recipient's device has an outgoing message. The server repeats a receipt until it is
    /// acked, so this can come more than once for one message; the store's state does not change.
    Delivered {
        /// Sender's id of the message.
        client_msg_id: String,
        /// Server id.
        msg_id: MsgId,
        /// Recipient.
        to: String,
    },
    /// Someone came online.
    UserOnline(OnlineUser),
    /// Someone went offline.
    UserOffline {
        /// Who.
        username: String,
    },
    /// A friend request arrived.
    FriendRequest(FriendRequestInfo),
    /// A request of ours was answered.
    FriendResponse {
        /// Who answered.
        username: String,
        /// Accepted or not.
        accepted: bool,
        /// The new friend, when accepted.
        friend: Option<Friend>,
    },
    /// A friend removed us.
    FriendRemoved {
        /// Who.
        username: String,
    },
    /// The server ended the session (`logged_in_elsewhere`, `shutdown`, `lagging`).
    Kicked {
        /// Why.
        reason: String,
    },
    /// The session could not be restored after a reconnect; log in again.
    SessionLost(ClientError),
    /// The server's certificate changed; see [`Client::accept_certificate`].
    CertificateChanged(ClientError),
    /// A file transfer changed: new offer, progress (a few times a second), answer, end.
    Transfer(TransferInfo),
    /// A call changed phase (or mute).
    Call(CallInfo),
    /// Any other push (calls — a later issue).
    Other(Box<ServerMessage>),
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server.
    pub server: ServerAddr,
    /// Where per-account stores and certificate pins live.
    pub data_dir: PathBuf,
    /// Request timeout (default 10 s).
    pub request_timeout: Duration,
    /// Reconnect backoff bounds (default 200 ms … 10 s).
    pub backoff: (Duration, Duration),
    /// Presence pushes wanted.
    pub presence: PresenceScope,
}

impl ClientConfig {
    /// Defaults for a server and data dir.
    pub fn new(server: ServerAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server,
            data_dir: data_dir.into(),
            request_timeout: Duration::from_secs(10),
            backoff: (Duration::from_millis(200), Duration::from_secs(10)),
            presence: PresenceScope::All,
        }
    }
}

/// Path of the store for one account on one server.
pub fn store_path(data_dir: &Path, server: &ServerAddr, username: &str) -> PathBuf {
    let server_dir: String = server
        .key()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir
        .join("accounts")
        .join(server_dir)
        .join(format!("{}.db", validate::username_key(username)))
}

/// A registration form.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Nickname (optional).
    pub nickname: String,
    /// Motto (optional).
    pub motto: String,
    /// Phone (optional).
    pub phone: String,
}

/// What a login returns.
#[derive(Debug, Clone)]
pub struct LoginInfo {
    /// Own profile.
    pub profile: Profile,
    /// Online users.
    pub online: Vec<OnlineUser>,
    /// Friends with presence.
    pub friends: Vec<Friend>,
    /// Pending requests to us.
    pub incoming_requests: Vec<FriendRequestInfo>,
    /// Pending requests from us.
    pub outgoing_requests: Vec<FriendRequestInfo>,
    /// A resumed session.
    pub resumed: bool,
    /// Opened from the local store while the server could not be reached
    /// ([`Client::open_offline`]): profile and friends are from the last login, nobody is shown
    /// online, and the engine logs in as soon as the server answers.
    pub offline: bool,
}

/// Friends and pending requests.
#[derive(Debug, Clone)]
pub struct FriendList {
    /// Friends with presence.
    pub friends: Vec<Friend>,
    /// Pending requests to us.
    pub incoming: Vec<FriendRequestInfo>,
    /// Pending requests from us.
    pub outgoing: Vec<FriendRequestInfo>,
}

/// Handle to a running client engine. Cloning shares the engine.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<ConnectionState>,
    store: SharedStore,
    pins: Arc<PinStore>,
    server: ServerAddr,
    data_dir: PathBuf,
    transfers: Arc<Transfers>,
    calls: Arc<calls::Calls>,
    devices: Arc<Mutex<(Option<String>, Option<String>)>>,
}

/// The audio devices a call can use, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AudioDevices {
    /// Microphones.
    pub inputs: Vec<String>,
    /// Speakers.
    pub outputs: Vec<String>,
    /// The system's default microphone.
    pub default_input: Option<String>,
    /// The system's default speaker.
    pub default_output: Option<String>,
}

/// Cpal devices chosen by name (`None` = the system default), opened when a call starts.
fn cpal_audio(devices: Arc<Mutex<(Option<String>, Option<String>)>>) -> AudioFactory {
    Arc::new(move || {
        let (input, output) = devices.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A chosen device that is gone (unplugged headset) falls back to the system default:
        // a call with the laptop's microphone beats a call that cannot start.
        let source = voice::CpalSource::open(input.as_deref())
            .or_else(|e| {
                tracing::warn!(error = %e, "chosen microphone unavailable; using the default");
                voice::CpalSource::open(None)
            })
            .map_err(|e| ClientError::Io(format!("microphone: {e}")))?;
        let sink = voice::CpalSink::open(output.as_deref())
            .or_else(|e| {
                tracing::warn!(error = %e, "chosen speaker unavailable; using the default");
                voice::CpalSink::open(None)
            })
            .map_err(|e| ClientError::Io(format!("speaker: {e}")))?;
        Ok((
            Box::new(source) as Box<dyn voice::AudioSource>,
            Box::new(sink) as Box<dyn voice::AudioSink>,
        ))
    })
}

/// Largest image file [`Client::send_image`] reads (the server's own limit may be lower).
pub const MAX_IMAGE_BYTES: u64 = 64 * 1024 * 1024;

use engine::request_id as id;

/// Milliseconds since the epoch, as the protocol counts time.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn unexpected(reply: ServerMessage) -> ClientError {
    ClientError::Protocol(format!("unexpected reply: {reply:?}"))
}

impl Client {
    /// Starts the engine (it connects on first use). Needs a tokio runtime.
    pub fn start(config: ClientConfig) -> Self {
        let pins = Arc::new(PinStore::load(&config.data_dir.join("pins.json")));
        let (commands, rx) = mpsc::channel(256);
        let (events, _) = broadcast::channel(4096);
        let (state_tx, state) = watch::channel(ConnectionState::Offline);
        let store: SharedStore = Arc::new(Mutex::new(None));
        let (file_pushes, file_rx) = mpsc::unbounded_channel();
        let (call_pushes, call_rx) = mpsc::unbounded_channel();
        let devices = Arc::new(Mutex::new((None, None)));
        let calls = calls::Calls::new(
            commands.clone(),
            events.clone(),
            state.clone(),
            cpal_audio(devices.clone()),
        );
        tokio::spawn(calls.clone().run(call_rx));
        let transfers = Transfers::new(
            commands.clone(),
            store.clone(),
            events.clone(),
            state.clone(),
        );
        tokio::spawn(transfers.clone().run(file_rx));
        let engine = Engine::new(
            EngineConfig {
                server: config.server.clone(),
                data_dir: config.data_dir.clone(),
                request_timeout: config.request_timeout,
                backoff_min: config.backoff.0,
                backoff_max: config.backoff.1,
                presence: config.presence,
                client_name: concat!("natter-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            },
            pins.clone(),
            store.clone(),
            events.clone(),
            state_tx,
            file_pushes,
            call_pushes,
        );
        tokio::spawn(engine.run(rx));
        Self {
            commands,
            events,
            state,
            store,
            pins,
            server: config.server,
            data_dir: config.data_dir,
            transfers,
            calls,
            devices,
        }
    }

    /// Subscribes to events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current connection state.
    pub fn connection_state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Watches the connection state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    fn local_store(&self) -> Result<store::Store, ClientError> {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(ClientError::NotLoggedIn)
    }

    async fn engine_call(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<ServerMessage, ClientError>>) -> Command,
    ) -> Result<ServerMessage, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        self.engine_call(|reply| Command::Request { message, reply })
            .await
    }

    async fn expect_ok(&self, message: ClientMessage) -> Result<(), ClientError> {
        match self.request(message).await? {
            ServerMessage::Ok { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Trusts a server's new certificate (after [`ClientError::CertificateChanged`]).
    pub fn accept_certificate(&self, fingerprint: &str) -> Result<(), ClientError> {
        self.pins.set(&self.server.key(), fingerprint)
    }

    /// The pinned fingerprint of this client's server, if any.
    pub fn pinned_certificate(&self) -> Option<String> {
        self.pins.get(&self.server.key())
    }

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
        let reply = self
            .engine_call(|reply| Command::Login { credentials, reply })
            .await?;
        login_info(reply)
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
                let reply = self
                    .engine_call(|reply| Command::Resume {
                        token,
                        credentials,
                        reply,
                    })
                    .await?;
                login_info(reply)
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

    /// Queues a text message. It is in local history and the outbox when this returns, and is
    /// sent now or as soon as the connection is back — also after an app restart.
    pub async fn send_text(&self, to: Target, text: &str) -> Result<LocalMessage, ClientError> {
        validate::text_body(text)?;
        let store = self.local_store()?;
        let entry = store::OutboxEntry {
            client_msg_id: id(),
            to,
            body: MessageBody::Text {
                text: text.to_owned(),
            },
        };
        let message = store.enqueue(&entry, now_ms()).await?;
        let _ = self.commands.send(Command::FlushOutbox).await;
        Ok(message)
    }

    /// How many messages wait in the outbox (sent once the server has stored them).
    pub async fn outbox_len(&self) -> Result<usize, ClientError> {
        Ok(self.local_store()?.outbox().await?.len())
    }

    /// Sends a failed message again.
    pub async fn retry(&self, client_msg_id: &str) -> Result<(), ClientError> {
        let store = self.local_store()?;
        store.retry(client_msg_id, now_ms()).await?;
        let _ = self.commands.send(Command::FlushOutbox).await;
        Ok(())
    }

    /// Searches local history across every conversation, newest first; Chinese and English,
    /// terms of any length, case- and accent-insensitive. Works offline.
    pub async fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>, ClientError> {
        Ok(self
            .local_store()?
            .search(query, limit.clamp(1, 500))
            .await?)
    }

    /// Local history only: answers at once, offline too.
    pub async fn local_history(
        &self,
        with: &Target,
        before: Option<MsgId>,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        Ok(self.local_store()?.history(with, before, limit).await?)
    }

    /// Local messages newer than `after`, oldest first (paging forward from a search hit).
    pub async fn local_history_after(
        &self,
        with: &Target,
        after: MsgId,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        Ok(self
            .local_store()?
            .history_after(with, after, limit)
            .await?)
    }

    /// History merged with the server's: fetches the page from the server (when online), stores
    /// what the local store lacks, and returns the merged local page in server order.
    pub async fn history(
        &self,
        with: &Target,
        before: Option<MsgId>,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        let store = self.local_store()?;
        let message = ClientMessage::History {
            id: id(),
            with: with.clone(),
            before,
            limit: Some(limit.clamp(1, 200)),
        };
        match self.request(message).await {
            Ok(ServerMessage::HistoryPage { messages, .. }) => {
                for m in &messages {
                    store.save_incoming(m).await?;
                }
            }
            Ok(other) => return Err(unexpected(other)),
            Err(ClientError::Offline | ClientError::Timeout) => {}
            Err(e) => return Err(e),
        }
        Ok(store.history(with, before, limit).await?)
    }

    // ---- files and images ----------------------------------------------------------------

    /// Offers a file to a user: hashes it, opens the transfer, posts the offer card (a `file`
    /// message) and uploads in the background, resuming after any interruption.
    pub async fn send_file(&self, to: &str, path: &Path) -> Result<TransferInfo, ClientError> {
        let to = Target::User {
            username: to.to_owned(),
        };
        self.transfers
            .offer(to, path, None, natter_proto::FileKind::File, None)
            .await
    }

    /// Sends an image (PNG, JPEG, GIF or WebP) to a user or the square: checks it, makes the
    /// inline thumbnail, uploads the full image, then posts the `image` message.
    pub async fn send_image(&self, to: Target, path: &Path) -> Result<TransferInfo, ClientError> {
        let size = tokio::fs::metadata(path).await?.len();
        if size > MAX_IMAGE_BYTES {
            return Err(ClientError::Invalid {
                code: ErrorCode::FileTooLarge,
                message: format!(
                    "the image has {} MiB; at most {} MiB can be sent as an image (send it as a file)",
                    size >> 20,
                    MAX_IMAGE_BYTES >> 20
                ),
            });
        }
        let bytes = tokio::fs::read(path).await?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        self.send_image_bytes(to, &name, bytes).await
    }

    /// Sends image bytes (a pasted image) like [`Self::send_image`].
    pub async fn send_image_bytes(
        &self,
        to: Target,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<TransferInfo, ClientError> {
        if bytes.len() as u64 > MAX_IMAGE_BYTES {
            return Err(ClientError::Invalid {
                code: ErrorCode::FileTooLarge,
                message: format!(
                    "at most {} MiB can be sent as an image",
                    MAX_IMAGE_BYTES >> 20
                ),
            });
        }
        let (prepared, bytes) =
            tokio::task::spawn_blocking(move || image::prepare(&bytes).map(|p| (p, bytes)))
                .await
                .map_err(|e| ClientError::Io(e.to_string()))??;
        // Sent from a private copy: the original may move, and the sender shows it full size.
        let media = self.media_dir()?;
        tokio::fs::create_dir_all(&media).await?;
        let copy = media.join(format!("out-{}", id()));
        tokio::fs::write(&copy, &bytes).await?;
        let body = MessageBody::Image {
            file_id: String::new(),
            name: String::new(),
            mime: prepared.mime.to_owned(),
            size: bytes.len() as u64,
            width: prepared.width,
            height: prepared.height,
            thumbnail: prepared.thumbnail,
        };
        let name = if name.trim().is_empty() {
            "image"
        } else {
            name
        };
        self.transfers
            .offer(
                to,
                &copy,
                Some(name),
                natter_proto::FileKind::Image,
                Some(body),
            )
            .await
    }

    /// Accepts an offered file and downloads it to `dest` (verified against its SHA-256).
    pub async fn accept_file(
        &self,
        file_id: &str,
        dest: &Path,
    ) -> Result<TransferInfo, ClientError> {
        self.transfers.accept(file_id, dest).await
    }

    /// Declines an offered file; the sender is told.
    pub async fn reject_file(&self, file_id: &str) -> Result<(), ClientError> {
        self.transfers.reject(file_id).await
    }

    /// Pauses a moving transfer.
    pub async fn pause_transfer(&self, file_id: &str) -> Result<TransferInfo, ClientError> {
        self.transfers.pause(file_id).await
    }

    /// Resumes a paused or failed transfer from where it stopped.
    pub async fn resume_transfer(&self, file_id: &str) -> Result<TransferInfo, ClientError> {
        self.transfers.resume(file_id).await
    }

    /// Cancels a transfer for both sides.
    pub async fn cancel_transfer(&self, file_id: &str) -> Result<(), ClientError> {
        self.transfers.cancel(file_id).await
    }

    /// Every transfer of the logged-in account, newest first.
    pub async fn transfers(&self) -> Result<Vec<TransferInfo>, ClientError> {
        Ok(self
            .local_store()?
            .transfers()
            .await?
            .into_iter()
            .map(|t| t.info)
            .collect())
    }

    /// The full image of an image message on disk, downloading it first if needed.
    pub async fn image_file(&self, file_id: &str) -> Result<PathBuf, ClientError> {
        let media = self.media_dir()?;
        self.transfers.image(file_id, &media).await
    }

    /// Where this account keeps images (next to its store).
    fn media_dir(&self) -> Result<PathBuf, ClientError> {
        let store = self.local_store()?;
        Ok(store_path(&self.data_dir, &self.server, store.user()).with_extension("media"))
    }

    // ---- voice calls ----------------------------------------------------------------------

    /// Rings `to`; the call goes on through [`Event::Call`].
    pub async fn call(&self, to: &str) -> Result<CallInfo, ClientError> {
        self.calls.call(to).await
    }

    /// Accepts or declines the ringing call.
    pub async fn answer_call(&self, call_id: &str, accept: bool) -> Result<(), ClientError> {
        self.calls.answer(call_id, accept).await
    }

    /// Ends a call, or cancels one still ringing.
    pub async fn hang_up(&self, call_id: &str) -> Result<(), ClientError> {
        self.calls.hang_up(call_id).await
    }

    /// Mutes or unmutes the microphone (also for the next call's start).
    pub async fn set_muted(&self, muted: bool) -> Option<CallInfo> {
        self.calls.set_muted(muted).await
    }

    /// The call in progress, if any.
    pub async fn current_call(&self) -> Option<CallInfo> {
        self.calls.current().await
    }

    /// The microphone level of the call in progress, 0.0–1.0 (−60 dBFS … 0 dBFS).
    pub async fn call_level(&self) -> f32 {
        self.calls.input_level().await
    }

    /// Media statistics of the call in progress (packets, loss, path, delay).
    pub async fn call_stats(&self) -> Option<voice::MediaStats> {
        self.calls.stats().await
    }

    /// The microphones and speakers there are.
    pub fn audio_devices(&self) -> Result<AudioDevices, ClientError> {
        let all = voice::list_devices().map_err(|e| ClientError::Io(format!("audio: {e}")))?;
        let defaults = voice::default_devices();
        let names = |input: bool| {
            let mut v: Vec<String> = all
                .iter()
                .filter(|d| if input { d.is_input } else { d.is_output })
                .map(|d| d.name.clone())
                .collect();
            v.dedup();
            v
        };
        Ok(AudioDevices {
            inputs: names(true),
            outputs: names(false),
            default_input: defaults.input,
            default_output: defaults.output,
        })
    }

    /// Chooses the devices the next call opens (`None` = the system default).
    pub fn set_audio_devices(&self, input: Option<String>, output: Option<String>) {
        *self.devices.lock().unwrap_or_else(|p| p.into_inner()) = (input, output);
    }

    /// Sends call audio only through the server's relay, never straight to the peer: slower by a
    /// hop, but neither side learns the other's address.
    pub fn set_relay_only(&self, relay_only: bool) {
        self.calls.set_relay_only(relay_only);
    }

    /// Replaces how calls get their audio ends (tests: a WAV microphone and a recorder).
    pub fn set_audio_factory(&self, factory: AudioFactory) {
        self.calls.set_audio(factory);
    }

    /// Stops the engine.
    pub async fn shutdown(&self) {
        self.transfers.stop_all();
        let _ = self.commands.send(Command::Shutdown).await;
        self.commands.closed().await;
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(store) = store {
            store.close().await;
        }
    }
}

fn login_info(reply: ServerMessage) -> Result<LoginInfo, ClientError> {
    match reply {
        ServerMessage::LoginOk {
            profile,
            online,
            friends,
            incoming_requests,
            outgoing_requests,
            resumed,
            ..
        } => Ok(LoginInfo {
            profile,
            online,
            friends,
            incoming_requests,
            outgoing_requests,
            resumed,
            offline: false,
        }),
        other => Err(unexpected(other)),
    }
}

/// Re-exported so callers need not depend on natter-proto for the basics.
pub use natter_proto::ClientMessage;

/// A chat message as the server hands it out.
pub type ServerChatMessage = ChatMessage;
