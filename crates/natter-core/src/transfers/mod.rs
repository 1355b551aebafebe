//! The transfer manager: uploads and downloads through the server's chunk store, each resumable
//! from what is already there — after a dropped connection, an app restart or a server restart.
//!
//! One worker task per moving transfer. Before moving bytes a worker asks the server what it
//! holds (`file_status`), so an upload sends only what is missing; a download keeps its own
//! chunk map in SQLite, recorded after each piece is written, so a restart re-fetches at most
//! the piece in flight. Workers park while the connection is down and start again when the
//! engine is back online.

//!
//! - `actions` — what the user does: offer, accept, reject, pause, resume, cancel, open an image.
//! - `pushes` — what the server says: `file_offered`, `file_answered`, `file_cancelled`.
//! - `workers` — one task per moving transfer, parked while offline, restarted at every login.
//! - `upload` / `download` — the byte moving; `progress` and `hash` are their pure helpers.

mod actions;
mod download;
mod hash;
mod progress;
mod pushes;
mod upload;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use natter_proto::{ClientMessage, ErrorCode, RangeSet, ServerMessage};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::{request_id, Command};
use crate::store::{Store, TransferRecord};
use crate::transfer::TransferInfo;
use crate::{ClientError, ConnectionState, Event, SharedStore};

pub use download::UNRECORDED_MAX;
pub use hash::sha256_file;

/// Errors after which a worker waits for the connection and tries again.
fn is_transient(e: &ClientError) -> bool {
    match e {
        ClientError::Offline | ClientError::Timeout | ClientError::NotLoggedIn => true,
        ClientError::Server { code, .. } => matches!(
            code,
            ErrorCode::RateLimited
                | ErrorCode::Internal
                | ErrorCode::ServerBusy
                | ErrorCode::NotAuthenticated
        ),
        _ => false,
    }
}

pub(crate) struct Transfers {
    commands: mpsc::Sender<Command>,
    store: SharedStore,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<ConnectionState>,
    /// Workers by file id, with a generation so a finished worker never removes its successor.
    running: Mutex<HashMap<String, (u64, CancellationToken)>>,
    generation: std::sync::atomic::AtomicU64,
    /// Bumped when a transfer changes, so `wait_done` can sleep until something happens.
    changed: watch::Sender<u64>,
    /// Why transfers failed since the engine started, as typed errors (the store keeps only
    /// the sentence), so that opening a failed image can say exactly why.
    failures: Mutex<HashMap<String, ClientError>>,
}

impl Transfers {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        store: SharedStore,
        events: broadcast::Sender<Event>,
        state: watch::Receiver<ConnectionState>,
    ) -> Arc<Self> {
        Arc::new(Self {
            commands,
            store,
            events,
            state,
            running: Mutex::new(HashMap::new()),
            generation: Default::default(),
            changed: watch::channel(0).0,
            failures: Mutex::default(),
        })
    }

    /// Handles file pushes and restarts workers whenever the engine is back online.
    pub(crate) async fn run(self: Arc<Self>, mut pushes: mpsc::UnboundedReceiver<ServerMessage>) {
        // Every login, first or after a reconnect, is a `LoggedIn` event (the connection state
        // alone does not say when a session exists).
        let mut events = self.events.subscribe();
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => self.push(push).await,
                    None => break,
                },
                event = events.recv() => match event {
                    Ok(Event::LoggedIn(_)) => self.resume_all().await,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        self.stop_all();
    }

    /// Remembers why a transfer failed.
    fn failed(&self, file_id: &str, error: &ClientError) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // A long session may see many failures; the reasons are only for what is on screen.
        if failures.len() >= 256 {
            failures.clear();
        }
        failures.insert(file_id.to_owned(), error.clone());
    }

    /// Why a transfer failed, if it failed since the engine started.
    fn failure(&self, file_id: &str) -> Option<ClientError> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(file_id)
            .cloned()
    }

    fn local_store(&self) -> Result<Store, ClientError> {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(ClientError::NotLoggedIn)
    }

    /// Progress from a worker: a stopped worker (paused, cancelled) may still run until its next
    /// await, and must not report "uploading" after the pause was reported.
    fn progress(&self, info: &TransferInfo, cancel: &CancellationToken) {
        if !cancel.is_cancelled() {
            self.emit(info);
        }
    }

    fn emit(&self, info: &TransferInfo) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        let _ = self.events.send(Event::Transfer(info.clone()));
    }

    async fn save(&self, store: &Store, t: &TransferRecord) -> Result<(), ClientError> {
        store.update_transfer(t).await?;
        self.emit(&t.info);
        Ok(())
    }

    async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        crate::engine::request(&self.commands, message).await
    }

    async fn status(&self, file_id: &str) -> Result<Status, ClientError> {
        match self
            .request(ClientMessage::FileStatus {
                id: request_id(),
                file_id: file_id.to_owned(),
            })
            .await?
        {
            ServerMessage::FileStatusReply {
                size,
                chunk_size,
                have,
                complete,
                accepted,
                sha256,
                ..
            } => Ok(Status {
                size,
                chunk_size,
                have: RangeSet::from_wire(&have),
                complete,
                accepted,
                sha256,
            }),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to file_status: {other:?}"
            ))),
        }
    }

    async fn record(&self, store: &Store, file_id: &str) -> Result<TransferRecord, ClientError> {
        store
            .transfer(file_id)
            .await?
            .ok_or_else(|| ClientError::Server {
                code: ErrorCode::NotFound,
                message: format!("no transfer {file_id}"),
                retry_after_ms: None,
            })
    }

    async fn expect_ok(&self, message: ClientMessage) -> Result<(), ClientError> {
        match self.request(message).await? {
            ServerMessage::Ok { .. } => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply: {other:?}"
            ))),
        }
    }
}

struct Status {
    size: u64,
    chunk_size: u32,
    have: RangeSet,
    complete: bool,
    accepted: bool,
    /// As the sender named it; empty until then, and from an older server.
    sha256: String,
}

fn invalid(message: &str) -> ClientError {
    ClientError::Invalid {
        code: ErrorCode::InvalidField,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_or_server_trouble_is_waited_out_and_a_refusal_is_not() {
        assert!(is_transient(&ClientError::Offline));
        assert!(is_transient(&ClientError::Timeout));
        let busy = ClientError::Server {
            code: ErrorCode::ServerBusy,
            message: String::new(),
            retry_after_ms: None,
        };
        assert!(is_transient(&busy));
        let gone = ClientError::Server {
            code: ErrorCode::NotFound,
            message: String::new(),
            retry_after_ms: None,
        };
        assert!(!is_transient(&gone));
        assert!(!is_transient(&ClientError::Io("disk full".into())));
    }
}
