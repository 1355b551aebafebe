//! Files: offers, accept/reject, resumable chunked transfers (seed 001 `file`, seed 003 `4001`–`8010`).
//!
//! The messages are part of protocol version 1 (docs/PROTOCOL.md); serving them is issue 7.
//! Until then a logged-in client gets `not_implemented`, so it can tell "not yet" from "broken".

use natter_proto::ErrorCode;

use super::{session, ConnState, Handled, Refusal};

/// Answers every file request until transfers are served.
pub fn not_yet(state: &ConnState) -> Handled {
    session(state)?;
    Err(Refusal::new(
        ErrorCode::NotImplemented,
        "file transfers are not served by this server version yet",
    ))
}
