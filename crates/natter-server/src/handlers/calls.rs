//! Voice-call signalling (PROTOCOL.md §5.8; seed 001 `voice` request / accept / close):
//! `call_invite` → `call_ringing`, `call_answer` → `ok`, `call_hangup` → `ok`. The state machine
//! and the pushes to the other side are in [`crate::calls`]; this file checks the session and
//! the names, and turns the outcome into replies.
//!
//! Anyone signed in may call anyone signed in (guests included): like a private message, a call
//! needs no friendship, and the callee can always decline.

use natter_proto::{validate, ErrorCode, ServerMessage};

use super::{session, ConnState, Handled, Outcome, Outgoing, Refusal};
use crate::calls::CallError;
use crate::cluster::{CallOp, CallRequest};
use crate::Ctx;

impl From<CallError> for Refusal {
    fn from(e: CallError) -> Self {
        let code = match e {
            CallError::AlreadyInCall | CallError::CallerAnswering => ErrorCode::Forbidden,
            CallError::NotFound => ErrorCode::NotFound,
        };
        Refusal::new(code, e.to_string())
    }
}

/// `call_invite` → `call_ringing`. An offline or busy callee still gets the call an id: the
/// caller then hears `call_ended` right after the reply, as for any other call.
pub async fn invite(ctx: &Ctx, state: &mut ConnState, id: &str, to: &str) -> Handled {
    let me = session(state)?;
    if validate::username_key(to) == validate::username_key(&me.username) {
        return Err(Refusal::new(
            ErrorCode::SelfTarget,
            "you cannot call yourself",
        ));
    }
    // Checked again under the registry's lock; this spares the database read.
    if ctx.calls.is_in_call(me.user_id) {
        return Err(CallError::AlreadyInCall.into());
    }
    let callee = match ctx.hub.online_id(to) {
        Some(user_id) => ctx.hub.link(user_id),
        None => None,
    };
    if callee.is_none() && ctx.store.user_by_name(to).await?.is_none() {
        return Err(Refusal::new(
            ErrorCode::NoSuchUser,
            format!("no user named `{to}`"),
        ));
    }
    let caller = state
        .link()
        .expect("the session was checked at the top of this handler");
    let (call_id, ended_at_once) = ctx.calls.invite(caller, callee)?;
    let mut out = vec![Outgoing::Message(ServerMessage::CallRinging {
        id: id.to_owned(),
        call_id: call_id.clone(),
    })];
    // Written right after the reply, on this connection, so the caller always learns the
    // call id before hearing that the call is over.
    if let Some(reason) = ended_at_once {
        out.push(Outgoing::Message(ServerMessage::CallEnded {
            call_id,
            reason,
        }));
    }
    Ok(Outcome {
        out,
        ..Outcome::default()
    })
}

/// `call_answer` → `ok` (the callee of a ringing call only).
pub async fn answer(
    ctx: &Ctx,
    state: &mut ConnState,
    id: &str,
    call_id: &str,
    accept: bool,
) -> Handled {
    let me = session(state)?;
    if let Some(forwarded) = forward(ctx, call_id, me.user_id, CallOp::Answer { accept }).await {
        forwarded?;
    } else {
        ctx.calls
            .answer(call_id, me.user_id, state.conn_id, accept)?;
    }
    Ok(Outcome::ok(id))
}

/// `call_hangup` → `ok` (either participant, ringing or active).
pub async fn hangup(ctx: &Ctx, state: &mut ConnState, id: &str, call_id: &str) -> Handled {
    let me = session(state)?;
    if let Some(forwarded) = forward(ctx, call_id, me.user_id, CallOp::Hangup).await {
        forwarded?;
    } else {
        ctx.calls.hangup(call_id, me.user_id, state.conn_id)?;
    }
    Ok(Outcome::ok(id))
}

/// A request about a call that lives on another node of the cluster goes to that node, which
/// answers for it; `None` when the call is this node's (or there is no cluster).
async fn forward(
    ctx: &Ctx,
    call_id: &str,
    user_id: crate::store::UserId,
    op: CallOp,
) -> Option<Result<(), CallError>> {
    let cluster = ctx.cluster.as_ref()?;
    let home = ctx.calls.home_elsewhere(call_id)?;
    let request = CallRequest {
        call_id: call_id.to_owned(),
        user_id,
        op,
    };
    Some(cluster.call_request(home, &request).await)
}
