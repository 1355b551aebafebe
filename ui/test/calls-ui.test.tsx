import { act, fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CallInfo, Settings } from '../src/bindings';
import { call } from '../src/backend';
import { CallBar } from '../src/components/CallBar';
import { CallButton } from '../src/components/CallButton';
import { IncomingCall } from '../src/components/IncomingCall';
import { setLocale } from '../src/i18n';
import { SettingsDialog } from '../src/screens/SettingsDialog';
import { DEFAULT_SETTINGS, resetApp, useApp } from '../src/state/app';
import { applyCall, ENDED_SHOW_MS, resetCalls, useCalls } from '../src/state/calls';
import { callInfo } from './fixtures';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);

function signedIn(settings: Partial<Settings> = {}) {
  useApp.setState({
    phase: 'main',
    connection: 'online',
    settings: { ...DEFAULT_SETTINGS, ...settings },
    social: {
      me: { username: 'alice', nickname: '', motto: '', phone: '', is_guest: false },
      online: [],
      friends: [{ username: 'bob', nickname: 'Bobby', motto: '', is_guest: false, online: true }],
      incoming: [],
      outgoing: [],
    },
  });
}

function show(info: Partial<CallInfo>) {
  act(() => applyCall(callInfo({ call_id: 'c1', ...info })));
}

beforeEach(() => {
  mockedCall.mockReset();
  resetApp();
  resetCalls();
  setLocale('en');
  signedIn();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('the call button', () => {
  const button = () => screen.getByTestId('call-start');

  it('calls a friend who is online', async () => {
    mockedCall.mockResolvedValue(callInfo({ call_id: 'c1', phase: 'calling' }));
    render(<CallButton username="bob" name="Bobby" online />);
    expect(button()).toBeEnabled();
    expect(button()).toHaveAccessibleName('Call Bobby');
    await userEvent.click(button());
    expect(mockedCall).toHaveBeenCalledWith('call', { to: 'bob' });
    expect(useCalls.getState().current?.phase).toBe('calling');
  });

  it('is off, and says why, when the friend is offline', () => {
    render(<CallButton username="bob" name="Bobby" online={false} />);
    expect(button()).toBeDisabled();
    expect(button().parentElement).toHaveAttribute('title', 'Bobby is offline');
  });

  it('is off during another call and while disconnected', () => {
    render(<CallButton username="bob" name="Bobby" online />);
    show({ phase: 'active', peer: 'carol' });
    expect(button()).toBeDisabled();
    expect(button()).toHaveAccessibleName('You are already in a call');
    act(() => resetCalls());
    expect(button()).toBeEnabled();
    act(() => useApp.setState({ connection: 'connecting' }));
    expect(button()).toBeDisabled();
    expect(button()).toHaveAccessibleName('You are offline');
  });

  it('is on again once the last call has ended', () => {
    render(<CallButton username="bob" name="Bobby" online />);
    show({ phase: 'ended', reason: 'hangup' });
    expect(button()).toBeEnabled();
  });

  it('tells why a call could not start', async () => {
    mockedCall.mockRejectedValue({ code: 'forbidden', message: 'already in a call' });
    render(<CallButton username="bob" name="Bobby" online />);
    await userEvent.click(button());
    expect(useApp.getState().toast).toBe(
      'The call could not be started: You are already in a call.',
    );
  });
});

describe('the incoming call dialog', () => {
  it('shows who calls and accepts', async () => {
    render(<IncomingCall />);
    expect(screen.queryByTestId('incoming-call')).toBeNull();
    show({ phase: 'ringing', outgoing: false });
    const dialog = screen.getByTestId('incoming-call');
    expect(dialog).toHaveTextContent('Bobby is calling you…');
    expect(dialog).toHaveAttribute('role', 'alertdialog');
    mockedCall.mockResolvedValue(null);
    await userEvent.click(screen.getByTestId('call-accept'));
    expect(mockedCall).toHaveBeenCalledWith('answer_call', { call_id: 'c1', accept: true });
    // The engine moves the call on; the dialog goes.
    show({ phase: 'connecting', outgoing: false });
    expect(screen.queryByTestId('incoming-call')).toBeNull();
  });

  it('declines', async () => {
    render(<IncomingCall />);
    show({ phase: 'ringing', outgoing: false });
    mockedCall.mockResolvedValue(null);
    await userEvent.click(screen.getByTestId('call-decline'));
    expect(mockedCall).toHaveBeenCalledWith('answer_call', { call_id: 'c1', accept: false });
  });

  it('is not shown for our own call ringing elsewhere', () => {
    render(<IncomingCall />);
    show({ phase: 'calling', outgoing: true });
    expect(screen.queryByTestId('incoming-call')).toBeNull();
  });

  it('goes when the caller gives up', () => {
    render(<IncomingCall />);
    show({ phase: 'ringing', outgoing: false });
    show({ phase: 'ended', outgoing: false, reason: 'hangup' });
    expect(screen.queryByTestId('incoming-call')).toBeNull();
  });
});

describe('the call bar', () => {
  const status = () => screen.getByTestId('call-status');

  it('says Calling… and can cancel', async () => {
    render(<CallBar />);
    show({ phase: 'calling' });
    expect(screen.getByTestId('call-bar')).toHaveAttribute('data-phase', 'calling');
    expect(screen.getByTestId('call-peer')).toHaveTextContent('Bobby');
    expect(status()).toHaveTextContent('Calling…');
    mockedCall.mockResolvedValue(null);
    await userEvent.click(screen.getByTestId('call-hangup'));
    expect(mockedCall).toHaveBeenCalledWith('hang_up', { call_id: 'c1' });
  });

  it('says Connecting…, then counts the time talking', () => {
    vi.useFakeTimers();
    const start = Date.UTC(2024, 2, 5, 10, 0, 0);
    vi.setSystemTime(start);
    mockedCall.mockResolvedValue(0);
    render(<CallBar />);
    show({ phase: 'connecting' });
    expect(status()).toHaveTextContent('Connecting…');
    show({ phase: 'active', since: start });
    act(() => {
      vi.advanceTimersByTime(2_100);
    });
    expect(screen.getByTestId('call-duration')).toHaveTextContent('0:02');
    act(() => {
      vi.advanceTimersByTime(61_000);
    });
    expect(screen.getByTestId('call-duration')).toHaveTextContent('1:03');
  });

  it('polls the microphone level while talking and shows it', async () => {
    vi.useFakeTimers();
    mockedCall.mockResolvedValue(0.36);
    render(<CallBar />);
    show({ phase: 'active', since: Date.now() });
    await act(async () => {
      vi.advanceTimersByTime(150);
    });
    expect(mockedCall).toHaveBeenCalledWith('call_level', {});
    expect(screen.getByTestId('call-level')).toHaveAttribute('data-lit', '3');
  });

  it('mutes and unmutes', async () => {
    render(<CallBar />);
    show({ phase: 'active', since: Date.now() });
    const mute = screen.getByTestId('call-mute');
    expect(mute).toHaveAttribute('aria-pressed', 'false');
    expect(mute).toHaveAccessibleName('Mute the microphone');
    mockedCall.mockImplementation((async (cmd: string) =>
      cmd === 'set_muted'
        ? callInfo({ call_id: 'c1', phase: 'active', since: Date.now(), muted: true })
        : 0) as typeof call);
    await userEvent.click(mute);
    expect(mockedCall).toHaveBeenCalledWith('set_muted', { muted: true });
    expect(screen.getByTestId('call-mute')).toHaveAttribute('aria-pressed', 'true');
    expect(screen.getByTestId('call-mute')).toHaveAccessibleName('Unmute the microphone');
    expect(status()).toHaveTextContent('Muted');
    expect(screen.getByTestId('call-level')).toHaveAttribute('data-lit', '0');
  });

  it('shows why the call ended, then goes', () => {
    vi.useFakeTimers();
    render(<CallBar />);
    show({ phase: 'calling' });
    show({ phase: 'ended', reason: 'rejected' });
    expect(status()).toHaveTextContent('Bobby declined');
    expect(screen.queryByTestId('call-hangup')).toBeNull();
    expect(screen.queryByTestId('call-mute')).toBeNull();
    act(() => {
      vi.advanceTimersByTime(ENDED_SHOW_MS);
    });
    expect(screen.queryByTestId('call-bar')).toBeNull();
  });

  it('leaves a ringing call to the incoming dialog', () => {
    render(<CallBar />);
    show({ phase: 'ringing', outgoing: false });
    expect(screen.queryByTestId('call-bar')).toBeNull();
    show({ phase: 'connecting', outgoing: false });
    expect(screen.getByTestId('call-bar')).toBeInTheDocument();
  });

  it('opens the chat with the peer', () => {
    render(<CallBar />);
    show({ phase: 'calling' });
    mockedCall.mockResolvedValue([]);
    fireEvent.click(screen.getByTestId('call-peer'));
    expect(mockedCall).toHaveBeenCalledWith(
      'local_history',
      expect.objectContaining({ with: { kind: 'user', username: 'bob' } }),
    );
  });
});

describe('device choice in settings', () => {
  const devices = {
    // ALSA may list one description twice.
    inputs: ['Built-in Microphone', 'USB Headset Microphone', 'USB Headset Microphone'],
    outputs: ['Built-in Speakers'],
    default_input: 'Built-in Microphone',
    default_output: 'Built-in Speakers',
  };

  it('lists the devices and saves a choice', async () => {
    mockedCall.mockImplementation((async (cmd: string, args: Record<string, unknown>) => {
      if (cmd === 'audio_devices') return devices;
      if (cmd === 'set_audio_devices') {
        return { ...DEFAULT_SETTINGS, audio_input: args.input, audio_output: args.output };
      }
      return null;
    }) as typeof call);
    render(<SettingsDialog onClose={() => {}} />);
    const mic = await screen.findByTestId('settings-microphone');
    const options = [...mic.querySelectorAll('option')].map((o) => o.textContent);
    expect(options).toEqual([
      'System default (Built-in Microphone)',
      'Built-in Microphone',
      'USB Headset Microphone',
    ]);
    await userEvent.selectOptions(mic, 'USB Headset Microphone');
    expect(mockedCall).toHaveBeenCalledWith('set_audio_devices', {
      input: 'USB Headset Microphone',
      output: null,
    });
    expect(useApp.getState().settings.audio_input).toBe('USB Headset Microphone');
    await userEvent.selectOptions(screen.getByTestId('settings-microphone'), '');
    expect(mockedCall).toHaveBeenLastCalledWith('set_audio_devices', {
      input: null,
      output: null,
    });
  });

  it('keeps a saved device that is not plugged in, and says so', async () => {
    signedIn({ audio_output: 'USB Headset' });
    mockedCall.mockImplementation((async (cmd: string) =>
      cmd === 'audio_devices' ? devices : null) as typeof call);
    render(<SettingsDialog onClose={() => {}} />);
    const speaker = await screen.findByTestId('settings-speaker');
    expect(speaker).toHaveValue('USB Headset');
    expect(speaker).toHaveTextContent('USB Headset (not connected)');
  });

  it('says when the devices cannot be listed', async () => {
    mockedCall.mockImplementation((async (cmd: string) =>
      cmd === 'audio_devices'
        ? Promise.reject({ code: 'internal', message: 'no sound server' })
        : null) as typeof call);
    render(<SettingsDialog onClose={() => {}} />);
    expect(await screen.findByText(/Audio devices could not be listed/)).toBeInTheDocument();
  });
});
