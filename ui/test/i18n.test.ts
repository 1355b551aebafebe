import { describe, expect, it } from 'vitest';
import { en } from '../src/i18n/en';
import { zhCN } from '../src/i18n/zh-CN';
import { interpolate, resolveLocale, translator } from '../src/i18n';

describe('dictionaries', () => {
  it('have identical key sets', () => {
    expect(Object.keys(zhCN).sort()).toEqual(Object.keys(en).sort());
  });

  it('have no empty strings', () => {
    for (const dict of [en, zhCN]) {
      for (const [key, value] of Object.entries(dict)) {
        expect(value.trim(), key).not.toBe('');
      }
    }
  });

  it('use the same placeholders in both languages', () => {
    const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(placeholders(zhCN[key]), key).toEqual(placeholders(en[key]));
    }
  });

  it('Chinese is really Chinese where it matters', () => {
    const zh = translator('zh-CN');
    expect(zh('login.submit')).toBe('登录');
    expect(zh('login.tabRegister')).toBe('注册');
    expect(zh('login.tabGuest')).toBe('游客登录');
    expect(zh('requests.title')).toBe('好友请求');
    expect(zh('conv.square')).toBe('广场');
    expect(zh('message.delivered')).toBe('已送达');
    expect(zh('message.failed')).toBe('发送失败');
    expect(zh('message.retry')).toBe('重试');
    expect(zh('banner.connecting')).toBe('正在重新连接…');
  });
});

describe('t()', () => {
  it('interpolates {name} and leaves unknown placeholders', () => {
    expect(interpolate('Hello {name}, {missing}', { name: 'Bob' })).toBe('Hello Bob, {missing}');
    expect(translator('en')('chat.onlineCount', { count: 3 })).toBe('3 online');
    expect(translator('zh-CN')('chat.onlineCount', { count: 3 })).toBe('3 人在线');
  });

  it('picks the language from the setting, else the OS', () => {
    expect(resolveLocale(null, 'zh-CN')).toBe('zh-CN');
    expect(resolveLocale(null, 'zh-TW')).toBe('zh-CN');
    expect(resolveLocale(null, 'zh')).toBe('zh-CN');
    expect(resolveLocale(null, 'de-DE')).toBe('en');
    expect(resolveLocale('en', 'zh-CN')).toBe('en');
    expect(resolveLocale('zh-CN', 'en-US')).toBe('zh-CN');
  });
});
