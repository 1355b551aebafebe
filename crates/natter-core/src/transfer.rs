//! What the user sees of a file transfer, and the byte-range arithmetic both directions share.
//!
//! The work itself (uploading, downloading, resuming) is in [`crate::transfers`].

use natter_proto::{ByteRange, FileKind, Target};
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

/// A set of byte ranges, kept ascending, disjoint and merged (the chunk map of seed 003).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// From the protocol's list (any order, may overlap).
    pub fn from_wire(have: &[ByteRange]) -> Self {
        let mut r = Ranges::default();
        for b in have {
            r.insert(b.start, b.end);
        }
        r
    }

    /// Adds `[start, end)`.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        kept.push((s, e));
        kept.sort_unstable();
        self.0 = kept;
    }

    /// Bytes covered.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(a, b)| b - a).sum()
    }

    /// Whether `[0, size)` is covered.
    pub fn covers(&self, size: u64) -> bool {
        size == 0 || self.0.first().is_some_and(|&(a, b)| a == 0 && b >= size)
    }

    /// The parts of `[0, size)` not covered, ascending.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(a, b) in &self.0 {
            if a >= size {
                break;
            }
            if a > at {
                gaps.push((at, a));
            }
            at = at.max(b);
        }
        if at < size {
            gaps.push((at, size));
        }
        gaps
    }

    /// The parts of `self` that `other` also covers.
    pub fn intersect(&self, other: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            for &(c, d) in other {
                let (s, e) = (a.max(c), b.min(d));
                if s < e {
                    out.push((s, e));
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The ranges, ascending.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_report_gaps() {
        let mut r = Ranges::default();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(20, 25);
        assert_eq!(r.as_slice(), &[(10, 25), (30, 40)]);
        assert_eq!(r.missing(50), vec![(0, 10), (25, 30), (40, 50)]);
        r.insert(0, 35);
        assert_eq!(r.as_slice(), &[(0, 40)]);
        assert!(r.covers(40));
        assert!(!r.covers(41));
        assert_eq!(r.total(), 40);
        assert_eq!(r.missing(40), vec![]);
        r.insert(5, 5);
        assert_eq!(r.as_slice(), &[(0, 40)]);
        let avail = Ranges::from_wire(&[ByteRange { start: 0, end: 100 }]);
        assert_eq!(avail.intersect(&r.missing(100)), vec![(40, 100)]);
    }
}
