//! The bench's own view of the wire format (docs/PROTOCOL.md): the few requests it sends and
//! the replies and pushes it reads, and nothing else.
//!
//! Why not `natter_proto`'s enums: the bench must speak what the protocol is becoming (version 2
//! `hello`, `ack` without an `id`, batched `presence` pushes, `slow_down` with `retry_after_ms`)
//! against servers that may not speak it yet, and fall back instead of failing to decode. Its
//! own small, lenient types (unknown fields and message types are ignored) keep it working
//! across that change; the framing is still `natter_proto::FrameCodec`.

use bytes::BytesMut;
use natter_proto::{Frame, FrameCodec};
use serde::{Deserialize, Serialize};
use tokio_util::codec::Encoder;

/// The protocol version the bench asks for first; it falls back to 1 when refused.
pub const WANTED_VERSION: u32 = 2;

/// A request the bench sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request<'a> {
    Hello {
        id: &'a str,
        version: u32,
        client: &'a str,
        presence: &'a str,
    },
    GuestLogin {
        id: &'a str,
        username: &'a str,
    },
    Register {
        id: &'a str,
        username: &'a str,
        password: &'a str,
    },
    Login {
        id: &'a str,
        username: &'a str,
        password: &'a str,
    },
    Resume {
        id: &'a str,
        token: &'a str,
    },
    SendMessage {
        id: &'a str,
        client_msg_id: &'a str,
        to: UserTarget<'a>,
        body: TextBody<'a>,
    },
    /// Without `id` (protocol version 2) the server sends no `ok` for it.
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        msg_ids: &'a [i64],
    },
    Heartbeat {
        id: &'a str,
    },
}

/// `{"kind":"user","username":…}`.
#[derive(Debug, Serialize)]
pub struct UserTarget<'a> {
    pub kind: &'static str,
    pub username: &'a str,
}

impl<'a> UserTarget<'a> {
    pub fn user(username: &'a str) -> Self {
        Self {
            kind: "user",
            username,
        }
    }
}

/// `{"kind":"text","text":…}`.
#[derive(Debug, Serialize)]
pub struct TextBody<'a> {
    pub kind: &'static str,
    pub text: &'a str,
}

impl<'a> TextBody<'a> {
    pub fn text(text: &'a str) -> Self {
        Self { kind: "text", text }
    }
}

/// Appends `req` as one JSON frame to `buf`.
pub fn put(buf: &mut BytesMut, req: &Request<'_>) {
    let json = serde_json::to_vec(req).expect("bench requests serialise to JSON");
    FrameCodec::default()
        .encode(Frame::Json(json.into()), buf)
        .expect("bench frames are far below the frame limit");
}

/// A reply or push the bench reads; every other type is [`Incoming::Other`].
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Incoming {
    HelloOk {
        version: u32,
        heartbeat_interval_ms: u64,
    },
    LoginOk {
        token: String,
        #[serde(default)]
        online: Vec<OnlineUser>,
    },
    Registered {},
    Ok {},
    HeartbeatAck {},
    Heartbeat {},
    Error {
        #[serde(default)]
        id: Option<String>,
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
    Message {
        message: ChatMessage,
    },
    MessageAccepted {
        client_msg_id: String,
        msg_id: i64,
        #[serde(default)]
        duplicate: bool,
    },
    Receipt {
        msg_id: i64,
        client_msg_id: String,
    },
    UserOnline {
        user: OnlineUser,
    },
    UserOffline {
        username: String,
    },
    /// Version 2, `presence: "all"`: changes since the last batch, applied in order.
    Presence {
        #[serde(default)]
        online: Vec<OnlineUser>,
        #[serde(default)]
        offline: Vec<String>,
    },
    Kicked {
        reason: String,
    },
    #[serde(other)]
    Other,
}

/// The part of `OnlineUser` the bench needs.
#[derive(Debug, Deserialize)]
pub struct OnlineUser {
    pub username: String,
}

/// The part of `ChatMessage` the bench needs.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub msg_id: i64,
    pub from: String,
    pub body: Body,
}

/// A message body; only text bodies carry the bench's stamps.
#[derive(Debug, Deserialize)]
pub struct Body {
    #[serde(default)]
    pub text: Option<String>,
}

/// Decodes one frame's payload.
pub fn decode(payload: &[u8]) -> Result<Incoming, serde_json::Error> {
    serde_json::from_slice(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_ack_has_no_id() {
        let json = serde_json::to_string(&Request::Ack {
            id: None,
            msg_ids: &[1, 2],
        })
        .unwrap();
        assert_eq!(json, r#"{"type":"ack","msg_ids":[1,2]}"#);
    }

    #[test]
    fn reads_slow_down_presence_and_unknown_types() {
        let e = decode(
            br#"{"type":"error","id":"s1","code":"slow_down","message":"m","retry_after_ms":40}"#,
        )
        .unwrap();
        assert!(
            matches!(e, Incoming::Error { code, retry_after_ms: Some(40), .. } if code == "slow_down")
        );
        let p = decode(br#"{"type":"presence","online":[{"username":"a","nickname":"","is_guest":true}],"offline":["b"]}"#)
            .unwrap();
        assert!(
            matches!(p, Incoming::Presence { online, offline } if online.len() == 1 && offline == ["b"])
        );
        assert!(matches!(
            decode(br#"{"type":"brand_new","x":1}"#).unwrap(),
            Incoming::Other
        ));
        let e = decode(br#"{"type":"error","id":null,"code":"invalid_message","message":"m"}"#)
            .unwrap();
        assert!(matches!(e, Incoming::Error { id: None, .. }));
    }
}
