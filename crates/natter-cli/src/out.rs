//! What the CLI prints: one JSON object per line with `--json`, readable lines otherwise; and the
//! event loop that feeds it.

use std::time::Duration;

use anyhow::Result;
use natter_core::{ConnectionState, Event, FailedMessage, LocalMessage, SentMessage};
use natter_proto::Target;
use serde_json::json;

pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    pub(crate) fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }

    pub(crate) fn event(&self, event: &Event) {
        match event {
            Event::Connection(state) => self.print(json!({"event": "connection", "state": state}), || {
                format!("-- {}", match state {
                    ConnectionState::Online => "online",
                    ConnectionState::Connecting => "connecting…",
                    ConnectionState::Offline => "offline",
                })
            }),
            Event::Message(m) => self.print(message_json("message", m), || {
                let place = match &m.to {
                    Target::Square => "[square] ".to_owned(),
                    Target::User { .. } => String::new(),
                };
                format!("{place}{}{}: {}", m.from, if m.from_guest { " (guest)" } else { "" }, text_of(m))
            }),
            Event::Sent(SentMessage { client_msg_id, msg_id, .. }) => {
                self.print(json!({"event": "sent", "client_msg_id": client_msg_id, "msg_id": msg_id}), || {
                    format!("-- sent #{msg_id}")
                })
            }
            Event::Delivered { client_msg_id, msg_id, to } => self.print(
                json!({"event": "delivered", "client_msg_id": client_msg_id, "msg_id": msg_id, "to": to}),
                || format!("-- delivered #{msg_id} to {to}"),
            ),
            Event::Failed(FailedMessage { client_msg_id, code, message }) => self.print(
                json!({"event": "failed", "client_msg_id": client_msg_id, "code": code, "message": message}),
                || format!("-- not sent: {message}"),
            ),
            Event::UserOnline(u) => self.print(json!({"event": "user_online", "username": u.username, "is_guest": u.is_guest}), || {
                format!("-- {} is online", u.username)
            }),
            Event::UserOffline { username } => {
                self.print(json!({"event": "user_offline", "username": username}), || format!("-- {username} went offline"))
            }
            Event::FriendRequest(r) => self.print(json!({"event": "friend_request", "from": r.from, "message": r.message}), || {
                format!("-- {} asks to be friends: {}  (accept {0} / reject {0})", r.from, r.message)
            }),
            Event::FriendResponse(natter_proto::FriendAnswer { username, accepted, .. }) => self.print(
                json!({"event": "friend_response", "username": username, "accepted": accepted}),
                || format!("-- {username} {} your friend request", if *accepted { "accepted" } else { "declined" }),
            ),
            Event::FriendRemoved { username } => {
                self.print(json!({"event": "friend_removed", "username": username}), || format!("-- {username} removed you"))
            }
            Event::Kicked { reason } => self.print(json!({"event": "kicked", "reason": reason}), || format!("-- disconnected by the server: {reason}")),
            Event::SessionLost(e) => self.print(json!({"event": "session_lost", "error": e.to_string()}), || format!("-- session lost: {e}")),
            Event::CertificateChanged(e) => self.print(json!({"event": "certificate_changed", "error": e.to_string()}), || format!("-- {e}")),
            Event::Transfer(t) => self.print(
                json!({"event": "transfer", "file_id": t.file_id, "direction": t.direction, "kind": t.kind,
                       "peer": t.peer, "name": t.name, "size": t.size, "done": t.done, "rate": t.rate,
                       "state": t.state, "path": t.path, "error": t.error}),
                || {
                    let pct = (t.done * 100).checked_div(t.size).unwrap_or(100);
                    format!("-- file {} ({:?}, {}): {:?} {pct}%", t.name, t.direction, t.peer, t.state)
                },
            ),
            Event::Call(c) => self.print(
                json!({"event": "call", "call_id": c.call_id, "peer": c.peer, "outgoing": c.outgoing,
                       "phase": c.phase, "reason": c.reason, "muted": c.muted}),
                || match c.reason {
                    Some(reason) => format!("-- call with {} ended ({reason:?})", c.peer),
                    None => format!("-- call with {}: {:?}", c.peer, c.phase),
                },
            ),
            Event::LoggedIn(_) | Event::ServerError { .. } => {}
        }
    }
}

pub(crate) fn text_of(m: &LocalMessage) -> String {
    match &m.body {
        natter_proto::MessageBody::Text { text } => text.clone(),
        natter_proto::MessageBody::Image { name, .. } => format!("[image {name}]"),
        natter_proto::MessageBody::File { name, .. } => format!("[file {name}]"),
    }
}

pub(crate) fn message_json(kind: &str, m: &LocalMessage) -> serde_json::Value {
    json!({
        "event": kind,
        "msg_id": m.msg_id,
        "client_msg_id": m.client_msg_id,
        "from": m.from,
        "from_guest": m.from_guest,
        "to": m.to,
        "ts": m.ts,
        "text": text_of(m),
        "state": m.state,
    })
}

/// Hands every event to `handle` until `for_secs` pass (or Ctrl-C, without a limit) or the
/// client stops.
pub(crate) async fn on_events(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    for_secs: Option<u64>,
    mut handle: impl AsyncFnMut(Event) -> Result<()>,
) -> Result<()> {
    let stop = async {
        match for_secs {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            event = events.recv() => match event {
                Ok(event) => handle(event).await?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return Ok(()),
            }
        }
    }
}
