//! Pushes that only inform: presence, friend requests and answers, and an error the server
//! sent about no request in particular. Each becomes one [`Event`] as it is.

use natter_proto::ServerMessage;

use crate::Event;

/// The event a push becomes, or `None` for a push that is not one of these.
pub(super) fn event_for(push: ServerMessage) -> Option<Event> {
    Some(match push {
        ServerMessage::UserOnline { user } => Event::UserOnline(user),
        ServerMessage::UserOffline { username } => Event::UserOffline { username },
        ServerMessage::FriendRequestReceived { request } => Event::FriendRequest(request),
        ServerMessage::FriendResponse {
            username,
            accepted,
            friend,
        } => Event::FriendResponse {
            username,
            accepted,
            friend,
        },
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
