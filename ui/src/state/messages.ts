// A conversation's message list as pure functions: merging pages and events, deduplicated by
// client_msg_id, ordered by server id with messages still sending last in local order. These run
// on lists of 100,000 messages, so each one is linear at worst and sorts only when order changed.
import type { HistoryWindow, LocalMessage, MessageState } from '../bindings';

/** How far along a message is; an update never moves a message backwards. */
function rank(state: MessageState): number {
  switch (state) {
    case 'sending':
    case 'failed':
      return 0;
    case 'sent':
      return 1;
    case 'delivered':
    case 'received':
      return 2;
  }
}

/** The newer knowledge of two copies of the same message. */
export function mergeOne(existing: LocalMessage, incoming: LocalMessage): LocalMessage {
  const winner = rank(incoming.state) >= rank(existing.state) ? incoming : existing;
  const other = winner === incoming ? existing : incoming;
  if (winner.msg_id === null && other.msg_id !== null) {
    return { ...winner, msg_id: other.msg_id, ts: other.ts };
  }
  return winner;
}

function compare(a: LocalMessage, b: LocalMessage): number {
  if (a.msg_id !== null && b.msg_id !== null) return a.msg_id - b.msg_id;
  if (a.msg_id !== null) return -1;
  if (b.msg_id !== null) return 1;
  return 0; // both pending: Array.prototype.sort is stable, so local order stays
}

function isOrdered(list: readonly LocalMessage[]): boolean {
  for (let i = 1; i < list.length; i++) {
    if (compare(list[i - 1] as LocalMessage, list[i] as LocalMessage) > 0) return false;
  }
  return true;
}

function ordered(list: LocalMessage[]): LocalMessage[] {
  return isOrdered(list) ? list : list.sort(compare);
}

/** Index of a client id, scanning from the newest end (where updates usually land). */
export function indexOfClientId(list: readonly LocalMessage[], clientId: string): number {
  for (let i = list.length - 1; i >= 0; i--) {
    if ((list[i] as LocalMessage).client_msg_id === clientId) return i;
  }
  return -1;
}

/**
 * `existing` with `incoming` merged in: known messages are updated (never backwards), new ones
 * inserted in order. Returns `existing` itself when nothing changed.
 */
export function mergeMessages(
  existing: readonly LocalMessage[],
  incoming: readonly LocalMessage[],
): readonly LocalMessage[] {
  if (incoming.length === 0) return existing;
  // A handful of events scan from the end; pages use a map.
  let find: (id: string) => number;
  if (incoming.length <= 16) {
    find = (id) => indexOfClientId(existing, id);
  } else {
    const index = new Map<string, number>();
    existing.forEach((m, i) => index.set(m.client_msg_id, i));
    find = (id) => index.get(id) ?? -1;
  }
  let out: LocalMessage[] | null = null;
  const added: LocalMessage[] = [];
  const addedAt = new Map<string, number>();
  for (const m of incoming) {
    const i = find(m.client_msg_id);
    if (i >= 0) {
      const current = (out ?? existing)[i] as LocalMessage;
      const next = mergeOne(current, m);
      if (next !== current) {
        out ??= existing.slice();
        out[i] = next;
      }
      continue;
    }
    const j = addedAt.get(m.client_msg_id);
    if (j !== undefined) {
      added[j] = mergeOne(added[j] as LocalMessage, m);
    } else {
      addedAt.set(m.client_msg_id, added.length);
      added.push(m);
    }
  }
  if (out === null && added.length === 0) return existing;
  const base = out ?? existing;
  if (added.length === 0) return ordered(base as LocalMessage[]);
  return ordered(prependOrAppend(base, added));
}

/** Older pages go in front (so the sort finds two sorted runs), everything else at the end. */
function prependOrAppend(base: readonly LocalMessage[], added: LocalMessage[]): LocalMessage[] {
  const first = base[0];
  const allOlder =
    first !== undefined &&
    first.msg_id !== null &&
    added.every((m) => m.msg_id !== null && m.msg_id < (first.msg_id as number));
  return allOlder ? [...added.sort(compare), ...base] : [...base, ...added];
}

function update(
  list: readonly LocalMessage[],
  clientId: string,
  change: (m: LocalMessage) => LocalMessage,
): readonly LocalMessage[] {
  const i = indexOfClientId(list, clientId);
  if (i < 0) return list;
  const current = list[i] as LocalMessage;
  const next = change(current);
  if (next === current) return list;
  const out = list.slice();
  out[i] = next;
  return ordered(out);
}

/** The server stored our message: it gets its id and server time. */
export function applySent(
  list: readonly LocalMessage[],
  clientId: string,
  msgId: number,
  ts: number,
): readonly LocalMessage[] {
  return update(list, clientId, (m) => ({
    ...m,
    msg_id: msgId,
    ts,
    error: null,
    state: rank(m.state) > rank('sent') ? m.state : 'sent',
  }));
}

/** The recipient's device has it. */
export function applyDelivered(
  list: readonly LocalMessage[],
  clientId: string,
  msgId: number,
): readonly LocalMessage[] {
  return update(list, clientId, (m) => ({
    ...m,
    msg_id: m.msg_id ?? msgId,
    error: null,
    state: 'delivered',
  }));
}

/** The server refused it; `error` is shown on hover next to Retry. */
export function applyFailed(
  list: readonly LocalMessage[],
  clientId: string,
  error: string,
): readonly LocalMessage[] {
  return update(list, clientId, (m) => (rank(m.state) > 0 ? m : { ...m, state: 'failed', error }));
}

/** Retry was pressed: back to sending until the next event. */
export function applyRetrying(
  list: readonly LocalMessage[],
  clientId: string,
): readonly LocalMessage[] {
  return update(list, clientId, (m) =>
    m.state === 'failed' ? { ...m, state: 'sending', error: null } : m,
  );
}

/** The list for a jump to a search hit: the hit and what precedes it, then what follows. */
export function windowList(window: HistoryWindow): readonly LocalMessage[] {
  return mergeMessages(mergeMessages([], window.older), window.newer);
}

/** The oldest server id in the list (for paging back). */
export function oldestId(list: readonly LocalMessage[]): number | null {
  for (const m of list) if (m.msg_id !== null) return m.msg_id;
  return null;
}

/** The newest server id in the list (for paging forward). */
export function newestId(list: readonly LocalMessage[]): number | null {
  for (let i = list.length - 1; i >= 0; i--) {
    const id = (list[i] as LocalMessage).msg_id;
    if (id !== null) return id;
  }
  return null;
}
