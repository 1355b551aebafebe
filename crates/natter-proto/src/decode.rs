//! JSON payload ↔ typed message, with errors precise enough to answer bad input with the right
//! code: invalid UTF-8, invalid JSON, unknown `type`, or a known type with bad fields.

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::{ClientMessage, ErrorCode, Frame, ServerMessage, CLIENT_TYPES, SERVER_TYPES};

/// Why a JSON payload is not a valid message; carries the request id when one could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The `id` field, if the payload was a JSON object with a string `id`.
    pub id: Option<String>,
    /// Which rule was broken.
    pub code: ErrorCode,
    /// Detail for humans.
    pub message: String,
}

fn decode_with<T: DeserializeOwned>(payload: &[u8], known: &[&str]) -> Result<T, DecodeError> {
    // The fast path parses once; only a failure pays for the diagnosis below.
    match serde_json::from_slice(payload) {
        Ok(message) => Ok(message),
        Err(err) => Err(diagnose(payload, known, err)),
    }
}

fn diagnose(payload: &[u8], known: &[&str], err: serde_json::Error) -> DecodeError {
    let fail = |id, code, message| DecodeError { id, code, message };
    let text = match std::str::from_utf8(payload) {
        Ok(text) => text,
        Err(e) => {
            return fail(
                None,
                ErrorCode::InvalidUtf8,
                format!("payload is not UTF-8: {e}"),
            )
        }
    };
    let object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => {
            return fail(
                None,
                ErrorCode::InvalidJson,
                "payload is not a JSON object".into(),
            )
        }
        Err(e) => {
            return fail(
                None,
                ErrorCode::InvalidJson,
                format!("payload is not JSON: {e}"),
            )
        }
    };
    let id = object.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    match object.get("type") {
        None => fail(id, ErrorCode::UnknownType, "missing `type` field".into()),
        Some(serde_json::Value::String(kind)) if !known.contains(&kind.as_str()) => fail(
            id,
            ErrorCode::UnknownType,
            format!("unknown message type `{kind}`"),
        ),
        Some(serde_json::Value::String(kind)) => fail(
            id,
            ErrorCode::InvalidMessage,
            format!("bad `{kind}` message: {err}"),
        ),
        Some(other) => fail(
            id,
            ErrorCode::UnknownType,
            format!("`type` must be a string, got {other}"),
        ),
    }
}

/// Decodes a client → server JSON payload.
pub fn decode_client(payload: &[u8]) -> Result<ClientMessage, DecodeError> {
    decode_with(payload, CLIENT_TYPES)
}

/// Decodes a server → client JSON payload.
pub fn decode_server(payload: &[u8]) -> Result<ServerMessage, DecodeError> {
    decode_with(payload, SERVER_TYPES)
}

/// Serialises a message into a JSON frame.
pub fn encode<T: Serialize>(message: &T) -> Frame {
    // Serialising our own message types cannot fail: every map key is a string.
    let json = serde_json::to_vec(message).expect("protocol types serialise to JSON");
    Frame::Json(Bytes::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn client_samples() -> Vec<ClientMessage> {
        use ClientMessage::*;
        let id = || "r1".to_string();
        vec![
            Hello {
                id: id(),
                version: 1,
                client: "t".into(),
                presence: PresenceScope::Friends,
            },
            QueryUsername {
                id: id(),
                username: "alice".into(),
            },
            Register {
                id: id(),
                username: "alice".into(),
                password: "pw".into(),
                nickname: "爱丽丝".into(),
                motto: "m".into(),
                phone: "+86 1".into(),
            },
            Login {
                id: id(),
                username: "a".into(),
                password: "p".into(),
            },
            GuestLogin {
                id: id(),
                username: "g".into(),
            },
            Resume {
                id: id(),
                token: "t".into(),
            },
            Logout { id: id() },
            EraseAccount {
                id: id(),
                password: "p".into(),
            },
            UpdateProfile {
                id: id(),
                nickname: Some("n".into()),
                motto: None,
                phone: None,
            },
            Heartbeat { id: id() },
            ListOnline { id: id() },
            FriendRequest {
                id: id(),
                to: "b".into(),
                message: "hi".into(),
            },
            FriendRespond {
                id: id(),
                from: "b".into(),
                accept: true,
            },
            FriendDelete {
                id: id(),
                username: "b".into(),
            },
            FriendList { id: id() },
            SendMessage {
                id: id(),
                client_msg_id: "c".into(),
                to: Target::User {
                    username: "b".into(),
                },
                body: MessageBody::Text {
                    text: "我在说话".into(),
                },
            },
            SendMessage {
                id: id(),
                client_msg_id: "c".into(),
                to: Target::Square,
                body: MessageBody::Image {
                    file_id: "f".into(),
                    name: "a.png".into(),
                    mime: "image/png".into(),
                    size: 3,
                    width: 1,
                    height: 1,
                    thumbnail: "AAAA".into(),
                    sha256: Some("ab".repeat(32)),
                },
            },
            Ack {
                id: Some(id()),
                msg_ids: vec![1, 2],
            },
            Ack {
                id: None,
                msg_ids: vec![3],
            },
            History {
                id: id(),
                with: Target::Square,
                before: Some(9),
                limit: Some(10),
            },
            FileOffer {
                id: id(),
                to: Target::User {
                    username: "b".into(),
                },
                name: "n".into(),
                size: 1,
                sha256: Some("00".into()),
                kind: FileKind::Image,
            },
            FileComplete {
                id: id(),
                file_id: "f".into(),
                sha256: "00".into(),
            },
            FileAnswer {
                id: id(),
                file_id: "f".into(),
                accept: false,
            },
            FileStatus {
                id: id(),
                file_id: "f".into(),
            },
            FileChunk {
                id: id(),
                file_id: "f".into(),
                offset: 0,
                len: 1,
            },
            FileFetch {
                id: id(),
                file_id: "f".into(),
                offset: 0,
                len: None,
            },
            FileCancel {
                id: id(),
                file_id: "f".into(),
            },
            CallInvite {
                id: id(),
                to: "b".into(),
            },
            CallAnswer {
                id: id(),
                call_id: "c".into(),
                accept: true,
            },
            CallHangup {
                id: id(),
                call_id: "c".into(),
            },
        ]
    }

    fn server_samples() -> Vec<ServerMessage> {
        use ServerMessage::*;
        let id = || "r1".to_string();
        let profile = Profile {
            username: "alice".into(),
            nickname: "".into(),
            motto: "".into(),
            phone: "".into(),
            is_guest: false,
        };
        let online = OnlineUser {
            username: "a".into(),
            nickname: "".into(),
            is_guest: true,
        };
        let friend = Friend {
            username: "b".into(),
            nickname: "".into(),
            motto: "".into(),
            is_guest: false,
            online: true,
        };
        let request = FriendRequestInfo {
            from: "a".into(),
            to: "b".into(),
            message: "".into(),
            ts: 1,
        };
        let chat = ChatMessage {
            msg_id: 1,
            client_msg_id: "c".into(),
            from: "a".into(),
            from_guest: false,
            to: Target::User {
                username: "b".into(),
            },
            ts: 5,
            body: MessageBody::File {
                file_id: "f".into(),
                name: "n".into(),
                size: 1,
                sha256: "0".into(),
            },
        };
        let media = CallMedia {
            peer_addr: None,
            relay_addr: "127.0.0.1:1".into(),
            token: "t".into(),
        };
        vec![
            HelloOk {
                id: id(),
                version: 1,
                server: "s".into(),
                heartbeat_interval_ms: 1,
                idle_timeout_ms: 2,
                max_frame_bytes: 3,
                presence_interval_ms: 4,
            },
            Ok { id: id() },
            ServerMessage::error(Some("r1"), ErrorCode::RateLimited, "slow down"),
            Error {
                id: None,
                code: ErrorCode::RateLimited,
                message: "x".into(),
                retry_after_ms: Some(5),
            },
            UsernameStatus {
                id: id(),
                username: "a".into(),
                available: false,
                reason: Some(ErrorCode::UsernameTaken),
            },
            Registered {
                id: id(),
                profile: profile.clone(),
            },
            LoginOk {
                id: id(),
                token: "t".into(),
                profile: profile.clone(),
                online: vec![online.clone()],
                online_count: 1,
                friends: vec![friend.clone()],
                incoming_requests: vec![request.clone()],
                outgoing_requests: vec![],
                resumed: false,
            },
            ProfileUpdated { id: id(), profile },
            HeartbeatAck { id: id(), ts: 1 },
            OnlineList {
                id: id(),
                users: vec![online.clone()],
            },
            FriendListReply {
                id: id(),
                friends: vec![friend.clone()],
                incoming_requests: vec![],
                outgoing_requests: vec![request.clone()],
            },
            MessageAccepted {
                id: id(),
                client_msg_id: "c".into(),
                msg_id: 1,
                ts: 2,
                duplicate: true,
            },
            HistoryPage {
                id: id(),
                with: Target::Square,
                messages: vec![chat.clone()],
                has_more: false,
            },
            FileOfferCreated {
                id: id(),
                file_id: "f".into(),
                chunk_size: 4,
            },
            FileStatusReply {
                id: id(),
                file_id: "f".into(),
                size: 9,
                chunk_size: 4,
                have: vec![ByteRange { start: 0, end: 4 }],
                complete: false,
                accepted: true,
                sha256: "cd".repeat(32),
            },
            FileData {
                id: id(),
                file_id: "f".into(),
                offset: 0,
                len: 4,
            },
            CallRinging {
                id: id(),
                call_id: "c".into(),
            },
            Heartbeat { ts: 1 },
            UserOnline { user: online },
            UserOffline {
                username: "a".into(),
            },
            Presence {
                online: vec![OnlineUser {
                    username: "b".into(),
                    nickname: "B".into(),
                    is_guest: false,
                }],
                offline: vec!["a".into()],
            },
            FriendRequestReceived { request },
            FriendResponse(FriendAnswer {
                username: "b".into(),
                accepted: true,
                friend: Some(friend),
            }),
            FriendRemoved {
                username: "b".into(),
            },
            Message { message: chat },
            Receipt {
                msg_id: 1,
                client_msg_id: "c".into(),
                to: "b".into(),
                ts: 3,
            },
            Kicked {
                reason: "logged_in_elsewhere".into(),
            },
            FileOffered {
                offer: FileOfferInfo {
                    file_id: "f".into(),
                    from: "a".into(),
                    to: "b".into(),
                    name: "n".into(),
                    size: 1,
                    sha256: "0".into(),
                    ts: 1,
                },
            },
            FileAnswered {
                file_id: "f".into(),
                accepted: true,
            },
            FileCancelled {
                file_id: "f".into(),
            },
            CallIncoming {
                call_id: "c".into(),
                from: "a".into(),
                media: media.clone(),
            },
            CallAccepted {
                call_id: "c".into(),
                media,
            },
            CallPeer {
                call_id: "c".into(),
                peer_addr: "127.0.0.1:5000".into(),
            },
            CallEnded {
                call_id: "c".into(),
                reason: CallEndReason::Busy,
            },
        ]
    }

    fn type_of(frame: &Frame) -> String {
        let v: serde_json::Value = serde_json::from_slice(frame.payload()).expect("json");
        v["type"].as_str().expect("type").to_string()
    }

    #[test]
    fn every_client_message_round_trips_and_is_listed() {
        let samples = client_samples();
        let mut seen: Vec<String> = Vec::new();
        for m in samples {
            let frame = encode(&m);
            seen.push(type_of(&frame));
            assert_eq!(decode_client(frame.payload()).expect("decodes"), m);
        }
        for t in CLIENT_TYPES {
            assert!(seen.iter().any(|s| s == t), "no sample for client type {t}");
        }
    }

    #[test]
    fn every_server_message_round_trips_and_is_listed() {
        let mut seen: Vec<String> = Vec::new();
        for m in server_samples() {
            let frame = encode(&m);
            seen.push(type_of(&frame));
            assert_eq!(decode_server(frame.payload()).expect("decodes"), m);
        }
        for t in SERVER_TYPES {
            assert!(seen.iter().any(|s| s == t), "no sample for server type {t}");
        }
        assert_eq!(
            seen.len(),
            SERVER_TYPES.len() + 1,
            "one extra sample: the second error"
        );
    }

    #[test]
    fn error_codes_match_serde() {
        let all: Vec<ErrorCode> = serde_json::from_str(
            r#"["frame_too_large","invalid_utf8","invalid_json","unknown_type","invalid_message",
            "unexpected_binary","hello_required","unsupported_version","not_authenticated",
            "already_authenticated","invalid_username","reserved_username","invalid_password",
            "invalid_field","username_taken","bad_credentials","session_expired","no_such_user",
            "already_friends","not_friends","request_pending","no_such_request","self_target",
            "rate_limited","slow_down","forbidden","not_found","not_implemented","file_too_large","quota_exceeded","server_busy","internal"]"#,
        )
        .expect("every documented code parses");
        for code in all {
            assert_eq!(serde_json::to_value(code).expect("ser"), code.as_str());
        }
    }

    #[test]
    fn bad_payloads_get_precise_codes() {
        let code = |p: &[u8]| decode_client(p).expect_err("bad").code;
        assert_eq!(code(b"\xff\xfe{}"), ErrorCode::InvalidUtf8);
        assert_eq!(code(b"{not json"), ErrorCode::InvalidJson);
        assert_eq!(code(b"[1,2]"), ErrorCode::InvalidJson);
        assert_eq!(code(b""), ErrorCode::InvalidJson);
        assert_eq!(code(br#"{"id":"1"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(br#"{"type":"teleport","id":"1"}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(code(br#"{"type":7,"id":"1"}"#), ErrorCode::UnknownType);
        let err = decode_client(br#"{"type":"login","id":"7","username":5,"password":"x"}"#)
            .expect_err("wrong field type");
        assert_eq!(err.code, ErrorCode::InvalidMessage);
        assert_eq!(
            err.id.as_deref(),
            Some("7"),
            "the id is echoed even for a bad message"
        );
        assert_eq!(
            decode_client(br#"{"type":"login","id":"8"}"#)
                .expect_err("missing")
                .code,
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn unknown_extra_fields_are_ignored_for_forward_compatibility() {
        let m = decode_client(br#"{"type":"heartbeat","id":"1","future":true}"#).expect("ok");
        assert_eq!(m, ClientMessage::Heartbeat { id: "1".into() });
    }
}
