//! Files: offers, answers, resumable chunked uploads, streamed downloads, cancel
//! (PROTOCOL.md §5.7; seed 001 `file` / `accept` / `reject` / `file-data`, seed 003 `4001`–`8010`),
//! and the check that an `image` or `file` chat body names a transfer of its sender (rule 10).
//!
//! Every request first finds the transfer and the session's [`Role`] in it. A stranger gets
//! `not_found` whatever it asks, exactly as for an id that does not exist, so ids cannot be
//! probed; a party asking for what only the other party may do gets `forbidden`.
//! Bytes, ranges, hash checks and streaming live in [`crate::transfer`].

use bytes::Bytes;
use futures::future::BoxFuture;
use natter_proto::{
    validate, ErrorCode, FileKind, FileOfferInfo, MessageBody, ServerMessage, Target,
};

use super::{resolve, session, ConnState, Handled, Outcome, Outgoing, Refusal};
use crate::store::{NewTransfer, Store, TransferRecord, UserId};
use crate::transfer::fetch::FetchJob;
use crate::transfer::{self, role, Role, Transfers, Verdict};
use crate::Ctx;

fn not_found() -> Refusal {
    Refusal::new(ErrorCode::NotFound, "no such file transfer")
}

fn forbidden(why: &str) -> Refusal {
    Refusal::new(ErrorCode::Forbidden, why)
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::InvalidField, why)
}

fn internal(why: &str) -> Refusal {
    Refusal::new(ErrorCode::Internal, why)
}

/// The transfer `file_id` names, if `user` may see it, with the user's role in it.
async fn visible(
    ctx: &Ctx,
    user: UserId,
    file_id: &str,
) -> Result<(TransferRecord, Role), Refusal> {
    if !transfer::is_file_id(file_id) {
        return Err(not_found());
    }
    let t = ctx
        .store
        .transfer(file_id, (ctx.clock)())
        .await?
        .ok_or_else(not_found)?;
    match role(&t, user) {
        Role::Stranger => Err(not_found()),
        role => Ok((t, role)),
    }
}

/// `file_offer` → `file_offer_created`; the receiver of a `file` gets `file_offered` if online
/// (and at each login until they answer).
#[allow(clippy::too_many_arguments)]
pub async fn offer(
    ctx: &Ctx,
    state: &ConnState,
    id: &str,
    to: Target,
    name: &str,
    size: u64,
    sha256: Option<String>,
    kind: FileKind,
) -> Handled {
    let me = session(state)?;
    if let Some(sha256) = &sha256 {
        validate::sha256_hex(sha256)?;
    }
    let name = validate::sanitize_file_name(name)?;
    let target = match (to, kind) {
        (Target::Square, FileKind::File) => {
            return Err(invalid(
                "a file is offered to one user; only images go to the square",
            ))
        }
        (Target::Square, FileKind::Image) => None,
        (Target::User { username }, _) => {
            let (rid, rname) = resolve(ctx, &username).await?;
            if rid == me.user_id {
                return Err(Refusal::new(
                    ErrorCode::SelfTarget,
                    "you cannot send a file to yourself",
                ));
            }
            Some((rid, rname))
        }
    };
    let (limit, what) = match kind {
        FileKind::File => (ctx.config.max_file_bytes, "file"),
        FileKind::Image => (ctx.config.max_image_bytes, "image"),
    };
    if size > limit {
        return Err(Refusal::new(
            ErrorCode::FileTooLarge,
            format!("{what}s may have at most {limit} bytes, this one has {size}"),
        ));
    }
    // No chunk can ever complete an empty file, so it is complete (and checked) right away.
    let sha256 = match sha256 {
        Some(sha256) if size == 0 && sha256 != transfer::EMPTY_SHA256 => {
            return Err(invalid("sha256 is not the hash of an empty file"))
        }
        _ if size == 0 => transfer::EMPTY_SHA256.to_owned(),
        Some(sha256) => sha256,
        // Named later with `file_complete`.
        None => String::new(),
    };
    let now = (ctx.clock)();
    let new = NewTransfer {
        file_id: transfer::new_file_id(),
        owner_id: me.user_id,
        kind,
        target_id: target.as_ref().map(|(rid, _)| *rid),
        name,
        size,
        sha256,
        chunk_size: transfer::suggest_chunk_size(size, ctx.config.max_frame_bytes),
        accepted: kind == FileKind::Image,
        complete: size == 0,
        created_at: now,
        expires_at: now.saturating_add(ctx.config.file_ttl.as_millis() as i64),
    };
    ctx.store
        .create_transfer(&new, ctx.config.user_quota_bytes)
        .await?;
    tracing::info!(file_id = %new.file_id, from = %me.username, ?kind, size, "transfer offered");
    if let (FileKind::File, Some((rid, rname))) = (kind, target) {
        let offer = FileOfferInfo {
            file_id: new.file_id.clone(),
            from: me.username.clone(),
            to: rname,
            name: new.name.clone(),
            size,
            sha256: new.sha256.clone(),
            ts: now,
        };
        ctx.hub.push_to(rid, &ServerMessage::FileOffered { offer });
    }
    Ok(Outcome::reply(ServerMessage::FileOfferCreated {
        id: id.to_owned(),
        file_id: new.file_id,
        chunk_size: new.chunk_size,
    }))
}

/// `file_answer` → `ok`; the sender gets `file_answered` if online. A rejected transfer is
/// deleted with its bytes.
pub async fn answer(
    ctx: &Ctx,
    state: &ConnState,
    id: &str,
    file_id: &str,
    accept: bool,
) -> Handled {
    let me = session(state)?.user_id;
    let (t, role) = visible(ctx, me, file_id).await?;
    if t.kind == FileKind::Image {
        return Err(invalid("an image transfer needs no answer"));
    }
    if role == Role::Sender {
        return Err(forbidden("only the receiver answers an offer"));
    }
    let answered = ServerMessage::FileAnswered {
        file_id: t.file_id.clone(),
        accepted: accept,
    };
    if accept {
        // Accepting twice (a resent request) tells the sender once.
        if ctx.store.accept_transfer(&t.file_id).await? {
            ctx.hub.push_to(t.owner_id, &answered);
        }
    } else {
        // The sender hears the answer before the transfer disappears: its uploader, racing
        // the answer, then tends to learn "rejected" before its next request meets not_found.
        ctx.hub.push_to(t.owner_id, &answered);
        if ctx.store.delete_transfer(&t.file_id).await?.is_some() {
            if let Err(e) = ctx.transfers.blobs.remove(&t.file_id).await {
                tracing::warn!(error = %e, file_id = %t.file_id, "could not delete rejected bytes");
            }
        }
    }
    tracing::info!(file_id = %t.file_id, accept, "transfer answered");
    Ok(Outcome::ok(id))
}

/// `file_status` → `file_status_reply`: what the server holds, for either party to resume.
pub async fn status(ctx: &Ctx, state: &ConnState, id: &str, file_id: &str) -> Handled {
    let me = session(state)?.user_id;
    let (t, _) = visible(ctx, me, file_id).await?;
    Ok(Outcome::reply(ServerMessage::FileStatusReply {
        id: id.to_owned(),
        file_id: t.file_id,
        size: t.size,
        chunk_size: t.chunk_size,
        have: t.have.to_wire(),
        complete: t.complete,
        accepted: t.accepted == Some(true),
        sha256: t.sha256,
    }))
}

/// `file_chunk` + its binary frame → `ok`, later: the chunk is written and its range recorded
/// while the connection reads the next ones (see [`crate::transfer::upload`]). The chunk whose
/// range completes a file with a known hash is answered once the SHA-256 is checked.
pub async fn chunk(
    ctx: &Ctx,
    state: &ConnState,
    id: String,
    file_id: &str,
    offset: u64,
    len: u32,
    bytes: Option<Bytes>,
) -> Handled {
    let me = session(state)?.user_id;
    // The connection pairs every header with its binary frame; this guards that contract.
    let bytes = bytes.filter(|b| b.len() == len as usize).ok_or_else(|| {
        Refusal::new(
            ErrorCode::InvalidMessage,
            format!("a file_chunk must be followed by a binary frame of {len} bytes"),
        )
    })?;
    let upload = match ctx.transfers.live_upload(file_id) {
        // The sender's next chunk: who may write and how big the file is cannot change, so
        // the database is not asked again.
        Some(upload) if upload.owner == me => upload,
        _ => {
            let (t, role) = visible(ctx, me, file_id).await?;
            if role != Role::Sender {
                return Err(forbidden("only the sender uploads a transfer's bytes"));
            }
            in_file(offset, len, t.size)?;
            if t.complete {
                // Verified bytes are never overwritten; a resend after a lost `ok` is done.
                return Ok(Outcome::ok(&id));
            }
            if t.have.covers(t.size) {
                // Every byte is here and only the check is missing (interrupted, failed on
                // the disk, or waiting for the hash): the resend starts it again instead of
                // overwriting what is being hashed.
                return Ok(verify(
                    &ctx.store,
                    &ctx.transfers,
                    &t.file_id,
                    t.size,
                    &t.sha256,
                    id,
                ));
            }
            ctx.transfers.open_upload(&t).await.map_err(|e| {
                tracing::error!(error = %e, file_id = %t.file_id, "cannot open an upload");
                internal("the server could not store the chunk; send it again")
            })?
        }
    };
    let end = in_file(offset, len, upload.size)?;
    if ctx.transfers.is_verifying(file_id) {
        // Every byte is here and being hashed: a resend must not overwrite it.
        return Ok(Outcome::ok(&id));
    }
    let (store, transfers) = (ctx.store.clone(), ctx.transfers.clone());
    let job = tokio::spawn(async move {
        if len > 0 {
            if let Err(e) = upload.write(offset, bytes).await {
                tracing::error!(error = %e, file_id = %upload.file_id, "chunk write failed");
                return internal_error(&id, "the server could not store the chunk; send it again");
            }
        }
        let held = match upload.record(&store, offset, end).await {
            Ok(Some(held)) => held,
            Ok(None) => {
                // Cancelled while we wrote: the write may have created its file again.
                transfers.forget_upload(&upload.file_id);
                if let Err(e) = transfers.blobs.remove(&upload.file_id).await {
                    tracing::warn!(error = %e, file_id = %upload.file_id, "could not delete cancelled bytes");
                }
                return ServerMessage::error(
                    Some(&id),
                    ErrorCode::NotFound,
                    "no such file transfer",
                );
            }
            Err(e) => {
                tracing::error!(error = %e, file_id = %upload.file_id, "could not record a chunk");
                return internal_error(&id, "the server could not store the chunk; send it again");
            }
        };
        if held.have.covers(upload.size) {
            verdict(
                &store,
                &transfers,
                &upload.file_id,
                upload.size,
                &held.sha256,
                id,
            )
            .await
        } else {
            ServerMessage::Ok { id }
        }
    });
    Ok(Outcome {
        chunk: Some(Box::pin(async move {
            job.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "chunk task failed");
                ServerMessage::error(
                    None,
                    ErrorCode::Internal,
                    "the server could not store a chunk; send it again",
                )
            })
        })),
        ..Outcome::default()
    })
}

fn internal_error(id: &str, message: &str) -> ServerMessage {
    ServerMessage::error(Some(id), ErrorCode::Internal, message)
}

/// `[offset, offset + len)` if it lies inside a file of `size` bytes.
fn in_file(offset: u64, len: u32, size: u64) -> Result<u64, Refusal> {
    offset
        .checked_add(u64::from(len))
        .filter(|&end| end <= size)
        .ok_or_else(|| {
            invalid(format!(
                "offset {offset} + len {len} lies outside the file of {size} bytes"
            ))
        })
}

/// `file_complete` → `ok` (the SHA-256 is recorded; the chunk that completes the file hears the
/// verdict), or the verdict itself when every byte is already stored.
pub async fn complete(
    ctx: &Ctx,
    state: &ConnState,
    id: String,
    file_id: &str,
    sha256: &str,
) -> Handled {
    let me = session(state)?.user_id;
    validate::sha256_hex(sha256)?;
    let (t, role) = visible(ctx, me, file_id).await?;
    if role != Role::Sender {
        return Err(forbidden("only the sender completes an upload"));
    }
    let held = ctx
        .store
        .set_transfer_hash(&t.file_id, sha256)
        .await?
        .ok_or_else(not_found)?;
    if held.sha256 != sha256 {
        return Err(invalid(format!(
            "the transfer's sha256 is {}; this names {sha256}",
            held.sha256
        )));
    }
    if t.complete || !held.have.covers(t.size) {
        return Ok(Outcome::ok(&id));
    }
    Ok(verify(
        &ctx.store,
        &ctx.transfers,
        &t.file_id,
        t.size,
        sha256,
        id,
    ))
}

/// Starts the SHA-256 check of a fully stored transfer; the request's reply is its verdict.
fn verify(
    store: &Store,
    transfers: &Transfers,
    file_id: &str,
    size: u64,
    sha256: &str,
    id: String,
) -> Outcome {
    Outcome {
        late: Some(verdict(store, transfers, file_id, size, sha256, id)),
        ..Outcome::default()
    }
}

/// The reply of the request that made a transfer checkable: the check's verdict, or `ok` at
/// once when there is nothing to check yet (no hash named) or a check is already under way
/// (the request that started it hears the verdict).
fn verdict(
    store: &Store,
    transfers: &Transfers,
    file_id: &str,
    size: u64,
    sha256: &str,
    id: String,
) -> BoxFuture<'static, ServerMessage> {
    let check = match sha256 {
        "" => None,
        sha256 => transfers.verify(store, file_id, size, sha256),
    };
    let Some(check) = check else {
        return Box::pin(std::future::ready(ServerMessage::Ok { id }));
    };
    let expected = sha256.to_owned();
    Box::pin(async move {
        let refuse = |code, message: String| ServerMessage::error(Some(&id), code, message);
        match check.await {
            Ok(Verdict::Verified) => ServerMessage::Ok { id },
            Ok(Verdict::Mismatch { actual }) => refuse(
                ErrorCode::InvalidField,
                format!(
                    "sha256 mismatch: the stored bytes hash to {actual}, the sender said \
                     {expected}; every stored byte was discarded, upload the file again"
                ),
            ),
            Ok(Verdict::Gone) => refuse(ErrorCode::NotFound, "no such file transfer".into()),
            Ok(Verdict::Failed) | Err(_) => refuse(
                ErrorCode::Internal,
                "the server could not check the file; send a chunk again to retry".into(),
            ),
        }
    })
}

/// `file_fetch` → `file_data` + binary frame, repeated: queued on the connection, which
/// streams it piece by piece (see [`crate::transfer::fetch`]).
pub async fn fetch(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    file_id: &str,
    offset: u64,
    len: Option<u64>,
) -> Handled {
    let me = session(state)?.user_id;
    let (t, role) = visible(ctx, me, file_id).await?;
    if role == Role::Receiver {
        match t.kind {
            FileKind::File if t.accepted != Some(true) => {
                return Err(forbidden("accept the offer before fetching the file"))
            }
            FileKind::Image if !t.complete => {
                return Err(forbidden("the image is not completely uploaded yet"))
            }
            _ => {}
        }
    }
    let end = match len {
        None => Some(t.size),
        Some(len) => offset.checked_add(len),
    }
    .filter(|&end| offset <= end && end <= t.size)
    .ok_or_else(|| Refusal::new(ErrorCode::NotFound, "the range lies outside the file"))?;
    if end == offset {
        return Ok(Outcome {
            out: vec![
                Outgoing::Message(ServerMessage::FileData {
                    id: id.to_owned(),
                    file_id: t.file_id,
                    offset,
                    len: 0,
                }),
                Outgoing::Binary(Bytes::new()),
            ],
            ..Outcome::default()
        });
    }
    if !t.have.contains(offset, end) {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("the server does not hold all of bytes [{offset}, {end}) yet"),
        ));
    }
    let path = ctx.transfers.blobs.path(&t.file_id).map_err(|e| {
        tracing::error!(error = %e, "stored transfer id unusable as a path");
        internal("the server could not read the file")
    })?;
    let max_frame = u32::try_from(ctx.config.max_frame_bytes).unwrap_or(u32::MAX);
    let job = FetchJob {
        id: id.to_owned(),
        file_id: t.file_id,
        path,
        offset,
        end,
        piece: t.chunk_size.min(max_frame).max(1),
    };
    state.fetches.push(job).map_err(|e| Refusal {
        code: ErrorCode::RateLimited,
        message: e.to_string(),
        retry_after_ms: Some(1000),
    })?;
    Ok(Outcome::default())
}

/// `file_cancel` → `ok`; the transfer and its bytes are deleted and the other party gets
/// `file_cancelled` if online.
pub async fn cancel(ctx: &Ctx, state: &ConnState, id: &str, file_id: &str) -> Handled {
    let me = session(state)?.user_id;
    let (t, role) = visible(ctx, me, file_id).await?;
    if role == Role::Receiver && t.target_id.is_none() {
        // Everyone receives a square image; letting anyone delete it would let anyone
        // silence it.
        return Err(forbidden(
            "only its sender can cancel an image to the square",
        ));
    }
    ctx.transfers.forget_upload(&t.file_id);
    if let Some(removed) = ctx.store.delete_transfer(&t.file_id).await? {
        transfer::discard(&ctx.transfers.blobs, &ctx.hub, &[removed], Some(me)).await;
        tracing::info!(file_id = %t.file_id, "transfer cancelled");
    }
    Ok(Outcome::ok(id))
}

/// Rule 10: an `image` body must name a complete image transfer of the sender to the same
/// target; a `file` body a file transfer of the sender to the same user, repeating its name,
/// size and SHA-256. Returns the body to store, carrying the transfer's sanitised name.
pub async fn check_chat_body(
    ctx: &Ctx,
    sender: UserId,
    recipient: Option<UserId>,
    body: MessageBody,
) -> Result<MessageBody, Refusal> {
    let (file_id, kind) = match &body {
        MessageBody::Text { .. } => return Ok(body),
        MessageBody::Image { file_id, .. } => (file_id.clone(), FileKind::Image),
        MessageBody::File { file_id, .. } => (file_id.clone(), FileKind::File),
    };
    let not_yours = || {
        Refusal::new(
            ErrorCode::NotFound,
            "the message names no file transfer of yours",
        )
    };
    if !transfer::is_file_id(&file_id) {
        return Err(not_yours());
    }
    let t = ctx
        .store
        .transfer(&file_id, (ctx.clock)())
        .await?
        .filter(|t| t.owner_id == sender)
        .ok_or_else(not_yours)?;
    let wrong = |what: &str| invalid(format!("the message's {what} does not match its transfer"));
    if t.kind != kind {
        return Err(wrong("kind"));
    }
    if t.target_id != recipient {
        return Err(wrong("recipient"));
    }
    match body {
        MessageBody::Image {
            file_id,
            mime,
            size,
            width,
            height,
            thumbnail,
            ..
        } => {
            if !t.complete {
                return Err(invalid(
                    "the image is not completely uploaded yet; send the message after it is",
                ));
            }
            if size != t.size {
                return Err(wrong("size"));
            }
            Ok(MessageBody::Image {
                file_id,
                name: t.name,
                mime,
                size,
                width,
                height,
                thumbnail,
                // The transfer's, verified at upload: never what the client wrote.
                sha256: Some(t.sha256),
            })
        }
        MessageBody::File {
            file_id,
            name,
            size,
            sha256,
        } => {
            if validate::sanitize_file_name(&name).ok().as_deref() != Some(t.name.as_str()) {
                return Err(wrong("name"));
            }
            if size != t.size {
                return Err(wrong("size"));
            }
            // A body posted before the sender named the hash leaves it empty.
            if !sha256.is_empty() && sha256 != t.sha256 {
                return Err(wrong("sha256"));
            }
            Ok(MessageBody::File {
                file_id,
                name: t.name,
                size,
                sha256: t.sha256,
            })
        }
        text @ MessageBody::Text { .. } => Ok(text),
    }
}
