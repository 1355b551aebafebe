import { useMemo } from 'react';
import type { TransferInfo } from '../bindings';
import { useI18n } from '../i18n';
import type { ConvKey } from '../state/conversation';
import { cardView, dismissTransfer, pendingUploads, useTransfers } from '../state/transfers';
import { ImageIcon } from './Icons';
import { TransferActions } from './FileCard';
import { TransferProgress } from './TransferProgress';

function Upload({ transfer }: { transfer: TransferInfo }) {
  const { t } = useI18n();
  const view = cardView(transfer);
  const failed = transfer.state === 'failed';
  return (
    <li className="upload" data-testid="upload" data-state={transfer.state}>
      <span className="upload-icon" aria-hidden="true">
        <ImageIcon width={20} height={20} />
      </span>
      <div className="upload-main">
        <div className="upload-title" title={transfer.name}>
          {t('transfer.sendingImage', { name: transfer.name })}
        </div>
        {failed ? (
          <div className="field-error">
            {t('transfer.failed', { error: transfer.error ?? t('error.internal') })}
          </div>
        ) : (
          <TransferProgress transfer={transfer} />
        )}
      </div>
      <div className="upload-actions">
        <TransferActions fileId={transfer.file_id} actions={view.actions} />
        {failed && (
          <button
            type="button"
            className="button button-small"
            onClick={() => dismissTransfer(transfer.file_id)}
            data-testid="upload-dismiss"
          >
            {t('transfer.dismiss')}
          </button>
        )}
      </div>
    </li>
  );
}

/** The sender's images still uploading in this chat; each becomes a message when it is up. */
export function UploadTray({ convKey }: { convKey: ConvKey }) {
  const byId = useTransfers((s) => s.byId);
  const dismissed = useTransfers((s) => s.dismissed);
  const uploads = useMemo(
    () => pendingUploads(byId, dismissed, convKey),
    [byId, dismissed, convKey],
  );
  if (uploads.length === 0) return null;
  return (
    <ul className="upload-tray" data-testid="upload-tray">
      {uploads.map((u) => (
        <Upload key={u.file_id} transfer={u} />
      ))}
    </ul>
  );
}
