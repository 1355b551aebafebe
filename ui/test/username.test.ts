import { describe, expect, it } from 'vitest';
import { translator } from '../src/i18n';
import { localUsernameStatus, passwordProblem, statusFromCheck } from '../src/state/username';

describe('username rules', () => {
  it('are explained in the hint', () => {
    const hint = translator('en')('register.rules');
    expect(hint).toContain('4–32 letters and digits');
    for (const word of ['admin', 'administrator', 'guest', 'user', 'table']) {
      expect(hint).toContain(word);
    }
    expect(translator('zh-CN')('register.rules')).toContain('保留');
  });

  it('are checked locally before asking the server', () => {
    expect(localUsernameStatus('')).toBe('idle');
    expect(localUsernameStatus('abc')).toBe('invalid');
    expect(localUsernameStatus('a'.repeat(33))).toBe('invalid');
    expect(localUsernameStatus('bob_1')).toBe('invalid');
    expect(localUsernameStatus('李雷abcd')).toBe('invalid');
    expect(localUsernameStatus('Admin')).toBe('reserved');
    expect(localUsernameStatus('TABLE')).toBe('reserved');
    expect(localUsernameStatus('admins')).toBeNull();
    expect(localUsernameStatus('alice2024')).toBeNull();
    expect(localUsernameStatus('a'.repeat(32))).toBeNull();
  });

  it('map the server answer to a status', () => {
    expect(statusFromCheck(true, null)).toBe('available');
    expect(statusFromCheck(false, 'username_taken')).toBe('taken');
    expect(statusFromCheck(false, 'reserved_username')).toBe('reserved');
    expect(statusFromCheck(false, 'invalid_username')).toBe('invalid');
  });

  it('passwords are 8–128 characters, counted as characters not bytes', () => {
    expect(passwordProblem('1234567')).toBe('short');
    expect(passwordProblem('12345678')).toBeNull();
    expect(passwordProblem('密码密码密码密码')).toBeNull();
    expect(passwordProblem('x'.repeat(129))).toBe('long');
  });
});
