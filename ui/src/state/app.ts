// The app's phases (start → connect → login → main), the session's social state and the saved
// settings. Screens read this store and call the actions below; engine events arrive in
// handleEvent.
import { create } from 'zustand';
import type {
  AppEvent,
  AppInfo,
  ConnectionState,
  IpcError,
  LanServer,
  ServerSettings,
  Session,
  Settings,
} from '../bindings';
import { call, toIpcError } from '../backend';
import { resolveLocale, setLocale, t } from '../i18n';
import { errorText } from '../i18n/errors';
import {
  closeConversation,
  connectionRestored,
  handleChatEvent,
  loadPreviews,
  refreshNewest,
  loadUnread,
  resetChat,
} from './chat';
import { SQUARE, userTarget } from './conversation';
import { socialFromSession, socialReducer, withFriendList, type Social } from './social';
import { applyTheme } from './theme';
import { applyCall, loadCurrentCall, resetCalls } from './calls';
import { applyTransfer, loadTransfers } from './transfers';
import { setLanServers } from './lan';

export type Phase = 'starting' | 'connect' | 'login' | 'main';

export interface CertificateChange {
  fingerprint: string;
  server: ServerSettings;
}

export interface Notice {
  title: string;
  text: string;
}

interface AppState {
  phase: Phase;
  info: AppInfo | null;
  settings: Settings;
  server: ServerSettings;
  /** Shown while resuming the remembered account at start. */
  resuming: string | null;
  loginUsername: string;
  /** A message for the login screen (why we are back there). */
  loginError: string | null;
  certChange: CertificateChange | null;
  social: Social | null;
  connection: ConnectionState;
  notice: Notice | null;
  toast: string | null;
}

export const DEFAULT_SETTINGS: Settings = {
  server: { host: '127.0.0.1', port: 4399, tls: true },
  last_user: null,
  language: null,
  theme: 'system',
  notifications: true,
  hosting: false,
  audio_input: null,
  audio_output: null,
};

const initial: AppState = {
  phase: 'starting',
  info: null,
  settings: DEFAULT_SETTINGS,
  server: DEFAULT_SETTINGS.server,
  resuming: null,
  loginUsername: '',
  loginError: null,
  certChange: null,
  social: null,
  connection: 'offline',
  notice: null,
  toast: null,
};

export const useApp = create<AppState>(() => initial);

/** For tests: back to the state before start(). */
export function resetApp(): void {
  useApp.setState(initial, true);
}

function applySettings(settings: Settings, osLanguage: string): void {
  setLocale(resolveLocale(settings.language, osLanguage));
  applyTheme(settings.theme);
}

function osLanguage(): string {
  return useApp.getState().info?.os_language ?? navigator.language ?? 'en';
}

/** Error codes meaning "the server did not answer", as opposed to "it said no". */
const UNREACHABLE = ['network', 'offline', 'timeout'];

/** App start: settings, then the remembered account's session if there is one. */
export async function start(): Promise<void> {
  let info: AppInfo;
  try {
    info = await call('app_info', {});
  } catch (e) {
    applySettings(DEFAULT_SETTINGS, navigator.language ?? 'en');
    useApp.setState({ phase: 'connect', loginError: errorText(toIpcError(e), t) });
    return;
  }
  const settings = info.settings;
  applySettings(settings, info.os_language);
  useApp.setState({ info, settings, server: settings.server });
  const user = settings.last_user;
  if (!user) {
    useApp.setState({ phase: 'connect' });
    return;
  }
  useApp.setState({ phase: 'starting', resuming: user, loginUsername: user });
  try {
    try {
      await call('connect', { server: settings.server });
    } catch (e) {
      // An unreachable server does not stop the remembered account from opening offline.
      if (!UNREACHABLE.includes(toIpcError(e).code)) throw e;
    }
    const session = await call('resume', { username: user });
    enterSession(session);
  } catch (e) {
    const error = toIpcError(e);
    if (error.code === 'certificate_changed' && error.fingerprint) {
      useApp.setState({
        phase: 'connect',
        resuming: null,
        certChange: { fingerprint: error.fingerprint, server: settings.server },
      });
      return;
    }
    useApp.setState({ phase: 'login', resuming: null, loginError: errorText(error, t) });
  }
}

/** The server answered: on to the login screen, remembering it. */
function connected(server: ServerSettings): void {
  useApp.setState((s) => ({
    phase: 'login',
    server,
    certChange: null,
    loginError: null,
    settings: { ...s.settings, server },
  }));
}

/** Connects to a server; on success the login screen shows. Resolves with the error, if any. */
export async function connectTo(server: ServerSettings): Promise<IpcError | null> {
  try {
    await call('connect', { server });
    connected(server);
    return null;
  } catch (e) {
    const error = toIpcError(e);
    if (error.code === 'certificate_changed' && error.fingerprint) {
      useApp.setState({ certChange: { fingerprint: error.fingerprint, server } });
    }
    return error;
  }
}

/** Connects to a server found on the LAN, trusting the certificate it announced. */
export async function connectToLan(lanServer: LanServer): Promise<IpcError | null> {
  const server: ServerSettings = { host: lanServer.host, port: lanServer.tls_port, tls: true };
  try {
    await call('connect_lan', { server: lanServer });
    connected(server);
    return null;
  } catch (e) {
    return toIpcError(e);
  }
}

/** Trusts the new certificate the warning shows, then connects again (or goes on, if logged in). */
export async function trustCertificate(): Promise<IpcError | null> {
  const change = useApp.getState().certChange;
  if (!change) return null;
  try {
    await call('accept_certificate', { fingerprint: change.fingerprint });
  } catch (e) {
    return toIpcError(e);
  }
  if (useApp.getState().phase === 'main') {
    useApp.setState({ certChange: null });
    return null;
  }
  return connectTo(change.server);
}

export function dismissCertificate(): void {
  useApp.setState({ certChange: null });
}

export function changeServer(): void {
  useApp.setState({ phase: 'connect', loginError: null });
}

/** A session started (login, guest, register, resume). */
export function enterSession(session: Session): void {
  const social = socialFromSession(session);
  resetChat(social.me.username);
  resetCalls();
  useApp.setState((s) => ({
    phase: 'main',
    social,
    resuming: null,
    loginError: null,
    connection: session.offline ? 'connecting' : 'online',
    notice: null,
    settings: social.me.is_guest ? s.settings : { ...s.settings, last_user: social.me.username },
  }));
  void loadPreviews([SQUARE, ...social.friends.map((f) => userTarget(f.username))]);
  void loadUnread();
  void loadTransfers();
  void loadCurrentCall();
}

function leaveSession(loginUsername: string, loginError: string | null = null): void {
  resetChat('');
  resetCalls();
  useApp.setState((s) => ({
    phase: 'login',
    social: null,
    loginUsername,
    loginError,
    settings: { ...s.settings, last_user: null },
  }));
}

export async function login(username: string, password: string): Promise<void> {
  enterSession(await call('login', { username, password }));
}

export async function guestLogin(username: string): Promise<void> {
  enterSession(await call('guest_login', { username }));
}

export async function logout(): Promise<void> {
  const me = useApp.getState().social?.me;
  try {
    await call('logout', {});
  } catch {
    // The shell forgets the account locally even when the server could not be told.
  }
  leaveSession(me && !me.is_guest ? me.username : '');
}

/** Erases the account; rejects with an IpcError (wrong password…) and stays logged in then. */
export async function eraseAccount(password: string): Promise<void> {
  await call('erase_account', { password });
  leaveSession('');
}

/** Saves and applies settings at once; resolves with an error sentence if saving failed. */
export async function saveSettings(change: Partial<Settings>): Promise<string | null> {
  const next = { ...useApp.getState().settings, ...change };
  useApp.setState({ settings: next });
  applySettings(next, osLanguage());
  try {
    // The shell also writes settings (server on connect, last user on login): start from its copy.
    const fresh = (await call('app_info', {})).settings;
    const saved = await call('save_settings', { settings: { ...fresh, ...change } });
    useApp.setState({ settings: saved });
    return null;
  } catch (e) {
    return errorText(toIpcError(e), t);
  }
}

/** Chooses the microphone and speaker for calls (null: the system default); saved at once. */
export async function setAudioDevices(
  input: string | null,
  output: string | null,
): Promise<string | null> {
  try {
    const settings = await call('set_audio_devices', { input, output });
    useApp.setState({ settings });
    return null;
  } catch (e) {
    return errorText(toIpcError(e), t);
  }
}

export async function refreshFriends(): Promise<void> {
  try {
    const list = await call('friends', {});
    useApp.setState((s) => (s.social ? { social: withFriendList(s.social, list) } : s));
  } catch {
    // The events keep the list right meanwhile; the next refresh catches up.
  }
}

/** Reloads who is online and the friend list (after a reconnect). */
export async function refreshPresence(): Promise<void> {
  try {
    const online = await call('online_users', {});
    useApp.setState((s) => (s.social ? { social: { ...s.social, online } } : s));
  } catch {
    // Still offline or refused: the next reconnect asks again.
  }
  await refreshFriends();
}

export async function respondToRequest(from: string, accept: boolean): Promise<void> {
  await call('friend_respond', { from, accept });
  useApp.setState((s) =>
    s.social
      ? {
          social: {
            ...s.social,
            incoming: s.social.incoming.filter((r) => r.from.toLowerCase() !== from.toLowerCase()),
          },
        }
      : s,
  );
  if (accept) {
    await refreshFriends();
    void loadPreviews([userTarget(from)]);
  }
}

export async function sendFriendRequest(to: string, message: string): Promise<void> {
  await call('friend_request', { to, message });
  await refreshFriends();
}

export async function removeFriend(username: string): Promise<void> {
  await call('friend_delete', { username });
  closeConversation(userTarget(username));
  useApp.setState((s) =>
    s.social
      ? {
          social: {
            ...s.social,
            friends: s.social.friends.filter(
              (f) => f.username.toLowerCase() !== username.toLowerCase(),
            ),
          },
        }
      : s,
  );
}

export async function updateProfile(nickname: string, motto: string, phone: string): Promise<void> {
  const profile = await call('update_profile', { edit: { nickname, motto, phone } });
  useApp.setState((s) => (s.social ? { social: { ...s.social, me: profile } } : s));
}

export function dismissNotice(): void {
  useApp.setState({ notice: null });
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;

export function showToast(text: string): void {
  clearTimeout(toastTimer);
  useApp.setState({ toast: text });
  toastTimer = setTimeout(() => useApp.setState({ toast: null }), 5000);
}

/** Every engine event comes through here. */
/** Leaves the main screen for the login form, keeping a password user's name filled in. */
function backToLogin(loginError: string | null, notice?: Notice): void {
  const me = useApp.getState().social?.me;
  resetChat('');
  resetCalls();
  useApp.setState({
    phase: 'login',
    social: null,
    loginUsername: me && !me.is_guest ? me.username : '',
    loginError,
    ...(notice ? { notice } : {}),
  });
}

export function handleEvent(e: AppEvent): void {
  const state = useApp.getState();
  switch (e.type) {
    case 'connection':
      if (e.state === 'online' && state.connection !== 'online' && state.phase === 'main') {
        connectionRestored();
        // Presence pushes sent while we were away are lost: ask again.
        void refreshPresence();
      }
      if (e.state !== 'online' && state.social) {
        // Cut off, we cannot know who is online: show nobody rather than stale dots.
        const social = state.social;
        useApp.setState({
          connection: e.state,
          social: {
            ...social,
            online: [],
            friends: social.friends.map((f) => (f.online ? { ...f, online: false } : f)),
          },
        });
        return;
      }
      useApp.setState({ connection: e.state });
      return;
    case 'message':
    case 'sent':
    case 'delivered':
    case 'failed':
      if (state.phase === 'main') handleChatEvent(e);
      return;
    case 'lan_servers':
      setLanServers(e.servers);
      return;
    case 'kicked': {
      if (state.phase !== 'main') return;
      if (e.reason === 'logged_in_elsewhere') {
        backToLogin(null, { title: t('kicked.title'), text: t('kicked.loggedInElsewhere') });
      } else {
        showToast(t('kicked.other', { reason: e.reason }));
      }
      return;
    }
    case 'session_lost': {
      if (state.phase !== 'main') return;
      backToLogin(t('session.lost', { error: errorText(e.error, t) }));
      return;
    }
    case 'transfer': {
      if (state.phase !== 'main') return;
      const transfer = e.transfer;
      applyTransfer(transfer);
      // An image's message is posted once its upload is done: show it in place of the upload.
      if (transfer.kind === 'image' && transfer.direction === 'up' && transfer.state === 'done') {
        void refreshNewest(transfer.chat);
      }
      return;
    }
    case 'call':
      if (state.phase === 'main') applyCall(e.call);
      return;
    case 'certificate_changed':
      if (e.error.fingerprint) {
        useApp.setState({
          certChange: { fingerprint: e.error.fingerprint, server: state.server },
        });
      }
      return;
    default: {
      if (!state.social) return;
      const social = socialReducer(state.social, e);
      if (social !== state.social) useApp.setState({ social });
      if (e.type === 'friend_response' && e.accepted) {
        void refreshFriends();
        void loadPreviews([userTarget(e.username)]);
      }
      if (e.type === 'friend_removed') closeConversation(userTarget(e.username));
    }
  }
}
