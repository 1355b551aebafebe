// Builders for test data in the shapes of bindings.ts.
import type { CallInfo, LocalMessage, MessageState, Target, TransferInfo } from '../src/bindings';

let seq = 0;

export function msg(partial: Partial<LocalMessage> & { text?: string } = {}): LocalMessage {
  seq += 1;
  const { text, ...rest } = partial;
  return {
    msg_id: seq,
    client_msg_id: `c${seq}`,
    from: 'bob',
    from_guest: false,
    to: { kind: 'user', username: 'alice' } as Target,
    ts: Date.UTC(2024, 2, 5, 10, 0) + seq * 1000,
    body: { kind: 'text', text: text ?? `message ${seq}` },
    state: 'received' as MessageState,
    error: null,
    ...rest,
  };
}

/** A message of mine still being sent. */
export function pending(text = 'hi', clientId?: string): LocalMessage {
  return msg({
    msg_id: null,
    ...(clientId ? { client_msg_id: clientId } : {}),
    from: 'alice',
    to: { kind: 'user', username: 'bob' },
    state: 'sending',
    text,
  });
}

export function ids(list: readonly LocalMessage[]): string[] {
  return list.map((m) => m.client_msg_id);
}

/** A transfer in the shape of bindings.ts (a file bob offers alice, by default). */
export function transfer(partial: Partial<TransferInfo> = {}): TransferInfo {
  seq += 1;
  return {
    file_id: `f${seq}`,
    direction: 'down',
    kind: 'file',
    chat: { kind: 'user', username: 'bob' },
    peer: 'bob',
    name: 'report.pdf',
    size: 10 * 1024 * 1024,
    sha256: 'ab'.repeat(32),
    state: 'offered',
    done: 0,
    rate: 0,
    path: null,
    accepted: false,
    error: null,
    ts: Date.UTC(2024, 2, 5, 10, 0) + seq * 1000,
    ...partial,
  };
}

/** A call in the shape of bindings.ts (alice calling bob, by default). */
export function callInfo(partial: Partial<CallInfo> = {}): CallInfo {
  seq += 1;
  return {
    call_id: `call-${seq}`,
    peer: 'bob',
    outgoing: true,
    phase: 'calling',
    reason: null,
    since: null,
    muted: false,
    ...partial,
  };
}
