//! What the server answers, in forms tests can assert on: typed refusals, the reply structs the
//! convenience requests return, and small builders for targets and bodies.

use anyhow::{bail, Result};
use natter_proto::{
    ChatMessage, ErrorCode, Friend, FriendRequestInfo, MessageBody, MsgId, OnlineUser, Profile,
    ServerMessage, Target,
};

/// A failure reply from the server, kept typed so tests can assert its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The stable code.
    pub code: ErrorCode,
    /// The human-readable detail.
    pub message: String,
    /// For `rate_limited`.
    pub retry_after_ms: Option<u64>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server refused: {} ({})", self.code, self.message)
    }
}

impl std::error::Error for ServerError {}

/// The server error inside `err`, if the failure was a refusal by the server.
pub fn server_error(err: &anyhow::Error) -> Option<&ServerError> {
    err.chain().find_map(|e| e.downcast_ref::<ServerError>())
}

/// Asserts that `result` is a refusal with `code` and returns it; fails loudly otherwise.
pub fn expect_refusal<T: std::fmt::Debug>(
    result: Result<T>,
    code: ErrorCode,
) -> Result<ServerError> {
    match result {
        Ok(value) => {
            bail!("expected the server to refuse with `{code}`, but it succeeded: {value:?}")
        }
        Err(err) => match server_error(&err) {
            Some(refusal) if refusal.code == code => Ok(refusal.clone()),
            Some(refusal) => bail!(
                "expected refusal `{code}`, got `{}` ({})",
                refusal.code,
                refusal.message
            ),
            None => Err(err.context(format!(
                "expected refusal `{code}`, but the request failed otherwise"
            ))),
        },
    }
}

/// What a server reply may be turned into.
pub trait Reply: Sized {
    /// The error code when this is an `error` reply.
    fn error_code(&self) -> Option<ErrorCode>;
    /// Turns an `error` reply into an `Err(ServerError)`.
    fn into_result(self) -> Result<ServerMessage>;
    /// Asserts this is an `error` with `code`.
    fn expect_error(self, code: ErrorCode) -> Result<ServerError>;
    /// Asserts this is a plain `ok`.
    fn expect_ok(self) -> Result<()>;
}

impl Reply for ServerMessage {
    fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ServerMessage::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn into_result(self) -> Result<ServerMessage> {
        match self {
            ServerMessage::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => Err(ServerError {
                code,
                message,
                retry_after_ms,
            }
            .into()),
            other => Ok(other),
        }
    }

    fn expect_error(self, code: ErrorCode) -> Result<ServerError> {
        expect_refusal(self.into_result(), code)
    }

    fn expect_ok(self) -> Result<()> {
        match self.into_result()? {
            ServerMessage::Ok { .. } => Ok(()),
            other => bail!("expected `ok`, got {}", show(&other)),
        }
    }
}

/// One line of JSON for a message, shortened for failure reports.
pub fn show(message: &ServerMessage) -> String {
    let json = serde_json::to_string(message).unwrap_or_else(|e| format!("<unserialisable: {e}>"));
    shorten(&json, 300)
}

/// `text`, cut to at most `max` bytes on a character boundary.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// The reply to `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOk {
    /// Protocol version.
    pub version: u32,
    /// Server software.
    pub server: String,
    /// Send something at least this often.
    pub heartbeat_interval_ms: u64,
    /// Silence longer than this drops the connection.
    pub idle_timeout_ms: u64,
    /// Largest frame payload.
    pub max_frame_bytes: u64,
}

/// The reply to `login`, `guest_login` and `resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOk {
    /// Session token.
    pub token: String,
    /// Own profile.
    pub profile: Profile,
    /// Online users (self included).
    pub online: Vec<OnlineUser>,
    /// Online users in all.
    pub online_count: u64,
    /// Friends with presence.
    pub friends: Vec<Friend>,
    /// Requests to me.
    pub incoming_requests: Vec<FriendRequestInfo>,
    /// Requests from me.
    pub outgoing_requests: Vec<FriendRequestInfo>,
    /// A resumed session.
    pub resumed: bool,
}

impl LoginOk {
    /// Whether `username` is in the online list.
    pub fn lists_online(&self, username: &str) -> bool {
        self.online.iter().any(|u| u.username == username)
    }

    /// The friend entry for `username`.
    pub fn friend(&self, username: &str) -> Option<&Friend> {
        self.friends.iter().find(|f| f.username == username)
    }
}

/// The reply to `query_username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameStatus {
    /// Free to register or take as a guest.
    pub available: bool,
    /// Why not.
    pub reason: Option<ErrorCode>,
}

/// The reply to `friend_list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendList {
    /// Friends with presence.
    pub friends: Vec<Friend>,
    /// Requests to me.
    pub incoming_requests: Vec<FriendRequestInfo>,
    /// Requests from me.
    pub outgoing_requests: Vec<FriendRequestInfo>,
}

impl FriendList {
    /// The friend entry for `username`.
    pub fn friend(&self, username: &str) -> Option<&Friend> {
        self.friends.iter().find(|f| f.username == username)
    }
}

/// The reply to `send_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The client's id of the message.
    pub client_msg_id: String,
    /// The server's id.
    pub msg_id: MsgId,
    /// Server timestamp.
    pub ts: i64,
    /// The client id was already stored.
    pub duplicate: bool,
}

/// The reply to `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The conversation.
    pub with: Target,
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
    /// Older messages exist.
    pub has_more: bool,
}

impl HistoryPage {
    /// The texts of the page's text messages, oldest first.
    pub fn texts(&self) -> Vec<String> {
        self.messages.iter().filter_map(text_of).collect()
    }
}

/// The text of a text message.
pub fn text_of(message: &ChatMessage) -> Option<String> {
    match &message.body {
        MessageBody::Text { text } => Some(text.clone()),
        _ => None,
    }
}

/// A `receipt` push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Server id of the message.
    pub msg_id: MsgId,
    /// Sender's id of the message.
    pub client_msg_id: String,
    /// The recipient.
    pub to: String,
    /// When it was acked.
    pub ts: i64,
}

/// The conversation with a user.
pub fn user(username: &str) -> Target {
    Target::User {
        username: username.to_owned(),
    }
}

/// A text body.
pub fn text(text: &str) -> MessageBody {
    MessageBody::Text {
        text: text.to_owned(),
    }
}

/// A fresh client message id.
pub fn new_client_msg_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The password the world builders give `username`.
pub fn password_for(username: &str) -> String {
    format!("{username}-secret-pw")
}

pub(crate) fn accepted(reply: ServerMessage, client_msg_id: &str) -> Result<Accepted> {
    match reply.into_result()? {
        ServerMessage::MessageAccepted {
            client_msg_id: echoed,
            msg_id,
            ts,
            duplicate,
            ..
        } => {
            if echoed != client_msg_id {
                bail!("message_accepted echoes client_msg_id `{echoed}`, sent `{client_msg_id}`");
            }
            Ok(Accepted {
                client_msg_id: echoed,
                msg_id,
                ts,
                duplicate,
            })
        }
        other => bail!("expected message_accepted, got {}", show(&other)),
    }
}

/// Turns a `send_message` reply received through [`TestClient::submit`] into [`Accepted`].
pub fn accepted_reply(reply: ServerMessage, client_msg_id: &str) -> Result<Accepted> {
    accepted(reply, client_msg_id)
}
