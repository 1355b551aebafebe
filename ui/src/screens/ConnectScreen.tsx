import { useState, type FormEvent } from 'react';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { connectTo, dismissCertificate, trustCertificate, useApp } from '../state/app';
import { CertificateWarning } from '../components/CertificateWarning';
import { LanServers } from '../components/LanServers';
import { AuthLayout } from './AuthLayout';

export const TLS_PORT = 4399;
export const PLAIN_PORT = 4004;

/** Switching TLS moves the port to the other default, unless the user chose their own. */
export function portAfterTlsToggle(port: string, tls: boolean): string {
  const defaultBefore = String(tls ? PLAIN_PORT : TLS_PORT);
  if (port.trim() === '' || port.trim() === defaultBefore)
    return String(tls ? TLS_PORT : PLAIN_PORT);
  return port;
}

export function ConnectScreen() {
  const { t } = useI18n();
  const saved = useApp((s) => s.server);
  const startError = useApp((s) => s.loginError);
  const certChange = useApp((s) => s.certChange);
  const [host, setHost] = useState(saved.host);
  const [port, setPort] = useState(String(saved.port));
  const [tls, setTls] = useState(saved.tls);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(startError);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    const portNumber = Number.parseInt(port, 10);
    const failure = await connectTo({
      host: host.trim(),
      port: Number.isFinite(portNumber) && portNumber > 0 && portNumber < 65536 ? portNumber : 0,
      tls,
    });
    setBusy(false);
    if (failure && failure.code !== 'certificate_changed') setError(errorText(failure, t));
  };

  return (
    <AuthLayout>
      {certChange ? (
        <CertificateWarning
          fingerprint={certChange.fingerprint}
          server={certChange.server}
          onTrust={trustCertificate}
          onCancel={dismissCertificate}
        />
      ) : (
        <form className="form" onSubmit={(e) => void submit(e)} noValidate>
          <h1 className="auth-title">{t('connect.title')}</h1>
          <p className="muted">{t('connect.subtitle')}</p>
          <div className="field-row">
            <label className="field field-grow">
              <span>{t('connect.host')}</span>
              <input
                data-testid="connect-host"
                value={host}
                onChange={(e) => setHost(e.target.value)}
                autoComplete="off"
                spellCheck={false}
                autoFocus
              />
            </label>
            <label className="field field-port">
              <span>{t('connect.port')}</span>
              <input
                data-testid="connect-port"
                value={port}
                inputMode="numeric"
                onChange={(e) => setPort(e.target.value.replace(/[^0-9]/g, ''))}
              />
            </label>
          </div>
          <label className="check">
            <input
              type="checkbox"
              data-testid="connect-tls"
              checked={tls}
              onChange={(e) => {
                const next = e.target.checked;
                setPort((p) => portAfterTlsToggle(p, next));
                setTls(next);
              }}
            />
            <span>
              {t('connect.tls')}
              <small className="muted">{t('connect.tlsHint')}</small>
            </span>
          </label>
          {error && (
            <p className="form-error" data-testid="form-error" role="alert">
              {error}
            </p>
          )}
          <button
            type="submit"
            className="button button-primary button-block"
            disabled={busy}
            data-testid="connect-submit"
          >
            {busy ? t('connect.submitting') : t('connect.submit')}
          </button>
        </form>
      )}
      {!certChange && <LanServers />}
    </AuthLayout>
  );
}
