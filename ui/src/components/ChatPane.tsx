import { useCallback, useState } from 'react';
import type { Target } from '../bindings';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { toIpcError } from '../backend';
import { useApp } from '../state/app';
import { sendText, useChat } from '../state/chat';
import { convKey, sameUser } from '../state/conversation';
import { displayName } from '../state/social';
import { FriendHeader, SquareHeader } from './ChatHeader';
import { Composer } from './Composer';
import { ConnectionBanner } from './ConnectionBanner';
import { MessageList } from './MessageList';

export function ChatPane() {
  const { t } = useI18n();
  const active = useChat((s) => s.active);
  const convs = useChat((s) => s.convs);
  const social = useApp((s) => s.social);
  const connection = useApp((s) => s.connection);
  const [stickSeq, setStickSeq] = useState(0);

  const friends = social?.friends;
  const online = social?.online;
  const nameOf = useCallback(
    (username: string) => {
      const known =
        friends?.find((f) => sameUser(f.username, username)) ??
        online?.find((u) => sameUser(u.username, username));
      return known ? displayName(known) : username;
    },
    [friends, online],
  );

  const send = useCallback(
    async (target: Target, text: string) => {
      setStickSeq((n) => n + 1);
      try {
        await sendText(target, text);
      } catch (e) {
        throw new Error(errorText(toIpcError(e), t));
      }
    },
    [t],
  );

  if (!social) return null;
  const key = active ? convKey(active) : null;
  const conv = key ? convs[key] : undefined;
  if (!active || !conv || !key) {
    return (
      <section className="chat-pane chat-pane-empty">
        <ConnectionBanner state={connection} />
        <div className="chat-placeholder">
          <div className="brand-mark brand-mark-faint" aria-hidden="true">
            N
          </div>
          <p className="muted">{t('chat.pick')}</p>
        </div>
      </section>
    );
  }
  const friend =
    active.kind === 'user'
      ? social.friends.find((f) => sameUser(f.username, active.username))
      : undefined;
  return (
    <section className="chat-pane">
      {active.kind === 'square' ? (
        <SquareHeader online={social.online} friends={social.friends} me={social.me.username} />
      ) : (
        <FriendHeader friend={friend} username={active.username} />
      )}
      <ConnectionBanner state={connection} />
      <MessageList
        key={key}
        conv={conv}
        me={social.me.username}
        nameOf={nameOf}
        stickSeq={stickSeq}
      />
      <Composer key={`composer:${key}`} draftKey={key} onSend={(text) => send(active, text)} />
    </section>
  );
}
