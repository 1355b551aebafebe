import { useI18n } from '../i18n';
import { UploadIcon } from './Icons';

/** Shown over the chat while files are dragged onto the window. */
export function DropOverlay({ square, peerName }: { square: boolean; peerName: string }) {
  const { t } = useI18n();
  return (
    <div className="drop-overlay" data-testid="drop-overlay" aria-live="polite">
      <div className="drop-box">
        <UploadIcon width={36} height={36} />
        <div className="drop-title">{t('drop.title')}</div>
        <div className="drop-hint">
          {square ? t('drop.square') : t('drop.private', { name: peerName })}
        </div>
      </div>
    </div>
  );
}
