import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CallEndReason, CallInfo } from '../src/bindings';
import { call } from '../src/backend';
import { setLocale, translator } from '../src/i18n';
import {
  applyCall,
  callBlocker,
  ENDED_SHOW_MS,
  endedText,
  formatCallDuration,
  hangUp,
  loadCurrentCall,
  nextCall,
  resetCalls,
  startCall,
  statusText,
  toggleMute,
  useCalls,
} from '../src/state/calls';
import { callInfo } from './fixtures';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);
const en = translator('en');
const zh = translator('zh-CN');

beforeEach(() => {
  mockedCall.mockReset();
  resetCalls();
  setLocale('en');
});

afterEach(() => {
  vi.useRealTimers();
});

describe('which report wins', () => {
  const calling = callInfo({ call_id: 'c1', phase: 'calling' });

  it('follows a call through its phases', () => {
    let shown = nextCall(null, calling);
    const phases = ['connecting', 'active', 'ended'] as const;
    for (const phase of phases) {
      shown = nextCall(shown, { ...calling, phase });
      expect(shown?.phase).toBe(phase);
    }
  });

  it('never moves a call back to an earlier phase (a late command answer)', () => {
    const active = { ...calling, phase: 'active' as const, since: 1000 };
    expect(nextCall(active, calling)).toBe(active);
    const ended = { ...calling, phase: 'ended' as const, reason: 'hangup' as const };
    expect(nextCall(ended, active)).toBe(ended);
  });

  it('takes a mute change in the same phase', () => {
    const active = { ...calling, phase: 'active' as const };
    expect(nextCall(active, { ...active, muted: true })?.muted).toBe(true);
  });

  it('keeps a call in progress when another call’s end comes late', () => {
    const live = callInfo({ call_id: 'c2', phase: 'active' });
    const oldEnd = callInfo({ call_id: 'c1', phase: 'ended', reason: 'hangup' });
    expect(nextCall(live, oldEnd)).toBe(live);
  });

  it('replaces an ended call with a new one', () => {
    const ended = callInfo({ call_id: 'c1', phase: 'ended', reason: 'hangup' });
    const ringing = callInfo({ call_id: 'c2', phase: 'ringing', outgoing: false });
    expect(nextCall(ended, ringing)).toBe(ringing);
  });
});

describe('the calls store', () => {
  it('shows an ended call for a while, then forgets it', () => {
    vi.useFakeTimers();
    applyCall(callInfo({ call_id: 'c1', phase: 'active', since: 1_000 }));
    applyCall(callInfo({ call_id: 'c1', phase: 'ended', reason: 'hangup', since: 1_000 }), 43_000);
    expect(useCalls.getState().current?.phase).toBe('ended');
    expect(useCalls.getState().endedAt).toBe(43_000);
    vi.advanceTimersByTime(ENDED_SHOW_MS - 1);
    expect(useCalls.getState().current).not.toBeNull();
    vi.advanceTimersByTime(1);
    expect(useCalls.getState().current).toBeNull();
  });

  it('does not let an old call’s timer remove a new call', () => {
    vi.useFakeTimers();
    applyCall(callInfo({ call_id: 'c1', phase: 'ended', reason: 'busy' }));
    vi.advanceTimersByTime(1000);
    applyCall(callInfo({ call_id: 'c2', phase: 'calling' }));
    vi.advanceTimersByTime(ENDED_SHOW_MS);
    expect(useCalls.getState().current?.call_id).toBe('c2');
  });

  it('starts a call with the command’s answer, unless events were faster', async () => {
    const calling = callInfo({ call_id: 'c1', phase: 'calling', peer: 'bob' });
    mockedCall.mockResolvedValueOnce(calling);
    await startCall('bob');
    expect(mockedCall).toHaveBeenCalledWith('call', { to: 'bob' });
    expect(useCalls.getState().current).toEqual(calling);

    resetCalls();
    const declined = { ...calling, phase: 'ended' as const, reason: 'rejected' as const };
    mockedCall.mockImplementationOnce(async () => {
      applyCall(declined);
      return calling;
    });
    await startCall('bob');
    expect(useCalls.getState().current).toEqual(declined);
  });

  it('hangs up and mutes the call it shows', async () => {
    applyCall(callInfo({ call_id: 'c9', phase: 'active' }));
    mockedCall.mockResolvedValue(null);
    await hangUp();
    expect(mockedCall).toHaveBeenCalledWith('hang_up', { call_id: 'c9' });
    mockedCall.mockResolvedValue(callInfo({ call_id: 'c9', phase: 'active', muted: true }));
    await toggleMute();
    expect(mockedCall).toHaveBeenCalledWith('set_muted', { muted: true });
    expect(useCalls.getState().current?.muted).toBe(true);
  });

  it('does nothing for a call that is over', async () => {
    applyCall(callInfo({ phase: 'ended', reason: 'hangup' }));
    await hangUp();
    await toggleMute();
    expect(mockedCall).not.toHaveBeenCalled();
  });

  it('picks up a call already going after login', async () => {
    mockedCall.mockResolvedValueOnce(callInfo({ call_id: 'c5', phase: 'active' }));
    await loadCurrentCall();
    expect(useCalls.getState().current?.call_id).toBe('c5');
    mockedCall.mockRejectedValueOnce({ code: 'not_connected', message: '' });
    await loadCurrentCall();
    expect(useCalls.getState().current?.call_id).toBe('c5');
  });
});

describe('words', () => {
  it('formats durations', () => {
    expect(formatCallDuration(0)).toBe('0:00');
    expect(formatCallDuration(2_999)).toBe('0:02');
    expect(formatCallDuration(65_000)).toBe('1:05');
    expect(formatCallDuration(59 * 60_000 + 59_000)).toBe('59:59');
    expect(formatCallDuration(3_723_000)).toBe('1:02:03');
    expect(formatCallDuration(-5)).toBe('0:00');
  });

  it('says why a call ended, from the caller’s side', () => {
    const out = (reason: CallEndReason) => callInfo({ phase: 'ended', outgoing: true, reason });
    expect(endedText(out('rejected'), 'Bob', null, en)).toBe('Bob declined');
    expect(endedText(out('no_answer'), 'Bob', null, en)).toBe('No answer');
    expect(endedText(out('busy'), 'Bob', null, en)).toBe('Bob is busy in another call');
    expect(endedText(out('offline'), 'Bob', null, en)).toBe('Bob is offline');
    expect(endedText(out('connection_lost'), 'Bob', null, en)).toBe(
      'Call dropped — connection lost',
    );
    expect(endedText(out('hangup'), 'Bob', null, en)).toBe('Call ended');
    expect(endedText({ ...out('hangup'), since: 10_000 }, 'Bob', 72_000, en)).toBe(
      'Call ended · 1:02',
    );
  });

  it('says why a call ended, from the callee’s side', () => {
    const inc = (reason: CallEndReason) => callInfo({ phase: 'ended', outgoing: false, reason });
    expect(endedText(inc('rejected'), 'Bob', null, en)).toBe('You declined the call');
    expect(endedText(inc('no_answer'), 'Bob', null, en)).toBe('Missed call from Bob');
    // The caller gave up while it rang.
    expect(endedText(inc('hangup'), 'Bob', null, en)).toBe('Missed call from Bob');
    expect(endedText({ ...inc('hangup'), since: 0 }, 'Bob', 5_000, en)).toBe('Call ended · 0:05');
  });

  it('speaks Chinese', () => {
    const out = (reason: CallEndReason) => callInfo({ phase: 'ended', outgoing: true, reason });
    expect(endedText(out('rejected'), '鲍勃', null, zh)).toBe('鲍勃 拒绝了通话');
    expect(endedText(out('no_answer'), '鲍勃', null, zh)).toBe('无人接听');
    expect(endedText(out('connection_lost'), '鲍勃', null, zh)).toBe('通话中断 — 连接已断开');
    expect(statusText(callInfo({ phase: 'calling' }), '鲍勃', 0, null, zh)).toBe('正在呼叫…');
  });

  it('shows the phase, or the time talking', () => {
    const info = (phase: CallInfo['phase'], since: number | null = null) =>
      callInfo({ phase, since });
    expect(statusText(info('calling'), 'Bob', 0, null, en)).toBe('Calling…');
    expect(statusText(info('connecting'), 'Bob', 0, null, en)).toBe('Connecting…');
    expect(statusText(info('active', 1_000), 'Bob', 9_500, null, en)).toBe('0:08');
    // A clock a little behind the engine's never shows a negative time.
    expect(statusText(info('active', 10_000), 'Bob', 9_000, null, en)).toBe('0:00');
  });
});

describe('when a call can start', () => {
  it('needs a connection, no other call and the friend online', () => {
    const live = callInfo({ phase: 'active' });
    const over = callInfo({ phase: 'ended', reason: 'hangup' });
    expect(callBlocker(true, true, null)).toBeNull();
    expect(callBlocker(true, true, over)).toBeNull();
    expect(callBlocker(false, true, null)).toBe('offline');
    expect(callBlocker(true, true, live)).toBe('busy');
    expect(callBlocker(true, false, null)).toBe('disconnected');
  });
});
