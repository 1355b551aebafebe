import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { Target } from '../bindings';
import { useI18n } from '../i18n';
import { dayLabel } from '../i18n/format';
import {
  loadNewer,
  loadOlder,
  openConversation,
  retryMessage,
  type ConvState,
} from '../state/chat';
import { useNow } from '../state/clock';
import { thumbSize } from '../state/images';
import { buildRows, type Row } from '../state/rows';
import { ArrowDownIcon } from './Icons';
import { MessageBubble } from './MessageBubble';

/** Start loading the next page this close to an edge, before the user reaches it. */
const EDGE_PX = 600;
/** Within this many pixels of the bottom counts as "at the bottom". */
const AT_END_PX = 48;

/** A row's height before it is measured: images announce theirs, so the list does not jump. */
function estimate(row: Row | undefined): number {
  if (!row) return 60;
  const gap = (row.runStart ? 14 : 4) + (row.dayStart ? 44 : 0) + (row.unreadStart ? 36 : 0);
  const body = row.message.body;
  switch (body.kind) {
    case 'image':
      return thumbSize(body.width, body.height).height + 10 + gap + (row.runStart ? 18 : 0);
    case 'file':
      return 150 + gap;
    case 'text':
      return (row.runStart ? 66 : 44) + (row.dayStart ? 44 : 0) + (row.unreadStart ? 36 : 0);
  }
}

export function MessageList({
  conv,
  me,
  nameOf,
  stickSeq,
}: {
  conv: ConvState;
  me: string;
  nameOf: (username: string) => string;
  /** Bumped when the user sends: scroll to the newest message. */
  stickSeq: number;
}) {
  const { t, locale } = useI18n();
  const now = useNow();
  const target: Target = conv.target;
  const isSquare = target.kind === 'square';
  const rows = useMemo(
    () => buildRows(conv.messages, me, conv.readUpTo),
    [conv.messages, me, conv.readUpTo],
  );
  const lastKey = rows.length > 0 ? (rows[rows.length - 1] as Row).key : null;
  const parentRef = useRef<HTMLDivElement>(null);
  const [atEnd, setAtEnd] = useState(true);
  const [farFromEnd, setFarFromEnd] = useState(false);
  /** The newest row when the user scrolled away from the bottom: anything after it is unseen. */
  const [awayKey, setAwayKey] = useState<string | null>(null);

  // The virtualizer keeps the anchor row still when older rows are prepended and follows new
  // rows while the user is at the bottom (anchorTo/followOnAppend), with measured row heights.
  // eslint-disable-next-line react-hooks/incompatible-library -- the virtualizer is a mutable instance by design; it is only read during render here
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parentRef.current,
    estimateSize: (i) => estimate(rows[i]),
    getItemKey: (i) => (rows[i] as Row).key,
    overscan: 6,
    useFlushSync: false,
    anchorTo: 'end',
    followOnAppend: true,
    scrollEndThreshold: AT_END_PX,
    paddingStart: 36,
    paddingEnd: 16,
  });

  const onScroll = useCallback(() => {
    const el = parentRef.current;
    if (!el) return;
    const fromEnd = el.scrollHeight - el.scrollTop - el.clientHeight;
    const end = fromEnd <= AT_END_PX;
    if (end !== atEnd) {
      setAtEnd(end);
      setAwayKey(end ? null : lastKey);
    }
    setFarFromEnd(fromEnd > el.clientHeight);
    if (el.scrollTop < EDGE_PX && conv.loaded && conv.hasOlder && !conv.loadingOlder) {
      void loadOlder(target);
    }
    if (fromEnd < EDGE_PX && !conv.liveEnd && !conv.loadingNewer) void loadNewer(target);
  }, [
    atEnd,
    conv.loaded,
    conv.hasOlder,
    conv.loadingOlder,
    conv.liveEnd,
    conv.loadingNewer,
    lastKey,
    target,
  ]);

  // A short first page does not fill the pane, so no scroll event would ever ask for more.
  useEffect(() => {
    const el = parentRef.current;
    if (!el || !conv.loaded || conv.loadingOlder || !conv.hasOlder) return;
    if (el.scrollHeight <= el.clientHeight + EDGE_PX) void loadOlder(target);
  }, [conv.loaded, conv.loadingOlder, conv.hasOlder, rows.length, target]);

  // Open at the newest message (a search jump positions itself below).
  const opened = useRef(false);
  useLayoutEffect(() => {
    if (opened.current || rows.length === 0) return;
    opened.current = true;
    if (!conv.highlight) virtualizer.scrollToEnd();
  }, [rows.length, conv.highlight, virtualizer]);

  // Jump to a search hit once per jump.
  const jumpedSeq = useRef(0);
  useLayoutEffect(() => {
    if (!conv.highlight || jumpedSeq.current === conv.jumpSeq) return;
    const index = rows.findIndex((r) => r.key === conv.highlight);
    if (index < 0) return;
    jumpedSeq.current = conv.jumpSeq;
    virtualizer.scrollToIndex(index, { align: 'center' });
  }, [conv.highlight, conv.jumpSeq, rows, virtualizer]);

  // The user sent a message: show it, wherever they were.
  const stuckSeq = useRef(stickSeq);
  useLayoutEffect(() => {
    if (stuckSeq.current === stickSeq || rows.length === 0) return;
    stuckSeq.current = stickSeq;
    virtualizer.scrollToEnd();
  }, [stickSeq, rows.length, virtualizer]);

  const toLatest = () => {
    if (!conv.liveEnd) {
      void openConversation(target);
      return;
    }
    virtualizer.scrollToEnd({ behavior: 'smooth' });
  };

  const hasUnseen = conv.liveEnd && !atEnd && awayKey !== null && lastKey !== awayKey;
  const showPill = rows.length > 0 && (hasUnseen || !conv.liveEnd || farFromEnd);
  const items = virtualizer.getVirtualItems();
  const peerNameOf = (row: Row) => {
    const m = row.message;
    if (!row.mine) return nameOf(m.from);
    return m.to.kind === 'user' ? nameOf(m.to.username) : '';
  };

  return (
    <div className="message-list-wrap">
      <div
        ref={parentRef}
        className="message-list"
        data-testid="message-list"
        onScroll={onScroll}
        tabIndex={0}
        role="log"
        aria-live="polite"
      >
        {conv.loaded && rows.length === 0 && !conv.error && (
          <div className="chat-empty muted">{t('chat.empty')}</div>
        )}
        {!conv.loaded && <div className="chat-empty muted">{t('chat.loading')}</div>}
        {conv.error && (
          <div className="chat-empty field-error">{t('chat.loadError', { error: conv.error })}</div>
        )}
        <div className="message-list-inner" style={{ height: virtualizer.getTotalSize() }}>
          {conv.loadingOlder && <div className="list-loading muted">{t('chat.loadingOlder')}</div>}
          {conv.loaded && !conv.hasOlder && rows.length > 0 && (
            <div className="list-beginning muted">{t('chat.beginning')}</div>
          )}
          {items.map((item) => {
            const row = rows[item.index];
            if (!row) return null;
            return (
              <div
                key={item.key as string}
                data-index={item.index}
                ref={virtualizer.measureElement}
                className="message-list-item"
                style={{ transform: `translateY(${item.start}px)` }}
              >
                {row.dayStart && (
                  <div className="day-separator" role="separator">
                    <span>{dayLabel(row.message.ts, now, locale, t)}</span>
                  </div>
                )}
                {row.unreadStart && (
                  <div className="unread-separator" role="separator" data-testid="unread-divider">
                    <span>{t('chat.unreadBelow')}</span>
                  </div>
                )}
                <MessageBubble
                  message={row.message}
                  mine={row.mine}
                  runStart={row.runStart}
                  showSender={isSquare}
                  senderName={nameOf(row.message.from)}
                  peerName={peerNameOf(row)}
                  highlighted={conv.highlight === row.key}
                  onRetry={retryMessage}
                />
              </div>
            );
          })}
        </div>
      </div>
      {showPill && (
        <button
          type="button"
          className={`new-messages-pill ${hasUnseen ? '' : 'pill-icon'}`}
          onClick={toLatest}
          data-testid="new-messages"
          aria-label={t('chat.jumpToLatest')}
          title={t('chat.jumpToLatest')}
        >
          <ArrowDownIcon width={16} height={16} />
          {hasUnseen && t('chat.newMessages')}
        </button>
      )}
    </div>
  );
}
