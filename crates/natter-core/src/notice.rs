//! What a desktop notification says about an event. The shell decides only whether to show it
//! (window focus, the user's setting); which events deserve one and their text live here, so the
//! policy is tested headless.

use natter_proto::{FriendAnswer, MessageBody};

use crate::{Event, MessageState};

/// The language of notification texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    /// `zh…` tags are Chinese, anything else English.
    pub fn from_tag(tag: &str) -> Self {
        if tag.to_ascii_lowercase().starts_with("zh") {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }
}

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// First line.
    pub title: String,
    /// Text.
    pub body: String,
}

/// Longest preview of a message, in characters.
pub const PREVIEW_CHARS: usize = 140;

fn preview(body: &MessageBody, lang: Lang) -> String {
    match (body, lang) {
        (MessageBody::Text { text }, _) => {
            let mut out: String = text.chars().take(PREVIEW_CHARS).collect();
            if text.chars().count() > PREVIEW_CHARS {
                out.push('…');
            }
            out
        }
        (MessageBody::Image { .. }, Lang::En) => "[Image]".to_owned(),
        (MessageBody::Image { .. }, Lang::ZhCn) => "[图片]".to_owned(),
        (MessageBody::File { name, .. }, Lang::En) => format!("[File] {name}"),
        (MessageBody::File { name, .. }, Lang::ZhCn) => format!("[文件] {name}"),
    }
}

/// The notification for `event`, if it deserves one: private messages from others and friend
/// requests. Square messages never notify (a busy square would never stop).
pub fn notice_for(event: &Event, lang: Lang) -> Option<Notice> {
    match event {
        Event::Message(m) if m.state == MessageState::Received => match &m.to {
            natter_proto::Target::User { .. } => Some(Notice {
                title: m.from.clone(),
                body: preview(&m.body, lang),
            }),
            natter_proto::Target::Square => None,
        },
        Event::FriendRequest(r) => Some(Notice {
            title: match lang {
                Lang::En => format!("Friend request from {}", r.from),
                Lang::ZhCn => format!("{} 请求添加你为好友", r.from),
            },
            body: r.message.clone(),
        }),
        Event::FriendResponse(FriendAnswer {
            username,
            accepted: true,
            ..
        }) => Some(Notice {
            title: match lang {
                Lang::En => format!("{username} accepted your friend request"),
                Lang::ZhCn => format!("{username} 通过了你的好友请求"),
            },
            body: String::new(),
        }),
        Event::Call(c) if c.phase == crate::CallPhase::Ringing && !c.outgoing => Some(Notice {
            title: match lang {
                Lang::En => format!("{} is calling", c.peer),
                Lang::ZhCn => format!("{} 邀请你语音通话", c.peer),
            },
            body: match lang {
                Lang::En => "Open Natter to answer".to_owned(),
                Lang::ZhCn => "打开 Natter 接听".to_owned(),
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalMessage;
    use natter_proto::{FriendRequestInfo, Target};

    fn message(to: Target, state: MessageState, text: &str) -> Event {
        Event::Message(LocalMessage {
            msg_id: Some(1),
            client_msg_id: "c1".into(),
            from: "alice".into(),
            from_guest: false,
            to,
            ts: 0,
            body: MessageBody::Text { text: text.into() },
            state,
            error: None,
        })
    }

    #[test]
    fn private_messages_notify_with_a_bounded_preview() {
        let bob = Target::User {
            username: "bob".into(),
        };
        let n = notice_for(
            &message(bob.clone(), MessageState::Received, "你好 bob"),
            Lang::En,
        )
        .expect("a private message notifies");
        assert_eq!(n.title, "alice");
        assert_eq!(n.body, "你好 bob");
        let long = "说".repeat(500);
        let n = notice_for(&message(bob, MessageState::Received, &long), Lang::En).unwrap();
        assert_eq!(n.body.chars().count(), PREVIEW_CHARS + 1);
        assert!(n.body.ends_with('…'));
    }

    #[test]
    fn square_and_own_messages_stay_quiet() {
        assert_eq!(
            notice_for(
                &message(Target::Square, MessageState::Received, "hi"),
                Lang::En
            ),
            None
        );
        let to_bob = Target::User {
            username: "bob".into(),
        };
        assert_eq!(
            notice_for(&message(to_bob, MessageState::Sent, "hi"), Lang::En),
            None
        );
    }

    #[test]
    fn an_incoming_call_rings_but_our_own_does_not() {
        let call = |outgoing, phase| {
            Event::Call(crate::CallInfo {
                call_id: "c".into(),
                peer: "alice".into(),
                outgoing,
                phase,
                reason: None,
                since: None,
                muted: false,
            })
        };
        let n = notice_for(&call(false, crate::CallPhase::Ringing), Lang::ZhCn).unwrap();
        assert_eq!(n.title, "alice 邀请你语音通话");
        assert_eq!(
            notice_for(&call(true, crate::CallPhase::Calling), Lang::En),
            None
        );
        assert_eq!(
            notice_for(&call(false, crate::CallPhase::Active), Lang::En),
            None
        );
    }

    #[test]
    fn friend_requests_notify_in_the_users_language() {
        let event = Event::FriendRequest(FriendRequestInfo {
            from: "alice".into(),
            to: "bob".into(),
            message: "我是 alice".into(),
            ts: 0,
        });
        let n = notice_for(&event, Lang::from_tag("zh-CN")).unwrap();
        assert_eq!(n.title, "alice 请求添加你为好友");
        assert_eq!(n.body, "我是 alice");
        assert!(notice_for(&event, Lang::from_tag("en-GB"))
            .unwrap()
            .title
            .contains("Friend request"));
    }
}
