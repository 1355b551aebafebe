import { useI18n } from '../i18n';
import { startHosting, stopHosting, useLan } from '../state/lan';
import { groupFingerprint } from './CertificateWarning';
import { FormError } from './FormError';
import { useAction } from './useAction';

/** "Host a server on this computer": the switch, and where others reach it once it runs. */
export function HostPanel() {
  const { t } = useI18n();
  const hosting = useLan((s) => s.hosting);
  const { busy, error, run } = useAction();
  return (
    <div className="host-panel" data-testid="host-panel" data-hosting={hosting ? 'true' : 'false'}>
      {hosting ? (
        <>
          <p className="host-status">{t('host.running', { name: hosting.name })}</p>
          <div className="field">
            <span>{t('host.addresses')}</span>
            <ul className="host-addresses" data-testid="host-addresses">
              {hosting.addresses.map((a) => (
                <li key={a}>
                  <code>{a}</code>
                </li>
              ))}
            </ul>
          </div>
          <div className="field">
            <span>{t('host.fingerprint')}</span>
            <code
              className="fingerprint"
              data-testid="host-fingerprint"
              data-fingerprint={hosting.fingerprint}
            >
              {groupFingerprint(hosting.fingerprint).join(' ')}
            </code>
          </div>
          <p className="note">{t('host.note')}</p>
          <button
            type="button"
            className="button"
            data-testid="host-stop"
            disabled={busy}
            onClick={() => void run(stopHosting)}
          >
            {t('host.stop')}
          </button>
        </>
      ) : (
        <>
          <p className="note">{t('host.explain')}</p>
          <button
            type="button"
            className="button"
            data-testid="host-start"
            disabled={busy}
            onClick={() => void run(startHosting)}
          >
            {busy ? t('host.starting') : t('host.start')}
          </button>
        </>
      )}
      <FormError text={error} />
    </div>
  );
}
