//! What the user sees of a file transfer. The work itself (uploading, downloading, resuming) is
//! in [`crate::transfers`]; the chunk map is `natter_proto::RangeSet`, shared with the server.

use natter_proto::{FileKind, Target};
use serde::{Deserialize, Serialize};

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We send.
    Up,
    /// We receive.
    Down,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Incoming file offer, not answered yet.
    Offered,
    /// Bytes are moving to the server.
    Uploading,
    /// All bytes are on the server; the receiver has not accepted yet.
    Uploaded,
    /// Bytes are moving from the server.
    Downloading,
    /// Stopped by the user; resumes from where it stopped.
    Paused,
    /// Finished: sent (and accepted), or received and verified.
    Done,
    /// The receiver declined.
    Rejected,
    /// Cancelled by either side, or expired on the server.
    Cancelled,
    /// Stopped for good by an error (see `error`).
    Failed,
}

impl TransferState {
    /// Whether nothing more will happen to this transfer.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Done
                | TransferState::Rejected
                | TransferState::Cancelled
                | TransferState::Failed
        )
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransferState::Offered => "offered",
            TransferState::Uploading => "uploading",
            TransferState::Uploaded => "uploaded",
            TransferState::Downloading => "downloading",
            TransferState::Paused => "paused",
            TransferState::Done => "done",
            TransferState::Rejected => "rejected",
            TransferState::Cancelled => "cancelled",
            TransferState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "offered" => TransferState::Offered,
            "uploading" => TransferState::Uploading,
            "uploaded" => TransferState::Uploaded,
            "downloading" => TransferState::Downloading,
            "paused" => TransferState::Paused,
            "done" => TransferState::Done,
            "rejected" => TransferState::Rejected,
            "cancelled" => TransferState::Cancelled,
            "failed" => TransferState::Failed,
            _ => return None,
        })
    }
}

/// One transfer as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TransferInfo {
    /// The server's id; the `file_id` of the chat message that shows it.
    pub file_id: String,
    /// Sending or receiving.
    pub direction: Direction,
    /// A file offer or the full image of an image message.
    pub kind: FileKind,
    /// The conversation it belongs to.
    pub chat: Target,
    /// The other party (the sender for downloads; the receiver, or `""` for the square).
    pub peer: String,
    /// Sanitised file name.
    pub name: String,
    /// Size in bytes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    /// Where it stands.
    pub state: TransferState,
    /// Bytes transferred so far (on the server for uploads, on disk for downloads).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub done: u64,
    /// Current speed in bytes per second; 0 when not moving.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub rate: u64,
    /// The local file: the source of an upload, the destination of a download once chosen.
    pub path: Option<String>,
    /// The receiver accepted (uploads), or we did (downloads).
    pub accepted: bool,
    /// Why it failed, for `failed`.
    pub error: Option<String>,
    /// When it was created (ms since the epoch).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ts: i64,
}
