import { render, screen, waitFor } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LocalMessage } from '../src/bindings';
import { MessageList } from '../src/components/MessageList';
import type { ConvState } from '../src/state/chat';

vi.mock('../src/backend', () => ({
  call: vi.fn(() => Promise.resolve([])),
  onEvent: vi.fn(),
  toIpcError: (e: unknown) => e,
}));

const start = Date.UTC(2020, 0, 1);

function manyMessages(n: number): LocalMessage[] {
  const out: LocalMessage[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const mine = i % 3 === 0;
    out[i] = {
      msg_id: i + 1,
      client_msg_id: `m${i}`,
      from: mine ? 'alice' : 'bob',
      from_guest: false,
      to: { kind: 'user', username: mine ? 'bob' : 'alice' },
      ts: start + i * 60_000,
      body: { kind: 'text', text: `message number ${i}` },
      state: mine ? 'delivered' : 'received',
      error: null,
    };
  }
  return out;
}

function conv(messages: LocalMessage[]): ConvState {
  return {
    target: { kind: 'user', username: 'bob' },
    messages,
    loaded: true,
    loadingOlder: false,
    hasOlder: false,
    liveEnd: true,
    loadingNewer: false,
    highlight: null,
    jumpSeq: 0,
    error: null,
    readUpTo: null,
  };
}

// jsdom has no layout: give the scroll container a window's size, every row a height, and
// scrolling a memory.
let restore: () => void = () => {};
beforeEach(() => {
  const proto = HTMLElement.prototype;
  const saved = [
    'clientHeight',
    'clientWidth',
    'offsetHeight',
    'scrollHeight',
    'scrollTop',
    'scrollTo',
  ].map((name) => [name, Object.getOwnPropertyDescriptor(proto, name)] as const);
  Object.defineProperty(proto, 'clientHeight', { configurable: true, get: () => 600 });
  Object.defineProperty(proto, 'clientWidth', { configurable: true, get: () => 800 });
  const scrollTops = new WeakMap<Element, number>();
  Object.defineProperty(proto, 'scrollTop', {
    configurable: true,
    get(this: Element) {
      return scrollTops.get(this) ?? 0;
    },
    set(this: Element, value: number) {
      scrollTops.set(this, value);
      this.dispatchEvent(new Event('scroll'));
    },
  });
  Object.defineProperty(proto, 'offsetHeight', { configurable: true, get: () => 48 });
  // The list's content is as tall as the sized inner element the virtualiser writes.
  Object.defineProperty(proto, 'scrollHeight', {
    configurable: true,
    get(this: HTMLElement) {
      const sized = [...this.children].map((c) => parseFloat((c as HTMLElement).style.height) || 0);
      return Math.max(600, ...sized);
    },
  });
  Object.defineProperty(proto, 'scrollTo', {
    configurable: true,
    value(this: Element, options: ScrollToOptions) {
      if (options.top !== undefined) scrollTops.set(this, options.top);
      this.dispatchEvent(new Event('scroll'));
    },
  });
  restore = () => {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(proto, name, descriptor);
      else delete (proto as unknown as Record<string, unknown>)[name];
    }
  };
});
afterEach(() => restore());

describe('the message list', () => {
  it('renders a few dozen rows, not 100,000, and stays quick', () => {
    const messages = manyMessages(100_000);
    const started = performance.now();
    render(<MessageList conv={conv(messages)} me="alice" nameOf={(u) => u} stickSeq={0} />);
    const elapsed = performance.now() - started;
    const bubbles = screen.queryAllByTestId('message');
    expect(bubbles.length).toBeGreaterThan(0);
    expect(bubbles.length).toBeLessThan(100);
    expect(elapsed).toBeLessThan(5000);
  });

  it('opens at the newest message', async () => {
    const messages = manyMessages(100_000);
    render(<MessageList conv={conv(messages)} me="alice" nameOf={(u) => u} stickSeq={0} />);
    await waitFor(() => {
      const shown = screen.getAllByTestId('message').map((b) => b.dataset.clientId);
      expect(shown).toContain('m99999');
      expect(shown).not.toContain('m0');
    });
    expect(screen.getAllByTestId('message').length).toBeLessThan(100);
  });

  it('marks each bubble with its state, side and ids', () => {
    const messages = manyMessages(3);
    render(<MessageList conv={conv(messages)} me="alice" nameOf={(u) => u} stickSeq={0} />);
    const bubbles = screen.getAllByTestId('message');
    const mine = bubbles.find((b) => b.dataset.clientId === 'm0');
    const theirs = bubbles.find((b) => b.dataset.clientId === 'm1');
    expect(mine?.dataset).toMatchObject({ state: 'delivered', mine: 'true', msgId: '1' });
    expect(theirs?.dataset).toMatchObject({ state: 'received', mine: 'false', msgId: '2' });
  });

  it('keeps new lines and shows Retry with the reason on a failed message', () => {
    const failed: LocalMessage = {
      ...manyMessages(1)[0]!,
      msg_id: null,
      client_msg_id: 'f1',
      body: { kind: 'text', text: 'line one\nline two' },
      state: 'failed',
      error: 'The server is busy.',
    };
    render(<MessageList conv={conv([failed])} me="alice" nameOf={(u) => u} stickSeq={0} />);
    const bubble = screen.getByTestId('message');
    expect(bubble.dataset.state).toBe('failed');
    expect(bubble.dataset.msgId).toBe('');
    expect(screen.getByTestId('message-text').textContent).toBe('line one\nline two');
    expect(screen.getByTestId('message-retry')).toBeInTheDocument();
    expect(bubble.querySelector('[title="The server is busy."]')).not.toBeNull();
  });

  it('shows a day separator', () => {
    render(<MessageList conv={conv(manyMessages(2))} me="alice" nameOf={(u) => u} stickSeq={0} />);
    expect(screen.getAllByRole('separator').length).toBeGreaterThan(0);
  });
});
