import { mount } from '../src/mount';
import { emitDemoEvent, installDemoBackend, ringDemoCall } from './backend';

// Query parameters pick what to show, e.g. /demo/?user=alice&open=bob&theme=dark&lang=zh-CN
const params = new URLSearchParams(location.search);
installDemoBackend({
  user: params.get('user'),
  count: Number(params.get('count') ?? 3000),
  certChanged: params.has('cert'),
  language: params.get('lang'),
  theme: (params.get('theme') as 'light' | 'dark' | null) ?? 'system',
  bulk: params.has('bulk'),
});

function click(testId: string): void {
  document.querySelector<HTMLElement>(`[data-testid="${testId}"]`)?.click();
}

// Scripted steps once the main view is up, for screenshots.
const steps: (() => void)[] = [];
const open = params.get('open');
if (open) steps.push(() => click(open === 'square' ? 'conv-square' : `conv-user-${open}`));
const search = params.get('search');
if (search) {
  steps.push(() => {
    const input = document.querySelector<HTMLInputElement>('[data-testid="search-input"]');
    if (!input) return;
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set;
    setter?.call(input, search);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}
if (params.has('hit')) steps.push(() => click('search-result'));
if (params.has('settings')) steps.push(() => click('settings-open'));
if (params.has('online')) steps.push(() => click('online-count'));
if (params.has('offline'))
  steps.push(() => emitDemoEvent({ type: 'connection', state: 'offline' }));
if (params.has('ring')) steps.push(ringDemoCall);
// The chat header comes with the chat's first page: give it a tick.
if (params.has('call'))
  steps.push(
    () => {},
    () => click('call-start'),
  );
if (params.has('tab')) steps.push(() => click(`tab-${params.get('tab') ?? 'password'}`));

if (params.has('connect')) steps.unshift(() => click('connect-submit'));

let step = 0;
const timer = setInterval(() => {
  const ready =
    document.querySelector('[data-testid="main-view"]') ||
    document.querySelector('[data-testid="tab-password"]') ||
    document.querySelector('[data-testid="connect-submit"]');
  if (!ready) return;
  const next = steps[step++];
  if (next) next();
  else clearInterval(timer);
}, 400);

mount();
