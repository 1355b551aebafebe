import { useEffect, useState } from 'react';
import type { CallInfo } from '../bindings';
import { call, toIpcError } from '../backend';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { showToast } from '../state/app';
import { hangUp, isLive, statusText, toggleMute, useCalls } from '../state/calls';
import { openConversation } from '../state/chat';
import { userTarget } from '../state/conversation';
import { Avatar } from './Avatar';
import { HangUpIcon, MicIcon, MicOffIcon } from './Icons';
import { usePeerName } from './usePeerName';

/** How often the microphone level is asked for while talking. */
export const LEVEL_POLL_MS = 100;
/** How often the duration is redrawn (twice a second, so a second never shows late by a whole tick). */
const TICK_MS = 500;

/** "Now", redrawn every `ms` while `enabled`. */
function useTick(enabled: boolean, ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!enabled) return;
    const update = () => setNow(Date.now());
    const timer = setInterval(update, ms);
    const first = setTimeout(update, 0);
    return () => {
      clearInterval(timer);
      clearTimeout(first);
    };
  }, [enabled, ms]);
  return now;
}

/** The microphone level (0–1), polled while `enabled`; 0 otherwise. */
function useCallLevel(enabled: boolean): number {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let asking = false;
    const timer = setInterval(() => {
      // A slow answer must not pile up requests behind it.
      if (asking) return;
      asking = true;
      call('call_level', {})
        .then((l) => {
          if (!stopped) setLevel(l);
        })
        .catch(() => {
          // The call just ended; the bar goes with it.
        })
        .finally(() => {
          asking = false;
        });
    }, LEVEL_POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [enabled]);
  return enabled ? level : 0;
}

const BARS = 5;

/** Lit bars for a level: speech sits low on a linear scale, so the square root spreads it out. */
export function litBars(level: number): number {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(level) ? level : 0));
  return Math.min(BARS, Math.round(Math.sqrt(clamped) * BARS));
}

function LevelMeter({ level, muted }: { level: number; muted: boolean }) {
  const { t } = useI18n();
  const lit = muted ? 0 : litBars(level);
  return (
    <span
      className={`level-meter ${muted ? 'level-meter-muted' : ''}`}
      role="meter"
      aria-label={t('call.level')}
      aria-valuemin={0}
      aria-valuemax={BARS}
      aria-valuenow={lit}
      data-testid="call-level"
      data-lit={lit}
    >
      {Array.from({ length: BARS }, (_, i) => (
        <span key={i} className={`level-bar ${i < lit ? 'level-bar-lit' : ''}`} />
      ))}
    </span>
  );
}

/** The call in progress (or just ended) across the top of the main window. */
export function CallBar() {
  const current = useCalls((s) => s.current);
  const endedAt = useCalls((s) => s.endedAt);
  // A call ringing here is the incoming dialog's; the bar takes over once it is answered.
  if (!current || (current.phase === 'ringing' && !current.outgoing)) return null;
  return <CallBarView info={current} endedAt={endedAt} />;
}

function CallBarView({ info, endedAt }: { info: CallInfo; endedAt: number | null }) {
  const { t } = useI18n();
  const name = usePeerName(info.peer);
  const active = info.phase === 'active';
  const live = isLive(info);
  const now = useTick(active, TICK_MS);
  const level = useCallLevel(active && !info.muted);
  const [acting, setActing] = useState(false);
  const act = async (action: () => Promise<void>) => {
    setActing(true);
    try {
      await action();
    } catch (e) {
      showToast(t('call.actionFailed', { error: errorText(toIpcError(e), t) }));
    } finally {
      setActing(false);
    }
  };
  const status = statusText(info, name, now, endedAt, t);
  return (
    <div
      className={`call-bar call-bar-${info.phase}`}
      role="region"
      aria-label={t('call.with', { name })}
      data-testid="call-bar"
      data-phase={info.phase}
      data-reason={info.reason ?? ''}
      data-muted={info.muted}
    >
      <Avatar username={info.peer} name={name} size={32} />
      <div className="call-bar-main">
        <button
          type="button"
          className="link-button call-bar-peer"
          onClick={() => void openConversation(userTarget(info.peer))}
          data-testid="call-peer"
        >
          {name}
        </button>
        <span className="call-status" role="status" data-testid="call-status">
          {active ? (
            <span className="call-duration" data-testid="call-duration">
              {status}
            </span>
          ) : (
            status
          )}
          {live && info.muted && <span className="tag call-muted-tag">{t('call.muted')}</span>}
        </span>
      </div>
      {active && <LevelMeter level={level} muted={info.muted} />}
      {live && (
        <div className="call-bar-actions">
          <button
            type="button"
            className={`call-action ${info.muted ? 'call-action-on' : ''}`}
            aria-pressed={info.muted}
            aria-label={info.muted ? t('call.unmute') : t('call.mute')}
            title={info.muted ? t('call.unmute') : t('call.mute')}
            disabled={acting}
            onClick={() => void act(toggleMute)}
            data-testid="call-mute"
          >
            {info.muted ? (
              <MicOffIcon width={18} height={18} />
            ) : (
              <MicIcon width={18} height={18} />
            )}
          </button>
          <button
            type="button"
            className="call-action call-action-hangup"
            aria-label={t('call.hangUp')}
            title={t('call.hangUp')}
            onClick={() => void act(hangUp)}
            data-testid="call-hangup"
          >
            <HangUpIcon width={20} height={20} />
          </button>
        </div>
      )}
    </div>
  );
}
