//! The native open and save dialogs (rfd; GTK on Linux), and the answers a test gives instead.
//!
//! GTK wants its dialogs made on the thread that runs its loop, which in a Tauri app is the main
//! thread: the dialog's future is created there and awaited on another thread (the same dance as
//! tauri-plugin-dialog). WebDriver cannot click a native dialog, so two environment variables
//! stand in for the person at the dialog in the app suite (see README).

use std::path::{Path, PathBuf};

use tauri::{AppHandle, Manager, Runtime};
use tokio::sync::oneshot;

use crate::ipc::IpcError;

/// Test stand-in for the open dialog: names a text file whose lines are the paths "picked"
/// (read at each pick, so a test can change the answer between picks; empty = cancelled).
pub const TEST_PICK: &str = "NATTER_TEST_PICK";
/// Test stand-in for the save dialog: accepted files are saved in this directory under their
/// offered (sanitised) name.
pub const TEST_SAVE_DIR: &str = "NATTER_TEST_SAVE_DIR";

/// The extensions the image picker offers (what natter-core can send as an image).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "gif", "webp"];

fn dialog_error(e: impl std::fmt::Display) -> IpcError {
    IpcError::new("dialog", e.to_string())
}

/// Runs `make` on the main thread and awaits the dialog future it returns.
async fn show<R, T, F, Fut>(app: &AppHandle<R>, make: F) -> Result<Option<T>, IpcError>
where
    R: Runtime,
    T: Send + 'static,
    F: FnOnce(Option<tauri::WebviewWindow<R>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send + 'static,
{
    let window = app.get_webview_window("main");
    let (tx, rx) = oneshot::channel();
    app.run_on_main_thread(move || {
        let dialog = make(window);
        std::thread::spawn(move || {
            let _ = tx.send(tauri::async_runtime::block_on(dialog));
        });
    })
    .map_err(dialog_error)?;
    rx.await.map_err(dialog_error)
}

/// Asks which files to send; `images_only` filters the list to images. Empty when cancelled.
pub async fn pick_files<R: Runtime>(
    app: &AppHandle<R>,
    images_only: bool,
    filter_name: String,
) -> Result<Vec<PathBuf>, IpcError> {
    if let Some(list) = std::env::var_os(TEST_PICK) {
        let text = tokio::fs::read_to_string(&list)
            .await
            .map_err(|e| dialog_error(format!("{TEST_PICK}: {e}")))?;
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect());
    }
    let picked = show(app, move |window| {
        let mut dialog = rfd::AsyncFileDialog::new();
        if let Some(w) = &window {
            dialog = dialog.set_parent(w);
        }
        if images_only {
            dialog = dialog.add_filter(filter_name, &IMAGE_EXTENSIONS);
        }
        dialog.pick_files()
    })
    .await?;
    Ok(picked
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.path().to_path_buf())
        .collect())
}

/// Asks where to save a file offered as `name` (already sanitised), starting in the Downloads
/// dir. `None` when cancelled.
pub async fn save_path<R: Runtime>(
    app: &AppHandle<R>,
    name: &str,
) -> Result<Option<PathBuf>, IpcError> {
    if let Some(dir) = std::env::var_os(TEST_SAVE_DIR) {
        return Ok(Some(Path::new(&dir).join(name)));
    }
    let start = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .ok();
    let name = name.to_owned();
    let chosen = show(app, move |window| {
        let mut dialog = rfd::AsyncFileDialog::new().set_file_name(name);
        if let Some(dir) = start {
            dialog = dialog.set_directory(dir);
        }
        if let Some(w) = &window {
            dialog = dialog.set_parent(w);
        }
        dialog.save_file()
    })
    .await?;
    Ok(chosen.map(|h| h.path().to_path_buf()))
}
