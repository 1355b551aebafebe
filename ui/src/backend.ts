// The one module that talks to the Rust side. Everything else calls `call` and `onEvent`, so tests
// replace this file with vi.mock and the rest of the UI never sees Tauri.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { EVENT, type AppEvent, type Commands, type IpcError } from './bindings';

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

/** Subscribes to the engine's events. */
export function onEvent(handler: (e: AppEvent) => void): Promise<UnlistenFn> {
  return listen<AppEvent>(EVENT, (event) => handler(event.payload));
}
