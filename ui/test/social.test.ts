import { describe, expect, it } from 'vitest';
import type { Friend } from '../src/bindings';
import { socialReducer, sortFriends, type Social } from '../src/state/social';

const friend = (username: string, online = false): Friend => ({
  username,
  nickname: '',
  motto: '',
  is_guest: false,
  online,
});

const base: Social = {
  me: { username: 'alice', nickname: '', motto: '', phone: '', is_guest: false },
  online: [],
  friends: [friend('bob'), friend('carol')],
  incoming: [],
  outgoing: [{ from: 'alice', to: 'dave', message: '', ts: 1 }],
};

describe('presence and friends', () => {
  it('user_online / user_offline update the online list and the friend dot', () => {
    let s = socialReducer(base, {
      type: 'user_online',
      user: { username: 'Bob', nickname: '', is_guest: false },
    });
    expect(s.online.map((u) => u.username)).toEqual(['Bob']);
    expect(s.friends.find((f) => f.username === 'bob')?.online).toBe(true);
    s = socialReducer(s, { type: 'user_offline', username: 'bob' });
    expect(s.online).toEqual([]);
    expect(s.friends.find((f) => f.username === 'bob')?.online).toBe(false);
  });

  it('a friend request arrives once even if sent twice', () => {
    const request = { from: 'erin', to: 'alice', message: 'hi', ts: 2 };
    let s = socialReducer(base, { type: 'friend_request', request });
    s = socialReducer(s, { type: 'friend_request', request });
    expect(s.incoming).toEqual([request]);
  });

  it('an accepted request adds the friend and clears the outgoing request', () => {
    const s = socialReducer(base, {
      type: 'friend_response',
      username: 'dave',
      accepted: true,
      friend: friend('dave', true),
    });
    expect(s.outgoing).toEqual([]);
    expect(s.friends.map((f) => f.username)).toContain('dave');
  });

  it('a rejected request only clears the outgoing request', () => {
    const s = socialReducer(base, {
      type: 'friend_response',
      username: 'dave',
      accepted: false,
      friend: null,
    });
    expect(s.outgoing).toEqual([]);
    expect(s.friends).toHaveLength(2);
  });

  it('friend_removed removes the friend', () => {
    const s = socialReducer(base, { type: 'friend_removed', username: 'BOB' });
    expect(s.friends.map((f) => f.username)).toEqual(['carol']);
  });

  it('lists online friends first, then alphabetically', () => {
    const sorted = sortFriends([friend('zed'), friend('Amy'), friend('mia', true), friend('bob')]);
    expect(sorted.map((f) => f.username)).toEqual(['mia', 'Amy', 'bob', 'zed']);
  });
});
