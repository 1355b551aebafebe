//! Pushes that only inform: presence, friend requests and answers, and an error the server
//! sent about no request in particular. Each becomes one [`Event`] as it is.

use natter_proto::{OnlineUser, ServerMessage};

use crate::Event;

/// The events of a `presence` batch (PROTOCOL.md §5.3): one per user, online first, without
/// `me` (a batch may name its recipient; the app's online list never holds its own user).
pub(super) fn presence_events(
    online: Vec<OnlineUser>,
    offline: Vec<String>,
    me: Option<&str>,
) -> Vec<Event> {
    let is_me = |name: &str| me.is_some_and(|m| m.eq_ignore_ascii_case(name));
    let came = online
        .into_iter()
        .filter(|u| !is_me(&u.username))
        .map(Event::UserOnline);
    let went = offline
        .into_iter()
        .filter(|n| !is_me(n))
        .map(|username| Event::UserOffline { username });
    came.chain(went).collect()
}

/// The event a push becomes, or `None` for a push that is not one of these.
pub(super) fn event_for(push: ServerMessage) -> Option<Event> {
    Some(match push {
        ServerMessage::UserOnline { user } => Event::UserOnline(user),
        ServerMessage::UserOffline { username } => Event::UserOffline { username },
        ServerMessage::FriendRequestReceived { request } => Event::FriendRequest(request),
        ServerMessage::FriendResponse(answer) => Event::FriendResponse(answer),
        ServerMessage::FriendRemoved { username } => Event::FriendRemoved { username },
        ServerMessage::Error {
            id: None,
            code,
            message,
            ..
        } => Event::ServerError { code, message },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use natter_proto::ErrorCode;

    use super::*;

    #[test]
    fn a_presence_batch_becomes_one_event_per_user_without_ourselves() {
        let user = |name: &str| OnlineUser {
            username: name.into(),
            nickname: String::new(),
            is_guest: false,
        };
        let events = presence_events(
            vec![user("Alice"), user("bobby")],
            vec!["carol".into(), "ALICE".into()],
            Some("alice"),
        );
        let names: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::UserOnline(u) => format!("+{}", u.username),
                Event::UserOffline { username } => format!("-{username}"),
                other => format!("?{other:?}"),
            })
            .collect();
        assert_eq!(names, ["+bobby", "-carol"]);
    }

    #[test]
    fn an_error_about_no_request_becomes_a_server_error_event() {
        let push = ServerMessage::error(None, ErrorCode::RateLimited, "slow down");
        assert!(matches!(
            event_for(push),
            Some(Event::ServerError { code: ErrorCode::RateLimited, message }) if message == "slow down"
        ));
    }

    #[test]
    fn presence_becomes_events_and_replies_do_not() {
        let push = ServerMessage::UserOffline {
            username: "bobby".into(),
        };
        assert!(
            matches!(event_for(push), Some(Event::UserOffline { username }) if username == "bobby")
        );
        assert!(event_for(ServerMessage::Ok { id: "1".into() }).is_none());
    }
}
