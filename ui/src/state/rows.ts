// The rows of the chat list: one per message, the first of each local day carrying that day's
// separator, with the sender's name shown where a run of one person's messages starts (in the
// Square). Separators are not rows of their own: every row is keyed by a message that stays put
// when older pages are prepended, so the list can keep what the user is reading in place (a
// separator row at the top changed its key with each page, and the view jumped to the top).
import type { LocalMessage } from '../bindings';
import { dayKey } from '../i18n/format';
import { sameUser } from './conversation';

/** Messages closer than this run together under one name. */
const RUN_GAP_MS = 5 * 60_000;

export interface Row {
  key: string;
  message: LocalMessage;
  mine: boolean;
  /** The first bubble of a run: show the sender's name (Square) and avatar. */
  runStart: boolean;
  /** The first message of a local day: show the day separator above it. */
  dayStart: boolean;
  /** The first message received after the read mark: show "new messages" above it. */
  unreadStart: boolean;
}

/** `readUpTo`: the newest message read when the chat was opened (null: no divider). */
export function buildRows(
  messages: readonly LocalMessage[],
  me: string,
  readUpTo: number | null = null,
): Row[] {
  const rows: Row[] = [];
  let lastDay = '';
  let prev: LocalMessage | null = null;
  let unreadShown = readUpTo === null;
  for (const message of messages) {
    const mine = sameUser(message.from, me);
    let unreadStart = false;
    if (!unreadShown && !mine && message.msg_id !== null && message.msg_id > (readUpTo ?? 0)) {
      unreadShown = true;
      unreadStart = true;
    }
    const day = dayKey(message.ts);
    let newDay = false;
    if (day !== lastDay) {
      lastDay = day;
      newDay = true;
    }
    const runStart =
      newDay ||
      prev === null ||
      !sameUser(prev.from, message.from) ||
      message.ts - prev.ts > RUN_GAP_MS;
    rows.push({
      key: message.client_msg_id,
      message,
      mine,
      runStart,
      dayStart: newDay,
      unreadStart,
    });
    prev = message;
  }
  return rows;
}
