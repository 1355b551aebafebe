import { act, render, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { AppInfo, Session } from '../src/bindings';
import { App } from '../src/App';
import { call } from '../src/backend';
import { setLocale } from '../src/i18n';
import { handleEvent, resetApp, useApp } from '../src/state/app';

vi.mock('../src/backend', () => ({
  call: vi.fn(),
  onEvent: vi.fn(() => Promise.resolve(() => {})),
  onFileDrag: vi.fn(() => Promise.resolve(() => {})),
  imageUrl: (id: string) => `natter-image://localhost/${id}`,
  sendImageData: vi.fn(),
  toIpcError: (e: unknown) => e,
}));

const mockedCall = vi.mocked(call);

const info = (lastUser: string | null, language: string | null = 'en'): AppInfo => ({
  settings: {
    server: { host: 'chat.example.org', port: 4399, tls: true },
    last_user: lastUser,
    language,
    theme: 'light',
    notifications: true,
    hosting: false,
    audio_input: null,
    audio_output: null,
  },
  version: '0.1.0',
  os_language: 'en-US',
  data_dir: '/tmp/natter',
});

const session: Session = {
  profile: { username: 'alice', nickname: '', motto: '', phone: '', is_guest: false },
  online: [{ username: 'bob', nickname: '', is_guest: false }],
  friends: [
    { username: 'bob', nickname: 'Bobby', motto: '', is_guest: false, online: true },
    { username: 'carol', nickname: '', motto: '', is_guest: false, online: false },
  ],
  incoming_requests: [{ from: 'erin', to: 'alice', message: 'hello!', ts: 1 }],
  outgoing_requests: [],
  resumed: true,
  offline: false,
};

function backend(appInfo: AppInfo, resume: () => Promise<Session>) {
  mockedCall.mockImplementation(((cmd: string) => {
    switch (cmd) {
      case 'app_info':
        return Promise.resolve(appInfo);
      case 'connect':
        return Promise.resolve({ fingerprint: null });
      case 'resume':
        return resume();
      case 'local_history':
      case 'history':
      case 'unread':
      case 'lan_servers':
        return Promise.resolve([]);
      default:
        return Promise.resolve(null);
    }
  }) as typeof call);
}

beforeEach(() => {
  mockedCall.mockReset();
  resetApp();
  setLocale('en');
});

describe('app start', () => {
  it('resumes the remembered account into the main view', async () => {
    backend(info('alice'), () => Promise.resolve(session));
    render(<App />);
    expect(await screen.findByTestId('main-view')).toBeInTheDocument();
    expect(screen.getByTestId('me-name')).toHaveTextContent('alice');
    expect(screen.getByTestId('conv-square')).toBeInTheDocument();
    const rows = screen.getAllByTestId(/^conv-user-/).map((r) => r.dataset.testid);
    expect(rows).toEqual(['conv-user-bob', 'conv-user-carol']);
    expect(screen.getByTestId('presence-bob')).toHaveAttribute('data-online', 'true');
    expect(screen.getByTestId('presence-carol')).toHaveAttribute('data-online', 'false');
    expect(
      within(screen.getByTestId('request-erin')).getByTestId('request-accept-erin'),
    ).toBeInTheDocument();
  });

  it('shows the login screen with the name filled in when resuming fails', async () => {
    backend(info('alice'), () =>
      Promise.reject({ code: 'session_expired', message: 'expired', fingerprint: null }),
    );
    render(<App />);
    expect(await screen.findByTestId('login-username')).toHaveValue('alice');
    expect(screen.getByTestId('form-error')).toHaveTextContent('Your session has expired');
  });

  it('follows the OS language when none is set', async () => {
    backend({ ...info(null, null), os_language: 'zh-CN' }, () => Promise.resolve(session));
    render(<App />);
    expect(await screen.findByTestId('connect-submit')).toHaveTextContent('连接');
  });

  it('goes back to login with an explanation when signed in elsewhere', async () => {
    backend(info('alice'), () => Promise.resolve(session));
    render(<App />);
    await screen.findByTestId('main-view');
    act(() => handleEvent({ type: 'kicked', reason: 'logged_in_elsewhere' }));
    expect(await screen.findByTestId('login-username')).toHaveValue('alice');
    expect(screen.getByTestId('notice-text')).toHaveTextContent('another device');
  });

  it('shows the connection banner and the unread count in the title', async () => {
    backend(info('alice'), () => Promise.resolve(session));
    render(<App />);
    await screen.findByTestId('main-view');
    act(() => handleEvent({ type: 'connection', state: 'connecting' }));
    act(() =>
      handleEvent({
        type: 'message',
        message: {
          msg_id: 1,
          client_msg_id: 'x1',
          from: 'bob',
          from_guest: false,
          to: { kind: 'user', username: 'alice' },
          ts: Date.now(),
          body: { kind: 'text', text: 'hi' },
          state: 'received',
          error: null,
        },
      }),
    );
    expect(screen.getByTestId('connection-banner')).toHaveAttribute('data-state', 'connecting');
    expect(screen.getByTestId('unread-bob')).toHaveTextContent('1');
    expect(document.title).toBe('(1) Natter');
  });
});

describe('calls', () => {
  const ringing = {
    call_id: 'c1',
    peer: 'bob',
    outgoing: false,
    phase: 'ringing' as const,
    reason: null,
    since: null,
    muted: false,
  };

  it('rings over an open dialog, then shows the call across the top', async () => {
    backend(info('alice'), () => Promise.resolve(session));
    render(<App />);
    await screen.findByTestId('main-view');
    act(() => screen.getByTestId('settings-open').click());
    act(() => handleEvent({ type: 'call', call: ringing }));
    expect(screen.getByTestId('incoming-call')).toHaveTextContent('Bobby is calling you…');
    act(() => handleEvent({ type: 'call', call: { ...ringing, phase: 'connecting' } }));
    expect(screen.queryByTestId('incoming-call')).toBeNull();
    expect(screen.getByTestId('call-bar')).toHaveTextContent('Connecting…');
  });

  it('offers the call button in a friend’s chat, not in the square', async () => {
    backend(info('alice'), () => Promise.resolve(session));
    render(<App />);
    await screen.findByTestId('main-view');
    act(() => screen.getByTestId('conv-square').click());
    await screen.findByTestId('chat-title');
    expect(screen.queryByTestId('call-start')).toBeNull();
    act(() => screen.getByTestId('conv-user-bob').click());
    expect(await screen.findByTestId('call-start')).toBeEnabled();
    act(() => screen.getByTestId('conv-user-carol').click());
    await screen.findByText('carol', { selector: '[data-testid=chat-title]' });
    expect(screen.getByTestId('call-start')).toBeDisabled();
  });
});

describe('reconnecting', () => {
  it('asks again who is online, since presence pushes were lost while away', async () => {
    backend(info('alice'), () => Promise.resolve(session));
    render(<App />);
    await screen.findByTestId('main-view');
    await act(async () => {
      handleEvent({ type: 'connection', state: 'connecting' });
    });
    // Cut off, nobody is shown online.
    expect(screen.getByTestId('presence-bob')).toHaveAttribute('data-online', 'false');
    // While we were away bob left and carol came.
    mockedCall.mockImplementation(((cmd: string) => {
      switch (cmd) {
        case 'online_users':
          return Promise.resolve([{ username: 'carol', nickname: '', is_guest: false }]);
        case 'friends':
          return Promise.resolve({
            friends: [
              { username: 'bob', nickname: 'Bobby', motto: '', is_guest: false, online: false },
              { username: 'carol', nickname: '', motto: '', is_guest: false, online: true },
            ],
            incoming: [],
            outgoing: [],
          });
        default:
          return Promise.resolve([]);
      }
    }) as typeof call);
    await act(async () => {
      handleEvent({ type: 'connection', state: 'online' });
    });
    expect(await screen.findByTestId('presence-carol')).toHaveAttribute('data-online', 'true');
    expect(screen.getByTestId('presence-bob')).toHaveAttribute('data-online', 'false');
    expect(mockedCall).toHaveBeenCalledWith('online_users', {});
  });
});

describe('starting with the server down', () => {
  it('opens the remembered account offline with the reconnect banner', async () => {
    mockedCall.mockImplementation(((cmd: string) => {
      switch (cmd) {
        case 'app_info':
          return Promise.resolve(info('alice'));
        case 'connect':
          return Promise.reject({ code: 'network', message: 'connection refused' });
        case 'resume':
          return Promise.resolve({ ...session, online: [], offline: true });
        case 'current_call':
          return Promise.resolve(null);
        default:
          return Promise.resolve([]);
      }
    }) as typeof call);
    render(<App />);
    expect(await screen.findByTestId('main-view')).toBeInTheDocument();
    expect(mockedCall).toHaveBeenCalledWith('resume', { username: 'alice' });
    expect(screen.getByTestId('me-name')).toHaveTextContent('alice');
    // Not "online" until the engine says so: the reconnect banner shows meanwhile.
    expect(useApp.getState().connection).toBe('connecting');
  });

  it('still goes to the login screen when the server refuses the session', async () => {
    backend(info('alice'), () =>
      Promise.reject({ code: 'session_expired', message: 'expired', fingerprint: null }),
    );
    render(<App />);
    expect(await screen.findByTestId('login-username')).toHaveValue('alice');
  });
});
