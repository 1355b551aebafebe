//! "Host a server on this computer" and the servers found on the LAN: thin commands over
//! natter-core's `lan` module. The hosted server runs on the app's async runtime with its data
//! in the app-data dir; the list of found servers is pushed to the window as it changes.

use natter_core::lan::{Discovery, HostConfig, HostInfo, HostedServer, LanServer};
use tauri::{AppHandle, Emitter, Manager, Runtime, State};

use crate::ipc::{AppEvent, ConnectInfo, IpcError, ServerSettings};
use crate::state::AppState;
use crate::EVENT;

type Res<T> = Result<T, IpcError>;

/// The hosted server (if any) and the LAN browser.
#[derive(Default)]
pub struct LanState {
    hosted: tokio::sync::Mutex<Option<HostedServer>>,
    discovery: std::sync::Mutex<Option<Discovery>>,
}

impl LanState {
    /// Stops hosting (app exit): clients are told the server is going, the LAN that it left.
    pub async fn shutdown(&self) {
        if let Some(server) = self.hosted.lock().await.take() {
            if let Err(e) = server.stop().await {
                tracing::warn!("stopping the hosted server: {e}");
            }
        }
        let discovery = self
            .discovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(discovery) = discovery {
            discovery.stop().await;
        }
    }
}

fn host_error(e: natter_core::lan::HostError) -> IpcError {
    IpcError::new("host_failed", e.to_string())
}

/// Starts browsing the LAN and forwards every change of the list to the window. Without
/// multicast (no network, a firewall) the app works as before, with an empty list.
pub fn start_discovery<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    // The browser's task needs the async runtime, which setup() is not running on.
    tauri::async_runtime::spawn(async move {
        let discovery = match Discovery::start() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("LAN discovery is off: {e}");
                return;
            }
        };
        let mut changes = discovery.watch();
        let lan = app.state::<LanState>();
        *lan.discovery.lock().unwrap_or_else(|p| p.into_inner()) = Some(discovery);
        while changes.changed().await.is_ok() {
            let servers = changes.borrow_and_update().clone();
            if let Err(e) = app.emit(EVENT, AppEvent::LanServers { servers }) {
                tracing::warn!("emitting the LAN list failed: {e}");
            }
        }
    });
}

/// Hosting again after a restart, if the user left it on.
pub async fn resume_hosting<R: Runtime>(app: AppHandle<R>) {
    let state = app.state::<AppState>();
    if !state.settings().hosting {
        return;
    }
    let lan = app.state::<LanState>();
    if let Err(e) = start(&state, &lan).await {
        tracing::warn!("hosting could not resume: {}", e.message);
    }
}

async fn start(state: &AppState, lan: &LanState) -> Res<HostInfo> {
    let mut hosted = lan.hosted.lock().await;
    if let Some(server) = hosted.as_ref() {
        return Ok(server.info());
    }
    let config = HostConfig::new(state.data_dir.join("hosted-server"));
    let server = HostedServer::start(config).await.map_err(host_error)?;
    let info = server.info();
    tracing::info!(addresses = ?info.addresses, "hosting a server");
    *hosted = Some(server);
    Ok(info)
}

/// Servers announced on the LAN now (this computer's own, if hosting, among them).
#[tauri::command(rename_all = "snake_case")]
pub fn lan_servers(lan: State<'_, LanState>) -> Vec<LanServer> {
    lan.discovery
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(Discovery::servers)
        .unwrap_or_default()
}

/// The hosted server, if this computer hosts one.
#[tauri::command(rename_all = "snake_case")]
pub async fn host_info(lan: State<'_, LanState>) -> Res<Option<HostInfo>> {
    Ok(lan.hosted.lock().await.as_ref().map(HostedServer::info))
}

/// Hosts a server on this computer (and again at every start, until stopped).
#[tauri::command(rename_all = "snake_case")]
pub async fn host_start(state: State<'_, AppState>, lan: State<'_, LanState>) -> Res<HostInfo> {
    let info = start(&state, &lan).await?;
    state.update_settings(|s| s.hosting = true)?;
    Ok(info)
}

/// Stops hosting: everyone connected is told the server is going.
#[tauri::command(rename_all = "snake_case")]
pub async fn host_stop(state: State<'_, AppState>, lan: State<'_, LanState>) -> Res<()> {
    let server = lan.hosted.lock().await.take();
    state.update_settings(|s| s.hosting = false)?;
    if let Some(server) = server {
        server.stop().await.map_err(host_error)?;
    }
    Ok(())
}

/// Connects to a server found on the LAN over TLS, trusting the certificate it announced (the
/// list shows that fingerprint, so the user chose it knowingly).
#[tauri::command(rename_all = "snake_case")]
pub async fn connect_lan<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    server: LanServer,
) -> Res<ConnectInfo> {
    let settings = ServerSettings {
        host: server.host.clone(),
        port: server.tls_port,
        tls: true,
    };
    let client = state
        .connect(settings.clone(), |c| crate::forward_events(app, c))
        .await?;
    client.accept_certificate(&server.fingerprint)?;
    crate::commands::first_contact(&state, &client, settings).await
}
