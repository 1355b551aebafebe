import { memo } from 'react';
import type { LocalMessage } from '../bindings';
import { useI18n } from '../i18n';
import { formatDateTime, formatTime } from '../i18n/format';
import { bodyText } from '../state/conversation';
import { Avatar } from './Avatar';
import { FileCard } from './FileCard';
import { AlertIcon, ClockIcon, DoubleTickIcon, TickIcon } from './Icons';
import { ImageThumb } from './ImageThumb';

function StatusIcon({ message }: { message: LocalMessage }) {
  const { t } = useI18n();
  switch (message.state) {
    case 'sending':
      return (
        <span className="msg-status" title={t('message.sending')} aria-label={t('message.sending')}>
          <ClockIcon width={12} height={12} />
        </span>
      );
    case 'sent':
      return (
        <span className="msg-status" title={t('message.sent')} aria-label={t('message.sent')}>
          <TickIcon width={13} height={13} />
        </span>
      );
    case 'delivered':
      return (
        <span
          className="msg-status msg-status-delivered"
          title={t('message.delivered')}
          aria-label={t('message.delivered')}
        >
          <DoubleTickIcon width={17} height={13} />
        </span>
      );
    case 'failed':
      return (
        <span
          className="msg-status msg-status-failed"
          title={message.error ?? t('message.failed')}
          aria-label={t('message.failed')}
        >
          <AlertIcon width={13} height={13} />
        </span>
      );
    default:
      return null;
  }
}

function Body({ message, peerName }: { message: LocalMessage; peerName: string }) {
  const { t } = useI18n();
  const body = message.body;
  switch (body.kind) {
    case 'image':
      return <ImageThumb body={body} />;
    case 'file':
      return <FileCard body={body} peerName={peerName} />;
    case 'text':
      return (
        <span className="msg-text" data-testid="message-text">
          {bodyText(body, t)}
        </span>
      );
  }
}

export interface BubbleProps {
  message: LocalMessage;
  mine: boolean;
  runStart: boolean;
  showSender: boolean;
  senderName: string;
  /** The other person of a private chat (named on file cards). */
  peerName: string;
  highlighted: boolean;
  onRetry: (clientId: string) => void;
}

export const MessageBubble = memo(function MessageBubble({
  message,
  mine,
  runStart,
  showSender,
  senderName,
  peerName,
  highlighted,
  onRetry,
}: BubbleProps) {
  const { t, locale } = useI18n();
  const state = mine ? message.state : 'received';
  const failed = mine && message.state === 'failed';
  return (
    <div
      className={`msg-row ${mine ? 'msg-mine' : 'msg-theirs'} ${runStart ? 'msg-run-start' : ''}`}
    >
      {!mine &&
        (runStart ? (
          <Avatar username={message.from} name={senderName} size={34} />
        ) : (
          <span className="avatar-spacer" />
        ))}
      <div className="msg-col">
        {showSender && runStart && !mine && (
          <div className="msg-sender">
            {senderName}
            {message.from_guest && <span className="tag">{t('presence.guest')}</span>}
          </div>
        )}
        <div
          className={`bubble bubble-${message.body.kind} ${failed ? 'bubble-failed' : ''} ${highlighted ? 'bubble-highlight' : ''}`}
          data-testid="message"
          data-state={state}
          data-mine={mine ? 'true' : 'false'}
          data-msg-id={message.msg_id ?? ''}
          data-client-id={message.client_msg_id}
          data-highlighted={highlighted ? 'true' : undefined}
          title={formatDateTime(message.ts, locale)}
        >
          <Body message={message} peerName={peerName} />
          <span className="msg-meta">
            <time dateTime={new Date(message.ts).toISOString()}>
              {formatTime(message.ts, locale)}
            </time>
            {mine && <StatusIcon message={message} />}
          </span>
          {failed && (
            <span className="msg-failed" title={message.error ?? undefined}>
              <span>{t('message.failed')}</span>
              <button
                type="button"
                className="link-button"
                onClick={() => onRetry(message.client_msg_id)}
                data-testid="message-retry"
              >
                {t('message.retry')}
              </button>
            </span>
          )}
        </div>
      </div>
    </div>
  );
});
