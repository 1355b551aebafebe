import { useState, type FormEvent } from 'react';
import { useI18n } from '../i18n';
import { changeServer, guestLogin, login, useApp } from '../state/app';
import { serverLabel } from '../components/CertificateWarning';
import { LockIcon } from '../components/Icons';
import { AuthLayout } from './AuthLayout';
import { RegisterForm } from './RegisterForm';
import { useAction } from '../components/useAction';
import { FormError } from '../components/FormError';

type Tab = 'password' | 'guest' | 'register';

function PasswordForm({
  initialUsername,
  initialError,
}: {
  initialUsername: string;
  initialError: string | null;
}) {
  const { t } = useI18n();
  const [username, setUsername] = useState(initialUsername);
  const [password, setPassword] = useState('');
  const { busy, error, run } = useAction(initialError);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || !username.trim() || !password) return;
    await run(async () => {
      await login(username.trim(), password);
    });
  };
  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <label className="field">
        <span>{t('login.username')}</span>
        <input
          data-testid="login-username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          autoComplete="username"
          spellCheck={false}
          autoFocus={!initialUsername}
        />
      </label>
      <label className="field">
        <span>{t('login.password')}</span>
        <input
          data-testid="login-password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
          autoFocus={!!initialUsername}
        />
      </label>
      <FormError text={error} />
      <button
        type="submit"
        className="button button-primary button-block"
        disabled={busy || !username.trim() || !password}
        data-testid="login-submit"
      >
        {busy ? t('login.submitting') : t('login.submit')}
      </button>
    </form>
  );
}

function GuestForm() {
  const { t } = useI18n();
  const [username, setUsername] = useState('');
  const { busy, error, run } = useAction();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || !username.trim()) return;
    await run(async () => {
      await guestLogin(username.trim());
    });
  };
  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <p className="note">{t('guest.explain')}</p>
      <label className="field">
        <span>{t('login.username')}</span>
        <input
          data-testid="guest-username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          autoComplete="off"
          spellCheck={false}
          autoFocus
        />
        <small className="muted">{t('register.rules')}</small>
      </label>
      <FormError text={error} />
      <button
        type="submit"
        className="button button-primary button-block"
        disabled={busy || !username.trim()}
        data-testid="guest-submit"
      >
        {busy ? t('login.submitting') : t('guest.submit')}
      </button>
    </form>
  );
}

export function LoginScreen() {
  const { t } = useI18n();
  const server = useApp((s) => s.server);
  const loginUsername = useApp((s) => s.loginUsername);
  const loginError = useApp((s) => s.loginError);
  const [tab, setTab] = useState<Tab>('password');
  const tabs: { id: Tab; label: string }[] = [
    { id: 'password', label: t('login.tabPassword') },
    { id: 'guest', label: t('login.tabGuest') },
    { id: 'register', label: t('login.tabRegister') },
  ];
  return (
    <AuthLayout>
      <div className="server-line">
        <span className="muted">{t('login.server')}</span>
        <span className="server-name">
          {server.tls && <LockIcon width={12} height={12} className="server-lock" />}
          {serverLabel(server)}
        </span>
        <button type="button" className="link-button" onClick={changeServer}>
          {t('login.change')}
        </button>
      </div>
      <div className="tabs" role="tablist">
        {tabs.map(({ id, label }) => (
          <button
            key={id}
            type="button"
            role="tab"
            aria-selected={tab === id}
            className={`tab ${tab === id ? 'tab-active' : ''}`}
            onClick={() => setTab(id)}
            data-testid={`tab-${id}`}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel">
        {tab === 'password' && (
          <PasswordForm initialUsername={loginUsername} initialError={loginError} />
        )}
        {tab === 'guest' && <GuestForm />}
        {tab === 'register' && <RegisterForm />}
      </div>
    </AuthLayout>
  );
}
