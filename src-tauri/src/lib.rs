//! Natter's desktop shell: Tauri commands and events over natter-core. The UI in `ui/` calls the
//! commands in [`commands`] and listens to [`ipc::AppEvent`]s on [`EVENT`].

pub mod bindings;
pub mod calls;
pub mod commands;
pub mod dialog;
pub mod files;
pub mod image_protocol;
pub mod ipc;
pub mod lan;
pub mod state;

use std::path::PathBuf;

use natter_core::notice::{notice_for, Lang};
use natter_core::Client;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::ipc::AppEvent;
use crate::state::AppState;

/// The event channel the UI listens on.
pub const EVENT: &str = "natter://event";

/// The OS language tag (`LANG`-style on Linux), `en` if unknown.
pub fn os_language() -> String {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
        .map(|v| v.split(['.', '@']).next().unwrap_or("en").replace('_', "-"))
        .unwrap_or_else(|| "en".to_owned())
}

/// Forwards the client's events to the window and shows notifications for them.
pub fn forward_events<R: Runtime>(app: AppHandle<R>, client: Client) -> JoinHandle<()> {
    let mut events = client.events();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("the UI fell {n} events behind");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            notify(&app, &event);
            if is_incoming_ring(&event) {
                ask_attention(&app);
            }
            if let Err(e) = app.emit(EVENT, AppEvent::from(event)) {
                tracing::warn!("emitting an event failed: {e}");
            }
        }
    })
}

fn notify<R: Runtime>(app: &AppHandle<R>, event: &natter_core::Event) {
    let state = app.state::<AppState>();
    let settings = state.settings();
    if !settings.notifications {
        return;
    }
    let lang = match settings.language.as_deref() {
        Some(tag) => Lang::from_tag(tag),
        None => Lang::from_tag(&os_language()),
    };
    // Most events (the square, receipts, presence) deserve no notice: decide that before asking
    // the window about its focus, which is a round trip to the main thread.
    let Some(notice) = notice_for(event, lang) else {
        return;
    };
    let focused = app
        .get_webview_window("main")
        .and_then(|w| w.is_focused().ok())
        .unwrap_or(false);
    if focused {
        return;
    }
    // D-Bus calls block; a missing notification daemon only costs a log line.
    tauri::async_runtime::spawn_blocking(move || {
        if let Err(e) = notify_rust::Notification::new()
            .appname("Natter")
            .summary(&notice.title)
            .body(&notice.body)
            .show()
        {
            tracing::info!("notification not shown: {e}");
        }
    });
}

fn is_incoming_ring(event: &natter_core::Event) -> bool {
    matches!(event, natter_core::Event::Call(c) if c.phase == natter_core::calls::CallPhase::Ringing)
}

/// A ringing call also flashes the window in the task bar (the notification may be off, or gone
/// before the person looks), unless the window is already in front.
fn ask_attention<R: Runtime>(app: &AppHandle<R>) {
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    if window.is_focused().unwrap_or(false) {
        return;
    }
    if let Err(e) = window.request_user_attention(Some(tauri::UserAttentionType::Critical)) {
        tracing::info!("asking for attention failed: {e}");
    }
}

/// Where per-account stores and settings live: `NATTER_APP_DATA_DIR`, else the platform's app-data
/// dir (e.g. `~/.local/share/im.natter.desktop`).
fn data_dir(app: &AppHandle) -> PathBuf {
    if let Some(dir) = std::env::var_os("NATTER_APP_DATA_DIR") {
        return PathBuf::from(dir);
    }
    app.path()
        .app_data_dir()
        .unwrap_or_else(|_| std::env::temp_dir().join("natter"))
}

/// Registers every command (shared by the app and the command tests).
pub fn builder<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::save_settings,
            commands::connect,
            commands::accept_certificate,
            commands::check_username,
            commands::register,
            commands::login,
            commands::guest_login,
            commands::resume,
            commands::logout,
            commands::erase_account,
            commands::update_profile,
            commands::online_users,
            commands::friends,
            commands::friend_request,
            commands::friend_respond,
            commands::friend_delete,
            commands::send_text,
            commands::retry,
            commands::unread,
            commands::mark_read,
            commands::local_history,
            commands::history,
            commands::history_around,
            commands::history_after,
            commands::search,
            files::send_file,
            files::send_image,
            files::send_image_data,
            files::accept_file,
            files::reject_file,
            files::pause_transfer,
            files::resume_transfer,
            files::cancel_transfer,
            files::image_problem,
            files::transfers,
            files::pick_files,
            files::show_transfer,
            calls::call,
            calls::answer_call,
            calls::hang_up,
            calls::set_muted,
            calls::current_call,
            calls::call_level,
            calls::audio_devices,
            calls::set_audio_devices,
            lan::lan_servers,
            lan::host_info,
            lan::host_start,
            lan::host_stop,
            lan::connect_lan,
        ])
        .register_asynchronous_uri_scheme_protocol(image_protocol::SCHEME, image_protocol::handle)
}

/// WebKitGTK draws with the CPU instead of OpenGL. GPU compositing cost this app 95 MiB at
/// start and grew by 200 MiB over thirty chat openings (new layers each time, their buffers
/// left in the allocator; see BENCHMARKS.md), while a chat list paints fast enough in
/// software. `NATTER_GPU=1` brings the default policy back.
fn render_in_software<R: Runtime>(app: &AppHandle<R>) {
    #[cfg(target_os = "linux")]
    {
        if std::env::var_os("NATTER_GPU").is_some_and(|v| v == "1") {
            return;
        }
        let Some(window) = app.get_webview_window("main") else {
            return;
        };
        let applied = window.with_webview(|webview| {
            use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
            if let Some(settings) = WebViewExt::settings(&webview.inner()) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(e) = applied {
            tracing::warn!("could not switch the webview to software rendering: {e}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

/// Runs the app.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let app = builder(tauri::Builder::default())
        .setup(|app| {
            let dir = data_dir(app.handle());
            tracing::info!(data_dir = %dir.display(), "starting");
            app.manage(AppState::load(dir));
            app.manage(lan::LanState::default());
            render_in_software(app.handle());
            lan::start_discovery(app.handle());
            tauri::async_runtime::spawn(lan::resume_hosting(app.handle().clone()));
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("the window could not start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            let state = handle.state::<AppState>();
            let lan = handle.state::<lan::LanState>();
            tauri::async_runtime::block_on(async {
                state.shutdown().await;
                lan.shutdown().await;
            });
        }
    });
}
