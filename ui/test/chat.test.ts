import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LocalMessage, Target } from '../src/bindings';
import { call } from '../src/backend';
import {
  handleChatEvent,
  jumpTo,
  loadUnread,
  loadNewer,
  loadOlder,
  openConversation,
  resetChat,
  retryMessage,
  sendText,
  useChat,
} from '../src/state/chat';
import { convKey } from '../src/state/conversation';
import { ids, msg, pending } from './fixtures';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);
const bob: Target = { kind: 'user', username: 'bob' };
const BOB = convKey(bob);

type Handler = (args: Record<string, unknown>) => unknown;

function backend(handlers: Record<string, Handler>) {
  mockedCall.mockImplementation(((cmd: string, args: Record<string, unknown>) => {
    const h = handlers[cmd];
    if (!h) return Promise.reject({ code: 'internal', message: `no ${cmd}`, fingerprint: null });
    try {
      return Promise.resolve(h(args));
    } catch (e) {
      return Promise.reject(e);
    }
  }) as typeof call);
}

function fromBob(msgId: number, text = `m${msgId}`): LocalMessage {
  return msg({ msg_id: msgId, client_msg_id: `b${msgId}`, from: 'bob', text });
}

function listOf(key = BOB): readonly LocalMessage[] {
  return useChat.getState().convs[key]?.messages ?? [];
}

beforeEach(() => {
  mockedCall.mockReset();
  resetChat('alice');
});
afterEach(() => {
  vi.useRealTimers();
});

describe('opening a chat', () => {
  it('shows the local page, then merges the server page that fills a gap', async () => {
    backend({
      local_history: () => [fromBob(1), fromBob(4)],
      history: () => [fromBob(1), fromBob(2), fromBob(3), fromBob(4)],
    });
    await openConversation(bob);
    expect(listOf().map((m) => m.msg_id)).toEqual([1, 2, 3, 4]);
    expect(mockedCall).toHaveBeenCalledWith('local_history', {
      with: bob,
      before: null,
      limit: 50,
    });
    expect(mockedCall).toHaveBeenCalledWith('history', { with: bob, before: null, limit: 50 });
    expect(useChat.getState().previews[BOB]?.text).toBe('m4');
  });

  it('still shows the local page when the server cannot be reached', async () => {
    backend({
      local_history: () => [fromBob(1)],
      history: () => {
        throw { code: 'offline', message: 'offline', fingerprint: null };
      },
    });
    await openConversation(bob);
    expect(listOf().map((m) => m.msg_id)).toEqual([1]);
    expect(useChat.getState().convs[BOB]?.error).toBeNull();
  });
});

describe('paging back', () => {
  it('uses the local store, and the server when the store runs out', async () => {
    const page = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => fromBob(from + i));
    backend({
      local_history: ({ before }) => (before === null ? page(200, 249) : page(180, 199)),
      history: ({ before }) => (before === null ? [] : page(100, 199)),
    });
    await openConversation(bob);
    await loadOlder(bob);
    const list = listOf();
    expect(list[0]?.msg_id).toBe(100);
    expect(list).toHaveLength(150);
    expect(mockedCall).toHaveBeenCalledWith('local_history', {
      with: bob,
      before: 200,
      limit: 100,
    });
    expect(mockedCall).toHaveBeenCalledWith('history', { with: bob, before: 200, limit: 100 });
    expect(useChat.getState().convs[BOB]?.hasOlder).toBe(true);
  });

  it('stops at the beginning of the conversation', async () => {
    backend({
      local_history: ({ before }) => (before === null ? [fromBob(5), fromBob(6)] : []),
      history: ({ before }) => (before === null ? [] : [fromBob(3), fromBob(4)]),
    });
    await openConversation(bob);
    await loadOlder(bob);
    expect(listOf().map((m) => m.msg_id)).toEqual([3, 4, 5, 6]);
    expect(useChat.getState().convs[BOB]?.hasOlder).toBe(false);
  });
});

describe('sending', () => {
  it('shows my message at once as sending, then sent and delivered from events', async () => {
    const queued = pending('hello', 'mine');
    backend({ local_history: () => [], history: () => [], send_text: () => queued });
    await openConversation(bob);
    await sendText(bob, 'hello');
    expect(listOf()[0]?.state).toBe('sending');
    handleChatEvent({ type: 'sent', client_msg_id: 'mine', msg_id: 9, ts: 5 });
    expect(listOf()[0]).toMatchObject({ state: 'sent', msg_id: 9 });
    handleChatEvent({ type: 'delivered', client_msg_id: 'mine', msg_id: 9 });
    expect(listOf()[0]?.state).toBe('delivered');
  });

  it('applies a "sent" that overtook the answer to send_text', async () => {
    const queued = pending('x', 'fast');
    backend({
      local_history: () => [],
      history: () => [],
      send_text: () => {
        handleChatEvent({ type: 'sent', client_msg_id: 'fast', msg_id: 3, ts: 1 });
        return queued;
      },
    });
    await openConversation(bob);
    await sendText(bob, 'x');
    expect(listOf()[0]).toMatchObject({ state: 'sent', msg_id: 3 });
  });

  it('reads a message the engine wrote itself once its "sent" arrives', async () => {
    // A file offer's card: a re-read while it went from sending to sent missed it.
    const card = msg({
      msg_id: 12,
      client_msg_id: 'card',
      from: 'alice',
      to: bob,
      state: 'sent',
      body: { kind: 'file', file_id: 'f1', name: 'a.pdf', size: 3, sha256: 'ab'.repeat(32) },
    });
    let stored: LocalMessage[] = [];
    backend({ local_history: () => stored, history: () => [] });
    await openConversation(bob);
    vi.useFakeTimers();
    stored = [card];
    handleChatEvent({ type: 'sent', client_msg_id: 'card', msg_id: 12, ts: 5 });
    await vi.advanceTimersByTimeAsync(150);
    expect(ids(listOf())).toEqual(['card']);
    expect(listOf()[0]).toMatchObject({ state: 'sent', msg_id: 12 });
  });

  it('a failed message shows the translated reason; Retry sends it again', async () => {
    const queued = pending('x', 'f');
    backend({
      local_history: () => [],
      history: () => [],
      send_text: () => queued,
      retry: () => null,
    });
    await openConversation(bob);
    await sendText(bob, 'x');
    handleChatEvent({ type: 'failed', client_msg_id: 'f', code: 'not_friends', message: 'nope' });
    expect(listOf()[0]).toMatchObject({
      state: 'failed',
      error: 'You are not friends with this user.',
    });
    await retryMessage('f');
    expect(mockedCall).toHaveBeenCalledWith('retry', { client_msg_id: 'f' });
    expect(listOf()[0]?.state).toBe('sending');
  });
});

describe('leaving a chat', () => {
  it('keeps only its newest page, so a long session does not hold every page', async () => {
    const page = Array.from({ length: 300 }, (_, i) => fromBob(i + 1));
    backend({
      local_history: (args) => (args.with === bob ? page : []),
      history: (args) => (args.with === bob ? page : []),
      mark_read: () => 0,
    });
    await openConversation(bob);
    expect(listOf()).toHaveLength(300);
    await openConversation({ kind: 'square' });
    const kept = listOf();
    expect(kept).toHaveLength(50);
    expect(kept[kept.length - 1]?.msg_id).toBe(300);
    expect(useChat.getState().convs[BOB]?.hasOlder).toBe(true);
  });
});

describe('unread', () => {
  it('counts messages for chats that are not open, once each, and clears on opening', async () => {
    backend({ local_history: () => [], history: () => [] });
    const m = fromBob(1);
    handleChatEvent({ type: 'message', message: m });
    handleChatEvent({ type: 'message', message: { ...m } });
    handleChatEvent({ type: 'message', message: fromBob(2) });
    expect(useChat.getState().unread[BOB]).toBe(2);
    await openConversation(bob);
    expect(useChat.getState().unread[BOB]).toBeUndefined();
    handleChatEvent({ type: 'message', message: fromBob(3) });
    expect(useChat.getState().unread[BOB]).toBeUndefined();
    expect(listOf().map((x) => x.msg_id)).toEqual([3]);
  });

  it('does not count my own messages', () => {
    handleChatEvent({
      type: 'message',
      message: msg({ from: 'alice', to: bob, state: 'sent' }),
    });
    expect(useChat.getState().unread[BOB]).toBeUndefined();
  });

  it('starts from the stored counts, never counting a stored message twice', async () => {
    backend({
      unread: () => [{ with: bob, count: 2, read_up_to: 4, newest: 6 }],
    });
    await loadUnread();
    expect(useChat.getState().unread[BOB]).toBe(2);
    // Message 6 was counted by the store already; 7 is new.
    handleChatEvent({ type: 'message', message: fromBob(6) });
    handleChatEvent({ type: 'message', message: fromBob(7) });
    expect(useChat.getState().unread[BOB]).toBe(3);
  });

  it('opens an unread chat with the divider at the read mark and stores the new mark', async () => {
    vi.useFakeTimers();
    backend({
      unread: () => [{ with: bob, count: 2, read_up_to: 4, newest: 6 }],
      local_history: () => [fromBob(4), fromBob(5), fromBob(6)],
      history: () => [fromBob(4), fromBob(5), fromBob(6)],
      mark_read: () => 6,
    });
    await loadUnread();
    await openConversation(bob);
    expect(useChat.getState().convs[BOB]?.readUpTo).toBe(4);
    expect(useChat.getState().unread[BOB]).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000);
    expect(mockedCall).toHaveBeenCalledWith('mark_read', { with: bob });
    expect(mockedCall.mock.calls.filter(([cmd]) => cmd === 'mark_read')).toHaveLength(1);
    expect(useChat.getState().readMarks[BOB]).toBe(6);
    // Live messages in the open chat move the mark too.
    handleChatEvent({ type: 'message', message: fromBob(7) });
    await vi.advanceTimersByTimeAsync(1000);
    expect(mockedCall.mock.calls.filter(([cmd]) => cmd === 'mark_read')).toHaveLength(2);
    expect(useChat.getState().unread[BOB]).toBeUndefined();
  });

  it('keeps counting from events when the store cannot be read', async () => {
    backend({});
    await loadUnread();
    handleChatEvent({ type: 'message', message: fromBob(1) });
    expect(useChat.getState().unread[BOB]).toBe(1);
  });

  it('counts Square messages under the Square', () => {
    handleChatEvent({
      type: 'message',
      message: msg({ from: 'carol', to: { kind: 'square' } }),
    });
    expect(useChat.getState().unread.square).toBe(1);
  });
});

describe('jumping to a search hit', () => {
  it('opens the window around it, marks it, and pages forward to the live end', async () => {
    vi.useFakeTimers();
    const older = [fromBob(8), fromBob(9), fromBob(10, 'the hit')];
    const newer = Array.from({ length: 100 }, (_, i) => fromBob(11 + i));
    backend({
      history_around: () => ({ older, newer }),
      history_after: ({ after }) => (after === 110 ? [fromBob(111), fromBob(112)] : []),
      local_history: () => [fromBob(111), fromBob(112)],
    });
    await jumpTo({ message: fromBob(10, 'the hit'), with: bob });
    let conv = useChat.getState().convs[BOB];
    expect(conv?.highlight).toBe('b10');
    expect(conv?.liveEnd).toBe(false);
    expect(ids(conv?.messages ?? [])[0]).toBe('b8');

    // Live messages wait until paging forward reaches them (no gap in the list).
    handleChatEvent({ type: 'message', message: fromBob(113) });
    expect(listOf().some((m) => m.msg_id === 113)).toBe(false);

    await loadNewer(bob);
    conv = useChat.getState().convs[BOB];
    expect(conv?.liveEnd).toBe(true);
    expect(conv?.messages.at(-1)?.msg_id).toBe(112);
    expect(mockedCall).toHaveBeenCalledWith('history_after', { with: bob, after: 110, limit: 100 });

    vi.advanceTimersByTime(3000);
    expect(useChat.getState().convs[BOB]?.highlight).toBeNull();
  });
});
