import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { translator } from '../src/i18n';
import { errorKey, errorText } from '../src/i18n/errors';

/** The ErrorCode union as generated from Rust, read from bindings.ts itself. */
function wireCodes(): string[] {
  const source = readFileSync(resolve(__dirname, '../src/bindings.ts'), 'utf8');
  const union = /export type ErrorCode = ([^;]+);/.exec(source)?.[1];
  if (!union) throw new Error('ErrorCode not found in bindings.ts');
  return [...union.matchAll(/"([a-z_]+)"/g)].map((m) => m[1] as string);
}

const clientCodes = [
  'offline',
  'timeout',
  'not_logged_in',
  'not_connected',
  'certificate_changed',
  'network',
  'tls',
  'protocol',
  'store',
  'closed',
  'settings',
  'invalid_server',
  'checksum',
];

describe('error codes', () => {
  it('every ErrorCode in bindings.ts and every client code has a sentence in both languages', () => {
    const codes = [...wireCodes(), ...clientCodes];
    expect(codes.length).toBeGreaterThan(30);
    for (const code of codes) {
      expect(errorKey(code), code).toBeDefined();
      for (const locale of ['en', 'zh-CN'] as const) {
        const text = errorText({ code, message: 'SERVER TEXT' }, translator(locale));
        expect(text, `${locale} ${code}`).not.toBe('SERVER TEXT');
        expect(text.length, `${locale} ${code}`).toBeGreaterThan(3);
      }
    }
  });

  it('reads naturally for the common failures', () => {
    const en = translator('en');
    const zh = translator('zh-CN');
    expect(errorText({ code: 'reserved_username', message: '' }, en)).toBe(
      'This name is reserved; choose another.',
    );
    expect(errorText({ code: 'username_reserved', message: '' }, en)).toBe(
      'This name is reserved; choose another.',
    );
    expect(errorText({ code: 'bad_credentials', message: '' }, en)).toBe(
      'Wrong username or password.',
    );
    expect(errorText({ code: 'invalid_credentials', message: '' }, zh)).toBe('用户名或密码错误。');
    expect(errorText({ code: 'no_such_user', message: '' }, zh)).toBe('没有这个用户。');
  });

  it('passes the server detail into invalid_field', () => {
    expect(
      errorText({ code: 'invalid_field', message: 'motto is too long' }, translator('en')),
    ).toContain('motto is too long');
  });

  it('falls back to the server message for an unknown code', () => {
    expect(errorText({ code: 'brand_new', message: 'Server says no' }, translator('en'))).toBe(
      'Server says no',
    );
  });
});
