//! Chat: private messages and the square, acks and receipts, history (seed 000
//! `private_message`/`square_message`, seed 001 `word`, seed 002 `04`/`13`/`14`/`05`/`32`, seed 003
//! `1002`/`2002`/`2003`/`1003`/`2004`, seed 004 `send`/`receive`).
//!
//! Storing and routing happen in [`crate::persist`]; this file validates, resolves names and turns
//! the writer's answer into the reply.

use natter_proto::{validate, ErrorCode, MessageBody, MsgId, ServerMessage, Target};

use super::{resolve, session, ConnState, Handled, Outcome, Refusal};
use crate::persist;
use crate::store::{private_conv_key, NewMessage, SQUARE_CONV};
use crate::Ctx;

/// Most ids in one `ack`.
pub const MAX_ACK: usize = 1000;
/// Default and largest history page.
pub const HISTORY_DEFAULT: u32 = 50;
/// Largest history page.
pub const HISTORY_MAX: u32 = 200;

fn refused(r: persist::Refused) -> Refusal {
    match r {
        persist::Refused::SlowDown(wait) => Refusal {
            code: ErrorCode::SlowDown,
            message: "the server is busy; send the message again later".into(),
            retry_after_ms: Some(wait.as_millis().max(1) as u64),
        },
        persist::Refused::Stopped => internal(),
    }
}

fn internal() -> Refusal {
    Refusal::new(
        ErrorCode::Internal,
        "the message could not be stored; send it again",
    )
}

/// `send_message` → `message_accepted` once stored (deferred until the batch commits).
pub async fn send(
    ctx: &Ctx,
    state: &ConnState,
    id: String,
    client_msg_id: String,
    to: Target,
    body: MessageBody,
) -> Handled {
    let me = session(state)?;
    validate::client_id("client_msg_id", &client_msg_id)?;
    match &body {
        MessageBody::Text { text } => validate::text_body(text)?,
        MessageBody::Image {
            mime,
            width,
            height,
            thumbnail,
            ..
        } => validate::image_body(mime, *width, *height, thumbnail)?,
        MessageBody::File { .. } => {}
    }
    let recipient = match &to {
        Target::Square => None,
        Target::User { username } => {
            let (rid, name) = resolve(ctx, username).await?;
            if rid == me.user_id {
                return Err(Refusal::new(
                    ErrorCode::SelfTarget,
                    "you cannot message yourself",
                ));
            }
            Some((rid, name))
        }
    };
    let body = super::files::check_chat_body(
        ctx,
        me.user_id,
        recipient.as_ref().map(|(rid, _)| *rid),
        body,
    )
    .await?;
    let message = NewMessage {
        sender_id: me.user_id,
        sender_name: me.username.clone(),
        sender_guest: me.is_guest,
        client_msg_id: client_msg_id.clone(),
        recipient,
        body,
    };
    let pending = ctx.writer.save(message).map_err(refused)?;
    let deferred = Box::pin(async move {
        match pending.await {
            Ok(Ok(stored)) => ServerMessage::MessageAccepted {
                id,
                client_msg_id,
                msg_id: stored.message.msg_id,
                ts: stored.message.ts,
                duplicate: stored.duplicate,
            },
            _ => {
                let r = internal();
                ServerMessage::error(Some(&id), r.code, r.message)
            }
        }
    });
    Ok(Outcome {
        deferred: Some(deferred),
        ..Outcome::default()
    })
}

/// `ack` → `ok` once the delivery is recorded (nothing for a quiet ack, which has no id);
/// senders get receipts.
pub async fn ack(
    ctx: &Ctx,
    state: &mut ConnState,
    id: Option<String>,
    msg_ids: Vec<MsgId>,
) -> Handled {
    let me = session(state)?.user_id;
    if msg_ids.is_empty() || msg_ids.len() > MAX_ACK {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
            format!("an ack carries 1 to {MAX_ACK} message ids"),
        ));
    }
    for m in &msg_ids {
        state.pushed.remove(m);
    }
    let pending = ctx
        .writer
        .ack(me, msg_ids, id.is_some())
        .await
        .map_err(refused)?;
    let (Some(id), Some(pending)) = (id, pending) else {
        return Ok(Outcome::default());
    };
    let deferred = Box::pin(async move {
        match pending.await {
            Ok(Ok(())) => ServerMessage::Ok { id },
            _ => ServerMessage::error(
                Some(&id),
                ErrorCode::Internal,
                "the ack could not be stored; send it again",
            ),
        }
    });
    Ok(Outcome {
        deferred: Some(deferred),
        ..Outcome::default()
    })
}

/// `history` → `history_page`. Only the two participants can name a private conversation:
/// its key is built from the session's own id.
pub async fn history(
    ctx: &Ctx,
    state: &ConnState,
    id: &str,
    with: &Target,
    before: Option<MsgId>,
    limit: Option<u32>,
) -> Handled {
    let me = session(state)?.user_id;
    let limit = limit.unwrap_or(HISTORY_DEFAULT);
    if !(1..=HISTORY_MAX).contains(&limit) {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
            format!("a history page has 1 to {HISTORY_MAX} messages"),
        ));
    }
    let conv = match with {
        Target::Square => SQUARE_CONV.to_owned(),
        Target::User { username } => private_conv_key(me, resolve(ctx, username).await?.0),
    };
    let (messages, has_more) = ctx.store.history(&conv, before, limit).await?;
    Ok(Outcome::reply(ServerMessage::HistoryPage {
        id: id.to_owned(),
        with: with.clone(),
        messages,
        has_more,
    }))
}
