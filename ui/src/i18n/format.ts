// Dates and times in the chosen locale, through Intl only.
import type { Locale, Translate } from './index';

const DAY_MS = 86_400_000;

function startOfDay(ts: number): number {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** A local-calendar day id ("2024-03-05"), for grouping messages by day. */
export function dayKey(ts: number): string {
  const d = new Date(ts);
  const m = String(d.getMonth() + 1).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, '0');
  return `${d.getFullYear()}-${m}-${day}`;
}

/** HH:MM, 24-hour. */
export function formatTime(ts: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale, {
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(ts);
}

/** A full date with weekday ("Tuesday, 5 March 2024" / "2024年3月5日星期二"). */
export function formatDate(ts: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale, {
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
  }).format(ts);
}

/** A short date for lists: the time today, "Yesterday", else the date. */
export function formatShort(ts: number, now: number, locale: Locale, t: Translate): string {
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / DAY_MS);
  if (days <= 0) return formatTime(ts, locale);
  if (days === 1) return t('day.yesterday');
  const sameYear = new Date(ts).getFullYear() === new Date(now).getFullYear();
  return new Intl.DateTimeFormat(locale, {
    year: sameYear ? undefined : 'numeric',
    month: 'numeric',
    day: 'numeric',
  }).format(ts);
}

/** The label of a day separator: "Today", "Yesterday", or the full date. */
export function dayLabel(ts: number, now: number, locale: Locale, t: Translate): string {
  // Rounding absorbs the hour a DST change adds or removes.
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / DAY_MS);
  if (days === 0) return t('day.today');
  if (days === 1) return t('day.yesterday');
  return formatDate(ts, locale);
}

/** Date and time for tooltips. */
export function formatDateTime(ts: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale, {
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(ts);
}
