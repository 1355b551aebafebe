import { useCallback, useEffect, useRef, useState } from 'react';
import type { Target } from '../bindings';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { call, onFileDrag, toIpcError } from '../backend';
import { showToast, useApp } from '../state/app';
import { refreshNewest, sendText, useChat } from '../state/chat';
import { convKey, sameUser } from '../state/conversation';
import { displayName } from '../state/social';
import {
  baseName,
  planSend,
  sendPastedImage,
  sendPaths,
  type SendFailure,
  type SendPlan,
} from '../state/transfers';
import { FriendHeader, SquareHeader } from './ChatHeader';
import { Composer, type Attachments } from './Composer';
import { ConnectionBanner } from './ConnectionBanner';
import { DropOverlay } from './DropOverlay';
import { ImageViewer } from './ImageViewer';
import { MessageList } from './MessageList';
import { UploadTray } from './UploadTray';

/** Whether files are being dragged over the window, and what a drop does. */
function useFileDrop(onDrop: (paths: string[]) => void): boolean {
  const [over, setOver] = useState(false);
  const dropRef = useRef(onDrop);
  useEffect(() => {
    dropRef.current = onDrop;
  }, [onDrop]);
  useEffect(() => {
    let unlisten: (() => void) | undefined;
    let stopped = false;
    onFileDrag((e) => {
      if (e.type === 'over') setOver(true);
      else {
        setOver(false);
        if (e.type === 'drop' && e.paths.length > 0) dropRef.current(e.paths);
      }
    })
      .then((u) => {
        if (stopped) u();
        else unlisten = u;
      })
      .catch(() => {
        // Outside the Tauri window (tests, a plain browser) nothing is dragged in.
      });
    return () => {
      stopped = true;
      unlisten?.();
    };
  }, []);
  return over;
}

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

  const report = useCallback(
    (failures: readonly SendFailure[], skipped: readonly string[]) => {
      const lines = failures.map((f) => {
        const error = toIpcError(f.error);
        return f.image && error.code === 'invalid_field'
          ? t('transfer.invalidImage', { detail: error.message })
          : t('transfer.fileFailed', { name: f.name, error: errorText(error, t) });
      });
      if (skipped.length > 0) {
        lines.push(t('drop.skipped', { names: skipped.map(baseName).join(', ') }));
      }
      if (lines.length > 0) showToast(lines.join('\n'));
    },
    [t],
  );

  const sendPlan = useCallback(
    async (target: Target, plan: SendPlan) => {
      setStickSeq((n) => n + 1);
      const failures = await sendPaths(target, plan);
      report(failures, plan.skipped);
      // A file offer's chat message is posted by the engine: bring it into the list.
      if (plan.files.length > 0) await refreshNewest(target);
    },
    [report],
  );

  const pick = useCallback(
    async (target: Target, imagesOnly: boolean) => {
      let paths: string[];
      try {
        paths = await call('pick_files', { images_only: imagesOnly });
      } catch (e) {
        showToast(errorText(toIpcError(e), t));
        return;
      }
      if (paths.length > 0) await sendPlan(target, planSend(target, paths, !imagesOnly));
    },
    [sendPlan, t],
  );

  const paste = useCallback(
    async (target: Target, file: File) => {
      setStickSeq((n) => n + 1);
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const ext = file.type.split('/')[1] ?? 'png';
        await sendPastedImage(target, file.name || `pasted.${ext}`, bytes);
      } catch (e) {
        report([{ name: file.name, error: e, image: true }], []);
      }
    },
    [report],
  );

  const dragging = useFileDrop(
    useCallback(
      (paths: string[]) => {
        if (active) void sendPlan(active, planSend(active, paths));
      },
      [active, sendPlan],
    ),
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
  const attachments: Attachments = {
    filesAllowed: active.kind === 'user',
    onPickFiles: () => void pick(active, false),
    onPickImages: () => void pick(active, true),
    onPasteImage: (file) => void paste(active, file),
  };
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
      <UploadTray convKey={key} />
      <Composer
        key={`composer:${key}`}
        draftKey={key}
        onSend={(text) => send(active, text)}
        attachments={attachments}
      />
      {dragging && (
        <DropOverlay
          square={active.kind === 'square'}
          peerName={active.kind === 'user' ? nameOf(active.username) : ''}
        />
      )}
      <ImageViewer />
    </section>
  );
}
