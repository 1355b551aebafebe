import { useEffect, useId, useRef, useState } from 'react';
import { toIpcError } from '../backend';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { showToast } from '../state/app';
import { answerCall, useCalls } from '../state/calls';
import { Avatar } from './Avatar';
import { HangUpIcon, PhoneIcon } from './Icons';
import { usePeerName } from './usePeerName';

/** Someone is calling: over every screen and dialog until it is answered or stops ringing. */
export function IncomingCall() {
  const current = useCalls((s) => s.current);
  if (!current || current.phase !== 'ringing' || current.outgoing) return null;
  return <IncomingCallDialog key={current.call_id} peer={current.peer} />;
}

function IncomingCallDialog({ peer }: { peer: string }) {
  const { t } = useI18n();
  const name = usePeerName(peer);
  const titleId = useId();
  const [answering, setAnswering] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  const answer = async (accept: boolean) => {
    setAnswering(true);
    try {
      await answerCall(accept);
    } catch (e) {
      showToast(t('call.actionFailed', { error: errorText(toIpcError(e), t) }));
      setAnswering(false);
    }
  };
  return (
    <div className="incoming-backdrop">
      <div
        ref={ref}
        className="incoming-call"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby={titleId}
        tabIndex={-1}
        data-testid="incoming-call"
      >
        <div className="incoming-avatar" aria-hidden="true">
          <span className="incoming-ring" />
          <span className="incoming-ring incoming-ring-late" />
          <Avatar username={peer} name={name} size={84} />
        </div>
        <div className="incoming-label">{t('call.incoming')}</div>
        <h2 id={titleId} className="incoming-name" data-testid="incoming-name">
          {name}
        </h2>
        <p className="incoming-text muted">{t('call.incomingFrom', { name })}</p>
        <div className="incoming-actions">
          <button
            type="button"
            className="call-round call-round-decline"
            disabled={answering}
            onClick={() => void answer(false)}
            data-testid="call-decline"
          >
            <span className="call-round-icon">
              <HangUpIcon width={26} height={26} />
            </span>
            {t('call.decline')}
          </button>
          <button
            type="button"
            className="call-round call-round-accept"
            disabled={answering}
            onClick={() => void answer(true)}
            data-testid="call-accept"
          >
            <span className="call-round-icon">
              <PhoneIcon width={24} height={24} />
            </span>
            {t('call.accept')}
          </button>
        </div>
      </div>
    </div>
  );
}
