//! Accounts and sessions: hello, username query, register, password and guest login, resume,
//! logout, erase, profile edits (seed 000 `login`, seed 001 `login`/`register`, seed 002 `01`/`02`/
//! `03`, seed 003 `1000`, seed 004 `query`/`register`/`erase`/`logon`/`logoff`).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use bytes::Bytes;
use natter_proto::{validate, ErrorCode, OnlineUser, PresenceScope, ServerMessage};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{ip_limited, session, spend, ConnState, Handled, Outcome, Outgoing, Refusal, Session};
use crate::hub::{Attach, SessionControl};
use crate::ratelimit::IpKind;
use crate::store::UserRecord;
use crate::Ctx;

/// `hello`: checks the protocol version and records the presence scope.
pub fn hello(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    version: u32,
    client: &str,
    presence: PresenceScope,
) -> Handled {
    if !(natter_proto::MIN_PROTOCOL_VERSION..=natter_proto::PROTOCOL_VERSION).contains(&version) {
        return Err(Refusal::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "this server speaks protocol versions {} to {}, not {version}",
                natter_proto::MIN_PROTOCOL_VERSION,
                natter_proto::PROTOCOL_VERSION
            ),
        ));
    }
    tracing::debug!(conn = state.conn_id, client, version, "hello");
    state.greeted = true;
    state.scope = presence;
    state.version = version;
    Ok(Outcome::reply(ServerMessage::HelloOk {
        id: id.to_owned(),
        version,
        server: concat!("natter-server/", env!("CARGO_PKG_VERSION")).to_owned(),
        heartbeat_interval_ms: ctx.config.heartbeat_interval.as_millis() as u64,
        idle_timeout_ms: ctx.config.idle_timeout.as_millis() as u64,
        max_frame_bytes: ctx.config.max_frame_bytes as u64,
        presence_interval_ms: ctx.config.presence_interval.as_millis() as u64,
    }))
}

/// Whether a stored guest still holds their name: online, or offline within the grace period.
fn guest_holds_name(ctx: &Ctx, guest: &UserRecord) -> bool {
    ctx.hub.is_online(guest.id)
        || (ctx.clock)() - guest.last_seen < ctx.config.guest_grace.as_millis() as i64
}

/// Frees the name of a guest whose grace period is over; errors if the name is still held.
async fn claim_name(ctx: &Ctx, username: &str) -> Result<(), Refusal> {
    match ctx.store.user_by_name(username).await? {
        None => Ok(()),
        Some(user) if user.is_guest && !guest_holds_name(ctx, &user) => {
            ctx.delete_user(user.id, false).await?;
            Ok(())
        }
        Some(_) => Err(Refusal::new(
            ErrorCode::UsernameTaken,
            "that username is taken",
        )),
    }
}

/// `query_username` → `username_status`.
pub async fn query_username(ctx: &Ctx, state: &mut ConnState, id: &str, username: &str) -> Handled {
    spend(&ctx.config.limits, &mut state.buckets.query)?;
    let reason = match validate::username(username) {
        Err(invalid) => Some(invalid.code),
        Ok(()) => match ctx.store.user_by_name(username).await? {
            Some(user) if !user.is_guest || guest_holds_name(ctx, &user) => {
                Some(ErrorCode::UsernameTaken)
            }
            _ => None,
        },
    };
    Ok(Outcome::reply(ServerMessage::UsernameStatus {
        id: id.to_owned(),
        username: username.to_owned(),
        available: reason.is_none(),
        reason,
    }))
}

async fn hash_password(password: String) -> Result<String, Refusal> {
    // Argon2id costs tens of milliseconds of CPU: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        Refusal::new(ErrorCode::Internal, "could not hash the password")
    })
}

/// A hash to verify against when the user does not exist, so both paths cost the same time.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::encode_b64(b"natter-dummy-salt").expect("16+ byte salt encodes");
        Argon2::default()
            .hash_password(b"not a real password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// `register` → `registered`. Does not log in.
#[allow(clippy::too_many_arguments)]
pub async fn register(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    username: String,
    password: String,
    nickname: String,
    motto: String,
    phone: String,
) -> Handled {
    if state.session.is_some() {
        return Err(Refusal::new(
            ErrorCode::AlreadyAuthenticated,
            "already logged in; log out first",
        ));
    }
    // Cheap checks first: a form with a typo must not burn the address's budget.
    validate::username(&username)?;
    validate::password(&password)?;
    validate::nickname(&nickname)?;
    validate::motto(&motto)?;
    validate::phone(&phone)?;
    ctx.ip_limits
        .take(
            &ctx.config.limits,
            state.peer_ip,
            IpKind::Register,
            Instant::now(),
        )
        .map_err(ip_limited)?;
    claim_name(ctx, &username).await?;
    let hash = hash_password(password).await?;
    let user = ctx
        .store
        .create_user(
            &username,
            Some(&hash),
            &nickname,
            &motto,
            &phone,
            (ctx.clock)(),
        )
        .await?;
    tracing::info!(user = %user.username, "registered");
    Ok(Outcome::reply(ServerMessage::Registered {
        id: id.to_owned(),
        profile: user.own_profile(),
    }))
}

fn check_auth_budget(ctx: &Ctx, state: &mut ConnState) -> Result<(), Refusal> {
    if state.session.is_some() {
        return Err(Refusal::new(
            ErrorCode::AlreadyAuthenticated,
            "already logged in; log out first",
        ));
    }
    spend(&ctx.config.limits, &mut state.buckets.auth)?;
    ctx.ip_limits
        .take(
            &ctx.config.limits,
            state.peer_ip,
            IpKind::Login,
            Instant::now(),
        )
        .map_err(ip_limited)
}

/// `login` → `login_ok`.
pub async fn login(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    username: &str,
    password: String,
) -> Handled {
    check_auth_budget(ctx, state)?;
    let user = ctx.store.user_by_name(username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    if !verify_password(password, hash).await {
        return Err(Refusal::new(
            ErrorCode::BadCredentials,
            "wrong username or password",
        ));
    }
    let user =
        user.ok_or_else(|| Refusal::new(ErrorCode::BadCredentials, "wrong username or password"))?;
    let (token, token_hash) = new_token();
    ctx.store
        .create_session(&token_hash, user.id, (ctx.clock)())
        .await?;
    establish(ctx, state, id, user, token, token_hash, false).await
}

/// `guest_login` → `login_ok` for a new guest account.
pub async fn guest_login(ctx: &Ctx, state: &mut ConnState, id: &str, username: &str) -> Handled {
    if state.session.is_none() {
        validate::username(username)?;
    }
    check_auth_budget(ctx, state)?;
    claim_name(ctx, username).await?;
    let user = ctx
        .store
        .create_user(username, None, "", "", "", (ctx.clock)())
        .await?;
    let (token, token_hash) = new_token();
    ctx.store
        .create_session(&token_hash, user.id, (ctx.clock)())
        .await?;
    establish(ctx, state, id, user, token, token_hash, false).await
}

/// `resume` → `login_ok` with `resumed: true`.
pub async fn resume(ctx: &Ctx, state: &mut ConnState, id: &str, token: &str) -> Handled {
    check_auth_budget(ctx, state)?;
    let expired = || {
        Refusal::new(
            ErrorCode::SessionExpired,
            "the session is no longer valid; log in again",
        )
    };
    let token_hash = Sha256::digest(token.as_bytes()).to_vec();
    let user_id = ctx
        .store
        .session_user(&token_hash, (ctx.clock)())
        .await?
        .ok_or_else(expired)?;
    let user = ctx.store.user_by_id(user_id).await?.ok_or_else(expired)?;
    if user.is_guest && !guest_holds_name(ctx, &user) {
        // The housekeeping sweep may not have run yet; the grace period is over all the same.
        ctx.delete_user(user.id, false).await?;
        return Err(expired());
    }
    establish(ctx, state, id, user, token.to_owned(), token_hash, true).await
}

/// 256 random bits, base64url, and its SHA-256 (what is stored).
fn new_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

/// Binds a user to this connection: hub registration, the `login_ok` reply, then what was
/// waiting for them (notices, then unacked private messages in order).
async fn establish(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    user: UserRecord,
    token: String,
    token_hash: Vec<u8>,
    resumed: bool,
) -> Handled {
    let friends = ctx.store.friends(user.id).await?;
    let friend_ids: HashSet<_> = friends.iter().map(|f| f.id).collect();
    let control = Arc::new(SessionControl::default());
    let me = OnlineUser {
        username: user.username.clone(),
        nickname: user.nickname.clone(),
        is_guest: user.is_guest,
    };
    // Register before reading the queues: anything stored from now on is also pushed live, and
    // the connection drops live pushes it already sent from the queue.
    let took_over = ctx.hub.attach(Attach {
        user_id: user.id,
        conn_id: state.conn_id,
        local_ip: state.local_ip,
        user: me,
        scope: state.scope,
        batched: state.version >= 2 && state.scope == PresenceScope::All,
        friends: friend_ids.clone(),
        tx: state.push_tx.clone(),
        control: control.clone(),
    });
    state.session = Some(Session {
        user_id: user.id,
        username: user.username.clone(),
        is_guest: user.is_guest,
        token_hash: token_hash.clone(),
        control,
    });
    let opening = Opening {
        id,
        user: &user,
        friends,
        friend_ids,
        token,
        token_hash: &token_hash,
        took_over,
        resumed,
    };
    match open_session(ctx, state.scope, opening).await {
        Ok(out) => {
            tracing::info!(user = %user.username, guest = user.is_guest, resumed, "logged in");
            Ok(Outcome {
                out,
                ..Outcome::default()
            })
        }
        Err(refusal) => {
            // The client hears `error`, so the server must not keep it logged in either.
            end_session(ctx, state, false).await;
            Err(refusal)
        }
    }
}

/// What [`open_session`] needs to know about a login in progress.
struct Opening<'a> {
    id: &'a str,
    user: &'a UserRecord,
    friends: Vec<crate::store::FriendRecord>,
    friend_ids: HashSet<crate::store::UserId>,
    token: String,
    token_hash: &'a [u8],
    took_over: bool,
    resumed: bool,
}

/// The fallible part of a login, after the hub knows the session: `login_ok`, then what waited.
async fn open_session(
    ctx: &Ctx,
    scope: PresenceScope,
    o: Opening<'_>,
) -> Result<Vec<Outgoing>, Refusal> {
    let user = o.user;
    if o.took_over {
        // The newest login wins; the older device's token stops working.
        ctx.store
            .delete_other_sessions(user.id, o.token_hash)
            .await?;
    }
    ctx.store.touch_user(user.id, (ctx.clock)()).await?;
    let online = match scope {
        PresenceScope::All => ctx.hub.online_users(None),
        PresenceScope::Friends => {
            let mut ids = o.friend_ids;
            ids.insert(user.id);
            ctx.hub.online_users(Some(&ids))
        }
    };
    let friends = super::friends::with_presence(ctx, o.friends);
    let requests = ctx.store.pending_requests(user.id).await?;
    let mut out = vec![Outgoing::Message(ServerMessage::LoginOk {
        id: o.id.to_owned(),
        token: o.token,
        profile: user.own_profile(),
        online,
        online_count: ctx.hub.online_count() as u64,
        friends,
        incoming_requests: requests.incoming,
        outgoing_requests: requests.outgoing,
        resumed: o.resumed,
    })];
    for notice in ctx.store.take_notices(user.id).await? {
        out.push(Outgoing::Raw(Bytes::from(notice)));
    }
    for (msg_id, client_msg_id, to, ts) in ctx.store.pending_receipts(user.id).await? {
        out.push(Outgoing::Message(ServerMessage::Receipt {
            msg_id,
            client_msg_id,
            to,
            ts,
        }));
    }
    for message in ctx.store.undelivered_for(user.id).await? {
        out.push(Outgoing::Private(message));
    }
    // Offers stay unanswered until the receiver answers: repeat them at every login (§5.7).
    for offer in ctx.store.offers_waiting_for(user.id, (ctx.clock)()).await? {
        out.push(Outgoing::Message(ServerMessage::FileOffered {
            offer: offer.offer_info(),
        }));
    }
    Ok(out)
}

/// Ends the connection's session (logout, erase, disconnect). Guests' accounts go with it when
/// `final_` is set; otherwise they wait out the grace period.
pub async fn end_session(ctx: &Ctx, state: &mut ConnState, final_: bool) {
    let Some(session) = state.session.take() else {
        return;
    };
    // A call belongs to the session that placed or took it (PROTOCOL.md §5.8): whatever ends
    // the session (a drop, a kick, logout, erase) ends the call for the other side too.
    ctx.calls.leave(session.user_id, state.conn_id);
    state.pushed.clear();
    // A fetch belongs to the session that asked for it.
    state.fetches.clear();
    let current = ctx.hub.detach(session.user_id, state.conn_id);
    let now = (ctx.clock)();
    let result = if final_ {
        ctx.store.delete_session(&session.token_hash).await
    } else if current {
        ctx.store.touch_user(session.user_id, now).await
    } else {
        Ok(())
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, user = %session.username, "could not record the end of a session");
    }
    if final_ && session.is_guest && current {
        if let Err(e) = ctx.delete_user(session.user_id, false).await {
            tracing::warn!(error = %e, user = %session.username, "could not remove a guest");
        }
    }
    tracing::info!(user = %session.username, final_, "session ended");
}

/// `logout` → `ok`; the connection stays open for another login.
pub async fn logout(ctx: &Ctx, state: &mut ConnState, id: &str) -> Handled {
    session(state)?;
    end_session(ctx, state, true).await;
    Ok(Outcome::ok(id))
}

/// `erase_account` → `ok`, after the password is checked.
pub async fn erase(ctx: &Ctx, state: &mut ConnState, id: &str, password: String) -> Handled {
    let me = session(state)?;
    if me.is_guest {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "a guest has no account to erase; log out instead",
        ));
    }
    let user_id = me.user_id;
    let user = ctx
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::SessionExpired, "the account is gone"))?;
    if !verify_password(password, user.password_hash).await {
        return Err(Refusal::new(ErrorCode::BadCredentials, "wrong password"));
    }
    end_session(ctx, state, true).await;
    ctx.delete_user(user_id, true).await?;
    tracing::info!(user = %user.username, "account erased");
    Ok(Outcome::ok(id))
}

/// `update_profile` → `profile_updated`.
pub async fn update_profile(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    nickname: Option<String>,
    motto: Option<String>,
    phone: Option<String>,
) -> Handled {
    let user_id = session(state)?.user_id;
    validate::profile_edit(nickname.as_deref(), motto.as_deref(), phone.as_deref())?;
    ctx.store
        .update_profile(
            user_id,
            nickname.as_deref(),
            motto.as_deref(),
            phone.as_deref(),
        )
        .await?;
    let user = ctx
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::SessionExpired, "the account is gone"))?;
    ctx.hub.set_nickname(user_id, &user.nickname);
    Ok(Outcome::reply(ServerMessage::ProfileUpdated {
        id: id.to_owned(),
        profile: user.own_profile(),
    }))
}
