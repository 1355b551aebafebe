import type { ReactNode } from 'react';
import type { Friend, Target } from '../bindings';
import { useI18n } from '../i18n';
import { formatShort } from '../i18n/format';
import { useChat, type Preview } from '../state/chat';
import { useNow } from '../state/clock';
import { convKey, sameUser, SQUARE, SQUARE_KEY, userTarget } from '../state/conversation';
import { displayName, sortFriends } from '../state/social';
import { Avatar, SquareAvatar } from './Avatar';

function UnreadBadge({ count, testId }: { count: number; testId: string }) {
  const { t } = useI18n();
  if (count <= 0) return null;
  return (
    <span className="badge" data-testid={testId} aria-label={t('conv.unread', { count })}>
      {count > 999 ? '999+' : count}
    </span>
  );
}

function PreviewLine({ preview, me }: { preview: Preview | undefined; me: string }) {
  const { t } = useI18n();
  if (!preview) return <span className="conv-preview muted">{t('conv.noMessages')}</span>;
  const text = preview.text.replace(/\s+/g, ' ');
  return (
    <span className="conv-preview">
      {sameUser(preview.from, me) ? t('conv.you', { text }) : text}
    </span>
  );
}

function ConversationRow({
  active,
  onOpen,
  avatar,
  title,
  preview,
  unread,
  me,
  testId,
  unreadTestId,
  presence,
}: {
  active: boolean;
  onOpen: () => void;
  avatar: ReactNode;
  title: string;
  preview: Preview | undefined;
  unread: number;
  me: string;
  testId: string;
  unreadTestId: string;
  presence?: ReactNode;
}) {
  const { t, locale } = useI18n();
  const now = useNow();
  return (
    <button
      type="button"
      className={`conv-row ${active ? 'conv-row-active' : ''}`}
      onClick={onOpen}
      data-testid={testId}
      aria-current={active ? 'true' : undefined}
    >
      <span className="conv-avatar">
        {avatar}
        {presence}
      </span>
      <span className="conv-main">
        <span className="conv-top">
          <span className="conv-title">{title}</span>
          {preview && <span className="conv-time">{formatShort(preview.ts, now, locale, t)}</span>}
        </span>
        <span className="conv-bottom">
          <PreviewLine preview={preview} me={me} />
          <UnreadBadge count={unread} testId={unreadTestId} />
        </span>
      </span>
    </button>
  );
}

export function ConversationList({
  friends,
  onOpen,
}: {
  friends: readonly Friend[];
  onOpen: (target: Target) => void;
}) {
  const { t } = useI18n();
  const active = useChat((s) => s.active);
  const previews = useChat((s) => s.previews);
  const unread = useChat((s) => s.unread);
  const me = useChat((s) => s.me);
  const activeKey = active ? convKey(active) : null;
  return (
    <nav className="conv-list" aria-label={t('sidebar.conversations')}>
      <ConversationRow
        active={activeKey === SQUARE_KEY}
        onOpen={() => onOpen(SQUARE)}
        avatar={<SquareAvatar size={40} />}
        title={t('conv.square')}
        preview={previews[SQUARE_KEY]}
        unread={unread[SQUARE_KEY] ?? 0}
        me={me}
        testId="conv-square"
        unreadTestId="unread-square"
      />
      {sortFriends(friends).map((f) => {
        const target = userTarget(f.username);
        const key = convKey(target);
        return (
          <ConversationRow
            key={key}
            active={activeKey === key}
            onOpen={() => onOpen(target)}
            avatar={<Avatar username={f.username} name={displayName(f)} size={40} />}
            presence={
              <span
                className={`presence ${f.online ? 'presence-online' : ''}`}
                data-testid={`presence-${f.username}`}
                data-online={f.online ? 'true' : 'false'}
                title={f.online ? t('presence.online') : t('presence.offline')}
              />
            }
            title={displayName(f)}
            preview={previews[key]}
            unread={unread[key] ?? 0}
            me={me}
            testId={`conv-user-${f.username}`}
            unreadTestId={`unread-${f.username}`}
          />
        );
      })}
      {friends.length === 0 && <p className="sidebar-empty muted">{t('sidebar.noFriends')}</p>}
    </nav>
  );
}
