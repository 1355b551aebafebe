import { useState } from 'react';
import type { FriendRequestInfo } from '../bindings';
import { useI18n } from '../i18n';
import { respondToRequest } from '../state/app';
import { Avatar } from './Avatar';
import { ChevronIcon } from './Icons';
import { useAction } from './useAction';

function IncomingRow({ request }: { request: FriendRequestInfo }) {
  const { t } = useI18n();
  const { busy, error, run } = useAction();
  const respond = async (accept: boolean) => {
    await run(async () => {
      await respondToRequest(request.from, accept);
    });
  };
  return (
    <li className="request-row" data-testid={`request-${request.from}`}>
      <Avatar username={request.from} size={32} />
      <div className="request-main">
        <div className="request-name">{request.from}</div>
        <div className="request-note">{request.message || t('requests.wantsToBeFriends')}</div>
        {error && <div className="field-error">{error}</div>}
        <div className="request-actions">
          <button
            type="button"
            className="button button-small button-primary"
            disabled={busy}
            onClick={() => void respond(true)}
            data-testid={`request-accept-${request.from}`}
          >
            {t('requests.accept')}
          </button>
          <button
            type="button"
            className="button button-small"
            disabled={busy}
            onClick={() => void respond(false)}
            data-testid={`request-reject-${request.from}`}
          >
            {t('requests.reject')}
          </button>
        </div>
      </div>
    </li>
  );
}

export function FriendRequests({
  incoming,
  outgoing,
}: {
  incoming: readonly FriendRequestInfo[];
  outgoing: readonly FriendRequestInfo[];
}) {
  const { t } = useI18n();
  const [open, setOpen] = useState(true);
  if (incoming.length === 0 && outgoing.length === 0) return null;
  return (
    <section className="requests" data-testid="requests">
      <button
        type="button"
        className="requests-toggle"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
      >
        <ChevronIcon className={`chevron ${open ? '' : 'chevron-closed'}`} />
        <span>{t('requests.title')}</span>
        {incoming.length > 0 && <span className="badge">{incoming.length}</span>}
      </button>
      {open && (
        <div className="requests-body">
          {incoming.length > 0 && (
            <>
              <h3 className="requests-heading">{t('requests.incoming')}</h3>
              <ul className="request-list">
                {incoming.map((r) => (
                  <IncomingRow key={r.from.toLowerCase()} request={r} />
                ))}
              </ul>
            </>
          )}
          {outgoing.length > 0 && (
            <>
              <h3 className="requests-heading">{t('requests.outgoing')}</h3>
              <ul className="request-list">
                {outgoing.map((r) => (
                  <li
                    key={r.to.toLowerCase()}
                    className="request-row request-outgoing"
                    data-testid={`outgoing-${r.to}`}
                  >
                    <Avatar username={r.to} size={32} />
                    <div className="request-main">
                      <div className="request-name">{r.to}</div>
                      <div className="request-note muted">{t('requests.pending')}</div>
                    </div>
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </section>
  );
}
