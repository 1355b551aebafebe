// The username rules of PROTOCOL.md §6, checked before asking the server.
export const RESERVED_USERNAMES = ['admin', 'administrator', 'guest', 'user', 'table'] as const;
export const USERNAME_MIN = 4;
export const USERNAME_MAX = 32;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

export type UsernameStatus = 'idle' | 'checking' | 'available' | 'taken' | 'reserved' | 'invalid';

/**
 * What can be said without the server: `idle` (empty), `invalid`, `reserved`, or null when only
 * the server can tell (free or taken).
 */
export function localUsernameStatus(name: string): UsernameStatus | null {
  if (name.length === 0) return 'idle';
  if (!/^[A-Za-z0-9]+$/.test(name) || name.length < USERNAME_MIN || name.length > USERNAME_MAX) {
    return 'invalid';
  }
  if ((RESERVED_USERNAMES as readonly string[]).includes(name.toLowerCase())) return 'reserved';
  return null;
}

/** The status for the server's answer to `check_username`. */
export function statusFromCheck(available: boolean, reason: string | null): UsernameStatus {
  if (available) return 'available';
  switch (reason) {
    case 'reserved_username':
      return 'reserved';
    case 'invalid_username':
      return 'invalid';
    default:
      return 'taken';
  }
}

/** Password length problem, if any: characters are Unicode scalar values, as on the server. */
export function passwordProblem(password: string): 'short' | 'long' | null {
  const n = [...password].length;
  if (n < PASSWORD_MIN) return 'short';
  if (n > PASSWORD_MAX) return 'long';
  return null;
}
