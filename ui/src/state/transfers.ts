// File transfers by file_id: loaded with `transfers` after login, kept current by `transfer`
// events (a few per second per moving transfer). A file card or a pending image upload reads its
// own entry, so progress re-renders one card, not the chat. The pure helpers (progress, time
// left, what a card shows and offers) are exported for tests.
import { create } from 'zustand';
import type { LocalMessage, Target, TransferInfo, TransferState } from '../bindings';
import { call, sendImageData } from '../backend';
import { convKey, type ConvKey } from './conversation';

interface TransfersState {
  byId: Record<string, TransferInfo>;
  /** Failed uploads the person has closed. */
  dismissed: Record<string, true>;
  /** The list asked for at login is in (until then an unknown id is not yet known). */
  loaded: boolean;
}

const initial: TransfersState = { byId: {}, dismissed: {}, loaded: false };

export const useTransfers = create<TransfersState>(() => initial);

/** Starts over for a new session. */
export function resetTransfers(): void {
  useTransfers.setState(initial, true);
}

/** What the engine says now about one transfer. */
export function applyTransfer(transfer: TransferInfo): void {
  useTransfers.setState((s) => ({ byId: { ...s.byId, [transfer.file_id]: transfer } }));
}

/**
 * A command's answer (send, accept, pause, resume). The engine also emits every change as an
 * event, and an event may overtake the answer (a small file can be done before `accept_file`
 * returns), so the answer only fills in a transfer the store does not know yet.
 */
export function applyResult(transfer: TransferInfo): void {
  useTransfers.setState((s) =>
    transfer.file_id in s.byId ? s : { byId: { ...s.byId, [transfer.file_id]: transfer } },
  );
}

/**
 * `list` merged into `byId`. Entries already there win: they came from events, which are newer
 * than a list asked for before them.
 */
export function mergeTransfers(
  byId: Record<string, TransferInfo>,
  list: readonly TransferInfo[],
): Record<string, TransferInfo> {
  const out = { ...byId };
  for (const t of list) if (!(t.file_id in out)) out[t.file_id] = t;
  return out;
}

/** Loads every known transfer (after login). */
export async function loadTransfers(): Promise<void> {
  try {
    const list = await call('transfers', {});
    useTransfers.setState((s) => ({ byId: mergeTransfers(s.byId, list), loaded: true }));
  } catch {
    // Events fill the store meanwhile; the cards of older transfers say they are unknown.
    useTransfers.setState({ loaded: true });
  }
}

/** Is this a state in which bytes move or will move without the person doing anything? */
export function isMoving(state: TransferState): boolean {
  return state === 'uploading' || state === 'downloading';
}

export interface Progress {
  /** 0–100, whole. */
  percent: number;
  /** Bytes per second; 0 when not moving. */
  rate: number;
  /** Seconds left at the current speed; null when not moving. */
  secondsLeft: number | null;
}

export function progressOf(t: Pick<TransferInfo, 'done' | 'size' | 'rate' | 'state'>): Progress {
  const done = Math.min(Math.max(t.done, 0), t.size);
  const percent = t.size > 0 ? Math.floor((done * 100) / t.size) : t.state === 'done' ? 100 : 0;
  const rate = isMoving(t.state) ? Math.max(t.rate, 0) : 0;
  const secondsLeft = rate > 0 ? (t.size - done) / rate : null;
  return { percent, rate, secondsLeft };
}

export type CardAction = 'accept' | 'reject' | 'pause' | 'resume' | 'cancel' | 'show';

export type CardStatus =
  | 'unknown'
  | 'offered'
  | 'waiting'
  | 'moving'
  | 'paused'
  | 'done'
  | 'rejected'
  | 'cancelled'
  | 'failed';

export interface CardView {
  status: CardStatus;
  actions: CardAction[];
  /** A progress bar is shown. */
  showProgress: boolean;
}

/** What a file card shows and offers, to the sender (`up`) or the receiver (`down`). */
export function cardView(t: TransferInfo | undefined): CardView {
  if (!t) return { status: 'unknown', actions: [], showProgress: false };
  const mine = t.direction === 'up';
  switch (t.state) {
    case 'offered':
      // Our own offer is only ever "offered" until the upload starts.
      return mine
        ? { status: 'waiting', actions: ['cancel'], showProgress: false }
        : { status: 'offered', actions: ['accept', 'reject'], showProgress: false };
    case 'uploading':
    case 'downloading':
      return { status: 'moving', actions: ['pause', 'cancel'], showProgress: true };
    case 'uploaded':
      return mine
        ? { status: 'waiting', actions: ['cancel'], showProgress: false }
        : { status: 'moving', actions: ['pause', 'cancel'], showProgress: true };
    case 'paused':
      return { status: 'paused', actions: ['resume', 'cancel'], showProgress: true };
    case 'done':
      return {
        status: 'done',
        actions: !mine && t.path ? ['show'] : [],
        showProgress: false,
      };
    case 'rejected':
      return { status: 'rejected', actions: [], showProgress: false };
    case 'cancelled':
      return { status: 'cancelled', actions: [], showProgress: false };
    case 'failed':
      // The engine resumes a failed transfer from what is already there.
      return { status: 'failed', actions: ['resume'], showProgress: false };
  }
}

/** The sender's image uploads in one chat that have no message yet (shown above the composer). */
export function pendingUploads(
  byId: Record<string, TransferInfo>,
  dismissed: Record<string, true>,
  key: ConvKey,
): TransferInfo[] {
  const out: TransferInfo[] = [];
  for (const t of Object.values(byId)) {
    if (t.kind !== 'image' || t.direction !== 'up' || dismissed[t.file_id]) continue;
    if (convKey(t.chat) !== key) continue;
    // Done means the message is posted; cancelled was the person's own choice.
    if (t.state === 'done' || t.state === 'cancelled' || t.state === 'rejected') continue;
    out.push(t);
  }
  return out.sort((a, b) => a.ts - b.ts);
}

/** The file ids of image and file messages in a list (to tell which uploads have their message). */
export function fileIdsIn(messages: readonly LocalMessage[]): Set<string> {
  const ids = new Set<string>();
  for (const m of messages) if (m.body.kind !== 'text') ids.add(m.body.file_id);
  return ids;
}

const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp'];

/** The last component of a path, on any platform. */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

/** Whether a picked or dropped file goes as an image (by its extension; the engine checks). */
export function isImagePath(path: string): boolean {
  const name = baseName(path);
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.includes(name.slice(dot + 1).toLowerCase());
}

export interface SendPlan {
  images: string[];
  files: string[];
  /** Not images, and the chat is the Square: files go only to a friend. */
  skipped: string[];
}

/** Splits picked or dropped paths into images, file offers and what this chat cannot take. */
export function planSend(target: Target, paths: readonly string[], asFiles = false): SendPlan {
  const plan: SendPlan = { images: [], files: [], skipped: [] };
  for (const p of paths) {
    if (!asFiles && isImagePath(p)) plan.images.push(p);
    else if (target.kind === 'user') plan.files.push(p);
    else plan.skipped.push(p);
  }
  return plan;
}

export interface SendFailure {
  name: string;
  error: unknown;
  image: boolean;
}

/**
 * Sends what `planSend` decided, one after the other (so they appear in the order chosen).
 * Resolves with what failed; each started transfer is in the store at once.
 */
export async function sendPaths(target: Target, plan: SendPlan): Promise<SendFailure[]> {
  const failures: SendFailure[] = [];
  for (const path of plan.images) {
    try {
      applyResult(await call('send_image', { to: target, path }));
    } catch (error) {
      failures.push({ name: baseName(path), error, image: true });
    }
  }
  if (target.kind === 'user') {
    for (const path of plan.files) {
      try {
        applyResult(await call('send_file', { to: target.username, path }));
      } catch (error) {
        failures.push({ name: baseName(path), error, image: false });
      }
    }
  }
  return failures;
}

/** Sends a pasted image's bytes. Rejects with an IpcError. */
export async function sendPastedImage(target: Target, name: string, bytes: Uint8Array) {
  const transfer = await sendImageData(target, name, bytes);
  applyResult(transfer);
  return transfer;
}

/** Accepts an offer (the shell asks where to save it). Rejects with an IpcError. */
export async function acceptTransfer(fileId: string): Promise<void> {
  const t = await call('accept_file', { file_id: fileId, dest: null });
  if (t) applyResult(t);
}

function patchState(fileId: string, state: TransferState): void {
  useTransfers.setState((s) => {
    const t = s.byId[fileId];
    if (!t || t.state === state) return s;
    return { byId: { ...s.byId, [fileId]: { ...t, state, rate: 0 } } };
  });
}

export async function rejectTransfer(fileId: string): Promise<void> {
  await call('reject_file', { file_id: fileId });
  patchState(fileId, 'rejected');
}

export async function pauseTransfer(fileId: string): Promise<void> {
  applyResult(await call('pause_transfer', { file_id: fileId }));
}

export async function resumeTransfer(fileId: string): Promise<void> {
  applyResult(await call('resume_transfer', { file_id: fileId }));
}

export async function cancelTransfer(fileId: string): Promise<void> {
  await call('cancel_transfer', { file_id: fileId });
  patchState(fileId, 'cancelled');
}

export async function showTransfer(fileId: string): Promise<void> {
  await call('show_transfer', { file_id: fileId });
}

/** Hides a failed upload's card. */
export function dismissTransfer(fileId: string): void {
  useTransfers.setState((s) => ({ dismissed: { ...s.dismissed, [fileId]: true } }));
}
