import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Target } from '../src/bindings';
import { call } from '../src/backend';
import { translator } from '../src/i18n';
import { formatBytes, formatDuration, formatRate } from '../src/i18n/format';
import { handleEvent, resetApp, useApp } from '../src/state/app';
import { openConversation, resetChat, useChat } from '../src/state/chat';
import {
  acceptTransfer,
  applyTransfer,
  cardView,
  cancelTransfer,
  isImagePath,
  loadTransfers,
  mergeTransfers,
  pendingUploads,
  planSend,
  progressOf,
  sendPaths,
  useTransfers,
} from '../src/state/transfers';
import { msg, transfer } from './fixtures';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);
const en = translator('en');
const zh = translator('zh-CN');
const bob: Target = { kind: 'user', username: 'bob' };
const square: Target = { kind: 'square' };

beforeEach(() => {
  mockedCall.mockReset();
  resetApp();
  resetChat('alice');
});

describe('formatting', () => {
  it('sizes in binary steps with one decimal under 100', () => {
    expect(formatBytes(0, 'en', en)).toBe('0 B');
    expect(formatBytes(820, 'en', en)).toBe('820 B');
    expect(formatBytes(1536, 'en', en)).toBe('1.5 KB');
    expect(formatBytes(3 * 1024 * 1024, 'en', en)).toBe('3 MB');
    expect(formatBytes(250 * 1024 * 1024, 'en', en)).toBe('250 MB');
    expect(formatBytes(4.2 * 1024 ** 3, 'en', en)).toBe('4.2 GB');
    expect(formatBytes(1234.5 * 1024 ** 4, 'en', en)).toBe('1,235 TB');
  });

  it('speeds and time left in both languages', () => {
    expect(formatRate(1.2 * 1024 * 1024, 'en', en)).toBe('1.2 MB/s');
    expect(formatRate(1.2 * 1024 * 1024, 'zh-CN', zh)).toBe('1.2 MB/秒');
    expect(formatDuration(0.2, en)).toBe('1 s');
    expect(formatDuration(59, en)).toBe('59 s');
    expect(formatDuration(125, en)).toBe('2 min 5 s');
    expect(formatDuration(3840, en)).toBe('1 h 4 min');
    expect(formatDuration(125, zh)).toBe('2 分 5 秒');
  });
});

describe('progress', () => {
  it('gives percent, speed and time left while moving', () => {
    const p = progressOf({ size: 1000, done: 250, rate: 50, state: 'downloading' });
    expect(p).toEqual({ percent: 25, rate: 50, secondsLeft: 15 });
  });

  it('has no speed or time left when paused or stalled', () => {
    expect(progressOf({ size: 1000, done: 500, rate: 80, state: 'paused' })).toEqual({
      percent: 50,
      rate: 0,
      secondsLeft: null,
    });
    expect(progressOf({ size: 1000, done: 500, rate: 0, state: 'uploading' }).secondsLeft).toBe(
      null,
    );
  });

  it('stays within 0–100 and handles empty files', () => {
    expect(progressOf({ size: 100, done: 150, rate: 0, state: 'uploading' }).percent).toBe(100);
    expect(progressOf({ size: 0, done: 0, rate: 0, state: 'done' }).percent).toBe(100);
    expect(progressOf({ size: 0, done: 0, rate: 0, state: 'uploading' }).percent).toBe(0);
    // 99.9% is not done yet.
    expect(progressOf({ size: 1000, done: 999, rate: 0, state: 'uploading' }).percent).toBe(99);
  });
});

describe('what a file card offers', () => {
  it('lets the receiver accept or decline an offer, the sender only cancel', () => {
    expect(cardView(transfer({ state: 'offered' })).actions).toEqual(['accept', 'reject']);
    expect(cardView(transfer({ state: 'offered', direction: 'up' }))).toMatchObject({
      status: 'waiting',
      actions: ['cancel'],
    });
    expect(cardView(transfer({ state: 'uploaded', direction: 'up' })).status).toBe('waiting');
  });

  it('pauses and cancels a moving transfer, resumes a paused one', () => {
    for (const state of ['uploading', 'downloading'] as const) {
      expect(cardView(transfer({ state }))).toEqual({
        status: 'moving',
        actions: ['pause', 'cancel'],
        showProgress: true,
      });
    }
    expect(cardView(transfer({ state: 'paused' })).actions).toEqual(['resume', 'cancel']);
  });

  it('shows a received file, and offers nothing once it is over', () => {
    expect(
      cardView(transfer({ state: 'done', path: '/home/bob/Downloads/a.pdf' })).actions,
    ).toEqual(['show']);
    expect(cardView(transfer({ state: 'done', direction: 'up' })).actions).toEqual([]);
    for (const state of ['rejected', 'cancelled'] as const) {
      expect(cardView(transfer({ state }))).toEqual({
        status: state,
        actions: [],
        showProgress: false,
      });
    }
    expect(cardView(transfer({ state: 'failed' })).actions).toEqual(['resume']);
    expect(cardView(undefined).status).toBe('unknown');
  });
});

describe('sending', () => {
  it('sends images as images and other files as offers; the Square takes images only', () => {
    const paths = ['/tmp/cat.JPG', '/tmp/报告.pdf', 'C:\\Users\\me\\shot.webp', '/tmp/.png'];
    expect(planSend(bob, paths)).toEqual({
      images: ['/tmp/cat.JPG', 'C:\\Users\\me\\shot.webp'],
      files: ['/tmp/报告.pdf', '/tmp/.png'],
      skipped: [],
    });
    expect(planSend(square, paths)).toEqual({
      images: ['/tmp/cat.JPG', 'C:\\Users\\me\\shot.webp'],
      files: [],
      skipped: ['/tmp/报告.pdf', '/tmp/.png'],
    });
    // The attach button sends even a picture as a file.
    expect(planSend(bob, ['/tmp/cat.png'], true).files).toEqual(['/tmp/cat.png']);
    expect(isImagePath('/a.b/noext')).toBe(false);
  });

  it('starts each transfer in order and reports what failed', async () => {
    const calls: string[] = [];
    mockedCall.mockImplementation(((cmd: string, args: { path: string }) => {
      calls.push(`${cmd} ${args.path}`);
      if (args.path.endsWith('bad.png'))
        return Promise.reject({ code: 'invalid_field', message: 'not an image' });
      return Promise.resolve(transfer({ file_id: args.path, direction: 'up', state: 'uploading' }));
    }) as typeof call);
    const failures = await sendPaths(bob, planSend(bob, ['/a.png', '/bad.png', '/b.zip']));
    expect(calls).toEqual(['send_image /a.png', 'send_image /bad.png', 'send_file /b.zip']);
    expect(failures).toEqual([
      { name: 'bad.png', error: { code: 'invalid_field', message: 'not an image' }, image: true },
    ]);
    expect(Object.keys(useTransfers.getState().byId).sort()).toEqual(['/a.png', '/b.zip']);
  });
});

describe('the store', () => {
  it('keeps what events said over an older list', async () => {
    const live = transfer({ file_id: 'x', state: 'downloading', done: 500 });
    applyTransfer(live);
    mockedCall.mockResolvedValue([
      transfer({ file_id: 'x', state: 'offered' }),
      transfer({ file_id: 'y', state: 'done' }),
    ]);
    await loadTransfers();
    const byId = useTransfers.getState().byId;
    expect(byId.x).toBe(live);
    expect(byId.y?.state).toBe('done');
    expect(mergeTransfers({}, [live])).toEqual({ x: live });
  });

  it('follows transfer events in the main window', () => {
    useApp.setState({ phase: 'main' });
    const t = transfer({ file_id: 'f1', state: 'downloading', done: 10 });
    handleEvent({ type: 'transfer', transfer: t });
    handleEvent({ type: 'transfer', transfer: { ...t, done: 20, rate: 10 } });
    expect(useTransfers.getState().byId.f1?.done).toBe(20);
  });

  it('never lets a command’s answer undo an event that overtook it', async () => {
    const t = transfer({ file_id: 'quick', state: 'offered', size: 10 });
    applyTransfer(t);
    mockedCall.mockImplementation((() => {
      // The download finishes before accept_file answers.
      applyTransfer({ ...t, state: 'done', done: 10, path: '/d/quick' });
      return Promise.resolve({ ...t, state: 'downloading', accepted: true });
    }) as unknown as typeof call);
    await acceptTransfer('quick');
    expect(useTransfers.getState().byId.quick?.state).toBe('done');
  });

  it('marks a cancelled transfer at once', async () => {
    applyTransfer(transfer({ file_id: 'c', state: 'uploading', rate: 99 }));
    mockedCall.mockResolvedValue(null);
    await cancelTransfer('c');
    expect(mockedCall).toHaveBeenCalledWith('cancel_transfer', { file_id: 'c' });
    expect(useTransfers.getState().byId.c).toMatchObject({ state: 'cancelled', rate: 0 });
  });

  it('lists an image upload in its chat until it is done, then brings in its message', async () => {
    const up = transfer({
      file_id: 'img1',
      kind: 'image',
      direction: 'up',
      chat: bob,
      state: 'uploading',
    });
    applyTransfer(up);
    applyTransfer(transfer({ file_id: 'other', kind: 'image', direction: 'up', chat: square }));
    applyTransfer(transfer({ file_id: 'offer', kind: 'file', direction: 'up', chat: bob }));
    const { byId, dismissed } = useTransfers.getState();
    expect(pendingUploads(byId, dismissed, 'user:bob').map((t) => t.file_id)).toEqual(['img1']);

    const posted = msg({
      from: 'alice',
      to: bob,
      body: {
        kind: 'image',
        file_id: 'img1',
        name: 'cat.png',
        mime: 'image/png',
        size: 10,
        width: 4,
        height: 3,
        thumbnail: 'iVBOR',
      },
      state: 'sent',
    });
    mockedCall.mockImplementation(((cmd: string) =>
      Promise.resolve(cmd === 'local_history' ? [posted] : [])) as typeof call);
    await openConversation(bob);
    useApp.setState({ phase: 'main' });
    handleEvent({ type: 'transfer', transfer: { ...up, state: 'done' } });
    const after = useTransfers.getState();
    expect(pendingUploads(after.byId, after.dismissed, 'user:bob')).toEqual([]);
    await vi.waitFor(() =>
      expect(useChat.getState().convs['user:bob']?.messages.map((m) => m.client_msg_id)).toEqual([
        posted.client_msg_id,
      ]),
    );
  });
});
