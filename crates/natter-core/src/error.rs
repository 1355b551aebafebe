//! Errors a caller of natter-core can act on.

use natter_proto::ErrorCode;

/// Everything that can go wrong in the client engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request; `code` says why (see PROTOCOL.md §8).
    #[error("{code}: {message}")]
    Server {
        /// Stable code.
        code: ErrorCode,
        /// Server's text.
        message: String,
        /// For `rate_limited`.
        retry_after_ms: Option<u64>,
    },
    /// The server's TLS certificate differs from the one pinned for it; nothing was sent.
    /// Call [`crate::Client::accept_certificate`] with `actual` to trust the new one.
    #[error("the certificate of {server} changed (pinned {expected}, now {actual}); refusing to connect")]
    CertificateChanged {
        /// `host:port`.
        server: String,
        /// Pinned fingerprint.
        expected: String,
        /// Presented fingerprint.
        actual: String,
    },
    /// No answer in time.
    #[error("the server did not answer in time")]
    Timeout,
    /// Not connected (or the connection dropped before the answer came).
    #[error("not connected to the server")]
    Offline,
    /// The request needs a logged-in session.
    #[error("not logged in")]
    NotLoggedIn,
    /// A socket error.
    #[error("network: {0}")]
    Io(String),
    /// TLS failed for a reason other than a changed certificate.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The local database failed.
    #[error("{0}")]
    Store(String),
    /// Input refused before sending (same rules as the server).
    #[error("{message}")]
    Invalid {
        /// The code the server would have sent.
        code: ErrorCode,
        /// What is wrong.
        message: String,
    },
    /// The engine has shut down.
    #[error("the client has shut down")]
    Closed,
    /// Downloaded bytes do not hash to what the sender named: they were changed or damaged on
    /// the server or on the way, and were not kept.
    #[error("the received file does not match its checksum (expected {expected}, got {actual}); it was not kept")]
    Checksum {
        /// The SHA-256 the sender named and the server verified.
        expected: String,
        /// What the received bytes hash to.
        actual: String,
    },
}

impl ClientError {
    /// The wire code behind this error, if it has one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } | ClientError::Invalid { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e.to_string())
    }
}

impl From<crate::store::StoreError> for ClientError {
    fn from(e: crate::store::StoreError) -> Self {
        ClientError::Store(e.to_string())
    }
}

impl From<natter_proto::validate::Invalid> for ClientError {
    fn from(e: natter_proto::validate::Invalid) -> Self {
        ClientError::Invalid {
            code: e.code,
            message: e.message,
        }
    }
}
