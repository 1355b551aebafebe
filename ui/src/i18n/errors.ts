// Error codes → sentences. Every wire ErrorCode and every client code the shell can return has
// a translation; anything else falls back to the server's own message.
import type { ErrorCode } from '../bindings';
import type { Key, Translate } from './index';

/** Codes the desktop shell adds to the wire codes (see src-tauri/src/ipc.rs `IpcError`). */
export type ClientCode =
  | 'offline'
  | 'timeout'
  | 'not_logged_in'
  | 'not_connected'
  | 'certificate_changed'
  | 'network'
  | 'tls'
  | 'protocol'
  | 'store'
  | 'closed'
  | 'settings'
  | 'invalid_server'
  | 'dialog'
  | 'open_failed'
  | 'checksum';

const ERROR_KEYS: Record<ErrorCode | ClientCode, Key> = {
  frame_too_large: 'error.frame_too_large',
  invalid_utf8: 'error.invalid_utf8',
  invalid_json: 'error.invalid_json',
  unknown_type: 'error.unknown_type',
  invalid_message: 'error.invalid_message',
  unexpected_binary: 'error.unexpected_binary',
  hello_required: 'error.hello_required',
  unsupported_version: 'error.unsupported_version',
  not_authenticated: 'error.not_authenticated',
  already_authenticated: 'error.already_authenticated',
  invalid_username: 'error.invalid_username',
  reserved_username: 'error.reserved_username',
  invalid_password: 'error.invalid_password',
  invalid_field: 'error.invalid_field',
  username_taken: 'error.username_taken',
  bad_credentials: 'error.bad_credentials',
  session_expired: 'error.session_expired',
  no_such_user: 'error.no_such_user',
  already_friends: 'error.already_friends',
  not_friends: 'error.not_friends',
  request_pending: 'error.request_pending',
  no_such_request: 'error.no_such_request',
  self_target: 'error.self_target',
  rate_limited: 'error.rate_limited',
  slow_down: 'error.slow_down',
  forbidden: 'error.forbidden',
  not_found: 'error.not_found',
  not_implemented: 'error.not_implemented',
  file_too_large: 'error.file_too_large',
  quota_exceeded: 'error.quota_exceeded',
  server_busy: 'error.server_busy',
  internal: 'error.internal',
  offline: 'error.offline',
  timeout: 'error.timeout',
  not_logged_in: 'error.not_logged_in',
  not_connected: 'error.not_connected',
  certificate_changed: 'error.certificate_changed',
  network: 'error.network',
  tls: 'error.tls',
  protocol: 'error.protocol',
  store: 'error.store',
  closed: 'error.closed',
  checksum: 'error.checksum',
  settings: 'error.settings',
  invalid_server: 'error.invalid_server',
  dialog: 'error.dialog',
  open_failed: 'error.open_failed',
};

/** Other spellings of the same failures (older drafts and docs use them). */
const ALIASES: Record<string, ErrorCode> = {
  username_reserved: 'reserved_username',
  username_invalid: 'invalid_username',
  invalid_credentials: 'bad_credentials',
};

/** The dictionary key for a code, if it has one. */
export function errorKey(code: string): Key | undefined {
  const canonical = ALIASES[code] ?? code;
  return Object.prototype.hasOwnProperty.call(ERROR_KEYS, canonical)
    ? ERROR_KEYS[canonical as ErrorCode | ClientCode]
    : undefined;
}

/** A sentence for an error: translated when the code is known, else the server's message. */
export function errorText(error: { code: string; message: string }, t: Translate): string {
  const key = errorKey(error.code);
  if (key) return t(key, { detail: error.message });
  return error.message || t('error.internal');
}
