//! [`Client`], the handle callers hold: one `impl Client` per family (`auth`, `friends`, `chat`,
//! `files`, `calls`), each a thin layer of validation and reply matching over the engine's
//! commands. This file starts the engine and its managers and holds what every family shares.

mod auth;
mod calls;
mod chat;
mod files;
mod friends;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use natter_proto::ServerMessage;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use auth::Registration;
pub use calls::AudioDevices;
pub use chat::{HistoryWindow, MAX_PAGE, MAX_SERVER_PAGE};
pub use files::MAX_IMAGE_BYTES;
pub use friends::FriendList;

use crate::calls::{cpal_audio, Calls, DeviceChoice};
use crate::engine::{Command, Engine, EngineConfig};
use crate::transfers::Transfers;
use crate::{
    store, ClientConfig, ClientError, ClientMessage, ConnectionState, Event, PinStore, ServerAddr,
    SharedStore,
};

/// Handle to a running client engine. Cloning shares the engine.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<ConnectionState>,
    store: SharedStore,
    pins: Arc<PinStore>,
    server: ServerAddr,
    data_dir: PathBuf,
    transfers: Arc<Transfers>,
    calls: Arc<Calls>,
    devices: DeviceChoice,
}

fn unexpected(reply: ServerMessage) -> ClientError {
    ClientError::Protocol(format!("unexpected reply: {reply:?}"))
}

impl Client {
    /// Starts the engine (it connects on first use). Needs a tokio runtime.
    pub fn start(config: ClientConfig) -> Self {
        let pins = Arc::new(PinStore::load(&config.data_dir.join("pins.json")));
        let (commands, rx) = mpsc::channel(256);
        let (events, _) = broadcast::channel(4096);
        let (state_tx, state) = watch::channel(ConnectionState::Offline);
        let store: SharedStore = Arc::new(Mutex::new(None));
        let (file_pushes, file_rx) = mpsc::unbounded_channel();
        let (call_pushes, call_rx) = mpsc::unbounded_channel();
        let devices = DeviceChoice::default();
        let calls = Calls::new(
            commands.clone(),
            events.clone(),
            state.clone(),
            cpal_audio(devices.clone()),
        );
        tokio::spawn(calls.clone().run(call_rx));
        let transfers = Transfers::new(
            commands.clone(),
            store.clone(),
            events.clone(),
            state.clone(),
        );
        tokio::spawn(transfers.clone().run(file_rx));
        let engine = Engine::new(
            EngineConfig {
                server: config.server.clone(),
                fallbacks: config.fallbacks.clone(),
                data_dir: config.data_dir.clone(),
                request_timeout: config.request_timeout,
                backoff_min: config.backoff.0,
                backoff_max: config.backoff.1,
                presence: config.presence,
                client_name: concat!("natter-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            },
            pins.clone(),
            store.clone(),
            events.clone(),
            state_tx,
            file_pushes,
            call_pushes,
        );
        tokio::spawn(engine.run(rx));
        Self {
            commands,
            events,
            state,
            store,
            pins,
            server: config.server,
            data_dir: config.data_dir,
            transfers,
            calls,
            devices,
        }
    }

    /// Subscribes to events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current connection state.
    pub fn connection_state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Watches the connection state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Trusts a server's new certificate (after [`ClientError::CertificateChanged`]).
    pub fn accept_certificate(&self, fingerprint: &str) -> Result<(), ClientError> {
        self.pins.set(&self.server.key(), fingerprint)
    }

    /// The pinned fingerprint of this client's server, if any.
    pub fn pinned_certificate(&self) -> Option<String> {
        self.pins.get(&self.server.key())
    }

    /// Stops the engine.
    pub async fn shutdown(&self) {
        self.transfers.stop_all();
        let _ = self.commands.send(Command::Shutdown).await;
        self.commands.closed().await;
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(store) = store {
            store.close().await;
        }
    }

    fn local_store(&self) -> Result<store::Store, ClientError> {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(ClientError::NotLoggedIn)
    }

    async fn engine_call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        self.engine_call(|reply| Command::Request { message, reply })
            .await
    }

    async fn expect_ok(&self, message: ClientMessage) -> Result<(), ClientError> {
        match self.request(message).await? {
            ServerMessage::Ok { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Tells the engine the outbox has something new.
    async fn flush_outbox(&self) {
        let _ = self.commands.send(Command::FlushOutbox).await;
    }
}
