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

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;

/** A byte count for people: "820 B", "1.4 MB", "3.2 GB" (binary steps, as file managers show). */
export function formatBytes(bytes: number, locale: Locale, t: Translate): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  const n = new Intl.NumberFormat(locale, {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  }).format(value);
  return t(`transfer.unit.${UNITS[unit] ?? 'B'}`, { n });
}

/** A speed: "1.2 MB/s". */
export function formatRate(bytesPerSecond: number, locale: Locale, t: Translate): string {
  return t('transfer.rate', { size: formatBytes(bytesPerSecond, locale, t) });
}

/** Time left, rounded up to whole seconds: "7 s", "2 min 5 s", "1 h 4 min". */
export function formatDuration(seconds: number, t: Translate): string {
  const total = Math.max(0, Math.ceil(seconds));
  if (total < 60) return t('transfer.seconds', { s: total });
  if (total < 3600) return t('transfer.minutes', { m: Math.floor(total / 60), s: total % 60 });
  return t('transfer.hours', {
    h: Math.floor(total / 3600),
    m: Math.floor((total % 3600) / 60),
  });
}
