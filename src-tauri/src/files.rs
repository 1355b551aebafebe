//! Tauri commands for images and file transfers (issue 7): each one is a call on natter-core,
//! plus the dialogs that ask the person which file or where to save it.

use std::path::PathBuf;

use natter_core::notice::Lang;
use natter_core::TransferInfo;
use natter_proto::Target;
use tauri::ipc::{InvokeBody, Request};
use tauri::{AppHandle, Runtime, State};

use crate::ipc::IpcError;
use crate::state::AppState;

type Res<T> = Result<T, IpcError>;

/// Header of `send_image_data` with the conversation, as URI-encoded JSON of a `Target`.
pub const HEADER_TO: &str = "natter-to";
/// Header of `send_image_data` with the image's file name, URI-encoded.
pub const HEADER_NAME: &str = "natter-name";

fn path_arg(path: &str) -> Res<PathBuf> {
    if path.trim().is_empty() {
        return Err(IpcError::new("invalid_field", "no file chosen"));
    }
    Ok(PathBuf::from(path))
}

/// Offers a file to a friend: it shows in the chat at once and uploads in the background.
#[tauri::command(rename_all = "snake_case")]
pub async fn send_file(state: State<'_, AppState>, to: String, path: String) -> Res<TransferInfo> {
    let path = path_arg(&path)?;
    Ok(state.client().await?.send_file(&to, &path).await?)
}

/// Sends an image file to a friend or the square (refused before upload if it is not one).
#[tauri::command(rename_all = "snake_case")]
pub async fn send_image(state: State<'_, AppState>, to: Target, path: String) -> Res<TransferInfo> {
    let path = path_arg(&path)?;
    Ok(state.client().await?.send_image(to, &path).await?)
}

/// Decodes `%XX` escapes (what `encodeURIComponent` writes), for the ASCII-only headers.
pub fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn header(request: &Request<'_>, name: &str) -> Res<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(percent_decode)
        .ok_or_else(|| IpcError::new("invalid_field", format!("missing header {name}")))
}

/// Sends a pasted image: the raw bytes are the request body (no JSON, no base64), the target
/// and the name come in the `natter-to` and `natter-name` headers.
#[tauri::command(rename_all = "snake_case")]
pub async fn send_image_data(
    state: State<'_, AppState>,
    request: Request<'_>,
) -> Res<TransferInfo> {
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(IpcError::new(
            "invalid_field",
            "send_image_data takes the image bytes as the raw body",
        ));
    };
    let to: Target = serde_json::from_str(&header(&request, HEADER_TO)?)
        .map_err(|e| IpcError::new("invalid_field", format!("{HEADER_TO}: {e}")))?;
    let name = header(&request, HEADER_NAME)?;
    let bytes = bytes.clone();
    Ok(state
        .client()
        .await?
        .send_image_bytes(to, &name, bytes)
        .await?)
}

/// Accepts an offered file and downloads it to `dest`, or — without one — where the person
/// chooses in the save dialog (the Downloads dir first). `null` when the dialog was cancelled.
#[tauri::command(rename_all = "snake_case")]
pub async fn accept_file<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    file_id: String,
    dest: Option<String>,
) -> Res<Option<TransferInfo>> {
    let client = state.client().await?;
    let dest = match dest {
        Some(d) => path_arg(&d)?,
        None => {
            let offer = client
                .transfers()
                .await?
                .into_iter()
                .find(|t| t.file_id == file_id)
                .ok_or_else(|| IpcError::new("not_found", "no such transfer"))?;
            // The name came from the network: sanitised by the server and again here.
            let name = natter_proto::validate::sanitize_file_name(&offer.name)
                .unwrap_or_else(|_| "download".to_owned());
            match crate::dialog::save_path(&app, &name).await? {
                Some(d) => d,
                None => return Ok(None),
            }
        }
    };
    Ok(Some(client.accept_file(&file_id, &dest).await?))
}

/// Declines an offered file; the sender is told.
#[tauri::command(rename_all = "snake_case")]
pub async fn reject_file(state: State<'_, AppState>, file_id: String) -> Res<()> {
    Ok(state.client().await?.reject_file(&file_id).await?)
}

/// Stops a transfer where it is; `resume_transfer` goes on from there.
#[tauri::command(rename_all = "snake_case")]
pub async fn pause_transfer(state: State<'_, AppState>, file_id: String) -> Res<TransferInfo> {
    Ok(state.client().await?.pause_transfer(&file_id).await?)
}

/// Continues a paused (or interrupted) transfer from what is already there.
#[tauri::command(rename_all = "snake_case")]
pub async fn resume_transfer(state: State<'_, AppState>, file_id: String) -> Res<TransferInfo> {
    Ok(state.client().await?.resume_transfer(&file_id).await?)
}

/// Why the full image `file_id` cannot be shown (the viewer asks after its `natter-image://`
/// request failed, which carries no reason it can read): fetches and checks it like that
/// request, and answers `Ok` if it is fine now.
#[tauri::command(rename_all = "snake_case")]
pub async fn image_problem(state: State<'_, AppState>, file_id: String) -> Res<()> {
    state.client().await?.image_file(&file_id).await?;
    Ok(())
}

/// Ends a transfer for both sides.
#[tauri::command(rename_all = "snake_case")]
pub async fn cancel_transfer(state: State<'_, AppState>, file_id: String) -> Res<()> {
    Ok(state.client().await?.cancel_transfer(&file_id).await?)
}

/// Every transfer of the logged-in user (the UI loads them after login).
#[tauri::command(rename_all = "snake_case")]
pub async fn transfers(state: State<'_, AppState>) -> Res<Vec<TransferInfo>> {
    Ok(state.client().await?.transfers().await?)
}

/// Asks which files to send (`images_only`: the image picker). Empty when cancelled.
#[tauri::command(rename_all = "snake_case")]
pub async fn pick_files<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    images_only: bool,
) -> Res<Vec<String>> {
    let lang = state.settings().language.unwrap_or_else(crate::os_language);
    let filter = match Lang::from_tag(&lang) {
        Lang::ZhCn => "图片",
        Lang::En => "Images",
    };
    let picked = crate::dialog::pick_files(&app, images_only, filter.to_owned()).await?;
    Ok(picked
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// Shows a received file in the system's file manager (its folder).
#[tauri::command(rename_all = "snake_case")]
pub async fn show_transfer(state: State<'_, AppState>, file_id: String) -> Res<()> {
    let transfer = state
        .client()
        .await?
        .transfers()
        .await?
        .into_iter()
        .find(|t| t.file_id == file_id)
        .ok_or_else(|| IpcError::new("not_found", "no such transfer"))?;
    let path = transfer
        .path
        .map(PathBuf::from)
        .ok_or_else(|| IpcError::new("not_found", "the file is not on this device"))?;
    let folder = path
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| IpcError::new("not_found", "the file has no folder"))?;
    open_folder(&folder)
}

fn open_folder(folder: &std::path::Path) -> Res<()> {
    let program = if cfg!(target_os = "windows") {
        "explorer"
    } else if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let mut child = std::process::Command::new(program)
        .arg(folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| IpcError::new("open_failed", format!("{program}: {e}")))?;
    // Reap it when the file manager has been handed the folder, so no zombie is left.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn headers_decode_like_encode_uri_component() {
        assert_eq!(
            percent_decode("%E6%88%AA%E5%9B%BE%201.png").as_deref(),
            Some("截图 1.png")
        );
        assert_eq!(
            percent_decode("%7B%22kind%22%3A%22square%22%7D").as_deref(),
            Some(r#"{"kind":"square"}"#)
        );
        assert_eq!(percent_decode("plain.png").as_deref(), Some("plain.png"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
