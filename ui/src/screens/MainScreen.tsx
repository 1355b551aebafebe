import { useState } from 'react';
import { useI18n } from '../i18n';
import { dismissCertificate, trustCertificate, useApp } from '../state/app';
import { openConversation } from '../state/chat';
import { CallBar } from '../components/CallBar';
import { ChatPane } from '../components/ChatPane';
import { CertificateWarning } from '../components/CertificateWarning';
import { Modal } from '../components/Modal';
import { Sidebar } from '../components/Sidebar';
import { SettingsDialog } from './SettingsDialog';

export function MainScreen() {
  const { t } = useI18n();
  const [settingsOpen, setSettingsOpen] = useState(false);
  const certChange = useApp((s) => s.certChange);
  return (
    <div className="main-view" data-testid="main-view">
      <CallBar />
      <Sidebar
        onOpen={(target) => void openConversation(target)}
        onSettings={() => setSettingsOpen(true)}
      />
      <ChatPane />
      {settingsOpen && <SettingsDialog onClose={() => setSettingsOpen(false)} />}
      {certChange && (
        <Modal title={t('cert.title')} onClose={dismissCertificate} tone="danger">
          <CertificateWarning
            fingerprint={certChange.fingerprint}
            server={certChange.server}
            onTrust={trustCertificate}
            onCancel={dismissCertificate}
          />
        </Modal>
      )}
    </div>
  );
}
