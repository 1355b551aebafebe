import { useEffect } from 'react';
import { useI18n } from './i18n';
import { onEvent } from './backend';
import { dismissNotice, handleEvent, start, useApp } from './state/app';
import { totalUnread, useChat, windowShown } from './state/chat';
import { IncomingCall } from './components/IncomingCall';
import { Modal } from './components/Modal';
import { ConnectScreen } from './screens/ConnectScreen';
import { LoginScreen } from './screens/LoginScreen';
import { MainScreen } from './screens/MainScreen';
import { StartScreen } from './screens/StartScreen';

function useEngine() {
  useEffect(() => {
    let unlisten: (() => void) | undefined;
    let stopped = false;
    // Listen first, so no event between start and the subscription is lost.
    onEvent(handleEvent)
      .then((u) => {
        if (stopped) u();
        else unlisten = u;
      })
      .catch(() => {
        // Outside the Tauri window (tests, a plain browser) there are no events.
      })
      .finally(() => {
        if (!stopped) void start();
      });
    return () => {
      stopped = true;
      unlisten?.();
    };
  }, []);
}

function useTitle() {
  const { t } = useI18n();
  const total = useChat((s) => totalUnread(s.unread));
  useEffect(() => {
    document.title = total > 0 ? t('app.titleUnread', { count: total }) : t('app.name');
  }, [total, t]);
  useEffect(() => {
    const onVisible = () => {
      if (!document.hidden) windowShown();
    };
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('focus', onVisible);
    return () => {
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('focus', onVisible);
    };
  }, []);
}

function Toast() {
  const toast = useApp((s) => s.toast);
  if (!toast) return null;
  return (
    <div className="toast" role="status" data-testid="toast">
      {toast}
    </div>
  );
}

function NoticeModal() {
  const { t } = useI18n();
  const notice = useApp((s) => s.notice);
  if (!notice) return null;
  return (
    <Modal title={notice.title} onClose={dismissNotice}>
      <p data-testid="notice-text">{notice.text}</p>
      <div className="button-row">
        <button
          type="button"
          className="button button-primary"
          onClick={dismissNotice}
          data-testid="notice-ok"
        >
          {t('common.ok')}
        </button>
      </div>
    </Modal>
  );
}

export function App() {
  useEngine();
  useTitle();
  const phase = useApp((s) => s.phase);
  return (
    <>
      {phase === 'starting' && <StartScreen />}
      {phase === 'connect' && <ConnectScreen />}
      {phase === 'login' && <LoginScreen />}
      {phase === 'main' && <MainScreen />}
      <NoticeModal />
      {phase === 'main' && <IncomingCall />}
      <Toast />
    </>
  );
}
