//! Voice-call signalling: invite, ring, answer, hang up (seed 001 `voice`).
//!
//! The messages are part of protocol version 1 (docs/PROTOCOL.md); serving them is issue 8.
//! Until then a logged-in client gets `not_implemented`.

use natter_proto::ErrorCode;

use super::{session, ConnState, Handled, Refusal};

/// Answers every call request until calls are served.
pub fn not_yet(state: &ConnState) -> Handled {
    session(state)?;
    Err(Refusal::new(
        ErrorCode::NotImplemented,
        "voice calls are not served by this server version yet",
    ))
}
