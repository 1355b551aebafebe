//! Friends: request with a note, accept/reject, delete, list with presence (seed 004
//! `add_friend`/`confirm_friend`/`delete_friend`/`list_friend`). An answer or removal that finds
//! its user offline is queued as a notice for their next login; pending requests themselves are
//! state, listed in every `login_ok`.

use natter_proto::{validate, ErrorCode, Friend, FriendAnswer, FriendRequestInfo, ServerMessage};

use super::{session, ConnState, Handled, Outcome, Refusal};
use crate::store::{FriendRecord, UserId, UserRecord};
use crate::Ctx;

async fn other_user(ctx: &Ctx, me: UserId, username: &str) -> Result<UserRecord, Refusal> {
    let user = ctx.store.user_by_name(username).await?.ok_or_else(|| {
        Refusal::new(ErrorCode::NoSuchUser, format!("no user named `{username}`"))
    })?;
    if user.id == me {
        return Err(Refusal::new(ErrorCode::SelfTarget, "that is you"));
    }
    Ok(user)
}

fn as_friend(ctx: &Ctx, user: &UserRecord) -> Friend {
    Friend {
        username: user.username.clone(),
        nickname: user.nickname.clone(),
        motto: user.motto.clone(),
        is_guest: user.is_guest,
        online: ctx.hub.is_online(user.id),
    }
}

/// Friend rows as the protocol shows them, with their current presence.
pub fn with_presence(ctx: &Ctx, friends: Vec<FriendRecord>) -> Vec<Friend> {
    friends
        .into_iter()
        .map(|f| Friend {
            online: ctx.hub.is_online(f.id),
            username: f.username,
            nickname: f.nickname,
            motto: f.motto,
            is_guest: f.is_guest,
        })
        .collect()
}

/// Pushes to a user now, or queues the push for their next login.
pub async fn notify(ctx: &Ctx, user: UserId, message: &ServerMessage) -> Result<(), Refusal> {
    if !ctx.hub.push_to(user, message) {
        let json = serde_json::to_string(message).expect("ServerMessage serialises to JSON");
        ctx.store.add_notice(user, &json, (ctx.clock)()).await?;
    }
    Ok(())
}

async fn make_friends(ctx: &Ctx, me: &UserRecord, them: &UserRecord) -> Result<(), Refusal> {
    ctx.store.befriend(me.id, them.id, (ctx.clock)()).await?;
    ctx.hub.set_friendship(me.id, them.id, true);
    Ok(())
}

/// `friend_request` → `ok`. If the other user had already asked, this accepts their request.
pub async fn request(ctx: &Ctx, state: &ConnState, id: &str, to: &str, note: &str) -> Handled {
    let me_id = session(state)?.user_id;
    validate::friend_note(note)?;
    let them = other_user(ctx, me_id, to).await?;
    if ctx.store.are_friends(me_id, them.id).await? {
        return Err(Refusal::new(
            ErrorCode::AlreadyFriends,
            format!("you and {} are friends already", them.username),
        ));
    }
    let me = ctx
        .store
        .user_by_id(me_id)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::SessionExpired, "the account is gone"))?;
    if ctx.store.has_request(them.id, me_id).await? {
        make_friends(ctx, &me, &them).await?;
        notify(
            ctx,
            them.id,
            &ServerMessage::FriendResponse(FriendAnswer {
                username: me.username.clone(),
                accepted: true,
                friend: Some(as_friend(ctx, &me)),
            }),
        )
        .await?;
        ctx.hub.push_to(
            me_id,
            &ServerMessage::FriendResponse(FriendAnswer {
                username: them.username.clone(),
                accepted: true,
                friend: Some(as_friend(ctx, &them)),
            }),
        );
        return Ok(Outcome::ok(id));
    }
    if ctx.store.has_request(me_id, them.id).await? {
        return Err(Refusal::new(
            ErrorCode::RequestPending,
            format!("you already asked {}", them.username),
        ));
    }
    let now = (ctx.clock)();
    ctx.store.create_request(me_id, them.id, note, now).await?;
    ctx.hub.push_to(
        them.id,
        &ServerMessage::FriendRequestReceived {
            request: FriendRequestInfo {
                from: me.username,
                to: them.username,
                message: note.to_owned(),
                ts: now,
            },
        },
    );
    Ok(Outcome::ok(id))
}

/// `friend_respond` → `ok`; the requester learns the answer now or at next login.
pub async fn respond(ctx: &Ctx, state: &ConnState, id: &str, from: &str, accept: bool) -> Handled {
    let me_id = session(state)?.user_id;
    let no_request = || {
        Refusal::new(
            ErrorCode::NoSuchRequest,
            format!("no pending request from `{from}`"),
        )
    };
    let them = ctx.store.user_by_name(from).await?.ok_or_else(no_request)?;
    let me = ctx
        .store
        .user_by_id(me_id)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::SessionExpired, "the account is gone"))?;
    if !ctx.store.has_request(them.id, me_id).await? {
        return Err(no_request());
    }
    if accept {
        make_friends(ctx, &me, &them).await?;
    } else {
        ctx.store.delete_request(them.id, me_id).await?;
    }
    notify(
        ctx,
        them.id,
        &ServerMessage::FriendResponse(FriendAnswer {
            username: me.username.clone(),
            accepted: accept,
            friend: accept.then(|| as_friend(ctx, &me)),
        }),
    )
    .await?;
    Ok(Outcome::ok(id))
}

/// `friend_delete` → `ok`; the former friend gets `friend_removed` now or at next login.
pub async fn delete(ctx: &Ctx, state: &ConnState, id: &str, username: &str) -> Handled {
    let me = session(state)?;
    let (me_id, me_name) = (me.user_id, me.username.clone());
    let them = other_user(ctx, me_id, username).await?;
    if !ctx.store.unfriend(me_id, them.id).await? {
        return Err(Refusal::new(
            ErrorCode::NotFriends,
            format!("you and {} are not friends", them.username),
        ));
    }
    ctx.hub.set_friendship(me_id, them.id, false);
    notify(
        ctx,
        them.id,
        &ServerMessage::FriendRemoved { username: me_name },
    )
    .await?;
    Ok(Outcome::ok(id))
}

/// `friend_list` → `friend_list_reply`.
pub async fn list(ctx: &Ctx, state: &ConnState, id: &str) -> Handled {
    let me = session(state)?.user_id;
    let friends = with_presence(ctx, ctx.store.friends(me).await?);
    let requests = ctx.store.pending_requests(me).await?;
    Ok(Outcome::reply(ServerMessage::FriendListReply {
        id: id.to_owned(),
        friends,
        incoming_requests: requests.incoming,
        outgoing_requests: requests.outgoing,
    }))
}
