// Splits a message text into plain and matched parts for a search query: every whitespace-separated
// term, case- and accent-insensitive (as the store's search is), CJK included.

export interface Segment {
  text: string;
  match: boolean;
}

/** Folds one UTF-16 unit-preserving character: lowercase, accents removed, same length or kept. */
function foldChar(c: string): string {
  const folded = c.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
  return folded.length === c.length ? folded : c;
}

/** A folded copy of `s` of exactly the same length, so indexes map back one to one. */
export function fold(s: string): string {
  let out = '';
  for (const c of s) out += foldChar(c);
  return out;
}

export function highlight(text: string, query: string): Segment[] {
  const terms = fold(query)
    .split(/\s+/)
    .filter((term) => term.length > 0);
  if (terms.length === 0 || text.length === 0) return text ? [{ text, match: false }] : [];
  const hay = fold(text);
  const marks = new Uint8Array(text.length);
  for (const term of terms) {
    let from = 0;
    for (;;) {
      const at = hay.indexOf(term, from);
      if (at < 0) break;
      marks.fill(1, at, at + term.length);
      from = at + term.length;
    }
  }
  const segments: Segment[] = [];
  let start = 0;
  for (let i = 1; i <= text.length; i++) {
    if (i === text.length || marks[i] !== marks[start]) {
      segments.push({ text: text.slice(start, i), match: marks[start] === 1 });
      start = i;
    }
  }
  return segments;
}

/** A window of `text` around the first match, so long messages show the hit in a one-line preview. */
export function excerpt(text: string, query: string, radius = 40): string {
  const terms = fold(query)
    .split(/\s+/)
    .filter((term) => term.length > 0);
  const hay = fold(text);
  const at = terms.reduce((best, term) => {
    const i = hay.indexOf(term);
    return i >= 0 && (best < 0 || i < best) ? i : best;
  }, -1);
  if (at <= radius) return text;
  return `…${text.slice(at - radius)}`;
}
