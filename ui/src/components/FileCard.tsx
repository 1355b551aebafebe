import type { MessageBody, TransferInfo } from '../bindings';
import { useI18n, type Translate } from '../i18n';
import { formatBytes } from '../i18n/format';
import {
  acceptTransfer,
  cancelTransfer,
  cardView,
  pauseTransfer,
  rejectTransfer,
  resumeTransfer,
  showTransfer,
  useTransfers,
  type CardAction,
  type CardView,
} from '../state/transfers';
import { FileIcon } from './Icons';
import { TransferProgress } from './TransferProgress';
import { useAction } from './useAction';

export type FileBody = Extract<MessageBody, { kind: 'file' }>;

/** The short label on the file icon: the extension, if it has a short one. */
export function extensionLabel(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || name.length - dot > 6) return '';
  return name.slice(dot + 1).toUpperCase();
}

/** The sentence under the file name. */
export function statusText(
  view: CardView,
  transfer: TransferInfo | undefined,
  peerName: string,
  t: Translate,
): string {
  const sender = transfer ? transfer.direction === 'up' : false;
  switch (view.status) {
    case 'unknown':
      return t('transfer.unknown');
    case 'offered':
      return t('transfer.offered', { name: peerName });
    case 'waiting':
      return transfer?.state === 'uploaded'
        ? t('transfer.uploadedWaiting', { name: peerName })
        : t('transfer.offeredMine', { name: peerName });
    case 'moving':
      return sender ? t('transfer.uploading') : t('transfer.downloading');
    case 'paused':
      return t('transfer.paused');
    case 'done':
      return sender || !transfer?.path
        ? t('transfer.sent')
        : t('transfer.savedTo', { path: transfer.path });
    case 'rejected':
      return sender ? t('transfer.rejectedMine', { name: peerName }) : t('transfer.rejected');
    case 'cancelled':
      return t('transfer.cancelled');
    case 'failed':
      return t('transfer.failed', { error: transfer?.error ?? t('error.internal') });
  }
}

const ACTION_LABEL = {
  accept: 'transfer.accept',
  reject: 'transfer.reject',
  pause: 'transfer.pause',
  resume: 'transfer.resume',
  cancel: 'transfer.cancel',
  show: 'transfer.show',
} as const;

const ACTION_RUN: Record<CardAction, (fileId: string) => Promise<void>> = {
  accept: acceptTransfer,
  reject: rejectTransfer,
  pause: pauseTransfer,
  resume: resumeTransfer,
  cancel: cancelTransfer,
  show: showTransfer,
};

/** The buttons of a transfer, with their failure shown under them. */
export function TransferActions({
  fileId,
  actions,
}: {
  fileId: string;
  actions: readonly CardAction[];
}) {
  const { t } = useI18n();
  const { busy, error, run } = useAction();
  if (actions.length === 0 && !error) return null;
  return (
    <>
      {actions.length > 0 && (
        <div className="transfer-actions">
          {actions.map((a) => (
            <button
              key={a}
              type="button"
              className={`button button-small ${a === 'accept' ? 'button-primary' : ''}`}
              disabled={busy}
              onClick={() => void run(() => ACTION_RUN[a](fileId))}
              data-testid={`transfer-${a}`}
            >
              {t(ACTION_LABEL[a])}
            </button>
          ))}
        </div>
      )}
      {error && <div className="transfer-error field-error">{error}</div>}
    </>
  );
}

/** A file offer in the chat: name, size, and the live state of its transfer. */
export function FileCard({ body, peerName }: { body: FileBody; peerName: string }) {
  const { t, locale } = useI18n();
  const transfer = useTransfers((s) => s.byId[body.file_id]);
  const loaded = useTransfers((s) => s.loaded);
  const view = cardView(transfer);
  const ext = extensionLabel(body.name);
  return (
    <div
      className={`file-card file-card-${view.status}`}
      data-testid="file-card"
      data-state={transfer?.state ?? 'unknown'}
      data-file-id={body.file_id}
    >
      <div className="file-card-head">
        <span className="file-icon" aria-hidden="true">
          <FileIcon width={34} height={34} strokeWidth={1.5} />
          {ext && <span className="file-ext">{ext}</span>}
        </span>
        <span className="file-card-info">
          <span className="file-name" title={body.name} data-testid="file-name">
            {body.name}
          </span>
          <span className="file-size">{formatBytes(body.size, locale, t)}</span>
        </span>
      </div>
      {view.showProgress && transfer && <TransferProgress transfer={transfer} />}
      {(transfer || loaded) && (
        <div className="file-card-status" data-testid="file-status" title={transfer?.path ?? ''}>
          {statusText(view, transfer, peerName, t)}
        </div>
      )}
      <TransferActions fileId={body.file_id} actions={view.actions} />
    </div>
  );
}
