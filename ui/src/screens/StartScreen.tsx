import { useI18n } from '../i18n';
import { useApp } from '../state/app';

export function StartScreen() {
  const { t } = useI18n();
  const resuming = useApp((s) => s.resuming);
  return (
    <div className="start-screen" aria-busy="true">
      <div className="brand-mark" aria-hidden="true">
        N
      </div>
      <div className="spinner" aria-hidden="true" />
      <p>{resuming ? t('start.resuming', { name: resuming }) : t('start.loading')}</p>
    </div>
  );
}
