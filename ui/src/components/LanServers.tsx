import { useEffect, useState } from 'react';
import type { LanServer } from '../bindings';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { connectToLan } from '../state/app';
import { isOwnServer, loadLan, useLan } from '../state/lan';
import { groupFingerprint } from './CertificateWarning';
import { HostPanel } from './HostPanel';

/** The short form people compare aloud: the first 16 hex digits, grouped. */
function shortFingerprint(fingerprint: string): string {
  return groupFingerprint(fingerprint).slice(0, 4).join(' ');
}

/** The connect screen's other half: servers announced on this network, and hosting one here. */
export function LanServers() {
  const { t } = useI18n();
  const servers = useLan((s) => s.servers);
  const hosting = useLan((s) => s.hosting);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void loadLan();
  }, []);

  const connect = async (server: LanServer) => {
    setBusy(server.id);
    setError(null);
    const failure = await connectToLan(server);
    setBusy(null);
    if (failure) setError(errorText(failure, t));
  };

  return (
    <section className="lan" data-testid="lan-servers">
      <h2 className="lan-title">{t('lan.title')}</h2>
      {servers.length === 0 ? (
        <p className="muted" data-testid="lan-empty">
          {t('lan.empty')}
        </p>
      ) : (
        <ul className="lan-list">
          {servers.map((server) => {
            const own = isOwnServer(server, hosting);
            return (
              <li
                key={server.id}
                className="lan-server"
                data-testid="lan-server"
                data-fingerprint={server.fingerprint}
                data-own={own ? 'true' : 'false'}
              >
                <div className="lan-server-text">
                  <span className="lan-server-name">
                    {server.name}
                    {own && <small className="tag">{t('lan.thisComputer')}</small>}
                  </span>
                  <span className="muted">
                    {server.host}:{server.tls_port}
                  </span>
                  <code className="fingerprint" title={server.fingerprint}>
                    {shortFingerprint(server.fingerprint)}
                  </code>
                </div>
                <button
                  type="button"
                  className="button button-primary"
                  data-testid="lan-connect"
                  disabled={busy !== null}
                  onClick={() => void connect(server)}
                >
                  {busy === server.id ? t('connect.submitting') : t('lan.connect')}
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {error && (
        <p className="form-error" data-testid="lan-error" role="alert">
          {error}
        </p>
      )}
      <details className="lan-host" open={hosting !== null}>
        <summary data-testid="host-open">{t('host.title')}</summary>
        <HostPanel />
      </details>
    </section>
  );
}
