import { useEffect, useState, type FormEvent } from 'react';
import { useI18n, type Key } from '../i18n';
import { call } from '../backend';
import { login } from '../state/app';
import {
  localUsernameStatus,
  passwordProblem,
  statusFromCheck,
  type UsernameStatus,
} from '../state/username';
import { FormError } from '../components/FormError';
import { useAction } from '../components/useAction';

export const CHECK_DELAY_MS = 300;

const STATUS_KEYS: Record<Exclude<UsernameStatus, 'idle'>, Key> = {
  checking: 'register.status.checking',
  available: 'register.status.available',
  taken: 'register.status.taken',
  reserved: 'register.status.reserved',
  invalid: 'register.status.invalid',
};

/** The availability of a username as the user types: local rules at once, the server debounced. */
export function useUsernameStatus(username: string): UsernameStatus {
  const local = localUsernameStatus(username);
  const [answer, setAnswer] = useState<{ name: string; status: UsernameStatus } | null>(null);
  useEffect(() => {
    if (local !== null) return;
    let cancelled = false;
    const timer = setTimeout(() => {
      call('check_username', { username })
        .then((r) => {
          if (!cancelled)
            setAnswer({ name: username, status: statusFromCheck(r.available, r.reason) });
        })
        .catch(() => {
          // No answer (offline…): the status stays "checking"; registering reports the error.
        });
    }, CHECK_DELAY_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [username, local]);
  if (local !== null) return local;
  return answer && answer.name === username ? answer.status : 'checking';
}

export function RegisterForm() {
  const { t } = useI18n();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [password2, setPassword2] = useState('');
  const [nickname, setNickname] = useState('');
  const [motto, setMotto] = useState('');
  const [phone, setPhone] = useState('');
  const { busy, error, run } = useAction();
  const status = useUsernameStatus(username);
  const problem = password ? passwordProblem(password) : null;
  const mismatch = password2.length > 0 && password !== password2;
  const ready =
    (status === 'available' || status === 'checking') &&
    password.length > 0 &&
    problem === null &&
    password === password2;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || !ready) return;
    await run(async () => {
      await call('register', { form: { username, password, nickname, motto, phone } });
      await login(username, password);
    });
  };

  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <label className="field">
        <span>{t('register.username')}</span>
        <input
          data-testid="reg-username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          autoComplete="username"
          spellCheck={false}
          maxLength={64}
          aria-describedby="reg-username-rules"
          autoFocus
        />
        <small className="muted" id="reg-username-rules">
          {t('register.rules')}
        </small>
        <span
          className={`username-status status-${status}`}
          data-testid="reg-username-status"
          data-state={status}
          aria-live="polite"
        >
          {status === 'idle' ? '' : t(STATUS_KEYS[status])}
        </span>
      </label>
      <div className="field-row">
        <label className="field field-grow">
          <span>{t('register.password')}</span>
          <input
            data-testid="reg-password"
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            autoComplete="new-password"
          />
          <small className={problem ? 'field-error' : 'muted'}>
            {problem === 'short'
              ? t('register.passwordShort')
              : problem === 'long'
                ? t('register.passwordLong')
                : t('register.passwordHint')}
          </small>
        </label>
        <label className="field field-grow">
          <span>{t('register.password2')}</span>
          <input
            data-testid="reg-password2"
            type="password"
            value={password2}
            onChange={(e) => setPassword2(e.target.value)}
            autoComplete="new-password"
          />
          {mismatch && <small className="field-error">{t('register.mismatch')}</small>}
        </label>
      </div>
      <label className="field">
        <span>
          {t('register.nickname')} <small className="muted">({t('common.optional')})</small>
        </span>
        <input
          data-testid="reg-nickname"
          value={nickname}
          onChange={(e) => setNickname(e.target.value)}
          maxLength={64}
        />
      </label>
      <label className="field">
        <span>
          {t('register.motto')} <small className="muted">({t('common.optional')})</small>
        </span>
        <input
          data-testid="reg-motto"
          value={motto}
          onChange={(e) => setMotto(e.target.value)}
          maxLength={256}
        />
      </label>
      <label className="field">
        <span>
          {t('register.phone')} <small className="muted">({t('common.optional')})</small>
        </span>
        <input
          data-testid="reg-phone"
          type="tel"
          value={phone}
          onChange={(e) => setPhone(e.target.value)}
          maxLength={32}
        />
      </label>
      <FormError text={error} />
      <button
        type="submit"
        className="button button-primary button-block"
        disabled={busy || !ready}
        data-testid="reg-submit"
      >
        {busy ? t('register.submitting') : t('register.submit')}
      </button>
    </form>
  );
}
