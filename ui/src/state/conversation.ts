// Which conversation a message belongs to, and how conversations are named in maps.
import type { LocalMessage, MessageBody, Target } from '../bindings';

/** A map key for a conversation: `square` or `user:<lowercased name>` (names are case-insensitive). */
export type ConvKey = string;

export const SQUARE: Target = { kind: 'square' };
export const SQUARE_KEY: ConvKey = 'square';

export function sameUser(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export function convKey(target: Target): ConvKey {
  return target.kind === 'square' ? SQUARE_KEY : `user:${target.username.toLowerCase()}`;
}

export function userTarget(username: string): Target {
  return { kind: 'user', username };
}

/** The conversation a message is shown in, seen by `me`: the Square or the other participant. */
export function conversationOf(message: LocalMessage, me: string): Target {
  if (message.to.kind === 'square') return SQUARE;
  return sameUser(message.from, me) ? message.to : userTarget(message.from);
}

/** The body as plain text for previews and search (`[Image] name` for media). */
export function bodyText(
  body: MessageBody,
  t: (key: 'message.image' | 'message.file', params: { name: string }) => string,
): string {
  switch (body.kind) {
    case 'text':
      return body.text;
    case 'image':
      return t('message.image', { name: body.name });
    case 'file':
      return t('message.file', { name: body.name });
  }
}
