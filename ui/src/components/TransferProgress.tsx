import type { TransferInfo } from '../bindings';
import { useI18n } from '../i18n';
import { formatBytes, formatDuration, formatRate } from '../i18n/format';
import { progressOf } from '../state/transfers';

/** A progress bar with percent, bytes, speed and time left. */
export function TransferProgress({ transfer }: { transfer: TransferInfo }) {
  const { t, locale } = useI18n();
  const p = progressOf(transfer);
  const paused = transfer.state === 'paused';
  const done = Math.min(transfer.done, transfer.size);
  return (
    <div
      className={`transfer-progress ${paused ? 'transfer-progress-paused' : ''}`}
      data-testid="transfer-progress"
      data-percent={p.percent}
    >
      <div
        className="progress-track"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={p.percent}
      >
        <div className="progress-fill" style={{ width: `${p.percent}%` }} />
      </div>
      <div className="progress-text">
        <span data-testid="transfer-percent">
          {t('transfer.progress', {
            percent: p.percent,
            done: formatBytes(done, locale, t),
            size: formatBytes(transfer.size, locale, t),
          })}
        </span>
        <span className="progress-speed">
          {paused
            ? t('transfer.paused')
            : p.secondsLeft === null
              ? t('transfer.stalled')
              : t('transfer.speedLeft', {
                  rate: formatRate(p.rate, locale, t),
                  left: formatDuration(p.secondsLeft, t),
                })}
        </span>
      </div>
    </div>
  );
}
