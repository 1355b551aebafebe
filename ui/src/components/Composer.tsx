import { useLayoutEffect, useRef, useState, type ClipboardEvent, type KeyboardEvent } from 'react';
import { useI18n } from '../i18n';
import { COUNTER_FROM_BYTES, TEXT_MAX_BYTES, utf8Length } from '../state/text';
import { ImageIcon, PaperclipIcon, SendIcon } from './Icons';

/** What the composer can send besides text. */
export interface Attachments {
  /** Files can be offered here (a private chat; the Square takes images only). */
  filesAllowed: boolean;
  /** The attach button: pick files to offer. */
  onPickFiles: () => void;
  /** The image button: pick images. */
  onPickImages: () => void;
  /** An image pasted from the clipboard. */
  onPasteImage: (file: File) => void;
}

/** The images on a clipboard, if any (a screenshot, a copied picture). */
export function pastedImages(data: DataTransfer | null): File[] {
  if (!data) return [];
  const files: File[] = [];
  for (const item of Array.from(data.items ?? [])) {
    if (item.kind === 'file' && item.type.startsWith('image/')) {
      const file = item.getAsFile();
      if (file) files.push(file);
    }
  }
  return files;
}

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
  attachments,
}: {
  draftKey: string;
  onSend: (text: string) => Promise<void>;
  disabled?: boolean;
  attachments?: Attachments;
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

  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    if (!attachments) return;
    const images = pastedImages(e.clipboardData);
    if (images.length === 0) return;
    // Text pasted together with a picture (some apps put both) stays out of the box.
    e.preventDefault();
    for (const file of images) attachments.onPasteImage(file);
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
        {attachments && (
          <div className="composer-tools">
            <button
              type="button"
              className="icon-button composer-tool"
              onClick={attachments.onPickFiles}
              disabled={!attachments.filesAllowed}
              data-testid="composer-attach"
              aria-label={t('composer.attach')}
              title={attachments.filesAllowed ? t('composer.attach') : t('composer.attachSquare')}
            >
              <PaperclipIcon width={19} height={19} />
            </button>
            <button
              type="button"
              className="icon-button composer-tool"
              onClick={attachments.onPickImages}
              data-testid="composer-image"
              aria-label={t('composer.image')}
              title={t('composer.image')}
            >
              <ImageIcon width={19} height={19} />
            </button>
          </div>
        )}
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
          onPaste={onPaste}
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
