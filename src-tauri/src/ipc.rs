//! The types that cross the IPC boundary. TypeScript declarations for all of them are generated
//! into `ui/src/bindings.ts` (see `bindings.rs`); the UI never writes them by hand.

use natter_core::calls::CallInfo;
use natter_core::lan::LanServer;
use natter_core::{
    ClientError, ConnectionState, FailedMessage, LocalMessage, LoginInfo, SentMessage, TransferInfo,
};
use natter_proto::{ErrorCode, FriendAnswer, FriendRequestInfo, OnlineUser, Target};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which server to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ServerSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port (4004 plain, 4399 TLS by default).
    pub port: u16,
    /// Use TLS (the certificate is pinned on first use).
    pub tls: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: natter_proto::DEFAULT_TLS_PORT,
            tls: true,
        }
    }
}

/// Light, dark, or whatever the OS uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Follow the OS.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// What the app remembers between runs (`settings.json` in the app-data dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct Settings {
    /// The last server connected to.
    pub server: ServerSettings,
    /// The last account that logged in with a password (resumed at start).
    pub last_user: Option<String>,
    /// `en` or `zh-CN`; `None` follows the OS.
    pub language: Option<String>,
    /// Colour scheme.
    pub theme: Theme,
    /// Desktop notifications while the window is not focused.
    pub notifications: bool,
    /// Host a server on this computer, at every start, until the user stops it.
    pub hosting: bool,
    /// The microphone for calls, by name; `None` is the system default.
    pub audio_input: Option<String>,
    /// The speaker for calls, by name; `None` is the system default.
    pub audio_output: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            last_user: None,
            language: None,
            theme: Theme::System,
            notifications: true,
            hosting: false,
            audio_input: None,
            audio_output: None,
        }
    }
}

/// What the UI needs at start.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    /// Saved settings.
    pub settings: Settings,
    /// App version.
    pub version: String,
    /// The OS language tag (for `language: null`).
    pub os_language: String,
    /// Where stores live (shown in settings).
    pub data_dir: String,
}

/// The answer to "connect".
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectInfo {
    /// The pinned certificate fingerprint (TLS), after the first contact.
    pub fingerprint: Option<String>,
}

/// Whether a username can be registered.
#[derive(Debug, Clone, Serialize, TS)]
pub struct UsernameCheck {
    /// Free to register.
    pub available: bool,
    /// Why not (`username_taken`, `reserved_username`, `invalid_username`…).
    pub reason: Option<ErrorCode>,
}

/// Profile fields to change (`null` keeps the current value).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ProfileEdit {
    /// New nickname.
    pub nickname: Option<String>,
    /// New motto.
    pub motto: Option<String>,
    /// New phone.
    pub phone: Option<String>,
}

/// Why a command failed. `code` is a wire [`ErrorCode`] in snake_case or one of the client's
/// own: `offline`, `timeout`, `not_logged_in`, `not_connected`, `certificate_changed`, `network`,
/// `tls`, `protocol`, `store`, `closed`, `settings`, `invalid_server`, `checksum`.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IpcError {
    /// Stable code for the UI to translate.
    pub code: String,
    /// English detail (shown when the UI has no translation).
    pub message: String,
    /// For `certificate_changed`: the new fingerprint to trust.
    pub fingerprint: Option<String>,
}

impl IpcError {
    /// An error of the shell itself.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            fingerprint: None,
        }
    }
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".to_owned())
}

impl From<ClientError> for IpcError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        let (code, fingerprint) = match &e {
            ClientError::Server { code, .. } | ClientError::Invalid { code, .. } => {
                (code_name(*code), None)
            }
            ClientError::CertificateChanged { actual, .. } => {
                ("certificate_changed".to_owned(), Some(actual.clone()))
            }
            ClientError::Timeout => ("timeout".to_owned(), None),
            ClientError::Offline => ("offline".to_owned(), None),
            ClientError::NotLoggedIn => ("not_logged_in".to_owned(), None),
            ClientError::Io(_) => ("network".to_owned(), None),
            ClientError::Tls(_) => ("tls".to_owned(), None),
            ClientError::Protocol(_) => ("protocol".to_owned(), None),
            ClientError::Store(_) => ("store".to_owned(), None),
            ClientError::Closed => ("closed".to_owned(), None),
            ClientError::Checksum { .. } => ("checksum".to_owned(), None),
        };
        Self {
            code,
            message,
            fingerprint,
        }
    }
}

/// Everything the engine tells the UI, on the `natter://event` channel: [`natter_core::Event`]
/// one for one, each variant's payload named so the JSON is an object with a `type`.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppEvent {
    /// The connection state changed.
    Connection {
        /// New state.
        state: ConnectionState,
    },
    /// Logged in (or resumed), first or after a reconnect.
    LoggedIn {
        /// The session as the server started it.
        session: LoginInfo,
    },
    /// A message arrived (or was fetched) and is stored.
    Message {
        /// The message.
        message: LocalMessage,
    },
    /// The server stored one of our messages.
    Sent(SentMessage),
    /// The server refused one of our messages.
    Failed(FailedMessage),
    /// The recipient's device has one of our messages.
    Delivered {
        /// Our id of it.
        client_msg_id: String,
        /// Server id.
        #[ts(type = "number")]
        msg_id: i64,
    },
    /// Someone came online.
    UserOnline {
        /// Who.
        user: OnlineUser,
    },
    /// Someone went offline.
    UserOffline {
        /// Who.
        username: String,
    },
    /// A friend request arrived.
    FriendRequest {
        /// The request.
        request: FriendRequestInfo,
    },
    /// A request of ours was answered.
    FriendResponse(FriendAnswer),
    /// A friend removed us.
    FriendRemoved {
        /// Who.
        username: String,
    },
    /// The server ended our session (`logged_in_elsewhere`, `shutdown`, `lagging`).
    Kicked {
        /// Why.
        reason: String,
    },
    /// The session could not be restored; log in again.
    SessionLost {
        /// Why.
        error: IpcError,
    },
    /// The server's certificate changed; nothing is sent until the user trusts it.
    CertificateChanged {
        /// Why (with the new fingerprint).
        error: IpcError,
    },
    /// A file transfer changed: a new offer, progress (a few times a second), an answer, its end.
    Transfer {
        /// Where it stands now.
        transfer: TransferInfo,
    },
    /// A call changed: every phase (calling, ringing, connecting, active, ended) and every
    /// mute change.
    Call {
        /// Where it stands now.
        call: CallInfo,
    },
    /// The servers announced on the LAN changed (one appeared, left or changed).
    LanServers {
        /// All of them now.
        servers: Vec<LanServer>,
    },
    /// The server reported an error about no request in particular.
    ServerError {
        /// Why (wire code).
        code: ErrorCode,
        /// Server's text.
        message: String,
    },
}

impl From<natter_core::Event> for AppEvent {
    fn from(event: natter_core::Event) -> Self {
        use natter_core::Event as E;
        match event {
            E::Connection(state) => AppEvent::Connection { state },
            E::LoggedIn(session) => AppEvent::LoggedIn { session },
            E::Message(message) => AppEvent::Message { message },
            E::Sent(sent) => AppEvent::Sent(sent),
            E::Failed(failed) => AppEvent::Failed(failed),
            // The UI knows the recipient from the message it already holds.
            E::Delivered {
                client_msg_id,
                msg_id,
                ..
            } => AppEvent::Delivered {
                client_msg_id,
                msg_id,
            },
            E::UserOnline(user) => AppEvent::UserOnline { user },
            E::UserOffline { username } => AppEvent::UserOffline { username },
            E::FriendRequest(request) => AppEvent::FriendRequest { request },
            E::FriendResponse(answer) => AppEvent::FriendResponse(answer),
            E::FriendRemoved { username } => AppEvent::FriendRemoved { username },
            E::Kicked { reason } => AppEvent::Kicked { reason },
            E::SessionLost(e) => AppEvent::SessionLost { error: e.into() },
            E::CertificateChanged(e) => AppEvent::CertificateChanged { error: e.into() },
            E::Transfer(transfer) => AppEvent::Transfer { transfer },
            E::Call(call) => AppEvent::Call { call },
            E::ServerError { code, message } => AppEvent::ServerError { code, message },
        }
    }
}

/// Re-exported for the command signatures.
pub type Conversation = Target;
