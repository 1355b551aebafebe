//! The Natter wire protocol (docs/PROTOCOL.md is the normative text).
//!
//! This crate owns everything both ends must agree on and nothing else: the frame codec
//! ([`frame`]), the typed messages ([`message`]), the stable error codes ([`ErrorCode`]) and the
//! input rules ([`validate`]). It does no I/O policy and knows no database.

pub mod decode;
pub mod error;
pub mod frame;
pub mod media;
pub mod message;
pub mod ranges;
pub mod validate;

pub use decode::{decode_client, decode_server, encode, DecodeError};
pub use error::ErrorCode;
pub use frame::{Frame, FrameCodec, FrameError, PayloadPool, DEFAULT_MAX_FRAME};
pub use message::*;
pub use ranges::RangeSet;

/// Protocol version carried by `hello`; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;
/// Oldest version a server still speaks: version 1 clients get presence one push per change
/// (§5.3); everything else is the same.
pub const MIN_PROTOCOL_VERSION: u32 = 1;
/// Default plain TCP port (seed 002).
pub const DEFAULT_PORT: u16 = 4004;
/// Default TLS port (seed 002).
pub const DEFAULT_TLS_PORT: u16 = 4399;
/// Default UDP port of the voice relay.
pub const DEFAULT_RELAY_PORT: u16 = 4005;
