//! The shell's state: saved settings and the one natter-core client of the chosen server.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use natter_core::{Client, ClientConfig, ServerAddr};
use tauri::async_runtime::JoinHandle;

use crate::ipc::{IpcError, ServerSettings, Settings};

/// A running client and the task that forwards its events to the window.
pub struct Connected {
    /// The engine handle.
    pub client: Client,
    /// Which server it talks to.
    pub server: ServerSettings,
    /// The event forwarding task (aborted when the server changes).
    pub forwarder: JoinHandle<()>,
}

/// Managed by Tauri.
pub struct AppState {
    /// Where settings, pins and stores live.
    pub data_dir: PathBuf,
    settings: Mutex<Settings>,
    /// The client of the chosen server, once connected.
    pub connected: tokio::sync::Mutex<Option<Connected>>,
}

/// Hands the saved microphone and speaker choice to a client (at start, and whenever it changes).
pub fn apply_audio_devices(client: &Client, settings: &Settings) {
    client.set_audio_devices(settings.audio_input.clone(), settings.audio_output.clone());
}

fn settings_path(data_dir: &Path) -> PathBuf {
    data_dir.join("settings.json")
}

impl AppState {
    /// Loads settings from `data_dir` (defaults if missing or unreadable: a damaged settings file
    /// must not keep the app from starting; it is logged and rewritten on the next change).
    pub fn load(data_dir: PathBuf) -> Self {
        let path = settings_path(&data_dir);
        let settings = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), "settings unreadable, using defaults: {e}");
                Settings::default()
            }),
            Err(_) => Settings::default(),
        };
        Self {
            data_dir,
            settings: Mutex::new(settings),
            connected: tokio::sync::Mutex::new(None),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes settings and writes them (atomically: a crash mid-write keeps the old file).
    pub fn update_settings(
        &self,
        change: impl FnOnce(&mut Settings),
    ) -> Result<Settings, IpcError> {
        let mut guard = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        change(&mut next);
        let io = |e: std::io::Error| IpcError::new("settings", e.to_string());
        std::fs::create_dir_all(&self.data_dir).map_err(io)?;
        let path = settings_path(&self.data_dir);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&next)
            .map_err(|e| IpcError::new("settings", e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        *guard = next.clone();
        Ok(next)
    }

    /// The current client, or `not_connected`.
    pub async fn client(&self) -> Result<Client, IpcError> {
        self.connected
            .lock()
            .await
            .as_ref()
            .map(|c| c.client.clone())
            .ok_or_else(|| IpcError::new("not_connected", "choose a server first"))
    }

    /// Starts a client for `server` (reusing the current one if it is the same server).
    pub async fn connect(
        &self,
        server: ServerSettings,
        forward: impl FnOnce(Client) -> JoinHandle<()>,
    ) -> Result<Client, IpcError> {
        let host = server.host.trim();
        if host.is_empty() || server.port == 0 {
            return Err(IpcError::new("invalid_server", "enter a host and a port"));
        }
        let server = ServerSettings {
            host: host.to_owned(),
            ..server
        };
        let mut slot = self.connected.lock().await;
        if let Some(current) = slot.as_ref() {
            if current.server == server {
                return Ok(current.client.clone());
            }
        }
        if let Some(old) = slot.take() {
            old.forwarder.abort();
            old.client.shutdown().await;
        }
        // Several nodes of one service: "a.example, b.example:4100".
        let mut nodes = ServerAddr::parse_list(&server.host, server.port, server.tls)
            .map_err(|e| IpcError::new("invalid_server", e))?
            .into_iter();
        let first = nodes
            .next()
            .ok_or_else(|| IpcError::new("invalid_server", "enter a host and a port"))?;
        let mut config = ClientConfig::new(first, self.data_dir.clone());
        config.fallbacks = nodes.collect();
        let client = Client::start(config);
        apply_audio_devices(&client, &self.settings());
        let forwarder = forward(client.clone());
        *slot = Some(Connected {
            client: client.clone(),
            server,
            forwarder,
        });
        Ok(client)
    }

    /// Stops the client (app exit).
    pub async fn shutdown(&self) {
        if let Some(old) = self.connected.lock().await.take() {
            old.forwarder.abort();
            old.client.shutdown().await;
        }
    }
}
