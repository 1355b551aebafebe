// Who is online, friends and friend requests, updated by engine events (pure).
import type {
  AppEvent,
  Friend,
  FriendList,
  FriendRequestInfo,
  OnlineUser,
  Profile,
  Session,
} from '../bindings';
import { sameUser } from './conversation';

export interface Social {
  me: Profile;
  online: OnlineUser[];
  friends: Friend[];
  incoming: FriendRequestInfo[];
  outgoing: FriendRequestInfo[];
}

export function socialFromSession(session: Session): Social {
  return {
    me: session.profile,
    online: session.online,
    friends: session.friends,
    incoming: session.incoming_requests,
    outgoing: session.outgoing_requests,
  };
}

export function withFriendList(social: Social, list: FriendList): Social {
  return { ...social, friends: list.friends, incoming: list.incoming, outgoing: list.outgoing };
}

function isOnline(online: readonly OnlineUser[], username: string): boolean {
  return online.some((u) => sameUser(u.username, username));
}

export function socialReducer(state: Social, event: AppEvent): Social {
  switch (event.type) {
    case 'user_online': {
      const user = event.user;
      return {
        ...state,
        online: [...state.online.filter((u) => !sameUser(u.username, user.username)), user],
        friends: state.friends.map((f) =>
          sameUser(f.username, user.username) ? { ...f, online: true } : f,
        ),
      };
    }
    case 'user_offline':
      return {
        ...state,
        online: state.online.filter((u) => !sameUser(u.username, event.username)),
        friends: state.friends.map((f) =>
          sameUser(f.username, event.username) ? { ...f, online: false } : f,
        ),
      };
    case 'friend_request': {
      const request = event.request;
      return {
        ...state,
        incoming: [...state.incoming.filter((r) => !sameUser(r.from, request.from)), request],
      };
    }
    case 'friend_response': {
      const outgoing = state.outgoing.filter((r) => !sameUser(r.to, event.username));
      const friend = event.friend;
      if (!event.accepted || friend === null) return { ...state, outgoing };
      return {
        ...state,
        outgoing,
        friends: [
          ...state.friends.filter((f) => !sameUser(f.username, friend.username)),
          { ...friend, online: friend.online || isOnline(state.online, friend.username) },
        ],
      };
    }
    case 'friend_removed':
      return {
        ...state,
        friends: state.friends.filter((f) => !sameUser(f.username, event.username)),
      };
    default:
      return state;
  }
}

/** Friends as the sidebar lists them: online first, then alphabetically by username. */
export function sortFriends(friends: readonly Friend[]): Friend[] {
  return [...friends].sort((a, b) => {
    if (a.online !== b.online) return a.online ? -1 : 1;
    return a.username.localeCompare(b.username, undefined, { sensitivity: 'base' });
  });
}

/** The name to show: the nickname if set, else the username. */
export function displayName(user: { username: string; nickname: string }): string {
  return user.nickname.trim() || user.username;
}
