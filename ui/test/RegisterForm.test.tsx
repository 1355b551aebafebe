import { act, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { call } from '../src/backend';
import { RegisterForm } from '../src/screens/RegisterForm';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);

beforeEach(() => {
  vi.useFakeTimers();
  mockedCall.mockReset();
  mockedCall.mockImplementation(((cmd: string, args: { username?: string }) => {
    if (cmd === 'check_username') {
      return Promise.resolve(
        args.username?.toLowerCase() === 'bobby'
          ? { available: false, reason: 'username_taken' }
          : { available: true, reason: null },
      );
    }
    return Promise.reject({ code: 'internal', message: 'unexpected', fingerprint: null });
  }) as typeof call);
});
afterEach(() => {
  vi.useRealTimers();
});

function status() {
  return screen.getByTestId('reg-username-status');
}

async function typeName(name: string) {
  fireEvent.change(screen.getByTestId('reg-username'), { target: { value: name } });
  await act(async () => {
    await vi.advanceTimersByTimeAsync(350);
  });
}

describe('registration', () => {
  it('shows the rules and the availability of the name as it is typed', async () => {
    render(<RegisterForm />);
    expect(screen.getByText(/admin, administrator, guest, user, table/)).toBeInTheDocument();
    expect(status()).toHaveAttribute('data-state', 'idle');

    fireEvent.change(screen.getByTestId('reg-username'), { target: { value: 'alice2' } });
    expect(status()).toHaveAttribute('data-state', 'checking');
    await act(async () => {
      await vi.advanceTimersByTimeAsync(350);
    });
    expect(status()).toHaveAttribute('data-state', 'available');

    await typeName('bobby');
    expect(status()).toHaveAttribute('data-state', 'taken');

    await typeName('admin');
    expect(status()).toHaveAttribute('data-state', 'reserved');
    expect(status()).toHaveTextContent('reserved');

    await typeName('ab');
    expect(status()).toHaveAttribute('data-state', 'invalid');
  });

  it('asks the server once per pause, not per keystroke', async () => {
    render(<RegisterForm />);
    for (const name of ['c', 'ca', 'car', 'caro', 'carol']) {
      fireEvent.change(screen.getByTestId('reg-username'), { target: { value: name } });
      await act(async () => {
        await vi.advanceTimersByTimeAsync(50);
      });
    }
    await act(async () => {
      await vi.advanceTimersByTimeAsync(350);
    });
    const checks = mockedCall.mock.calls.filter(([cmd]) => cmd === 'check_username');
    expect(checks).toEqual([['check_username', { username: 'carol' }]]);
  });

  it('needs matching passwords of 8+ characters before it can submit', async () => {
    render(<RegisterForm />);
    await typeName('alice2');
    const submit = screen.getByTestId('reg-submit');
    fireEvent.change(screen.getByTestId('reg-password'), { target: { value: 'short' } });
    expect(screen.getByText('The password needs at least 8 characters.')).toBeInTheDocument();
    expect(submit).toBeDisabled();
    fireEvent.change(screen.getByTestId('reg-password'), { target: { value: 'long enough' } });
    fireEvent.change(screen.getByTestId('reg-password2'), { target: { value: 'long enougg' } });
    expect(screen.getByText('The two passwords don’t match.')).toBeInTheDocument();
    expect(submit).toBeDisabled();
    fireEvent.change(screen.getByTestId('reg-password2'), { target: { value: 'long enough' } });
    expect(submit).toBeEnabled();
  });
});
