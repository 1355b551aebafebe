//! Request handlers, one file per message family. [`dispatch`] applies what every request shares
//! — the `hello` gate, the per-connection request budget, authentication — then hands the typed
//! message to its family.

pub mod auth;
pub mod calls;
pub mod chat;
pub mod files;
pub mod friends;
pub mod presence;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use natter_proto::{ClientMessage, ErrorCode, MsgId, PresenceScope, ServerMessage};
use tokio::sync::mpsc;

use crate::hub::{Push, SessionControl};
use crate::ratelimit::{Bucket, Limits};
use crate::store::{StoreError, UserId};
use crate::transfer::fetch::Fetches;
use crate::Ctx;

/// A failed request: the code and text of its `error` reply.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// Wire code.
    pub code: ErrorCode,
    /// Human text.
    pub message: String,
    /// For rate limits.
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    /// A refusal with a code and text.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => {
                Refusal::new(ErrorCode::UsernameTaken, "that username is taken")
            }
            StoreError::QuotaExceeded => Refusal::new(
                ErrorCode::QuotaExceeded,
                "your stored transfers would exceed your storage quota",
            ),
            other => {
                tracing::error!(error = %other, "storage failure");
                Refusal::new(
                    ErrorCode::Internal,
                    "the server could not complete the request",
                )
            }
        }
    }
}

impl From<natter_proto::validate::Invalid> for Refusal {
    fn from(e: natter_proto::validate::Invalid) -> Self {
        Refusal::new(e.code, e.message)
    }
}

/// Result of a handler.
pub type Handled = Result<Outcome, Refusal>;

/// One frame for the connection to write.
#[derive(Debug)]
pub enum Outgoing {
    /// A typed message.
    Message(ServerMessage),
    /// A stored JSON payload (queued notices).
    Raw(Bytes),
    /// A private message push (tracked so it is not pushed twice on this connection).
    Private(natter_proto::ChatMessage),
    /// The payload of a binary frame; only ever right after the header that announces it.
    Binary(Bytes),
}

/// What a handler asks the connection to do.
#[derive(Default)]
pub struct Outcome {
    /// Frames to write now, in order.
    pub out: Vec<Outgoing>,
    /// A reply that arrives later (after a batched commit); written in request order.
    pub deferred: Option<BoxFuture<'static, ServerMessage>>,
    /// A reply that may take long (hashing a whole file); written when ready, without holding
    /// up the deferred replies of later requests.
    pub late: Option<BoxFuture<'static, ServerMessage>>,
    /// The reply to a `file_chunk` being stored: written when ready, like `late`, and counted
    /// against the connection's budget of chunk bytes in flight.
    pub chunk: Option<BoxFuture<'static, ServerMessage>>,
    /// Close the connection after writing.
    pub close: bool,
}

impl Outcome {
    /// A single reply.
    pub fn reply(message: ServerMessage) -> Self {
        Self {
            out: vec![Outgoing::Message(message)],
            ..Self::default()
        }
    }

    /// A plain `ok` reply.
    pub fn ok(id: &str) -> Self {
        Self::reply(ServerMessage::Ok { id: id.to_owned() })
    }
}

/// The logged-in user of a connection.
#[derive(Debug)]
pub struct Session {
    /// User id.
    pub user_id: UserId,
    /// Username, display form.
    pub username: String,
    /// Guest account.
    pub is_guest: bool,
    /// SHA-256 of the session token.
    pub token_hash: Vec<u8>,
    /// The hub's handle to end this session.
    pub control: Arc<SessionControl>,
}

/// Per-connection request budgets.
#[derive(Debug)]
pub struct ConnBuckets {
    /// `query_username`.
    pub query: Bucket,
    /// `heartbeat`.
    pub heartbeat: Bucket,
    /// Authentication attempts.
    pub auth: Bucket,
    /// Everything.
    pub requests: Bucket,
}

impl ConnBuckets {
    fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            query: Bucket::new(limits.query, now),
            heartbeat: Bucket::new(limits.heartbeat, now),
            auth: Bucket::new(limits.auth_per_conn, now),
            requests: Bucket::new(limits.requests, now),
        }
    }
}

/// Everything a connection knows about itself.
pub struct ConnState {
    /// Unique per connection.
    pub conn_id: u64,
    /// The client's address as the socket reports it (never what the client claims).
    pub peer_ip: IpAddr,
    /// The server's address this connection came in on: the relay is advertised at it, since
    /// that is an address the client can reach.
    pub local_ip: IpAddr,
    /// `hello` was accepted.
    pub greeted: bool,
    /// Presence pushes wanted.
    pub scope: PresenceScope,
    /// Protocol version agreed in `hello`.
    pub version: u32,
    /// The logged-in user.
    pub session: Option<Session>,
    /// This connection's push channel (given to the hub at login).
    pub push_tx: mpsc::Sender<Push>,
    /// Request budgets.
    pub buckets: ConnBuckets,
    /// Private messages pushed on this connection and not yet acked.
    pub pushed: HashSet<MsgId>,
    /// `file_fetch` answers being streamed, and those waiting.
    pub fetches: Fetches,
}

impl ConnState {
    /// A fresh connection.
    pub fn new(
        conn_id: u64,
        peer_ip: IpAddr,
        local_ip: IpAddr,
        push_tx: mpsc::Sender<Push>,
        limits: &Limits,
    ) -> Self {
        Self {
            conn_id,
            peer_ip,
            local_ip,
            greeted: false,
            scope: PresenceScope::All,
            version: natter_proto::PROTOCOL_VERSION,
            session: None,
            push_tx,
            buckets: ConnBuckets::new(limits, Instant::now()),
            pushed: HashSet::new(),
            fetches: Fetches::default(),
        }
    }
}

/// Takes a token from a bucket, or refuses with `rate_limited`.
pub fn spend(limits: &Limits, bucket: &mut Bucket) -> Result<(), Refusal> {
    if !limits.enabled {
        return Ok(());
    }
    bucket.take(Instant::now()).map_err(|wait| Refusal {
        code: ErrorCode::RateLimited,
        message: "too many requests; slow down".into(),
        retry_after_ms: Some(wait.as_millis().max(1) as u64),
    })
}

/// Refusal for an exhausted per-IP budget.
pub fn ip_limited(wait: std::time::Duration) -> Refusal {
    Refusal {
        code: ErrorCode::RateLimited,
        message: "too many attempts from your address; slow down".into(),
        retry_after_ms: Some(wait.as_millis().max(1) as u64),
    }
}

impl ConnState {
    /// A handle on this connection's session for pushes that outlive the request (calls).
    pub fn link(&self) -> Option<crate::hub::SessionLink> {
        self.session.as_ref().map(|s| {
            crate::hub::SessionLink::new(
                s.user_id,
                s.username.clone(),
                self.conn_id,
                self.local_ip,
                self.push_tx.clone(),
                s.control.clone(),
            )
        })
    }
}

/// Resolves a username to (id, display name), online users first (no database read).
pub(crate) async fn resolve(ctx: &Ctx, username: &str) -> Result<(UserId, String), Refusal> {
    if let Some(id) = ctx.hub.online_id(username) {
        // The hub's key matched case-insensitively; the display form comes from the hub too.
        if let Some(user) = ctx.hub.online_user(id) {
            return Ok((id, user.username));
        }
    }
    let user = ctx.store.user_by_name(username).await?.ok_or_else(|| {
        Refusal::new(ErrorCode::NoSuchUser, format!("no user named `{username}`"))
    })?;
    Ok((user.id, user.username))
}

/// The session of a connection, or `not_authenticated`.
pub fn session(state: &ConnState) -> Result<&Session, Refusal> {
    state
        .session
        .as_ref()
        .ok_or_else(|| Refusal::new(ErrorCode::NotAuthenticated, "log in first"))
}

/// Handles one decoded request; `binary` is the payload of the binary frame that followed a
/// `file_chunk` (the connection pairs them up before calling this).
pub async fn dispatch(
    ctx: &Ctx,
    state: &mut ConnState,
    message: ClientMessage,
    binary: Option<Bytes>,
) -> Outcome {
    let id = message.id().map(str::to_owned);
    match handle(ctx, state, message, binary).await {
        Ok(outcome) => outcome,
        Err(refusal) => {
            let close = refusal.code.closes_connection();
            Outcome {
                out: vec![Outgoing::Message(ServerMessage::Error {
                    id,
                    code: refusal.code,
                    message: refusal.message,
                    retry_after_ms: refusal.retry_after_ms,
                })],
                close,
                ..Outcome::default()
            }
        }
    }
}

async fn handle(
    ctx: &Ctx,
    state: &mut ConnState,
    message: ClientMessage,
    binary: Option<Bytes>,
) -> Handled {
    if let Some(id) = message.id() {
        natter_proto::validate::client_id("id", id)?;
    }
    spend(&ctx.config.limits, &mut state.buckets.requests)?;
    if !state.greeted && !matches!(message, ClientMessage::Hello { .. }) {
        return Err(Refusal::new(
            ErrorCode::HelloRequired,
            "the first message of a connection must be `hello`",
        ));
    }
    use ClientMessage as M;
    match message {
        M::Hello {
            id,
            version,
            client,
            presence,
        } => auth::hello(ctx, state, &id, version, &client, presence),
        M::QueryUsername { id, username } => auth::query_username(ctx, state, &id, &username).await,
        M::Register {
            id,
            username,
            password,
            nickname,
            motto,
            phone,
        } => auth::register(ctx, state, &id, username, password, nickname, motto, phone).await,
        M::Login {
            id,
            username,
            password,
        } => auth::login(ctx, state, &id, &username, password).await,
        M::GuestLogin { id, username } => auth::guest_login(ctx, state, &id, &username).await,
        M::Resume { id, token } => auth::resume(ctx, state, &id, &token).await,
        M::Heartbeat { id } => presence::heartbeat(ctx, state, &id),
        M::Logout { id } => auth::logout(ctx, state, &id).await,
        M::EraseAccount { id, password } => auth::erase(ctx, state, &id, password).await,
        M::UpdateProfile {
            id,
            nickname,
            motto,
            phone,
        } => auth::update_profile(ctx, state, &id, nickname, motto, phone).await,
        M::ListOnline { id } => presence::list_online(ctx, state, &id),
        M::FriendRequest { id, to, message } => {
            friends::request(ctx, state, &id, &to, &message).await
        }
        M::FriendRespond { id, from, accept } => {
            friends::respond(ctx, state, &id, &from, accept).await
        }
        M::FriendDelete { id, username } => friends::delete(ctx, state, &id, &username).await,
        M::FriendList { id } => friends::list(ctx, state, &id).await,
        M::SendMessage {
            id,
            client_msg_id,
            to,
            body,
        } => chat::send(ctx, state, id, client_msg_id, to, body).await,
        M::Ack { id, msg_ids } => chat::ack(ctx, state, id, msg_ids).await,
        M::History {
            id,
            with,
            before,
            limit,
        } => chat::history(ctx, state, &id, &with, before, limit).await,
        M::FileOffer {
            id,
            to,
            name,
            size,
            sha256,
            kind,
        } => files::offer(ctx, state, &id, to, &name, size, sha256, kind).await,
        M::FileAnswer {
            id,
            file_id,
            accept,
        } => files::answer(ctx, state, &id, &file_id, accept).await,
        M::FileStatus { id, file_id } => files::status(ctx, state, &id, &file_id).await,
        M::FileChunk {
            id,
            file_id,
            offset,
            len,
        } => files::chunk(ctx, state, id, &file_id, offset, len, binary).await,
        M::FileComplete {
            id,
            file_id,
            sha256,
        } => files::complete(ctx, state, id, &file_id, &sha256).await,
        M::FileFetch {
            id,
            file_id,
            offset,
            len,
        } => files::fetch(ctx, state, &id, &file_id, offset, len).await,
        M::FileCancel { id, file_id } => files::cancel(ctx, state, &id, &file_id).await,
        M::CallInvite { id, to } => calls::invite(ctx, state, &id, &to).await,
        M::CallAnswer {
            id,
            call_id,
            accept,
        } => calls::answer(ctx, state, &id, &call_id, accept).await,
        M::CallHangup { id, call_id } => calls::hangup(ctx, state, &id, &call_id).await,
    }
}
