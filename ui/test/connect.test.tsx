import { fireEvent, render, screen } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { groupFingerprint } from '../src/components/CertificateWarning';
import { call } from '../src/backend';
import { ConnectScreen, portAfterTlsToggle } from '../src/screens/ConnectScreen';
import { resetApp, useApp } from '../src/state/app';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);

beforeEach(() => {
  mockedCall.mockReset();
  resetApp();
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
