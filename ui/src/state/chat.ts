// Conversations: their message lists, previews and unread counts, fed by history calls and engine
// events. The list logic itself is in messages.ts; this module only decides when to call what.
import { create } from 'zustand';
import type { AppEvent, LocalMessage, SearchHit, Target } from '../bindings';
import { call } from '../backend';
import { t } from '../i18n';
import { errorText } from '../i18n/errors';
import { bodyText, conversationOf, convKey, sameUser, type ConvKey } from './conversation';
import {
  applyDelivered,
  applyFailed,
  applyRetrying,
  applySent,
  indexOfClientId,
  mergeMessages,
  newestId,
  oldestId,
  windowList,
} from './messages';
import { resetTransfers } from './transfers';

export const FIRST_PAGE = 50;
export const OLDER_PAGE = 100;
export const WINDOW_PAGE = 100;
const HIGHLIGHT_MS = 2500;

export interface ConvState {
  target: Target;
  messages: readonly LocalMessage[];
  /** The first page is in. */
  loaded: boolean;
  loadingOlder: boolean;
  /** Older messages may exist (locally or on the server). */
  hasOlder: boolean;
  /** The list reaches the newest message (false while viewing a window around a search hit). */
  liveEnd: boolean;
  loadingNewer: boolean;
  /** A message to scroll to and flash (a search hit). */
  highlight: string | null;
  /** Bumped on every jump, so the list scrolls again to the same hit. */
  jumpSeq: number;
  error: string | null;
  /** The read mark when the chat was opened with unread messages: the "unread" divider. */
  readUpTo: number | null;
}

export interface Preview {
  text: string;
  ts: number;
  from: string;
}

interface ChatState {
  me: string;
  active: Target | null;
  convs: Record<ConvKey, ConvState>;
  previews: Record<ConvKey, Preview>;
  unread: Record<ConvKey, number>;
  /** Each unread conversation's read mark, as loaded from the store. */
  readMarks: Record<ConvKey, number>;
}

const initial: ChatState = {
  me: '',
  active: null,
  convs: {},
  previews: {},
  unread: {},
  readMarks: {},
};

export const useChat = create<ChatState>(() => initial);

/** Messages already counted as unread (an event may re-deliver one). */
let counted = new Set<string>();
/** Per conversation, the newest message the stored unread count already includes. */
let countedUpTo = new Map<ConvKey, number>();
/** Pending "mark read" calls, one per conversation, so a busy chat costs one write a beat. */
const marking = new Map<ConvKey, ReturnType<typeof setTimeout>>();
const MARK_DELAY_MS = 300;
/** Status events that arrived before the message they are about (send_text had not answered). */
let early = new Map<string, AppEvent[]>();
const EARLY_MAX = 1000;

function freshConv(target: Target): ConvState {
  return {
    target,
    messages: [],
    loaded: false,
    loadingOlder: false,
    hasOlder: true,
    liveEnd: true,
    loadingNewer: false,
    highlight: null,
    jumpSeq: 0,
    error: null,
    readUpTo: null,
  };
}

/** Starts over for a new session. */
export function resetChat(me: string): void {
  counted = new Set();
  countedUpTo = new Map();
  for (const timer of marking.values()) clearTimeout(timer);
  marking.clear();
  early = new Map();
  useChat.setState({ ...initial, me });
  resetTransfers();
}

function patchConv(key: ConvKey, change: (c: ConvState) => ConvState): void {
  useChat.setState((s) => {
    const conv = s.convs[key];
    if (!conv) return s;
    const next = change(conv);
    return next === conv ? s : { convs: { ...s.convs, [key]: next } };
  });
}

/** Applies status events that came before their message. */
function replayEarly(messages: readonly LocalMessage[]): readonly LocalMessage[] {
  if (early.size === 0) return messages;
  let out = messages;
  for (const m of messages) {
    const events = early.get(m.client_msg_id);
    if (!events) continue;
    early.delete(m.client_msg_id);
    for (const e of events) out = applyStatus(out, e);
  }
  return out;
}

function mergeInto(key: ConvKey, incoming: readonly LocalMessage[]): void {
  if (incoming.length === 0) return;
  patchConv(key, (c) => {
    const merged = replayEarly(mergeMessages(c.messages, incoming));
    return merged === c.messages ? c : { ...c, messages: merged };
  });
}

function updatePreview(key: ConvKey, m: LocalMessage): void {
  useChat.setState((s) => {
    const current = s.previews[key];
    if (current && current.ts > m.ts) return s;
    const preview = { text: bodyText(m.body, t), ts: m.ts, from: m.from };
    return { previews: { ...s.previews, [key]: preview } };
  });
}

function previewFromList(key: ConvKey, list: readonly LocalMessage[]): void {
  const last = list[list.length - 1];
  if (last) updatePreview(key, last);
}

function isActive(key: ConvKey): boolean {
  const active = useChat.getState().active;
  return active !== null && convKey(active) === key;
}

function describe(e: unknown): string {
  return errorText(e as { code: string; message: string }, t);
}

/** Loads the last message of each conversation for the sidebar. */
export async function loadPreviews(targets: readonly Target[]): Promise<void> {
  await Promise.all(
    targets.map(async (target) => {
      try {
        const page = await call('local_history', { with: target, before: null, limit: 1 });
        previewFromList(convKey(target), page);
      } catch {
        // A missing preview is only cosmetic.
      }
    }),
  );
}

/** Opens a conversation at its newest message: local page at once, then the server's merged in. */
export async function openConversation(target: Target): Promise<void> {
  const key = convKey(target);
  useChat.setState((s) => {
    const existing = s.convs[key];
    const conv = existing && existing.liveEnd ? { ...existing, target } : freshConv(target);
    conv.readUpTo = s.unread[key] ? (s.readMarks[key] ?? 0) : null;
    const convs = leaveActive(s, key);
    return { active: target, convs: { ...convs, [key]: conv }, ...readState(s, key) };
  });
  markRead(target);
  try {
    const local = await call('local_history', { with: target, before: null, limit: FIRST_PAGE });
    mergeInto(key, local);
    patchConv(key, (c) => ({ ...c, loaded: true, error: null }));
    previewFromList(key, local);
  } catch (e) {
    patchConv(key, (c) => ({ ...c, loaded: true, error: describe(e) }));
    return;
  }
  try {
    const server = await call('history', { with: target, before: null, limit: FIRST_PAGE });
    mergeInto(key, server);
    previewFromList(key, server);
  } catch {
    // Offline: the local page is what there is; paging back tries the server again.
  }
}

/** Pages back from the oldest loaded message: local first, the server when the store runs out. */
export async function loadOlder(target: Target): Promise<void> {
  const key = convKey(target);
  const conv = useChat.getState().convs[key];
  if (!conv || !conv.loaded || conv.loadingOlder || !conv.hasOlder) return;
  const before = oldestId(conv.messages);
  if (before === null) {
    patchConv(key, (c) => ({ ...c, hasOlder: false }));
    return;
  }
  patchConv(key, (c) => ({ ...c, loadingOlder: true }));
  let hasOlder = true;
  try {
    const local = await call('local_history', { with: target, before, limit: OLDER_PAGE });
    mergeInto(key, local);
    if (local.length < OLDER_PAGE) {
      try {
        const server = await call('history', { with: target, before, limit: OLDER_PAGE });
        mergeInto(key, server);
        hasOlder = server.length >= OLDER_PAGE;
      } catch {
        // Offline: stop asking until the connection is back (see connectionRestored).
        hasOlder = false;
      }
    }
  } catch (e) {
    hasOlder = false;
    patchConv(key, (c) => ({ ...c, error: describe(e) }));
  }
  patchConv(key, (c) => ({ ...c, loadingOlder: false, hasOlder }));
}

/** Pages forward from a search window until the live end. */
export async function loadNewer(target: Target): Promise<void> {
  const key = convKey(target);
  const conv = useChat.getState().convs[key];
  if (!conv || conv.liveEnd || conv.loadingNewer) return;
  const after = newestId(conv.messages);
  if (after === null) return;
  patchConv(key, (c) => ({ ...c, loadingNewer: true }));
  try {
    const page = await call('history_after', { with: target, after, limit: WINDOW_PAGE });
    mergeInto(key, page);
    if (page.length < WINDOW_PAGE) {
      // The end: pick up messages still sending, which only the newest page carries.
      const newest = await call('local_history', { with: target, before: null, limit: FIRST_PAGE });
      mergeInto(key, newest);
      patchConv(key, (c) => ({ ...c, liveEnd: true }));
    }
  } catch (e) {
    patchConv(key, (c) => ({ ...c, error: describe(e) }));
  } finally {
    patchConv(key, (c) => ({ ...c, loadingNewer: false }));
  }
}

/** Opens a search hit's conversation around it and marks it. */
export async function jumpTo(hit: SearchHit): Promise<void> {
  const target = hit.with;
  const key = convKey(target);
  const msgId = hit.message.msg_id;
  if (msgId === null) {
    await openConversation(target);
    return;
  }
  useChat.setState((s) => {
    const previous = s.convs[key];
    const conv = { ...freshConv(target), jumpSeq: (previous?.jumpSeq ?? 0) + 1 };
    const convs = leaveActive(s, key);
    return { active: target, convs: { ...convs, [key]: conv }, ...readState(s, key) };
  });
  markRead(target);
  try {
    const window = await call('history_around', {
      with: target,
      msg_id: msgId,
      limit: WINDOW_PAGE,
    });
    let messages = windowList(window);
    const liveEnd = window.newer.length < WINDOW_PAGE;
    if (liveEnd) {
      const newest = await call('local_history', { with: target, before: null, limit: FIRST_PAGE });
      messages = mergeMessages(messages, newest);
    }
    const clientId = hit.message.client_msg_id;
    const highlight = indexOfClientId(messages, clientId) >= 0 ? clientId : null;
    patchConv(key, (c) => ({
      ...c,
      messages: replayEarly(messages),
      loaded: true,
      liveEnd,
      highlight,
      jumpSeq: c.jumpSeq + 1,
    }));
    if (highlight) {
      setTimeout(() => {
        patchConv(key, (c) => (c.highlight === highlight ? { ...c, highlight: null } : c));
      }, HIGHLIGHT_MS);
    }
  } catch (e) {
    patchConv(key, (c) => ({ ...c, loaded: true, error: describe(e) }));
  }
}

/** Queues a text message; it shows at once as sending. */
export async function sendText(target: Target, text: string): Promise<void> {
  const key = convKey(target);
  const conv = useChat.getState().convs[key];
  if (!conv || !conv.liveEnd) await openConversation(target);
  const message = await call('send_text', { to: target, text });
  mergeInto(key, [message]);
  updatePreview(key, message);
}

/**
 * Re-reads the newest local page of a conversation: messages the engine posted by itself (the
 * chat message of a file offer, or of an image once its upload is done) join the list.
 */
export async function refreshNewest(target: Target): Promise<void> {
  const key = convKey(target);
  try {
    const page = await call('local_history', { with: target, before: null, limit: FIRST_PAGE });
    const conv = useChat.getState().convs[key];
    // A window around a search hit takes no newest page: it would leave a gap.
    if (conv && conv.liveEnd) mergeInto(key, page);
    previewFromList(key, page);
  } catch {
    // The message event, or the next opening of the chat, brings it.
  }
}

/** Sends a failed message again. */
export async function retryMessage(clientId: string): Promise<void> {
  forEachConvWith(clientId, (key) => patchMessages(key, (list) => applyRetrying(list, clientId)));
  try {
    await call('retry', { client_msg_id: clientId });
  } catch (e) {
    const error = describe(e);
    forEachConvWith(clientId, (key) =>
      patchMessages(key, (list) => applyFailed(list, clientId, error)),
    );
  }
}

function patchMessages(
  key: ConvKey,
  change: (list: readonly LocalMessage[]) => readonly LocalMessage[],
): void {
  patchConv(key, (c) => {
    const messages = change(c.messages);
    return messages === c.messages ? c : { ...c, messages };
  });
}

function forEachConvWith(clientId: string, f: (key: ConvKey) => void): boolean {
  let found = false;
  for (const [key, conv] of Object.entries(useChat.getState().convs)) {
    if (indexOfClientId(conv.messages, clientId) >= 0) {
      f(key);
      found = true;
    }
  }
  return found;
}

function applyStatus(list: readonly LocalMessage[], e: AppEvent): readonly LocalMessage[] {
  switch (e.type) {
    case 'sent':
      return applySent(list, e.client_msg_id, e.msg_id, e.ts);
    case 'delivered':
      return applyDelivered(list, e.client_msg_id, e.msg_id);
    case 'failed':
      return applyFailed(list, e.client_msg_id, errorText({ code: e.code, message: e.message }, t));
    default:
      return list;
  }
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * A status for a message no list holds: usually one the engine wrote itself (a file offer's
 * card, an image's message) that a re-read missed while it was between "sending" and "sent".
 * Now it is sent and stored: read the open chat's newest page again (once per burst).
 */
function refreshActiveSoon(): void {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    const active = useChat.getState().active;
    if (active) void refreshNewest(active);
  }, 100);
}

function onStatus(e: AppEvent & { client_msg_id: string }): void {
  const found = forEachConvWith(e.client_msg_id, (key) =>
    patchMessages(key, (list) => applyStatus(list, e)),
  );
  if (!found) {
    if (e.type === 'sent') refreshActiveSoon();
    if (early.size >= EARLY_MAX) {
      const oldest = early.keys().next().value;
      if (oldest !== undefined) early.delete(oldest);
    }
    early.set(e.client_msg_id, [...(early.get(e.client_msg_id) ?? []), e]);
  }
}

function isHidden(): boolean {
  return typeof document !== 'undefined' && document.hidden;
}

function onMessage(message: LocalMessage): void {
  const { me, convs } = useChat.getState();
  const target = conversationOf(message, me);
  const key = convKey(target);
  const conv = convs[key];
  // A window around a search hit does not take live messages: they would leave a gap. Paging
  // forward reaches them.
  if (conv && conv.liveEnd) mergeInto(key, [message]);
  updatePreview(key, message);
  const fromOther = !sameUser(message.from, me);
  if (!fromOther) return;
  if (isActive(key) && !isHidden()) {
    markRead(target);
    return;
  }
  const alreadyCounted =
    counted.has(message.client_msg_id) ||
    (message.msg_id !== null && message.msg_id <= (countedUpTo.get(key) ?? 0));
  if (!alreadyCounted) {
    counted.add(message.client_msg_id);
    useChat.setState((s) => ({ unread: { ...s.unread, [key]: (s.unread[key] ?? 0) + 1 } }));
  }
}

/**
 * The chat being left keeps only its newest page: reopening shows that page at once, and a
 * long session of paging through many chats does not hold every page it ever loaded. A window
 * around a search hit is dropped (it does not reach the newest message).
 */
function leaveActive(s: ChatState, next: ConvKey): Record<ConvKey, ConvState> {
  if (!s.active) return s.convs;
  const key = convKey(s.active);
  const conv = s.convs[key];
  if (key === next || !conv) return s.convs;
  const convs = { ...s.convs };
  if (!conv.liveEnd) {
    delete convs[key];
    return convs;
  }
  if (conv.messages.length <= FIRST_PAGE) return s.convs;
  convs[key] = {
    ...conv,
    messages: conv.messages.slice(-FIRST_PAGE),
    hasOlder: true,
    highlight: null,
  };
  return convs;
}

/** A conversation's unread count cleared (its read mark stays for the divider). */
function readState(s: ChatState, key: ConvKey): Pick<ChatState, 'unread'> {
  if (!s.unread[key]) return { unread: s.unread };
  const unread = { ...s.unread };
  delete unread[key];
  return { unread };
}

/** Moves the stored read mark to the newest message, soon (several messages: one write). */
function markRead(target: Target): void {
  const key = convKey(target);
  if (marking.has(key)) return;
  marking.set(
    key,
    setTimeout(() => {
      marking.delete(key);
      call('mark_read', { with: target }).then(
        (mark) => useChat.setState((s) => ({ readMarks: { ...s.readMarks, [key]: mark } })),
        () => {
          // Without a session or store the mark waits for the next open; nothing is lost.
        },
      );
    }, MARK_DELAY_MS),
  );
}

/** The unread counts kept in the local store, at the start of a session. */
export async function loadUnread(): Promise<void> {
  let stored;
  try {
    stored = await call('unread', {});
  } catch {
    return; // The counts start at zero and events count from here.
  }
  useChat.setState((s) => {
    const unread = { ...s.unread };
    const readMarks = { ...s.readMarks };
    for (const u of stored) {
      const key = convKey(u.with);
      countedUpTo.set(key, Math.max(countedUpTo.get(key) ?? 0, u.newest));
      readMarks[key] = u.read_up_to;
      if (s.active && convKey(s.active) === key && !isHidden()) continue;
      unread[key] = Math.max(unread[key] ?? 0, u.count);
    }
    return { unread, readMarks };
  });
}

/** Engine events about messages. */
export function handleChatEvent(e: AppEvent): void {
  switch (e.type) {
    case 'message':
      onMessage(e.message);
      break;
    case 'sent':
    case 'delivered':
    case 'failed':
      onStatus(e);
      break;
    default:
      break;
  }
}

/** The window is visible again: what the open conversation received is read. */
export function windowShown(): void {
  const active = useChat.getState().active;
  if (!active) return;
  const key = convKey(active);
  useChat.setState((s) => (s.unread[key] ? readState(s, key) : s));
  markRead(active);
}

/** Back online: paging back may reach the server again. */
export function connectionRestored(): void {
  useChat.setState((s) => {
    const convs: Record<ConvKey, ConvState> = {};
    for (const [key, c] of Object.entries(s.convs))
      convs[key] = c.hasOlder ? c : { ...c, hasOlder: true };
    return { convs };
  });
}

/** Forgets a removed friend's open chat. */
export function closeConversation(target: Target): void {
  const key = convKey(target);
  useChat.setState((s) => (s.active && convKey(s.active) === key ? { active: null } : s));
}

export function totalUnread(unread: Record<ConvKey, number>): number {
  return Object.values(unread).reduce((a, b) => a + b, 0);
}
