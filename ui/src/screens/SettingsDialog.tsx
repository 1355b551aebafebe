import { useEffect, useState, type FormEvent } from 'react';
import type { AudioDevices, IpcError, Theme } from '../bindings';
import { call, toIpcError } from '../backend';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import {
  eraseAccount,
  logout,
  saveSettings,
  setAudioDevices,
  updateProfile,
  useApp,
} from '../state/app';
import { Modal } from '../components/Modal';
import { HostPanel } from '../components/HostPanel';
import { loadLan } from '../state/lan';
import { DialogActions, FormError } from '../components/FormError';
import { useAction } from '../components/useAction';

function ProfileSection() {
  const { t } = useI18n();
  const me = useApp((s) => s.social?.me);
  const [nickname, setNickname] = useState(me?.nickname ?? '');
  const [motto, setMotto] = useState(me?.motto ?? '');
  const [phone, setPhone] = useState(me?.phone ?? '');
  const { busy, error, run } = useAction();
  const [saved, setSaved] = useState(false);
  if (!me) return null;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    setSaved(await run(() => updateProfile(nickname.trim(), motto.trim(), phone.trim())));
  };
  return (
    <section className="settings-section">
      <h3>{t('settings.profile')}</h3>
      <div className="field">
        <span>{t('settings.username')}</span>
        <div className="readonly">{me.username}</div>
      </div>
      {me.is_guest ? (
        <p className="note">{t('settings.guestNote')}</p>
      ) : (
        <form className="form" onSubmit={(e) => void submit(e)} noValidate>
          <label className="field">
            <span>{t('settings.nickname')}</span>
            <input
              data-testid="profile-nickname"
              value={nickname}
              maxLength={64}
              onChange={(e) => {
                setNickname(e.target.value);
                setSaved(false);
              }}
            />
          </label>
          <label className="field">
            <span>{t('settings.motto')}</span>
            <input
              data-testid="profile-motto"
              value={motto}
              maxLength={256}
              onChange={(e) => {
                setMotto(e.target.value);
                setSaved(false);
              }}
            />
          </label>
          <label className="field">
            <span>{t('settings.phone')}</span>
            <input
              data-testid="profile-phone"
              type="tel"
              value={phone}
              maxLength={32}
              onChange={(e) => {
                setPhone(e.target.value);
                setSaved(false);
              }}
            />
          </label>
          <FormError text={error} />
          <div className="button-row button-row-start">
            <button
              type="submit"
              className="button button-primary"
              disabled={busy}
              data-testid="profile-save"
            >
              {busy ? t('common.saving') : t('settings.profileSave')}
            </button>
            {saved && (
              <span className="saved-note" data-testid="profile-saved" role="status">
                {t('common.saved')}
              </span>
            )}
          </div>
        </form>
      )}
    </section>
  );
}

function AppearanceSection() {
  const { t } = useI18n();
  const settings = useApp((s) => s.settings);
  const [error, setError] = useState<string | null>(null);
  const save = async (change: Parameters<typeof saveSettings>[0]) => {
    setError(await saveSettings(change));
  };
  return (
    <section className="settings-section">
      <h3>{t('settings.appearance')}</h3>
      <div className="field-row">
        <label className="field field-grow">
          <span>{t('settings.language')}</span>
          <select
            data-testid="settings-language"
            value={settings.language ?? 'system'}
            onChange={(e) =>
              void save({ language: e.target.value === 'system' ? null : e.target.value })
            }
          >
            <option value="system">{t('settings.languageSystem')}</option>
            <option value="en">English</option>
            <option value="zh-CN">简体中文</option>
          </select>
        </label>
        <label className="field field-grow">
          <span>{t('settings.theme')}</span>
          <select
            data-testid="settings-theme"
            value={settings.theme}
            onChange={(e) => void save({ theme: e.target.value as Theme })}
          >
            <option value="system">{t('settings.themeSystem')}</option>
            <option value="light">{t('settings.themeLight')}</option>
            <option value="dark">{t('settings.themeDark')}</option>
          </select>
        </label>
      </div>
      <label className="check">
        <input
          type="checkbox"
          data-testid="settings-notifications"
          checked={settings.notifications}
          onChange={(e) => void save({ notifications: e.target.checked })}
        />
        <span>
          {t('settings.notifications')}
          <small className="muted">{t('settings.notificationsHint')}</small>
        </span>
      </label>
      <FormError text={error} />
    </section>
  );
}

/** One device list: the system default first, then every device, then a saved one now gone. */
function DeviceSelect({
  label,
  testId,
  devices,
  systemDefault,
  chosen,
  onChoose,
}: {
  label: string;
  testId: string;
  devices: readonly string[];
  systemDefault: string | null;
  chosen: string | null;
  onChoose: (name: string | null) => void;
}) {
  const { t } = useI18n();
  // ALSA can list two devices under one description; a name picks the first of them anyway.
  const names = [...new Set(devices)];
  const missing = chosen !== null && !names.includes(chosen);
  return (
    <label className="field">
      <span>{label}</span>
      <select
        data-testid={testId}
        value={chosen ?? ''}
        onChange={(e) => onChoose(e.target.value === '' ? null : e.target.value)}
      >
        <option value="">
          {systemDefault
            ? t('settings.deviceDefaultNamed', { name: systemDefault })
            : t('settings.deviceDefault')}
        </option>
        {names.map((d) => (
          <option key={d} value={d}>
            {d}
          </option>
        ))}
        {missing && <option value={chosen}>{t('settings.deviceMissing', { name: chosen })}</option>}
      </select>
    </label>
  );
}

function CallsSection() {
  const { t } = useI18n();
  const input = useApp((s) => s.settings.audio_input);
  const output = useApp((s) => s.settings.audio_output);
  const [devices, setDevices] = useState<AudioDevices | null>(null);
  const [listError, setListError] = useState<IpcError | null>(null);
  const [saveError, setSaveError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    call('audio_devices', {})
      .then((d) => {
        if (!stopped) setDevices(d);
      })
      .catch((e: unknown) => {
        if (!stopped) setListError(toIpcError(e));
      });
    return () => {
      stopped = true;
    };
  }, []);
  const choose = async (nextInput: string | null, nextOutput: string | null) => {
    setSaveError(await setAudioDevices(nextInput, nextOutput));
  };
  return (
    <section className="settings-section" data-testid="settings-calls">
      <h3>{t('settings.calls')}</h3>
      {listError ? (
        <FormError text={t('settings.devicesError', { error: errorText(listError, t) })} />
      ) : !devices ? (
        <p className="muted" data-testid="settings-devices-loading">
          {t('settings.devicesLoading')}
        </p>
      ) : (
        <>
          <DeviceSelect
            label={t('settings.microphone')}
            testId="settings-microphone"
            devices={devices.inputs}
            systemDefault={devices.default_input}
            chosen={input}
            onChoose={(name) => void choose(name, output)}
          />
          <DeviceSelect
            label={t('settings.speaker')}
            testId="settings-speaker"
            devices={devices.outputs}
            systemDefault={devices.default_output}
            chosen={output}
            onChoose={(name) => void choose(input, name)}
          />
          <small className="muted">{t('settings.devicesHint')}</small>
        </>
      )}
      <FormError text={saveError} />
    </section>
  );
}

function EraseDialog({ onClose }: { onClose: () => void }) {
  const { t } = useI18n();
  const [password, setPassword] = useState('');
  const { busy, error, run } = useAction();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!password || busy) return;
    await run(async () => {
      await eraseAccount(password);
    });
  };
  return (
    <Modal title={t('settings.eraseTitle')} onClose={onClose} tone="danger">
      <form className="form" onSubmit={(e) => void submit(e)} noValidate>
        <p className="danger-text">{t('settings.eraseWarning')}</p>
        <label className="field">
          <span>{t('settings.erasePassword')}</span>
          <input
            type="password"
            data-testid="erase-password"
            value={password}
            autoComplete="current-password"
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <DialogActions error={error} onCancel={onClose} cancelLabel={t('common.cancel')}>
          <button
            type="submit"
            className="button button-danger"
            disabled={!password || busy}
            data-testid="erase-confirm"
          >
            {t('settings.eraseConfirm')}
          </button>
        </DialogActions>
      </form>
    </Modal>
  );
}

function HostingSection() {
  const { t } = useI18n();
  useEffect(() => {
    void loadLan();
  }, []);
  return (
    <section className="settings-section" data-testid="settings-hosting">
      <h3>{t('host.title')}</h3>
      <HostPanel />
    </section>
  );
}

export function SettingsDialog({ onClose }: { onClose: () => void }) {
  const { t } = useI18n();
  const info = useApp((s) => s.info);
  const me = useApp((s) => s.social?.me);
  const [erasing, setErasing] = useState(false);
  return (
    <Modal
      title={t('settings.title')}
      onClose={onClose}
      className="settings"
      closeTestId="settings-close"
    >
      <ProfileSection />
      <AppearanceSection />
      <CallsSection />
      <HostingSection />
      <section className="settings-section">
        <h3>{t('settings.account')}</h3>
        <div className="button-row button-row-start">
          <button
            type="button"
            className="button"
            onClick={() => void logout()}
            data-testid="logout"
          >
            {t('settings.logout')}
          </button>
          {me && !me.is_guest && (
            <button
              type="button"
              className="button button-danger-outline"
              onClick={() => setErasing(true)}
              data-testid="erase-open"
            >
              {t('settings.erase')}
            </button>
          )}
        </div>
      </section>
      {info && (
        <p className="settings-about muted">
          {t('settings.about', { version: info.version, dir: info.data_dir })}
        </p>
      )}
      {erasing && <EraseDialog onClose={() => setErasing(false)} />}
    </Modal>
  );
}
