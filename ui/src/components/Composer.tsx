import { useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useI18n } from '../i18n';
import { COUNTER_FROM_BYTES, TEXT_MAX_BYTES, utf8Length } from '../state/text';
import { SendIcon } from './Icons';

const MAX_LINES = 6;

/** Unsent text per conversation, kept while switching chats. */
const drafts = new Map<string, string>();

/**
 * The message box: Enter sends, Shift+Enter adds a line (so does Enter while an input method is
 * composing, e.g. pinyin), it grows up to six lines, and blank text is never sent.
 */
export function Composer({
  draftKey,
  onSend,
  disabled,
}: {
  draftKey: string;
  onSend: (text: string) => Promise<void>;
  disabled?: boolean;
}) {
  const { t } = useI18n();
  const [text, setText] = useState(() => drafts.get(draftKey) ?? '');
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  const bytes = utf8Length(text);
  const tooLong = bytes > TEXT_MAX_BYTES;
  const blank = text.trim().length === 0;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = 'auto';
    const style = getComputedStyle(el);
    const line = Number.parseFloat(style.lineHeight) || 20;
    const padding =
      (Number.parseFloat(style.paddingTop) || 0) + (Number.parseFloat(style.paddingBottom) || 0);
    const max = line * MAX_LINES + padding;
    el.style.height = `${Math.min(el.scrollHeight, max)}px`;
    el.style.overflowY = el.scrollHeight > max ? 'auto' : 'hidden';
  }, [text]);

  const update = (value: string) => {
    setText(value);
    setError(null);
    if (value) drafts.set(draftKey, value);
    else drafts.delete(draftKey);
  };

  const send = () => {
    if (blank || tooLong || disabled) return;
    const value = text;
    update('');
    onSend(value).catch((e: unknown) => {
      // Put the text back so nothing typed is lost.
      update(value);
      setError(e instanceof Error ? e.message : String(e));
    });
    ref.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key !== 'Enter' || e.shiftKey || e.nativeEvent.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    send();
  };

  return (
    <div className="composer">
      {(bytes >= COUNTER_FROM_BYTES || error) && (
        <div
          className={`composer-info ${tooLong || error ? 'field-error' : 'muted'}`}
          role="status"
        >
          {error ??
            (tooLong
              ? t('composer.tooLong', { used: bytes, max: TEXT_MAX_BYTES })
              : t('composer.counter', { used: bytes, max: TEXT_MAX_BYTES }))}
        </div>
      )}
      <div className="composer-row">
        <textarea
          ref={ref}
          className="composer-input"
          data-testid="composer-input"
          rows={1}
          value={text}
          placeholder={t('composer.placeholder')}
          aria-label={t('composer.label')}
          onChange={(e) => update(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <button
          type="button"
          className="button button-primary composer-send"
          onClick={send}
          disabled={blank || tooLong || disabled}
          data-testid="composer-send"
          aria-label={t('composer.send')}
          title={t('composer.send')}
        >
          <SendIcon width={16} height={16} />
          <span>{t('composer.send')}</span>
        </button>
      </div>
    </div>
  );
}
