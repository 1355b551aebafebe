//! Stable error codes carried by `error` frames (docs/PROTOCOL.md lists them with their meaning).
//! Clients map codes, never message texts, to what they show; a code once published keeps its
//! spelling.

use serde::{Deserialize, Serialize};

/// Why a request failed. Serialised in snake_case, e.g. `"username_taken"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame header announced more than the maximum frame size; the connection is closed.
    FrameTooLarge,
    /// The payload of a JSON frame is not UTF-8.
    InvalidUtf8,
    /// The payload is not a JSON object.
    InvalidJson,
    /// The `type` field names no message of this protocol (or is missing).
    UnknownType,
    /// A field is missing or has the wrong JSON type.
    InvalidMessage,
    /// A binary frame arrived without the header that announces it.
    UnexpectedBinary,
    /// The first message of a connection must be `hello`.
    HelloRequired,
    /// The client speaks a protocol version this server does not.
    UnsupportedVersion,
    /// The request needs a logged-in session.
    NotAuthenticated,
    /// The connection already has a session (log out first).
    AlreadyAuthenticated,
    /// Username breaks the rules: letters and digits only, 4–32 characters.
    InvalidUsername,
    /// Username is a reserved word (admin, administrator, guest, user, table).
    ReservedUsername,
    /// Password breaks the rules: 8–128 characters.
    InvalidPassword,
    /// A field value is out of bounds (too long, empty, malformed), see the message.
    InvalidField,
    /// The username belongs to a registered user or to a guest who is online.
    UsernameTaken,
    /// Wrong username or password.
    BadCredentials,
    /// The session token is unknown, expired, revoked or taken over by a newer login.
    SessionExpired,
    /// No such user.
    NoSuchUser,
    /// The two users are already friends.
    AlreadyFriends,
    /// The two users are not friends.
    NotFriends,
    /// A friend request between these users is already pending.
    RequestPending,
    /// No pending friend request from that user.
    NoSuchRequest,
    /// The action cannot target oneself (befriending or messaging yourself).
    SelfTarget,
    /// Too many requests; `retry_after_ms` says when to try again.
    RateLimited,
    /// The server is overloaded: the message was not stored; send it again (same
    /// `client_msg_id`) after `retry_after_ms`.
    SlowDown,
    /// The session may not do this (e.g. read a file that is not addressed to it).
    Forbidden,
    /// No such file, transfer or call.
    NotFound,
    /// Defined by the protocol, not served by this server version yet.
    NotImplemented,
    /// The file is larger than the server accepts.
    FileTooLarge,
    /// The user's stored transfers would exceed their storage quota.
    QuotaExceeded,
    /// The server is shutting down or at its connection limit.
    ServerBusy,
    /// Something failed inside the server; the request may be retried.
    Internal,
}

impl ErrorCode {
    /// Whether the connection is closed after this error is sent.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::FrameTooLarge | ErrorCode::UnsupportedVersion
        )
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        // Kept in sync with serde by `decode::tests::error_codes_match_serde`.
        match self {
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnexpectedBinary => "unexpected_binary",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::ReservedUsername => "reserved_username",
            ErrorCode::InvalidPassword => "invalid_password",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::AlreadyFriends => "already_friends",
            ErrorCode::NotFriends => "not_friends",
            ErrorCode::RequestPending => "request_pending",
            ErrorCode::NoSuchRequest => "no_such_request",
            ErrorCode::SelfTarget => "self_target",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
