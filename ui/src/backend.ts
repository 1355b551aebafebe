// The one module that talks to the Rust side. Everything else calls `call`, `onEvent` and the few
// helpers below, so tests replace this file with vi.mock and the rest of the UI never sees Tauri.
import { convertFileSrc, invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import {
  EVENT,
  IMAGE_SCHEME,
  type AppEvent,
  type Commands,
  type IpcError,
  type RawCommands,
  type Target,
  type TransferInfo,
} from './bindings';

export type { UnlistenFn };

function isIpcError(value: unknown): value is IpcError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === 'string' && typeof v.message === 'string';
}

/** Turns whatever a command rejected with into an IpcError (`internal` if it was not one). */
export function toIpcError(value: unknown): IpcError {
  if (isIpcError(value)) {
    return {
      code: value.code,
      message: value.message,
      fingerprint: typeof value.fingerprint === 'string' ? value.fingerprint : null,
    };
  }
  const message =
    value instanceof Error ? value.message : typeof value === 'string' ? value : String(value);
  return { code: 'internal', message, fingerprint: null };
}

/** Runs a command; rejects with an IpcError. */
export async function call<K extends keyof Commands>(
  cmd: K,
  args: Commands[K]['args'],
): Promise<Commands[K]['result']> {
  try {
    return await invoke<Commands[K]['result']>(cmd, args);
  } catch (e) {
    throw toIpcError(e);
  }
}

/** Sends a pasted image: its bytes go as the raw request body, not as JSON numbers. */
export async function sendImageData(
  to: Target,
  name: string,
  bytes: Uint8Array,
): Promise<RawCommands['send_image_data']['result']> {
  try {
    return await invoke<TransferInfo>('send_image_data', bytes, {
      headers: {
        'natter-to': encodeURIComponent(JSON.stringify(to)),
        'natter-name': encodeURIComponent(name),
      },
    });
  } catch (e) {
    throw toIpcError(e);
  }
}

/** The URL of a full image (served by the shell's natter-image protocol, by file id). */
export function imageUrl(fileId: string): string {
  return convertFileSrc(fileId, IMAGE_SCHEME);
}

/** Subscribes to the engine's events. */
export function onEvent(handler: (e: AppEvent) => void): Promise<UnlistenFn> {
  return listen<AppEvent>(EVENT, (event) => handler(event.payload));
}

/** Files dragged over the window (`over`), dropped (`drop`, with their paths) or taken away. */
export type FileDrag = { type: 'over' } | { type: 'drop'; paths: string[] } | { type: 'leave' };

/**
 * Subscribes to files dragged onto the window from the desktop (the OS gives their paths).
 * Rejects outside the Tauri window.
 */
export async function onFileDrag(handler: (e: FileDrag) => void): Promise<UnlistenFn> {
  return getCurrentWebview().onDragDropEvent((event) => {
    const p = event.payload;
    if (p.type === 'enter' || p.type === 'over') handler({ type: 'over' });
    else if (p.type === 'drop') handler({ type: 'drop', paths: p.paths });
    else handler({ type: 'leave' });
  });
}
