//! Presence: heartbeats and the online list (seed 002 `14` heartbeat probe, seed 003 `1001`,
//! seed 004 `heartbeat`). Login/logout broadcasts are produced by the hub on attach/detach.

use natter_proto::ServerMessage;

use super::{session, spend, ConnState, Handled, Outcome};
use crate::Ctx;

/// `heartbeat` → `heartbeat_ack`.
pub fn heartbeat(ctx: &Ctx, state: &mut ConnState, id: &str) -> Handled {
    spend(&ctx.config.limits, &mut state.buckets.heartbeat)?;
    Ok(Outcome::reply(ServerMessage::HeartbeatAck {
        id: id.to_owned(),
        ts: (ctx.clock)(),
    }))
}

/// `list_online` → `online_list` (everyone, whatever the presence scope).
pub fn list_online(ctx: &Ctx, state: &ConnState, id: &str) -> Handled {
    session(state)?;
    Ok(Outcome::reply(ServerMessage::OnlineList {
        id: id.to_owned(),
        users: ctx.hub.online_users(None),
    }))
}
