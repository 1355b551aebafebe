//! Messages: incoming ones are stored, then acked (batched per read); receipts mark our own as
//! delivered; the outbox is sent in order after every login and whenever something is queued,
//! and each answer marks its entry sent or failed (or leaves it for the next flush).

use std::time::Duration;

use natter_proto::{ChatMessage, ClientMessage, ErrorCode, MsgId, ServerMessage, Target};
use tokio::time::Instant;

use super::{request_id, Engine, Pending};
use crate::store::{LocalMessage, MessageState};
use crate::{Event, FailedMessage, SentMessage};

/// The longest wait a server's `retry_after_ms` can impose on the outbox.
const MAX_RETRY_AFTER_MS: u64 = 30_000;

/// Refusals that will not change if the message is sent again.
fn is_permanent(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::SlowDown
            | ErrorCode::Internal
            | ErrorCode::ServerBusy
            | ErrorCode::NotAuthenticated
    )
}

/// An incoming message as local history holds it.
fn received(message: ChatMessage) -> LocalMessage {
    LocalMessage {
        msg_id: Some(message.msg_id),
        client_msg_id: message.client_msg_id,
        from: message.from,
        from_guest: message.from_guest,
        to: message.to,
        ts: message.ts,
        body: message.body,
        state: MessageState::Received,
        error: None,
    }
}

impl Engine {
    /// A pushed message: stored first, acked after (private ones), announced if new.
    pub(super) async fn incoming(&mut self, message: ChatMessage) {
        let Some(store) = self.store() else { return };
        match store.save_incoming(&message).await {
            Ok(is_new) => {
                if matches!(message.to, Target::User { .. }) {
                    self.to_ack.push(message.msg_id);
                }
                if is_new {
                    self.emit(Event::Message(received(message)));
                }
            }
            // Not stored, so not acked: the server pushes it again at the next login.
            Err(e) => tracing::error!(error = %e, "cannot store an incoming message"),
        }
    }

    /// One of our messages reached its recipient's device.
    pub(super) async fn receipt(&mut self, msg_id: MsgId, client_msg_id: String, to: String) {
        if let Some(store) = self.store() {
            match store.mark_delivered(&client_msg_id).await {
                // Acked once recorded: the server repeats unacked receipts at login.
                Ok(_) => self.to_ack.push(msg_id),
                Err(e) => tracing::warn!(error = %e, "cannot record a receipt"),
            }
        }
        self.emit(Event::Delivered {
            client_msg_id,
            msg_id,
            to,
        });
    }

    pub(super) async fn flush_outbox(&mut self) {
        // During a `slow_down` wait nothing goes out, new messages included (PROTOCOL.md §5.5
        // rule 8); the tick flushes once the wait is over.
        if self.outbox_not_before.is_some_and(|t| Instant::now() < t) {
            self.outbox_retry = true;
            return;
        }
        let ready = self.live.as_ref().is_some_and(|l| l.logged_in);
        let Some(store) = self.store().filter(|_| ready) else {
            return;
        };
        let entries = match store.outbox().await {
            Ok(entries) => entries,
            Err(e) => return tracing::error!(error = %e, "cannot read the outbox"),
        };
        for entry in entries {
            if self.outbox_probing && !self.in_flight.is_empty() {
                break;
            }
            if !self.in_flight.insert(entry.client_msg_id.clone()) {
                continue;
            }
            let message = ClientMessage::SendMessage {
                id: request_id(),
                client_msg_id: entry.client_msg_id.clone(),
                to: entry.to,
                body: entry.body,
            };
            let pending = Pending::Outbox {
                client_msg_id: entry.client_msg_id,
            };
            self.send_pending(message, pending).await;
        }
    }

    pub(super) async fn outbox_reply(&mut self, client_msg_id: &str, reply: ServerMessage) {
        self.in_flight.remove(client_msg_id);
        let Some(store) = self.store() else { return };
        match reply {
            ServerMessage::MessageAccepted { msg_id, ts, .. } => {
                if let Err(e) = store.mark_sent(client_msg_id, msg_id, ts).await {
                    tracing::error!(error = %e, "cannot record a sent message");
                }
                self.emit(Event::Sent(SentMessage {
                    client_msg_id: client_msg_id.to_owned(),
                    msg_id,
                    ts,
                }));
                if std::mem::take(&mut self.outbox_probing) {
                    // The server takes messages again: the rest of the queue may follow.
                    self.flush_outbox().await;
                }
            }
            ServerMessage::Error { code, message, .. } if is_permanent(code) => {
                if let Err(e) = store.mark_failed(client_msg_id, &message).await {
                    tracing::error!(error = %e, "cannot record a failed message");
                }
                self.emit(Event::Failed(FailedMessage {
                    client_msg_id: client_msg_id.to_owned(),
                    code,
                    message,
                }));
            }
            // Transient (rate limit, overload, server trouble): it stays in the outbox for the
            // next flush, not before the server's `retry_after_ms` (PROTOCOL.md §5.5 rule 8).
            other => {
                tracing::debug!(?other, "outbox entry not accepted yet");
                if let ServerMessage::Error {
                    retry_after_ms: Some(ms),
                    ..
                } = other
                {
                    let at = Instant::now() + Duration::from_millis(ms.min(MAX_RETRY_AFTER_MS));
                    self.outbox_not_before = Some(self.outbox_not_before.map_or(at, |t| t.max(at)));
                    self.outbox_probing = true;
                }
                self.outbox_retry = true;
            }
        }
    }

    pub(super) async fn flush_acks(&mut self) {
        if self.to_ack.is_empty() || !self.live.as_ref().is_some_and(|l| l.logged_in) {
            return;
        }
        let ids = std::mem::take(&mut self.to_ack);
        for chunk in ids.chunks(crate::MAX_ACK) {
            // A quiet ack (no id): nothing comes back; an ack lost with the connection only
            // means the messages are pushed again and deduplicated by msg_id.
            let message = ClientMessage::Ack {
                id: None,
                msg_ids: chunk.to_vec(),
            };
            self.write(message).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_trouble_and_rate_limits_are_worth_a_resend() {
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::SlowDown,
            ErrorCode::Internal,
            ErrorCode::ServerBusy,
            ErrorCode::NotAuthenticated,
        ] {
            assert!(!is_permanent(code), "{code:?}");
        }
        for code in [ErrorCode::NotFound, ErrorCode::InvalidField] {
            assert!(is_permanent(code), "{code:?}");
        }
    }
}
