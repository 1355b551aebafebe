import { useState } from 'react';
import { toIpcError } from '../backend';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { showToast, useApp } from '../state/app';
import { callBlocker, startCall, useCalls } from '../state/calls';
import { PhoneIcon } from './Icons';

/** Click-to-call in a friend's chat header; off (with the reason as its tooltip) when no call can start. */
export function CallButton({
  username,
  name,
  online,
}: {
  username: string;
  name: string;
  online: boolean;
}) {
  const { t } = useI18n();
  const current = useCalls((s) => s.current);
  const connected = useApp((s) => s.connection === 'online');
  const [starting, setStarting] = useState(false);
  const blocker = callBlocker(online, connected, current);
  const title =
    blocker === 'disconnected'
      ? t('call.startDisconnected')
      : blocker === 'busy'
        ? t('call.startBusy')
        : blocker === 'offline'
          ? t('call.startOffline', { name })
          : t('call.start', { name });
  const start = async () => {
    setStarting(true);
    try {
      await startCall(username);
    } catch (e) {
      const error = toIpcError(e);
      const why = error.code === 'forbidden' ? t('call.alreadyInCall') : errorText(error, t);
      showToast(t('call.failed', { error: why }));
    } finally {
      setStarting(false);
    }
  };
  // A disabled button gets no pointer events in WebKit, so the tooltip sits on a wrapper.
  return (
    <span className="call-button-wrap" title={title}>
      <button
        type="button"
        className="icon-button call-button"
        aria-label={title}
        disabled={blocker !== null || starting}
        onClick={() => void start()}
        data-testid="call-start"
        data-blocked={blocker ?? 'none'}
      >
        <PhoneIcon width={18} height={18} />
      </button>
    </span>
  );
}
