//! natter-core: the headless Natter client engine.
//!
//! [`Client`] is a cheap handle; the work happens in one engine task ([`engine`]) that owns the
//! connection. Callers use async methods and subscribe to [`Event`]s. Outgoing messages are
//! written to the local [`store`] (history + outbox) before anything is sent, so nothing the user
//! typed is lost to a dropped connection, a server restart or an app restart; the server
//! deduplicates resends by client message id. TLS servers are pinned on first use
//! ([`transport`]). No Tauri, no UI: everything here is driven headless by tests and the CLI.

pub mod calls;
mod client;
mod engine;
pub mod error;
pub mod image;
#[cfg(feature = "host")]
pub mod lan;
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
    validate, ChatMessage, ErrorCode, Friend, FriendAnswer, FriendRequestInfo, MsgId, OnlineUser,
    PresenceScope, Profile,
};

pub use calls::{AudioFactory, CallInfo, CallPhase};
pub use client::{
    AudioDevices, Client, FriendList, HistoryWindow, Registration, MAX_IMAGE_BYTES, MAX_PAGE,
    MAX_SERVER_PAGE,
};
pub use engine::EngineConfig;
pub use error::ClientError;
pub use store::{LocalMessage, MessageState, SearchHit, Unread};
pub use transfer::{Direction, TransferInfo, TransferState};
pub use transfers::{sha256_file, UNRECORDED_MAX};
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
    /// Logged in (or resumed), first or after a reconnect.
    LoggedIn(LoginInfo),
    /// A new message arrived and is stored (never emitted twice for one message).
    Message(LocalMessage),
    /// The server stored an outgoing message.
    Sent(SentMessage),
    /// The server refused an outgoing message for good.
    Failed(FailedMessage),
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
    FriendResponse(FriendAnswer),
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
    /// The server reported an error about no request in particular.
    ServerError {
        /// Why.
        code: ErrorCode,
        /// Server's text.
        message: String,
    },
}

/// An outgoing message the server stored (`message_accepted`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SentMessage {
    /// Sender's id of the message.
    pub client_msg_id: String,
    /// Server id.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub msg_id: MsgId,
    /// Server time.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ts: i64,
}

/// An outgoing message the server refused for good; it stays in the store marked failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FailedMessage {
    /// Sender's id of the message.
    pub client_msg_id: String,
    /// Why (wire code).
    pub code: ErrorCode,
    /// Server's text.
    pub message: String,
}

/// What a login returns: the session as the UI starts it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "Session"))]
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
    /// The server resumed an earlier session.
    pub resumed: bool,
    /// Opened from the local store while the server could not be reached
    /// ([`Client::open_offline`]): profile and friends are from the last login, nobody is shown
    /// online, and the engine logs in as soon as the server answers.
    pub offline: bool,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server (of a cluster: the first node to try; local stores are keyed by it).
    pub server: ServerAddr,
    /// Further nodes of the same service, tried in turn when a connection is lost or cannot be
    /// made; the session resumes on whichever answers.
    pub fallbacks: Vec<ServerAddr>,
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
            fallbacks: Vec::new(),
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

/// Milliseconds since the epoch, as the protocol counts time.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Re-exported so callers need not depend on natter-proto for the basics.
pub use natter_proto::ClientMessage;

/// A chat message as the server hands it out.
pub type ServerChatMessage = ChatMessage;
