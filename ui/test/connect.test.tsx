import { fireEvent, render, screen } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { groupFingerprint } from '../src/components/CertificateWarning';
import { call } from '../src/backend';
import { ConnectScreen, portAfterTlsToggle } from '../src/screens/ConnectScreen';
import { resetApp, useApp } from '../src/state/app';
import { useLan } from '../src/state/lan';
import type { HostInfo, LanServer } from '../src/bindings';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);

beforeEach(() => {
  mockedCall.mockReset();
  resetApp();
  useLan.setState({ servers: [], hosting: null });
  // Nothing announced, nothing hosted, every other call refused (tests set their own).
  mockedCall.mockImplementation(((cmd: string) =>
    cmd === 'lan_servers'
      ? Promise.resolve([])
      : cmd === 'host_info'
        ? Promise.resolve(null)
        : Promise.reject({ code: 'internal', message: cmd, fingerprint: null })) as typeof call);
  useApp.setState({ phase: 'connect', server: { host: '127.0.0.1', port: 4399, tls: true } });
});

describe('the connect screen', () => {
  it('moves the port between 4399 and 4004 with TLS, unless the user chose another', () => {
    expect(portAfterTlsToggle('4399', false)).toBe('4004');
    expect(portAfterTlsToggle('4004', true)).toBe('4399');
    expect(portAfterTlsToggle('5000', false)).toBe('5000');
    render(<ConnectScreen />);
    const port = screen.getByTestId('connect-port') as HTMLInputElement;
    fireEvent.click(screen.getByTestId('connect-tls'));
    expect(port.value).toBe('4004');
    fireEvent.click(screen.getByTestId('connect-tls'));
    expect(port.value).toBe('4399');
  });

  it('shows a translated error when the server cannot be reached', async () => {
    mockedCall.mockRejectedValue({
      code: 'network',
      message: 'connection refused',
      fingerprint: null,
    });
    render(<ConnectScreen />);
    fireEvent.click(screen.getByTestId('connect-submit'));
    expect(await screen.findByTestId('form-error')).toHaveTextContent('Could not reach the server');
    expect(useApp.getState().phase).toBe('connect');
  });

  it('warns when the certificate changed, and trusting it connects again', async () => {
    const fingerprint = 'ab12'.repeat(16);
    mockedCall.mockImplementation(((cmd: string) => {
      if (cmd === 'connect' && !mockedCall.mock.calls.some(([c]) => c === 'accept_certificate')) {
        return Promise.reject({ code: 'certificate_changed', message: 'changed', fingerprint });
      }
      if (cmd === 'lan_servers') return Promise.resolve([]);
      return Promise.resolve(cmd === 'connect' ? { fingerprint } : null);
    }) as typeof call);
    render(<ConnectScreen />);
    fireEvent.click(screen.getByTestId('connect-submit'));
    const warning = await screen.findByTestId('cert-warning');
    expect(warning).toHaveTextContent('AB12');
    fireEvent.click(screen.getByTestId('cert-trust'));
    await vi.waitFor(() => expect(useApp.getState().phase).toBe('login'));
    expect(mockedCall).toHaveBeenCalledWith('accept_certificate', { fingerprint });
  });

  it('groups a fingerprint in fours for reading', () => {
    expect(groupFingerprint('3f9a1c0e77d2')).toEqual(['3F9A', '1C0E', '77D2']);
  });
});

const announced: LanServer = {
  id: 'Ada._natter._tcp.local.',
  name: "Ada's computer",
  host: '192.168.1.20',
  addresses: ['192.168.1.20'],
  port: 4004,
  tls_port: 4399,
  fingerprint: '3f9a1c0e'.repeat(8),
  protocol_version: 2,
};

describe('servers on this network', () => {
  it('lists what was announced with its fingerprint and connects trusting it', async () => {
    mockedCall.mockImplementation(((cmd: string) => {
      switch (cmd) {
        case 'lan_servers':
          return Promise.resolve([announced]);
        case 'host_info':
          return Promise.resolve(null);
        case 'connect_lan':
          return Promise.resolve({ fingerprint: announced.fingerprint });
        default:
          return Promise.reject({ code: 'internal', message: cmd, fingerprint: null });
      }
    }) as typeof call);
    render(<ConnectScreen />);
    const row = await screen.findByTestId('lan-server');
    expect(row).toHaveTextContent("Ada's computer");
    expect(row).toHaveTextContent('192.168.1.20:4399');
    expect(row).toHaveTextContent('3F9A 1C0E 3F9A 1C0E');
    expect(row).toHaveAttribute('data-own', 'false');
    fireEvent.click(screen.getByTestId('lan-connect'));
    await vi.waitFor(() => expect(useApp.getState().phase).toBe('login'));
    expect(mockedCall).toHaveBeenCalledWith('connect_lan', { server: announced });
    expect(useApp.getState().server).toEqual({ host: '192.168.1.20', port: 4399, tls: true });
  });

  it('says so when nothing is announced, and a failed connection stays on the screen', async () => {
    mockedCall.mockImplementation(((cmd: string) =>
      cmd === 'lan_servers' || cmd === 'host_info'
        ? Promise.resolve(cmd === 'lan_servers' ? [] : null)
        : Promise.reject({
            code: 'network',
            message: 'refused',
            fingerprint: null,
          })) as typeof call);
    render(<ConnectScreen />);
    expect(await screen.findByTestId('lan-empty')).toBeInTheDocument();
    useLan.setState({ servers: [announced] });
    fireEvent.click(await screen.findByTestId('lan-connect'));
    expect(await screen.findByTestId('lan-error')).toHaveTextContent('Could not reach the server');
    expect(useApp.getState().phase).toBe('connect');
  });

  it('hosts a server here: shows where it is reached and marks it in the list', async () => {
    const info: HostInfo = {
      name: "Ada's computer",
      addresses: ['192.168.1.20:4399', '127.0.0.1:4399'],
      port: 4004,
      tls_port: 4399,
      fingerprint: announced.fingerprint,
    };
    mockedCall.mockImplementation(((cmd: string) => {
      switch (cmd) {
        case 'lan_servers':
          return Promise.resolve([]);
        case 'host_info':
          return Promise.resolve(null);
        case 'host_start':
          return Promise.resolve(info);
        case 'host_stop':
          return Promise.resolve(null);
        default:
          return Promise.reject({ code: 'internal', message: cmd, fingerprint: null });
      }
    }) as typeof call);
    render(<ConnectScreen />);
    fireEvent.click(await screen.findByTestId('host-start'));
    const fp = await screen.findByTestId('host-fingerprint');
    expect(fp).toHaveTextContent('3F9A 1C0E');
    expect(screen.getByTestId('host-addresses')).toHaveTextContent('192.168.1.20:4399');
    useLan.setState({ servers: [announced] });
    expect(await screen.findByTestId('lan-server')).toHaveAttribute('data-own', 'true');
    fireEvent.click(screen.getByTestId('host-stop'));
    expect(await screen.findByTestId('host-start')).toBeInTheDocument();
    expect(mockedCall).toHaveBeenCalledWith('host_stop', {});
  });

  it('shows why hosting could not start, in Chinese too', async () => {
    mockedCall.mockImplementation(((cmd: string) =>
      cmd === 'lan_servers'
        ? Promise.resolve([])
        : cmd === 'host_info'
          ? Promise.resolve(null)
          : Promise.reject({
              code: 'host_failed',
              message: 'no free port',
              fingerprint: null,
            })) as typeof call);
    render(<ConnectScreen />);
    fireEvent.click(await screen.findByTestId('host-start'));
    expect(await screen.findByTestId('form-error')).toHaveTextContent('no free port');
  });
});
