import type { ConnectionState } from '../bindings';
import { useI18n } from '../i18n';

export function ConnectionBanner({ state }: { state: ConnectionState }) {
  const { t } = useI18n();
  if (state === 'online') return null;
  return (
    <div
      className={`connection-banner banner-${state}`}
      data-testid="connection-banner"
      data-state={state}
      role="status"
    >
      {state === 'connecting' && <span className="spinner spinner-small" aria-hidden="true" />}
      {state === 'connecting' ? t('banner.connecting') : t('banner.offline')}
    </div>
  );
}
