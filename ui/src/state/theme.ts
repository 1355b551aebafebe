// Applies the colour scheme: `system` follows prefers-color-scheme live.
import type { Theme } from '../bindings';

let media: MediaQueryList | null = null;
let listener: (() => void) | null = null;

function set(dark: boolean): void {
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

export function applyTheme(theme: Theme): void {
  if (media && listener) media.removeEventListener('change', listener);
  media = null;
  listener = null;
  if (theme !== 'system') {
    set(theme === 'dark');
    return;
  }
  if (typeof window.matchMedia !== 'function') {
    set(false);
    return;
  }
  const query = window.matchMedia('(prefers-color-scheme: dark)');
  const follow = () => set(query.matches);
  query.addEventListener('change', follow);
  media = query;
  listener = follow;
  follow();
}
