//! Tauri commands: each one maps the UI's call onto natter-core and its answer back. No decisions
//! are made here beyond picking the client and translating errors.

use natter_core::{
    FriendList, HistoryWindow, LocalMessage, LoginInfo, Registration, SearchHit, Unread,
};
use natter_proto::{OnlineUser, Profile, Target};
use tauri::{AppHandle, Runtime, State};

use crate::ipc::{
    AppInfo, ConnectInfo, IpcError, ProfileEdit, ServerSettings, Settings, UsernameCheck,
};
use crate::state::AppState;

type Res<T> = Result<T, IpcError>;

/// How long the app waits for the server at start before opening the account offline.
const RESUME_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

/// Settings, version and OS language for the UI to start with.
#[tauri::command(rename_all = "snake_case")]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        settings: state.settings(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        os_language: crate::os_language(),
        data_dir: state.data_dir.display().to_string(),
    }
}

/// Replaces the saved settings.
#[tauri::command(rename_all = "snake_case")]
pub fn save_settings(state: State<'_, AppState>, settings: Settings) -> Res<Settings> {
    state.update_settings(|s| *s = settings)
}

/// Chooses the server and makes first contact (which pins a TLS certificate, or reports that the
/// pinned one changed).
#[tauri::command(rename_all = "snake_case")]
pub async fn connect<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    server: ServerSettings,
) -> Res<ConnectInfo> {
    let client = state
        .connect(server.clone(), |c| crate::forward_events(app, c))
        .await?;
    first_contact(&state, &client, server).await
}

/// Makes first contact with the chosen server and remembers it once it answered.
pub(crate) async fn first_contact(
    state: &AppState,
    client: &natter_core::Client,
    server: ServerSettings,
) -> Res<ConnectInfo> {
    // Any request dials; a free-name query is the cheapest one that needs no session.
    // The answer (free or not) does not matter, only that the server answered.
    let _free = client.query_username("natterprobe").await?;
    state.update_settings(|s| s.server = server)?;
    Ok(ConnectInfo {
        fingerprint: client.pinned_certificate(),
    })
}

/// Trusts the server's new certificate (after `certificate_changed`).
#[tauri::command(rename_all = "snake_case")]
pub async fn accept_certificate(state: State<'_, AppState>, fingerprint: String) -> Res<()> {
    Ok(state.client().await?.accept_certificate(&fingerprint)?)
}

/// Whether a username can be registered, and why not.
#[tauri::command(rename_all = "snake_case")]
pub async fn check_username(state: State<'_, AppState>, username: String) -> Res<UsernameCheck> {
    let answer = state.client().await?.query_username(&username).await?;
    Ok(UsernameCheck {
        available: answer.is_ok(),
        reason: answer.err(),
    })
}

/// Creates an account (the UI logs in next).
#[tauri::command(rename_all = "snake_case")]
pub async fn register(state: State<'_, AppState>, form: Registration) -> Res<Profile> {
    Ok(state.client().await?.register(form).await?)
}

/// Logs in with a password and remembers the account for the next start.
#[tauri::command(rename_all = "snake_case")]
pub async fn login(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> Res<LoginInfo> {
    let info = state.client().await?.login(&username, &password).await?;
    state.update_settings(|s| s.last_user = Some(info.profile.username.clone()))?;
    Ok(info)
}

/// Logs in as a guest (not remembered).
#[tauri::command(rename_all = "snake_case")]
pub async fn guest_login(state: State<'_, AppState>, username: String) -> Res<LoginInfo> {
    Ok(state.client().await?.guest_login(&username).await?)
}

/// Continues the remembered account's session (app start); offline from the local store when
/// the server does not answer in time.
#[tauri::command(rename_all = "snake_case")]
pub async fn resume(state: State<'_, AppState>, username: String) -> Res<LoginInfo> {
    Ok(state
        .client()
        .await?
        .resume_or_open_offline(&username, RESUME_WAIT)
        .await?)
}

/// Ends the session and forgets the remembered account.
#[tauri::command(rename_all = "snake_case")]
pub async fn logout(state: State<'_, AppState>) -> Res<()> {
    let result = state.client().await?.logout().await;
    // Forget the account even if the server could not be told: the token is gone locally.
    state.update_settings(|s| s.last_user = None)?;
    Ok(result?)
}

/// Deletes the account on the server.
#[tauri::command(rename_all = "snake_case")]
pub async fn erase_account(state: State<'_, AppState>, password: String) -> Res<()> {
    state.client().await?.erase_account(&password).await?;
    state.update_settings(|s| s.last_user = None)?;
    Ok(())
}

/// Changes nickname, motto or phone.
#[tauri::command(rename_all = "snake_case")]
pub async fn update_profile(state: State<'_, AppState>, edit: ProfileEdit) -> Res<Profile> {
    Ok(state
        .client()
        .await?
        .update_profile(edit.nickname, edit.motto, edit.phone)
        .await?)
}

/// Everyone online.
#[tauri::command(rename_all = "snake_case")]
pub async fn online_users(state: State<'_, AppState>) -> Res<Vec<OnlineUser>> {
    Ok(state.client().await?.list_online().await?)
}

/// Friends and pending requests (the cache when offline).
#[tauri::command(rename_all = "snake_case")]
pub async fn friends(state: State<'_, AppState>) -> Res<FriendList> {
    Ok(state.client().await?.friend_list().await?)
}

/// Asks someone to be friends, with a note.
#[tauri::command(rename_all = "snake_case")]
pub async fn friend_request(state: State<'_, AppState>, to: String, message: String) -> Res<()> {
    Ok(state.client().await?.friend_request(&to, &message).await?)
}

/// Accepts or rejects a request.
#[tauri::command(rename_all = "snake_case")]
pub async fn friend_respond(state: State<'_, AppState>, from: String, accept: bool) -> Res<()> {
    Ok(state.client().await?.friend_respond(&from, accept).await?)
}

/// Ends a friendship.
#[tauri::command(rename_all = "snake_case")]
pub async fn friend_delete(state: State<'_, AppState>, username: String) -> Res<()> {
    Ok(state.client().await?.friend_delete(&username).await?)
}

/// Queues a text message (stored locally first; sent now or when back online).
#[tauri::command(rename_all = "snake_case")]
pub async fn send_text(state: State<'_, AppState>, to: Target, text: String) -> Res<LocalMessage> {
    Ok(state.client().await?.send_text(to, &text).await?)
}

/// Sends a failed message again.
#[tauri::command(rename_all = "snake_case")]
pub async fn retry(state: State<'_, AppState>, client_msg_id: String) -> Res<()> {
    Ok(state.client().await?.retry(&client_msg_id).await?)
}

/// Conversations with unread messages (from the local store: they survive restarts).
#[tauri::command(rename_all = "snake_case")]
pub async fn unread(state: State<'_, AppState>) -> Res<Vec<Unread>> {
    Ok(state.client().await?.unread().await?)
}

/// Marks a conversation read up to its newest message; returns that message's id.
#[tauri::command(rename_all = "snake_case")]
pub async fn mark_read(state: State<'_, AppState>, with: Target) -> Res<i64> {
    Ok(state.client().await?.mark_read(&with).await?)
}

/// A page of local history, at once (offline too); `before` pages back.
#[tauri::command(rename_all = "snake_case")]
pub async fn local_history(
    state: State<'_, AppState>,
    with: Target,
    before: Option<i64>,
    limit: u32,
) -> Res<Vec<LocalMessage>> {
    Ok(state
        .client()
        .await?
        .local_history(&with, before, limit)
        .await?)
}

/// A page merged with the server's history (fills gaps the local store has).
#[tauri::command(rename_all = "snake_case")]
pub async fn history(
    state: State<'_, AppState>,
    with: Target,
    before: Option<i64>,
    limit: u32,
) -> Res<Vec<LocalMessage>> {
    Ok(state.client().await?.history(&with, before, limit).await?)
}

/// Messages around `msg_id` (a search hit), for jumping to it.
#[tauri::command(rename_all = "snake_case")]
pub async fn history_around(
    state: State<'_, AppState>,
    with: Target,
    msg_id: i64,
    limit: u32,
) -> Res<HistoryWindow> {
    Ok(state
        .client()
        .await?
        .history_around(&with, msg_id, limit)
        .await?)
}

/// Newer messages after `after` (paging forward from a jump).
#[tauri::command(rename_all = "snake_case")]
pub async fn history_after(
    state: State<'_, AppState>,
    with: Target,
    after: i64,
    limit: u32,
) -> Res<Vec<LocalMessage>> {
    Ok(state
        .client()
        .await?
        .local_history_after(&with, after, limit)
        .await?)
}

/// Searches local history across every conversation.
#[tauri::command(rename_all = "snake_case")]
pub async fn search(state: State<'_, AppState>, query: String, limit: u32) -> Res<Vec<SearchHit>> {
    Ok(state.client().await?.search(&query, limit).await?)
}
