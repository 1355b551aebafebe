import { describe, expect, it } from 'vitest';
import type { LocalMessage } from '../src/bindings';
import {
  applyDelivered,
  applyFailed,
  applyRetrying,
  applySent,
  mergeMessages,
  newestId,
  oldestId,
  windowList,
} from '../src/state/messages';
import { ids, msg, pending } from './fixtures';

function byClient(list: readonly LocalMessage[], id: string): LocalMessage {
  const m = list.find((x) => x.client_msg_id === id);
  if (!m) throw new Error(`no message ${id}`);
  return m;
}

describe('a message I send', () => {
  it('goes sending → sent → delivered and moves into server order when sent', () => {
    const a = msg({ msg_id: 10 });
    const mine = pending('hello', 'mine1');
    let list = mergeMessages([a], [mine]);
    expect(byClient(list, 'mine1').state).toBe('sending');
    expect(ids(list)).toEqual([a.client_msg_id, 'mine1']);

    list = applySent(list, 'mine1', 11, 123_456);
    const sent = byClient(list, 'mine1');
    expect(sent).toMatchObject({ state: 'sent', msg_id: 11, ts: 123_456 });

    list = applyDelivered(list, 'mine1', 11);
    expect(byClient(list, 'mine1').state).toBe('delivered');
  });

  it('fails with the reason, then Retry puts it back to sending and it can still be sent', () => {
    let list = mergeMessages([], [pending('x', 'm')]);
    list = applyFailed(list, 'm', 'The server is busy.');
    expect(byClient(list, 'm')).toMatchObject({ state: 'failed', error: 'The server is busy.' });
    list = applyRetrying(list, 'm');
    expect(byClient(list, 'm')).toMatchObject({ state: 'sending', error: null });
    list = applySent(list, 'm', 5, 1);
    expect(byClient(list, 'm').state).toBe('sent');
  });

  it('never goes backwards: a stale page saying "sending" does not undo "delivered"', () => {
    let list = mergeMessages([], [pending('x', 'm')]);
    list = applySent(list, 'm', 7, 1);
    list = applyDelivered(list, 'm', 7);
    list = mergeMessages(list, [{ ...pending('x', 'm'), msg_id: null, state: 'sending' }]);
    expect(byClient(list, 'm')).toMatchObject({ state: 'delivered', msg_id: 7 });
    list = mergeMessages(list, [{ ...byClient(list, 'm'), state: 'sent' }]);
    expect(byClient(list, 'm').state).toBe('delivered');
  });

  it('a late "failed" after "sent" is ignored', () => {
    let list = mergeMessages([], [pending('x', 'm')]);
    list = applySent(list, 'm', 7, 1);
    list = applyFailed(list, 'm', 'late');
    expect(byClient(list, 'm').state).toBe('sent');
  });
});

describe('merging', () => {
  it('dedupes a message delivered again by client_msg_id', () => {
    const a = msg({ msg_id: 1 });
    const b = msg({ msg_id: 2 });
    const list = mergeMessages([a, b], [{ ...b }, { ...a }]);
    expect(list).toHaveLength(2);
    expect(ids(list)).toEqual([a.client_msg_id, b.client_msg_id]);
  });

  it('returns the same array when nothing changed (no re-render)', () => {
    const a = msg({ msg_id: 1 });
    const list = [a];
    expect(mergeMessages(list, [a])).toBe(list);
    expect(mergeMessages(list, [])).toBe(list);
  });

  it('sorts by server id with pending messages last, in the order they were written', () => {
    const p1 = pending('first', 'p1');
    const p2 = pending('second', 'p2');
    const a = msg({ msg_id: 5 });
    const b = msg({ msg_id: 3 });
    const list = mergeMessages([p1, p2], [a, b]);
    expect(ids(list)).toEqual([b.client_msg_id, a.client_msg_id, 'p1', 'p2']);
  });

  it('a live message arriving while mine is pending goes before the pending one', () => {
    const p = pending('mine', 'p');
    const incoming = msg({ msg_id: 50 });
    const list = mergeMessages([msg({ msg_id: 49 }), p], [incoming]);
    expect(ids(list).slice(-2)).toEqual([incoming.client_msg_id, 'p']);
  });

  it('prepends an older page and keeps everything in order', () => {
    const newest = Array.from({ length: 50 }, (_, i) => msg({ msg_id: 1000 + i }));
    const older = Array.from({ length: 100 }, (_, i) => msg({ msg_id: 900 + i }));
    const list = mergeMessages(newest, older);
    expect(list).toHaveLength(150);
    expect(list.map((m) => m.msg_id)).toEqual([...older, ...newest].map((m) => m.msg_id));
    expect(oldestId(list)).toBe(900);
    expect(newestId(list)).toBe(1049);
  });

  it('fills a gap in the middle from the server page', () => {
    const list = mergeMessages(
      [msg({ msg_id: 1 }), msg({ msg_id: 4 })],
      [msg({ msg_id: 2 }), msg({ msg_id: 3 })],
    );
    expect(list.map((m) => m.msg_id)).toEqual([1, 2, 3, 4]);
  });

  it('stays fast on 100,000 messages', () => {
    const big = Array.from({ length: 100_000 }, (_, i) => msg({ msg_id: i + 1 }));
    const started = performance.now();
    let list: readonly LocalMessage[] = big;
    for (let i = 0; i < 50; i++) list = mergeMessages(list, [msg({ msg_id: 200_000 + i })]);
    expect(list).toHaveLength(100_050);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('a window around a search hit', () => {
  it('joins older (with the hit) and newer into one ordered list', () => {
    const older = [msg({ msg_id: 8 }), msg({ msg_id: 9 }), msg({ msg_id: 10, text: 'hit' })];
    const newer = [msg({ msg_id: 11 }), msg({ msg_id: 12 })];
    const list = windowList({ older, newer });
    expect(list.map((m) => m.msg_id)).toEqual([8, 9, 10, 11, 12]);
  });
});
