// The voice call, as the engine reports it in `call` events (every phase change and every mute
// change). One call at a time: the one in progress, or the one that just ended, which stays for
// ENDED_SHOW_MS so the person can read why, then goes. The pure parts (which report wins, what an
// ended call says, how a duration reads) are exported for tests.
import { create } from 'zustand';
import type { CallInfo, CallPhase } from '../bindings';
import { call } from '../backend';
import type { Translate } from '../i18n';

/** How long an ended call stays on screen. */
export const ENDED_SHOW_MS = 4000;

interface CallsState {
  /** The call in progress, or the one that ended less than ENDED_SHOW_MS ago. */
  current: CallInfo | null;
  /** When the current call ended (this machine's clock), for its final duration. */
  endedAt: number | null;
}

const initial: CallsState = { current: null, endedAt: null };

export const useCalls = create<CallsState>(() => initial);

let clearTimer: ReturnType<typeof setTimeout> | undefined;

/** Forgets every call (a new session, or tests). */
export function resetCalls(): void {
  clearTimeout(clearTimer);
  useCalls.setState(initial, true);
}

/** Is there a call that is not over? */
export function isLive(info: CallInfo | null | undefined): info is CallInfo {
  return info != null && info.phase !== 'ended';
}

const ORDER: Record<CallPhase, number> = {
  calling: 0,
  ringing: 0,
  connecting: 1,
  active: 2,
  ended: 3,
};

/**
 * The call to show after a report. Events come in order, but a command's answer (`call`,
 * `set_muted`) may arrive after the events it caused, so a report never moves a call back to an
 * earlier phase, and the end of another call does not replace one in progress.
 */
export function nextCall(current: CallInfo | null, report: CallInfo): CallInfo | null {
  if (!current) return report;
  if (current.call_id === report.call_id) {
    return ORDER[report.phase] < ORDER[current.phase] ? current : report;
  }
  if (isLive(current) && report.phase === 'ended') return current;
  return report;
}

/** What the engine says now about a call (an event or a command's answer). */
export function applyCall(report: CallInfo, now: number = Date.now()): void {
  const { current } = useCalls.getState();
  const next = nextCall(current, report);
  if (next === current) return;
  const ended = next?.phase === 'ended';
  const wasEnded = current?.call_id === next?.call_id && current?.phase === 'ended';
  const endedNow = ended && !wasEnded;
  useCalls.setState((s) => ({
    current: next,
    endedAt: ended ? (endedNow ? now : s.endedAt) : null,
  }));
  if (endedNow && next) {
    clearTimeout(clearTimer);
    const id = next.call_id;
    clearTimer = setTimeout(() => {
      const shown = useCalls.getState().current;
      if (shown?.call_id === id && shown.phase === 'ended') useCalls.setState(initial, true);
    }, ENDED_SHOW_MS);
  }
}

/** Rings `peer`. Rejects with an IpcError (already in a call, offline…). */
export async function startCall(peer: string): Promise<void> {
  applyCall(await call('call', { to: peer }));
}

/** Accepts or declines the call that rings. */
export async function answerCall(accept: boolean): Promise<void> {
  const current = useCalls.getState().current;
  if (!current || current.phase !== 'ringing') return;
  await call('answer_call', { call_id: current.call_id, accept });
}

/** Ends the call (or cancels it while it rings). */
export async function hangUp(): Promise<void> {
  const current = useCalls.getState().current;
  if (!isLive(current)) return;
  await call('hang_up', { call_id: current.call_id });
}

/** Mutes or unmutes the microphone. */
export async function toggleMute(): Promise<void> {
  const current = useCalls.getState().current;
  if (!isLive(current)) return;
  const info = await call('set_muted', { muted: !current.muted });
  if (info) applyCall(info);
}

/** Picks up a call that is already going (after login, or the window reloaded mid-call). */
export async function loadCurrentCall(): Promise<void> {
  try {
    const info = await call('current_call', {});
    if (info) applyCall(info);
  } catch {
    // No client yet or offline: the events bring any call that starts.
  }
}

/** A call's length: "0:05", "12:34", "1:02:03". */
export function formatCallDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** How long the call has been talking at `now` (null before audio started). */
export function callDuration(info: CallInfo, now: number): number | null {
  return info.since === null ? null : Math.max(0, now - info.since);
}

/** Why a call ended, in words, with `name` for the other person. */
export function endedText(
  info: CallInfo,
  name: string,
  endedAt: number | null,
  t: Translate,
): string {
  switch (info.reason) {
    case 'rejected':
      return info.outgoing ? t('call.declined', { name }) : t('call.youDeclined');
    case 'no_answer':
      return info.outgoing ? t('call.noAnswer') : t('call.missed', { name });
    case 'busy':
      return t('call.busy', { name });
    case 'offline':
      return t('call.offline', { name });
    case 'connection_lost':
      return t('call.connectionLost');
    default:
      // A caller who gave up before we answered left us a missed call.
      if (!info.outgoing && info.since === null && info.reason === 'hangup') {
        return t('call.missed', { name });
      }
      if (info.since !== null && endedAt !== null) {
        return t('call.endedAfter', { duration: formatCallDuration(endedAt - info.since) });
      }
      return t('call.ended');
  }
}

/** What the call bar says for a call at `now`. */
export function statusText(
  info: CallInfo,
  name: string,
  now: number,
  endedAt: number | null,
  t: Translate,
): string {
  switch (info.phase) {
    case 'calling':
      return t('call.calling');
    case 'ringing':
      return t('call.ringing');
    case 'connecting':
      return t('call.connecting');
    case 'active':
      return formatCallDuration(callDuration(info, now) ?? 0);
    case 'ended':
      return endedText(info, name, endedAt, t);
  }
}

/** Why the call button is off, or null when a call can start. */
export function callBlocker(
  peerOnline: boolean,
  connected: boolean,
  current: CallInfo | null,
): 'disconnected' | 'busy' | 'offline' | null {
  if (!connected) return 'disconnected';
  if (isLive(current)) return 'busy';
  if (!peerOnline) return 'offline';
  return null;
}
