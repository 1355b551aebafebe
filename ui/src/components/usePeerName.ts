import { useApp } from '../state/app';
import { sameUser } from '../state/conversation';
import { displayName } from '../state/social';

/** How the person with this username is shown: their nickname if we know one. */
export function usePeerName(username: string): string {
  return useApp((s) => {
    const social = s.social;
    const known =
      social?.friends.find((f) => sameUser(f.username, username)) ??
      social?.online.find((u) => sameUser(u.username, username));
    return known ? displayName(known) : username;
  });
}
