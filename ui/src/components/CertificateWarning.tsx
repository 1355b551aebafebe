import { useState } from 'react';
import type { ServerSettings } from '../bindings';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { ShieldIcon } from './Icons';

/** "AB12CD34…" → "AB12 CD34 …", grouped for reading aloud and comparing. */
export function groupFingerprint(fingerprint: string): string[] {
  const compact = fingerprint.replace(/[\s:]/g, '').toUpperCase();
  return compact.match(/.{1,4}/g) ?? [fingerprint];
}

export function serverLabel(server: ServerSettings): string {
  return `${server.host}:${server.port}`;
}

/** The server's certificate changed: show the new fingerprint; trust it or cancel. */
export function CertificateWarning({
  fingerprint,
  server,
  onTrust,
  onCancel,
}: {
  fingerprint: string;
  server: ServerSettings;
  onTrust: () => Promise<{ code: string; message: string } | null>;
  onCancel: () => void;
}) {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const trust = async () => {
    setBusy(true);
    setError(null);
    const e = await onTrust();
    setBusy(false);
    if (e) setError(errorText(e, t));
  };
  return (
    <div className="cert-warning" data-testid="cert-warning" role="alert">
      <div className="cert-warning-head">
        <ShieldIcon width={22} height={22} />
        <h2>{t('cert.title')}</h2>
      </div>
      <p>{t('cert.body', { server: serverLabel(server) })}</p>
      <div className="cert-fingerprint-label">{t('cert.fingerprint')}</div>
      <code className="cert-fingerprint">
        {groupFingerprint(fingerprint).map((g, i) => (
          <span key={i}>{g}</span>
        ))}
      </code>
      {error && (
        <p className="form-error" data-testid="form-error" role="alert">
          {error}
        </p>
      )}
      <div className="button-row">
        <button type="button" className="button" onClick={onCancel} disabled={busy}>
          {t('cert.cancel')}
        </button>
        <button
          type="button"
          className="button button-danger"
          onClick={() => void trust()}
          disabled={busy}
          data-testid="cert-trust"
        >
          {t('cert.trust')}
        </button>
      </div>
    </div>
  );
}
