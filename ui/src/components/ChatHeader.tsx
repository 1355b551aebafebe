import { useEffect, useRef, useState } from 'react';
import type { Friend, OnlineUser } from '../bindings';
import { useI18n } from '../i18n';
import { removeFriend } from '../state/app';
import { sameUser } from '../state/conversation';
import { displayName } from '../state/social';
import { FormError } from './FormError';
import { AddFriendDialog } from './AddFriendDialog';
import { CallButton } from './CallButton';
import { Avatar, SquareAvatar } from './Avatar';
import { MoreIcon, PlusIcon } from './Icons';
import { Modal } from './Modal';
import { useAction } from './useAction';

/** Closes a popover on a click outside it or Escape. */
function useDismiss(open: boolean, close: () => void) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) close();
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') close();
    };
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open, close]);
  return ref;
}

/** Who is online in the square, as the header's popover shows it. */
interface SquarePresence {
  online: readonly OnlineUser[];
  friends: readonly Friend[];
  me: string;
}

function OnlinePopover({ online, friends, me }: SquarePresence) {
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  const [adding, setAdding] = useState<string | null>(null);
  const close = () => setOpen(false);
  const ref = useDismiss(open, close);
  const users = [...online].sort((a, b) =>
    a.username.localeCompare(b.username, undefined, { sensitivity: 'base' }),
  );
  return (
    <div className="popover-anchor" ref={ref}>
      <button
        type="button"
        className="link-button chat-online-count"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
        data-testid="online-count"
      >
        {t('chat.onlineCount', { count: online.length })}
      </button>
      {open && (
        <div className="popover" role="dialog" aria-label={t('chat.whoIsOnline')}>
          <div className="popover-title">{t('chat.whoIsOnline')}</div>
          {users.length === 0 && <p className="muted">{t('chat.nobodyOnline')}</p>}
          <ul className="online-list">
            {users.map((u) => {
              const isMe = sameUser(u.username, me);
              const isFriend = friends.some((f) => sameUser(f.username, u.username));
              return (
                <li
                  key={u.username.toLowerCase()}
                  className="online-row"
                  data-testid={`online-${u.username}`}
                >
                  <Avatar username={u.username} name={displayName(u)} size={28} />
                  <span className="online-name">
                    {displayName(u)}
                    {u.nickname && <small className="muted"> @{u.username}</small>}
                    {u.is_guest && <span className="tag">{t('presence.guest')}</span>}
                    {isMe && <small className="muted"> ({t('chat.you')})</small>}
                  </span>
                  {!isMe && !isFriend && !u.is_guest && (
                    <button
                      type="button"
                      className="button button-small"
                      onClick={() => {
                        setAdding(u.username);
                        setOpen(false);
                      }}
                      data-testid={`online-add-${u.username}`}
                    >
                      <PlusIcon width={12} height={12} /> {t('addFriend.open')}
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        </div>
      )}
      {adding && <AddFriendDialog initialUsername={adding} onClose={() => setAdding(null)} />}
    </div>
  );
}

function FriendMenu({ friend }: { friend: Friend }) {
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const { busy, error, run } = useAction();
  const close = () => setOpen(false);
  const ref = useDismiss(open, close);
  const name = displayName(friend);
  const remove = async () => {
    await run(async () => {
      await removeFriend(friend.username);
    });
  };
  return (
    <div className="popover-anchor" ref={ref}>
      <button
        type="button"
        className="icon-button"
        aria-label={t('chat.menu')}
        title={t('chat.menu')}
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
        data-testid="chat-menu"
      >
        <MoreIcon width={18} height={18} />
      </button>
      {open && (
        <div className="popover popover-menu" role="menu">
          <button
            type="button"
            role="menuitem"
            className="menu-item menu-item-danger"
            onClick={() => {
              setOpen(false);
              setConfirming(true);
            }}
            data-testid="friend-remove"
          >
            {t('chat.removeFriend')}
          </button>
        </div>
      )}
      {confirming && (
        <Modal
          title={t('chat.removeConfirmTitle', { name })}
          onClose={() => setConfirming(false)}
          tone="danger"
        >
          <p>{t('chat.removeConfirm', { name })}</p>
          <FormError text={error} />
          <div className="button-row">
            <button type="button" className="button" onClick={() => setConfirming(false)}>
              {t('common.cancel')}
            </button>
            <button
              type="button"
              className="button button-danger"
              disabled={busy}
              onClick={() => void remove()}
              data-testid="friend-remove-confirm"
            >
              {t('chat.remove')}
            </button>
          </div>
        </Modal>
      )}
    </div>
  );
}

export function SquareHeader({ online, friends, me }: SquarePresence) {
  const { t } = useI18n();
  return (
    <header className="chat-header">
      <SquareAvatar size={40} />
      <div className="chat-header-main">
        <h1 className="chat-title" data-testid="chat-title">
          {t('conv.square')}
        </h1>
        <div className="chat-subtitle">
          <span className="muted">{t('conv.squareSubtitle')}</span>
          <span className="dot-sep" aria-hidden="true">
            ·
          </span>
          <OnlinePopover online={online} friends={friends} me={me} />
        </div>
      </div>
    </header>
  );
}

export function FriendHeader({
  friend,
  username,
}: {
  friend: Friend | undefined;
  username: string;
}) {
  const { t } = useI18n();
  const online = friend?.online ?? false;
  return (
    <header className="chat-header">
      <span className="conv-avatar">
        <Avatar username={username} name={friend ? displayName(friend) : username} size={40} />
        <span className={`presence ${online ? 'presence-online' : ''}`} />
      </span>
      <div className="chat-header-main">
        <h1 className="chat-title" data-testid="chat-title">
          {friend?.username ?? username}
        </h1>
        <div className="chat-subtitle">
          <span className={online ? 'text-online' : 'muted'}>
            {online ? t('presence.online') : t('presence.offline')}
          </span>
          {friend?.nickname && (
            <>
              <span className="dot-sep" aria-hidden="true">
                ·
              </span>
              <span className="chat-nickname">{friend.nickname}</span>
            </>
          )}
          {friend?.motto && (
            <>
              <span className="dot-sep" aria-hidden="true">
                ·
              </span>
              <span className="chat-motto muted" title={friend.motto}>
                {friend.motto}
              </span>
            </>
          )}
          {friend?.is_guest && <span className="tag">{t('presence.guest')}</span>}
        </div>
      </div>
      {friend && (
        <CallButton username={friend.username} name={displayName(friend)} online={online} />
      )}
      {friend && <FriendMenu friend={friend} />}
    </header>
  );
}
