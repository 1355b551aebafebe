import { describe, expect, it } from 'vitest';
import { excerpt, highlight } from '../src/state/highlight';

const marked = (text: string, query: string) =>
  highlight(text, query)
    .filter((s) => s.match)
    .map((s) => s.text);

describe('search highlighting', () => {
  it('marks Chinese matches', () => {
    expect(marked('我们明天在广场见面，广场很大', '广场')).toEqual(['广场', '广场']);
    expect(highlight('你好世界', '世界')).toEqual([
      { text: '你好', match: false },
      { text: '世界', match: true },
    ]);
  });

  it('is case-insensitive in English and keeps the original case', () => {
    expect(marked('Hello WORLD, hello world', 'world')).toEqual(['WORLD', 'world']);
    expect(marked('Natter', 'NAT')).toEqual(['Nat']);
  });

  it('marks every term of a mixed query, and accents fold', () => {
    expect(marked('明天 meeting at the Café', 'café 明天')).toEqual(['明天', 'Café']);
    expect(marked('Crème brûlée', 'creme')).toEqual(['Crème']);
  });

  it('joins the pieces back into the original text', () => {
    const text = 'A long line with 中文 and Mixed Case';
    expect(
      highlight(text, 'mixed 中')
        .map((s) => s.text)
        .join(''),
    ).toBe(text);
  });

  it('returns the text unmarked for an empty query', () => {
    expect(highlight('abc', '  ')).toEqual([{ text: 'abc', match: false }]);
  });

  it('brings a late match into a short preview', () => {
    const text = `${'x'.repeat(200)} needle here`;
    const short = excerpt(text, 'needle');
    expect(short.startsWith('…')).toBe(true);
    expect(short).toContain('needle');
    expect(short.length).toBeLessThan(text.length);
  });
});
