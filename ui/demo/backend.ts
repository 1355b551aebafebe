// A stand-in for the Rust side, for looking at the UI in a plain browser (`npm run dev`, then
// /demo/). It answers every command of bindings.ts from memory and emits events like the engine.
// Never part of the app build.
import { emit } from '@tauri-apps/api/event';
import { mockIPC } from '@tauri-apps/api/mocks';
import {
  EVENT,
  type AppEvent,
  type CallInfo,
  type Friend,
  type FriendRequestInfo,
  type IpcError,
  type LocalMessage,
  type OnlineUser,
  type Profile,
  type Settings,
  type Target,
  type TransferInfo,
} from '../src/bindings';

export interface DemoOptions {
  /** Resume this user at start (skips connect and login). */
  user: string | null;
  /** Messages in the chat with bob. */
  count: number;
  /** The first connect reports a changed certificate. */
  certChanged: boolean;
  language: string | null;
  theme: Settings['theme'];
  /** History pages ignore their limit (to look at a list with everything loaded at once). */
  bulk: boolean;
}

const ME = 'alice';
const HOUR = 3_600_000;

function fail(code: string, message: string, fingerprint: string | null = null): never {
  throw { code, message, fingerprint } satisfies IpcError;
}

const lines = [
  'Morning! Did you see the release notes?',
  '早上好！今天的会议改到下午三点了。',
  'Sure, sounds good 👍',
  'I pushed the fix for the reconnect bug.\nCan you try it on your machine?\nIt should resume the session without a new login.',
  '好的，我晚点看一下。',
  'https://example.invalid/a/very/long/link/that/keeps/going/and/going/without/any/spaces/at/all/to/test/wrapping',
  'Lunch?',
  '广场上好多人在讨论新版本。',
  'Mixed 中文 and English in one message works fine.',
  'ok',
];

export function installDemoBackend(options: DemoOptions): void {
  const now = Date.now();
  let nextId = 1;
  let certAccepted = !options.certChanged;
  const settings: Settings = {
    server: { host: 'chat.example.org', port: 4399, tls: true },
    last_user: options.user,
    language: options.language,
    theme: options.theme,
    notifications: true,
    hosting: false,
    audio_input: null,
    audio_output: null,
  };
  const profile: Profile = {
    username: ME,
    nickname: 'Alice',
    motto: 'Small, fast, reliable.',
    phone: '+86 138 0000 0000',
    is_guest: false,
  };
  const friends: Friend[] = [
    { username: 'bob', nickname: 'Bobby', motto: 'Keep it simple', is_guest: false, online: true },
    {
      username: 'lilei',
      nickname: '李雷',
      motto: '好好学习，天天向上',
      is_guest: false,
      online: true,
    },
    { username: 'carol', nickname: '', motto: '', is_guest: false, online: false },
    {
      username: 'dmitri',
      nickname: 'Dmitri with a really long nickname that goes on and on',
      motto: '',
      is_guest: false,
      online: false,
    },
  ];
  const online: OnlineUser[] = [
    { username: ME, nickname: 'Alice', is_guest: false },
    { username: 'bob', nickname: 'Bobby', is_guest: false },
    { username: 'lilei', nickname: '李雷', is_guest: false },
    { username: 'grace', nickname: 'Grace', is_guest: false },
    { username: 'visitor7', nickname: '', is_guest: true },
  ];
  const incoming: FriendRequestInfo[] = [
    { from: 'erin', to: ME, message: 'Hi Alice, we met at the meetup!', ts: now - 2 * HOUR },
  ];
  const outgoing: FriendRequestInfo[] = [{ from: ME, to: 'frank', message: '', ts: now - HOUR }];

  const convs = new Map<string, LocalMessage[]>();
  const key = (t: Target) => (t.kind === 'square' ? 'square' : t.username.toLowerCase());
  const add = (conv: string, m: LocalMessage) => {
    const list = convs.get(conv) ?? [];
    list.push(m);
    convs.set(conv, list);
  };
  const make = (from: string, to: Target, ts: number, text: string): LocalMessage => ({
    msg_id: nextId++,
    client_msg_id: `demo-${nextId}`,
    from,
    from_guest: from === 'visitor7',
    to,
    ts,
    body: { kind: 'text', text },
    state: from === ME ? 'delivered' : 'received',
    error: null,
  });

  // bob: `count` messages over the last days, newest last.
  const span = Math.max(options.count, 1);
  for (let i = 0; i < options.count; i++) {
    const mine = i % 3 === 1;
    const ts = now - (span - i) * ((10 * 24 * HOUR) / span) - 5 * 60_000;
    add(
      'bob',
      make(
        mine ? ME : 'bob',
        { kind: 'user', username: mine ? 'bob' : ME },
        ts,
        lines[i % lines.length] ?? '',
      ),
    );
  }
  const bobList = convs.get('bob') ?? [];
  const tail = (state: LocalMessage['state'], text: string, error: string | null = null) => {
    const m = make(ME, { kind: 'user', username: 'bob' }, now - 60_000, text);
    bobList.push({
      ...m,
      state,
      error,
      msg_id: state === 'sending' || state === 'failed' ? null : m.msg_id,
    });
  };
  tail('delivered', 'See you at 3 then.');
  tail('sent', 'Bringing the slides.');
  tail('failed', 'This one did not make it.', 'You are not friends with this user.');
  tail('sending', '路上有点堵，马上到！');

  const squareFrom = ['grace', 'visitor7', 'lilei', ME, 'bob'];
  for (let i = 0; i < 60; i++) {
    add(
      'square',
      make(
        squareFrom[i % squareFrom.length] ?? 'grace',
        { kind: 'square' },
        now - (60 - i) * 7 * 60_000,
        lines[(i * 7) % lines.length] ?? '',
      ),
    );
  }
  add('lilei', make('lilei', { kind: 'user', username: ME }, now - 26 * HOUR, '明天见！'));

  const event = (e: AppEvent) => void emit(EVENT, e);

  // Images and file offers in the chat with bob, with transfers that move.
  const transfers = new Map<string, TransferInfo>();
  const bobChat: Target = { kind: 'user', username: 'bob' };
  const MB = 1024 * 1024;
  const addTransfer = (t: Partial<TransferInfo> & { file_id: string; name: string }) => {
    const full: TransferInfo = {
      direction: 'down',
      kind: 'file',
      chat: bobChat,
      peer: 'bob',
      size: 48 * MB,
      sha256: 'ab'.repeat(32),
      state: 'offered',
      done: 0,
      rate: 0,
      path: null,
      accepted: false,
      error: null,
      ts: now,
      ...t,
    };
    transfers.set(full.file_id, full);
    return full;
  };
  const fileMessage = (from: string, t: TransferInfo, ts: number): LocalMessage => ({
    ...make(from, from === ME ? bobChat : { kind: 'user', username: ME }, ts, ''),
    body: { kind: 'file', file_id: t.file_id, name: t.name, size: t.size, sha256: t.sha256 },
  });
  const thumbnail = (w: number, h: number, hue: number): string => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext('2d');
    if (!g) return '';
    const grad = g.createLinearGradient(0, 0, w, h);
    grad.addColorStop(0, `hsl(${hue}, 70%, 62%)`);
    grad.addColorStop(1, `hsl(${hue + 60}, 70%, 38%)`);
    g.fillStyle = grad;
    g.fillRect(0, 0, w, h);
    g.fillStyle = 'rgba(255,255,255,0.85)';
    g.beginPath();
    g.arc(w * 0.72, h * 0.3, Math.min(w, h) * 0.12, 0, Math.PI * 2);
    g.fill();
    return canvas.toDataURL('image/jpeg', 0.8).split(',')[1] ?? '';
  };
  const imageMessage = (from: string, name: string, w: number, h: number, hue: number) => ({
    ...make(from, from === ME ? bobChat : { kind: 'user', username: ME }, now - 40_000, ''),
    body: {
      kind: 'image' as const,
      file_id: `img-${name}`,
      name,
      mime: 'image/jpeg',
      size: 2 * MB,
      width: w,
      height: h,
      thumbnail: thumbnail(Math.round(w / 8), Math.round(h / 8), hue),
    },
  });
  {
    const list = convs.get('bob') ?? [];
    list.splice(
      list.length - 4,
      0,
      imageMessage('bob', 'sunset.jpg', 1600, 1067, 20),
      imageMessage(ME, 'whiteboard.jpg', 900, 1200, 200),
      fileMessage(
        'bob',
        addTransfer({ file_id: 'f-offer', name: '季度报告 Q3 final.pdf', size: 12.4 * MB }),
        now - 30_000,
      ),
      fileMessage(
        ME,
        addTransfer({
          file_id: 'f-up',
          name: 'natter-0.1.0-amd64.deb',
          direction: 'up',
          state: 'uploading',
          size: 96 * MB,
          done: 31 * MB,
          rate: 3.2 * MB,
        }),
        now - 20_000,
      ),
      fileMessage(
        'bob',
        addTransfer({
          file_id: 'f-done',
          name: 'photos.zip',
          state: 'done',
          size: 230 * MB,
          done: 230 * MB,
          path: '/home/alice/Downloads/photos.zip',
          accepted: true,
        }),
        now - 10_000,
      ),
    );
  }
  const update = (id: string, change: Partial<TransferInfo>) => {
    const t = transfers.get(id);
    if (!t) return null;
    Object.assign(t, change);
    event({ type: 'transfer', transfer: { ...t } });
    return { ...t };
  };
  setInterval(() => {
    for (const t of transfers.values()) {
      if (t.state !== 'uploading' && t.state !== 'downloading') continue;
      const rate = (2 + Math.random() * 2) * MB;
      const done = Math.min(t.size, t.done + rate / 4);
      update(t.file_id, {
        done,
        rate,
        state: done >= t.size ? (t.direction === 'up' ? 'uploaded' : 'done') : t.state,
        path: done >= t.size && t.direction === 'down' ? `/home/alice/Downloads/${t.name}` : t.path,
      });
    }
  }, 250);
  const session = () => ({
    profile,
    online,
    friends,
    incoming_requests: incoming,
    outgoing_requests: outgoing,
    resumed: true,
    offline: false,
  });
  const ordered = (list: LocalMessage[]) => {
    const done = list
      .filter((m) => m.msg_id !== null)
      .sort((a, b) => (a.msg_id ?? 0) - (b.msg_id ?? 0));
    return { done, pending: list.filter((m) => m.msg_id === null) };
  };
  const page = (t: Target, before: number | null, limit: number) => {
    const { done, pending } = ordered(convs.get(key(t)) ?? []);
    const older = done.filter((m) => before === null || (m.msg_id ?? 0) < before);
    const slice = older.slice(Math.max(0, older.length - limit));
    return before === null ? [...slice, ...pending] : slice;
  };
  // One call at a time, moving through its phases on timers like the engine's.
  let currentCall: CallInfo | null = null;
  const callUpdate = (change: Partial<CallInfo>) => {
    if (!currentCall) return null;
    currentCall = { ...currentCall, ...change };
    event({ type: 'call', call: currentCall });
    const info = currentCall;
    if (info.phase === 'ended') currentCall = null;
    return info;
  };
  const connectCall = () => {
    callUpdate({ phase: 'connecting' });
    setTimeout(() => callUpdate({ phase: 'active', since: Date.now() }), 700);
  };
  ring = () => {
    currentCall = {
      call_id: `call-${nextId++}`,
      peer: 'bob',
      outgoing: false,
      phase: 'ringing',
      reason: null,
      since: null,
      muted: false,
    };
    event({ type: 'call', call: currentCall });
  };
  const delay = <T>(value: T, ms = 120) => new Promise<T>((r) => setTimeout(() => r(value), ms));

  mockIPC(
    (cmd, raw) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command's args as they come
      const args = (raw ?? {}) as Record<string, any>;
      switch (cmd) {
        case 'app_info':
          return {
            settings,
            version: '0.1.0',
            os_language: navigator.language,
            data_dir: '/home/alice/.local/share/im.natter.desktop',
          };
        case 'save_settings':
          Object.assign(settings, args.settings);
          return settings;
        case 'connect':
          if (!certAccepted) {
            return Promise.reject({
              code: 'certificate_changed',
              message: 'the certificate changed',
              fingerprint: '3f9a1c0e77d24b5a9e018c6fd2a4b7e1c9d03f5a6b7e8d9c0a1b2c3d4e5f6071',
            });
          }
          return delay({ fingerprint: 'ab'.repeat(32) }, 300);
        case 'accept_certificate':
          certAccepted = true;
          return null;
        case 'check_username': {
          const name = String(args.username).toLowerCase();
          const taken = ['bob', 'alice', 'grace', 'lilei'].includes(name);
          return delay({ available: !taken, reason: taken ? 'username_taken' : null });
        }
        case 'register':
          return delay(profile, 300);
        case 'login':
          if (args.password === 'wrong')
            return Promise.reject({ code: 'bad_credentials', message: 'bad', fingerprint: null });
          return delay(session(), 300);
        case 'guest_login':
          return delay({
            ...session(),
            profile: { ...profile, username: args.username, is_guest: true },
          });
        case 'resume':
          return delay(session(), 400);
        case 'logout':
        case 'erase_account':
          return null;
        case 'update_profile': {
          const edit = args.edit as { nickname: string; motto: string; phone: string };
          Object.assign(profile, edit);
          return delay(profile);
        }
        case 'online_users':
          return online;
        case 'friends':
          return { friends, incoming, outgoing };
        case 'friend_request':
          if (args.to === 'nobody') fail('no_such_user', 'no such user');
          outgoing.push({ from: ME, to: args.to, message: args.message, ts: Date.now() });
          return null;
        case 'friend_respond': {
          const i = incoming.findIndex((r) => r.from === args.from);
          const [r] = incoming.splice(i, 1);
          if (args.accept && r) {
            friends.push({
              username: r.from,
              nickname: '',
              motto: '',
              is_guest: false,
              online: true,
            });
          }
          return null;
        }
        case 'friend_delete':
          friends.splice(
            friends.findIndex((f) => f.username === args.username),
            1,
          );
          return null;
        case 'send_text': {
          const to = args.to as Target;
          const m: LocalMessage = {
            ...make(ME, to, Date.now(), String(args.text)),
            msg_id: null,
            state: 'sending',
          };
          nextId -= 1;
          add(key(to), m);
          setTimeout(() => {
            if (String(args.text).includes('fail')) {
              m.state = 'failed';
              event({
                type: 'failed',
                client_msg_id: m.client_msg_id,
                code: 'rate_limited',
                message: 'slow down',
              });
              return;
            }
            m.msg_id = nextId++;
            m.state = 'sent';
            event({ type: 'sent', client_msg_id: m.client_msg_id, msg_id: m.msg_id, ts: m.ts });
            if (to.kind === 'user') {
              setTimeout(() => {
                m.state = 'delivered';
                event({ type: 'delivered', client_msg_id: m.client_msg_id, msg_id: m.msg_id ?? 0 });
              }, 800);
            }
          }, 500);
          return m;
        }
        case 'retry':
          return null;
        case 'local_history':
        case 'history':
          return page(args.with as Target, args.before, options.bulk ? 1e9 : args.limit);
        case 'history_around': {
          const { done } = ordered(convs.get(key(args.with as Target)) ?? []);
          const i = done.findIndex((m) => m.msg_id === args.msg_id);
          return {
            older: done.slice(Math.max(0, i + 1 - args.limit), i + 1),
            newer: done.slice(i + 1, i + 1 + args.limit),
          };
        }
        case 'history_after': {
          const { done } = ordered(convs.get(key(args.with as Target)) ?? []);
          return done.filter((m) => (m.msg_id ?? 0) > args.after).slice(0, args.limit);
        }
        case 'search': {
          const q = String(args.query).toLowerCase();
          const hits: { message: LocalMessage; with: Target }[] = [];
          for (const [k, list] of convs) {
            for (const m of list) {
              if (
                m.body.kind === 'text' &&
                m.body.text.toLowerCase().includes(q) &&
                m.msg_id !== null
              ) {
                hits.push({
                  message: m,
                  with: k === 'square' ? { kind: 'square' } : { kind: 'user', username: k },
                });
              }
            }
          }
          hits.sort((a, b) => b.message.ts - a.message.ts);
          return delay(hits.slice(0, args.limit));
        }
        case 'transfers':
          return [...transfers.values()];
        case 'accept_file':
          return update(args.file_id, { state: 'downloading', accepted: true });
        case 'reject_file':
          update(args.file_id, { state: 'rejected' });
          return null;
        case 'pause_transfer':
          return update(args.file_id, { state: 'paused', rate: 0 });
        case 'resume_transfer': {
          const t = transfers.get(args.file_id);
          return update(args.file_id, {
            state: t?.direction === 'up' ? 'uploading' : 'downloading',
          });
        }
        case 'cancel_transfer':
          update(args.file_id, { state: 'cancelled', rate: 0 });
          return null;
        case 'show_transfer':
          return null;
        case 'pick_files':
          return delay(['/home/alice/Pictures/holiday.jpg']);
        case 'send_image':
        case 'send_file': {
          const to: Target =
            typeof args.to === 'string' ? { kind: 'user', username: args.to } : args.to;
          const name = String(args.path).split('/').pop() ?? 'file';
          return addTransfer({
            file_id: `f-${nextId++}`,
            name,
            kind: cmd === 'send_image' ? 'image' : 'file',
            direction: 'up',
            chat: to,
            peer: to.kind === 'user' ? to.username : '',
            state: 'uploading',
            size: 6 * MB,
          });
        }
        case 'call': {
          if (currentCall) fail('forbidden', 'already in a call');
          currentCall = {
            call_id: `call-${nextId++}`,
            peer: args.to,
            outgoing: true,
            phase: 'calling',
            reason: null,
            since: null,
            muted: false,
          };
          const id = currentCall.call_id;
          // carol never answers; bob declines calls from the demo after a while; others pick up.
          setTimeout(() => {
            if (currentCall?.call_id !== id) return;
            if (args.to === 'bob') callUpdate({ phase: 'ended', reason: 'rejected' });
            else if (args.to === 'carol') callUpdate({ phase: 'ended', reason: 'offline' });
            else connectCall();
          }, 2500);
          event({ type: 'call', call: currentCall });
          return currentCall;
        }
        case 'answer_call':
          if (args.accept) connectCall();
          else callUpdate({ phase: 'ended', reason: 'rejected' });
          return null;
        case 'hang_up':
          callUpdate({ phase: 'ended', reason: 'hangup' });
          return null;
        case 'set_muted':
          return callUpdate({ muted: Boolean(args.muted) });
        case 'current_call':
          return currentCall;
        case 'call_level':
          return currentCall?.phase === 'active' ? Math.abs(Math.sin(Date.now() / 300)) * 0.5 : 0;
        case 'audio_devices':
          return delay({
            inputs: ['Built-in Microphone', 'USB Headset Microphone'],
            outputs: ['Built-in Speakers', 'USB Headset'],
            default_input: 'Built-in Microphone',
            default_output: 'Built-in Speakers',
          });
        case 'set_audio_devices':
          settings.audio_input = args.input;
          settings.audio_output = args.output;
          return { ...settings };
        case 'lan_servers':
          return [];
        case 'host_info':
          return null;
        case 'unread':
          return [];
        case 'mark_read':
          return 0;
        default:
          return fail('not_implemented', `demo backend has no ${cmd}`);
      }
    },
    { shouldMockEvents: true },
  );

  // Some life: lilei writes now and then.
  setInterval(() => {
    const m = make(
      'lilei',
      { kind: 'user', username: ME },
      Date.now(),
      lines[nextId % lines.length] ?? 'hi',
    );
    add('lilei', m);
    event({ type: 'message', message: m });
  }, 15_000);
}

let ring: (() => void) | undefined;

/** bob calls (`?ring`): the incoming dialog, as the engine would report it. */
export function ringDemoCall(): void {
  ring?.();
}

export function emitDemoEvent(e: AppEvent): void {
  void emit(EVENT, e);
}
