import type { Friend, SearchHit } from '../bindings';
import { useI18n } from '../i18n';
import { formatShort } from '../i18n/format';
import { useNow } from '../state/clock';
import { bodyText, sameUser } from '../state/conversation';
import { excerpt, highlight } from '../state/highlight';
import { displayName } from '../state/social';
import { Avatar, SquareAvatar } from './Avatar';

export function Highlighted({ text, query }: { text: string; query: string }) {
  return (
    <>
      {highlight(text, query).map((s, i) =>
        s.match ? (
          <mark key={i} className="hit">
            {s.text}
          </mark>
        ) : (
          <span key={i}>{s.text}</span>
        ),
      )}
    </>
  );
}

export function SearchResults({
  query,
  hits,
  searching,
  error,
  friends,
  me,
  onPick,
}: {
  query: string;
  hits: readonly SearchHit[] | null;
  searching: boolean;
  error: string | null;
  friends: readonly Friend[];
  me: string;
  onPick: (hit: SearchHit) => void;
}) {
  const { t, locale } = useI18n();
  const now = useNow();
  const nameOf = (username: string) => {
    const f = friends.find((x) => sameUser(x.username, username));
    return f ? displayName(f) : username;
  };
  if (error) return <p className="sidebar-empty field-error">{error}</p>;
  if (hits === null || (searching && hits.length === 0)) {
    return <p className="sidebar-empty muted">{t('search.searching')}</p>;
  }
  if (hits.length === 0) {
    return <p className="sidebar-empty muted">{t('search.noResults', { query })}</p>;
  }
  return (
    <div className="search-results" role="list" aria-label={t('search.results')}>
      {hits.map((hit) => {
        const m = hit.message;
        const square = hit.with.kind === 'square';
        const title = hit.with.kind === 'square' ? t('conv.square') : nameOf(hit.with.username);
        const sender = sameUser(m.from, me) ? t('search.you') : nameOf(m.from);
        const text = bodyText(m.body, t).replace(/\s+/g, ' ');
        return (
          <button
            key={m.client_msg_id}
            type="button"
            role="listitem"
            className="search-result"
            data-testid="search-result"
            onClick={() => onPick(hit)}
          >
            <span className="conv-avatar">
              {square || hit.with.kind !== 'user' ? (
                <SquareAvatar size={36} />
              ) : (
                <Avatar username={hit.with.username} name={title} size={36} />
              )}
            </span>
            <span className="conv-main">
              <span className="conv-top">
                <span className="conv-title">{title}</span>
                <span className="conv-time">{formatShort(m.ts, now, locale, t)}</span>
              </span>
              <span className="search-snippet">
                <span className="search-sender">{sender}: </span>
                <Highlighted text={excerpt(text, query)} query={query} />
              </span>
            </span>
          </button>
        );
      })}
    </div>
  );
}
