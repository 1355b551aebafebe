// The one translation layer: dictionaries, `{name}` interpolation, the current locale and
// Intl-based date formatting. No string shown to a user is written outside src/i18n.
import { useMemo } from 'react';
import { create } from 'zustand';
import { en, type Dictionary, type Key } from './en';
import { zhCN } from './zh-CN';

export type { Key, Dictionary };
export type Locale = 'en' | 'zh-CN';
export type Params = Record<string, string | number>;
export type Translate = (key: Key, params?: Params) => string;

export const dictionaries: Record<Locale, Dictionary> = { en, 'zh-CN': zhCN };

/** Replaces `{name}` with `params.name`; unknown placeholders stay as written. */
export function interpolate(template: string, params?: Params): string {
  if (!params) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    return value === undefined ? whole : String(value);
  });
}

export function translator(locale: Locale): Translate {
  const dict = dictionaries[locale];
  return (key, params) => interpolate(dict[key], params);
}

/** The locale for a saved setting (`en`, `zh-CN`, or null = follow the OS tag). */
export function resolveLocale(setting: string | null, osLanguage: string): Locale {
  const tag = (setting ?? osLanguage).toLowerCase();
  return tag.startsWith('zh') ? 'zh-CN' : 'en';
}

interface LocaleState {
  locale: Locale;
}

const useLocaleStore = create<LocaleState>(() => ({ locale: 'en' }));

export function setLocale(locale: Locale): void {
  useLocaleStore.setState({ locale });
  if (typeof document !== 'undefined') document.documentElement.lang = locale;
}

export function currentLocale(): Locale {
  return useLocaleStore.getState().locale;
}

/** Translates with the current locale (for code outside React). */
export const t: Translate = (key, params) => translator(currentLocale())(key, params);

/** The translator of the current locale; components re-render when it changes. */
export function useI18n(): { locale: Locale; t: Translate } {
  const locale = useLocaleStore((s) => s.locale);
  return useMemo(() => ({ locale, t: translator(locale) }), [locale]);
}
