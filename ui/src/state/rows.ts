// The rows of the chat list: a day separator before each new local day, then the messages, with
// the sender's name shown where a run of one person's messages starts (in the Square).
import type { LocalMessage } from '../bindings';
import { dayKey } from '../i18n/format';
import { sameUser } from './conversation';

/** Messages closer than this run together under one name. */
const RUN_GAP_MS = 5 * 60_000;

export type Row =
  | { kind: 'day'; key: string; ts: number }
  | {
      kind: 'message';
      key: string;
      message: LocalMessage;
      mine: boolean;
      /** The first bubble of a run: show the sender's name (Square) and avatar. */
      runStart: boolean;
    };

export function buildRows(messages: readonly LocalMessage[], me: string): Row[] {
  const rows: Row[] = [];
  let lastDay = '';
  let prev: LocalMessage | null = null;
  for (const message of messages) {
    const day = dayKey(message.ts);
    let newDay = false;
    if (day !== lastDay) {
      rows.push({ kind: 'day', key: `day:${day}:${message.client_msg_id}`, ts: message.ts });
      lastDay = day;
      newDay = true;
    }
    const runStart =
      newDay ||
      prev === null ||
      !sameUser(prev.from, message.from) ||
      message.ts - prev.ts > RUN_GAP_MS;
    rows.push({
      kind: 'message',
      key: message.client_msg_id,
      message,
      mine: sameUser(message.from, me),
      runStart,
    });
    prev = message;
  }
  return rows;
}
