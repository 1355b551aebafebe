import { useEffect, useRef, useState } from 'react';
import type { SearchHit, Target } from '../bindings';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { call, toIpcError } from '../backend';
import { useApp } from '../state/app';
import { jumpTo } from '../state/chat';
import { displayName } from '../state/social';
import { AddFriendDialog } from './AddFriendDialog';
import { Avatar } from './Avatar';
import { ConversationList } from './ConversationList';
import { FriendRequests } from './FriendRequests';
import { CloseIcon, GearIcon, PlusIcon, SearchIcon } from './Icons';
import { SearchResults } from './SearchResults';

export const SEARCH_DELAY_MS = 200;
export const SEARCH_LIMIT = 50;

interface SearchState {
  query: string;
  hits: SearchHit[] | null;
  error: string | null;
}

function useSearch(query: string): SearchState {
  const { t } = useI18n();
  const [result, setResult] = useState<SearchState>({ query: '', hits: null, error: null });
  const trimmed = query.trim();
  useEffect(() => {
    if (!trimmed) return;
    let cancelled = false;
    const timer = setTimeout(() => {
      call('search', { query: trimmed, limit: SEARCH_LIMIT })
        .then((hits) => {
          if (!cancelled) setResult({ query: trimmed, hits, error: null });
        })
        .catch((e: unknown) => {
          if (!cancelled)
            setResult({ query: trimmed, hits: [], error: errorText(toIpcError(e), t) });
        });
    }, SEARCH_DELAY_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [trimmed, t]);
  return result.query === trimmed ? result : { query: trimmed, hits: null, error: null };
}

export function Sidebar({
  onOpen,
  onSettings,
}: {
  onOpen: (target: Target) => void;
  onSettings: () => void;
}) {
  const { t } = useI18n();
  const social = useApp((s) => s.social);
  const connection = useApp((s) => s.connection);
  const [query, setQuery] = useState('');
  const [adding, setAdding] = useState(false);
  const search = useSearch(query);
  const searchRef = useRef<HTMLInputElement>(null);
  if (!social) return null;
  const me = social.me;
  const searching = query.trim().length > 0;
  return (
    <aside className="sidebar">
      <header className="sidebar-header">
        <Avatar username={me.username} name={displayName(me)} size={38} />
        <div className="me">
          <div className="me-name" data-testid="me-name" title={me.username}>
            {me.username}
          </div>
          <div className="me-status">
            <span
              className={`presence-inline ${connection === 'online' ? 'presence-online' : ''}`}
            />
            {connection === 'online' ? t('presence.online') : t('presence.offline')}
            {me.is_guest && <span className="tag">{t('presence.guest')}</span>}
          </div>
        </div>
        <button
          type="button"
          className="icon-button"
          onClick={onSettings}
          aria-label={t('sidebar.settings')}
          title={t('sidebar.settings')}
          data-testid="settings-open"
        >
          <GearIcon width={18} height={18} />
        </button>
      </header>
      <div className="search-box">
        <SearchIcon className="search-icon" />
        <input
          ref={searchRef}
          type="search"
          data-testid="search-input"
          placeholder={t('search.placeholder')}
          aria-label={t('sidebar.search')}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape') {
              e.preventDefault();
              setQuery('');
            }
          }}
        />
        {searching && (
          <button
            type="button"
            className="icon-button search-clear"
            aria-label={t('sidebar.clearSearch')}
            title={t('sidebar.clearSearch')}
            onClick={() => {
              setQuery('');
              searchRef.current?.focus();
            }}
          >
            <CloseIcon width={14} height={14} />
          </button>
        )}
      </div>
      <div className="sidebar-scroll">
        {searching ? (
          <SearchResults
            query={search.query}
            hits={search.hits}
            searching={search.hits === null}
            error={search.error}
            friends={social.friends}
            me={me.username}
            onPick={(hit) => void jumpTo(hit)}
          />
        ) : (
          <>
            <FriendRequests incoming={social.incoming} outgoing={social.outgoing} />
            <ConversationList friends={social.friends} onOpen={onOpen} />
          </>
        )}
      </div>
      <footer className="sidebar-footer">
        <button
          type="button"
          className="button button-block"
          onClick={() => setAdding(true)}
          data-testid="add-friend-open"
        >
          <PlusIcon /> {t('addFriend.open')}
        </button>
      </footer>
      {adding && <AddFriendDialog onClose={() => setAdding(false)} />}
    </aside>
  );
}
