//! Tauri commands for voice calls (issue 8): each one is a call on natter-core, plus the audio
//! device choice, which is saved with the other settings and handed to the client.

use natter_core::calls::CallInfo;
use natter_core::AudioDevices;
use tauri::State;

use crate::ipc::{IpcError, Settings};
use crate::state::{apply_audio_devices, AppState};

type Res<T> = Result<T, IpcError>;

/// Rings a friend; the answer is the call in its `calling` phase (then `call` events follow).
#[tauri::command(rename_all = "snake_case")]
pub async fn call(state: State<'_, AppState>, to: String) -> Res<CallInfo> {
    Ok(state.client().await?.call(&to).await?)
}

/// Accepts or declines the call that is ringing.
#[tauri::command(rename_all = "snake_case")]
pub async fn answer_call(state: State<'_, AppState>, call_id: String, accept: bool) -> Res<()> {
    Ok(state.client().await?.answer_call(&call_id, accept).await?)
}

/// Ends a call, or cancels one still ringing.
#[tauri::command(rename_all = "snake_case")]
pub async fn hang_up(state: State<'_, AppState>, call_id: String) -> Res<()> {
    Ok(state.client().await?.hang_up(&call_id).await?)
}

/// Mutes or unmutes the microphone of the call in progress (`null` when there is none).
#[tauri::command(rename_all = "snake_case")]
pub async fn set_muted(state: State<'_, AppState>, muted: bool) -> Res<Option<CallInfo>> {
    Ok(state.client().await?.set_muted(muted).await)
}

/// The call in progress, if any (the UI asks after login and after a reload).
#[tauri::command(rename_all = "snake_case")]
pub async fn current_call(state: State<'_, AppState>) -> Res<Option<CallInfo>> {
    Ok(state.client().await?.current_call().await)
}

/// The microphone level of the call in progress, 0–1 (the UI polls it ~10 times a second).
#[tauri::command(rename_all = "snake_case")]
pub async fn call_level(state: State<'_, AppState>) -> Res<f32> {
    Ok(state.client().await?.call_level().await)
}

/// The microphones and speakers there are now.
#[tauri::command(rename_all = "snake_case")]
pub async fn audio_devices(state: State<'_, AppState>) -> Res<AudioDevices> {
    let client = state.client().await?;
    // Listing devices probes the sound system (ALSA opens each one): not on an async worker.
    tauri::async_runtime::spawn_blocking(move || client.audio_devices())
        .await
        .map_err(|e| IpcError::new("internal", e.to_string()))?
        .map_err(IpcError::from)
}

/// Chooses the microphone and speaker for the next call (`null`: the system default), saved in
/// the settings.
#[tauri::command(rename_all = "snake_case")]
pub async fn set_audio_devices(
    state: State<'_, AppState>,
    input: Option<String>,
    output: Option<String>,
) -> Res<Settings> {
    let saved = state.update_settings(|s| {
        s.audio_input = input;
        s.audio_output = output;
    })?;
    if let Ok(client) = state.client().await {
        apply_audio_devices(&client, &saved);
    }
    Ok(saved)
}
