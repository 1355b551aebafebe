import { describe, expect, it } from 'vitest';
import { translator } from '../src/i18n';
import { dayLabel, formatTime } from '../src/i18n/format';
import { buildRows } from '../src/state/rows';
import { msg } from './fixtures';

const at = (y: number, mo: number, d: number, h: number, mi = 0) =>
  new Date(y, mo - 1, d, h, mi).getTime();

describe('day separators', () => {
  it('start each local day, with the sender shown where a run starts', () => {
    const messages = [
      msg({ ts: at(2024, 3, 4, 23, 50), from: 'bob' }),
      msg({ ts: at(2024, 3, 4, 23, 51), from: 'bob' }),
      msg({ ts: at(2024, 3, 5, 0, 5), from: 'bob' }),
      msg({ ts: at(2024, 3, 5, 0, 6), from: 'alice' }),
      msg({ ts: at(2024, 3, 5, 9, 0), from: 'alice' }),
    ];
    const rows = buildRows(messages, 'alice');
    expect(rows.map((r) => r.dayStart)).toEqual([true, false, true, false, false]);
    const flags = rows.map((r) => [r.mine, r.runStart]);
    expect(flags).toEqual([
      [false, true],
      [false, false],
      [false, true], // new day
      [true, true], // new sender
      [true, true], // long pause
    ]);
  });

  it('are labelled Today, Yesterday or the full date, in English and Chinese', () => {
    const now = at(2024, 3, 5, 12);
    const en = translator('en');
    const zh = translator('zh-CN');
    expect(dayLabel(at(2024, 3, 5, 0, 1), now, 'en', en)).toBe('Today');
    expect(dayLabel(at(2024, 3, 4, 23, 59), now, 'en', en)).toBe('Yesterday');
    expect(dayLabel(at(2024, 3, 5, 8), now, 'zh-CN', zh)).toBe('今天');
    expect(dayLabel(at(2024, 3, 4, 8), now, 'zh-CN', zh)).toBe('昨天');
    const older = at(2024, 3, 1, 8);
    expect(dayLabel(older, now, 'en', en)).toMatch(/Friday.*March.*1.*2024|Friday, 1 March 2024/);
    expect(dayLabel(older, now, 'zh-CN', zh)).toContain('2024年3月1日');
    expect(dayLabel(older, now, 'zh-CN', zh)).toContain('星期五');
  });

  it('times are 24-hour HH:MM', () => {
    expect(formatTime(at(2024, 3, 5, 7, 4), 'en')).toBe('07:04');
    expect(formatTime(at(2024, 3, 5, 19, 30), 'zh-CN')).toBe('19:30');
  });
});

describe('the unread divider', () => {
  it('goes above the first message from someone else after the read mark, once', () => {
    const messages = [
      msg({ msg_id: 4, from: 'bob' }),
      msg({ msg_id: 5, from: 'alice' }),
      msg({ msg_id: 6, from: 'bob' }),
      msg({ msg_id: 7, from: 'bob' }),
    ];
    expect(buildRows(messages, 'alice', 4).map((r) => r.unreadStart)).toEqual([
      false,
      false,
      true,
      false,
    ]);
    expect(buildRows(messages, 'alice').some((r) => r.unreadStart)).toBe(false);
    expect(buildRows(messages, 'alice', 7).some((r) => r.unreadStart)).toBe(false);
  });
});
