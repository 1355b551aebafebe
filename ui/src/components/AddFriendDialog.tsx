import { useState, type FormEvent } from 'react';
import { useI18n } from '../i18n';
import { sendFriendRequest, showToast } from '../state/app';
import { DialogActions } from './FormError';
import { Modal } from './Modal';
import { useAction } from './useAction';

export function AddFriendDialog({
  onClose,
  initialUsername = '',
}: {
  onClose: () => void;
  initialUsername?: string;
}) {
  const { t } = useI18n();
  const [username, setUsername] = useState(initialUsername);
  const [message, setMessage] = useState('');
  const { busy, error, run } = useAction();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const name = username.trim();
    if (busy || !name) return;
    await run(async () => {
      await sendFriendRequest(name, message.trim());
      showToast(t('addFriend.sent', { name }));
      onClose();
    });
  };
  return (
    <Modal title={t('addFriend.title')} onClose={onClose}>
      <form className="form" onSubmit={(e) => void submit(e)} noValidate>
        <label className="field">
          <span>{t('addFriend.username')}</span>
          <input
            data-testid="add-friend-username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            spellCheck={false}
            autoComplete="off"
          />
        </label>
        <label className="field">
          <span>
            {t('addFriend.message')} <small className="muted">({t('common.optional')})</small>
          </span>
          <input
            data-testid="add-friend-message"
            value={message}
            placeholder={t('addFriend.messagePlaceholder')}
            onChange={(e) => setMessage(e.target.value)}
            maxLength={256}
          />
        </label>
        <DialogActions error={error} onCancel={onClose} cancelLabel={t('common.cancel')}>
          <button
            type="submit"
            className="button button-primary"
            disabled={busy || !username.trim()}
            data-testid="add-friend-submit"
          >
            {t('addFriend.submit')}
          </button>
        </DialogActions>
      </form>
    </Modal>
  );
}
