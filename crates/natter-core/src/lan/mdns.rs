//! The mDNS side: announcing a hosted server, and the daemon settings both sides share.

use std::net::IpAddr;
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

use super::{truncate, Announcement, HostError, SERVICE_TYPE};

/// How long `stop` waits for mDNS to send its goodbye and for its thread to end.
const MDNS_TIMEOUT: Duration = Duration::from_secs(2);

/// DNS labels are at most 63 bytes; the instance name is the host's name plus a suffix that
/// keeps two servers of one name (two apps on one computer) apart.
const INSTANCE_NAME_BYTES: usize = 48;

/// The server's mDNS announcement, on a daemon thread of its own.
pub(super) struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Announcer {
    /// Announces a server listening on `bind` (plain `port`) with what `announcement` says.
    pub(super) fn start(
        announcement: &Announcement,
        bind: IpAddr,
        port: u16,
    ) -> Result<Self, HostError> {
        // Unique per certificate, so two servers called alike never contend for one name.
        let short = &announcement.fingerprint[..announcement.fingerprint.len().min(8)];
        let label = match truncate(&announcement.name, INSTANCE_NAME_BYTES) {
            "" => "Natter".to_owned(),
            name => name.to_owned(),
        };
        let instance = format!("{label} ({short})");
        // Our own host name for the SRV target: the computer's may be announced by the system's
        // responder (Avahi, Bonjour) with addresses we do not listen on.
        let host_name = format!("natter-{short}.local.");
        let txt = announcement.to_txt();
        let info = if bind.is_unspecified() {
            let mut info = ServiceInfo::new(
                SERVICE_TYPE,
                &instance,
                &host_name,
                "",
                port,
                txt.as_slice(),
            )?
            // Addresses follow the interfaces: a laptop that changes networks stays findable.
            .enable_addr_auto();
            if bind.is_ipv4() {
                // 0.0.0.0 listens on IPv4 only: announcing IPv6 addresses would mislead.
                info.set_interfaces(vec![IfKind::IPv4]);
            }
            info
        } else {
            let mut info = ServiceInfo::new(
                SERVICE_TYPE,
                &instance,
                &host_name,
                bind,
                port,
                txt.as_slice(),
            )?;
            info.set_interfaces(vec![IfKind::Addr(bind)]);
            info
        };
        let fullname = info.get_fullname().to_owned();
        let daemon = ServiceDaemon::new()?;
        let registered = enable_loopback(&daemon).and_then(|()| daemon.register(info));
        if let Err(e) = registered {
            let _ = daemon.shutdown();
            return Err(e.into());
        }
        tracing::debug!(%fullname, "announced on mDNS");
        Ok(Self { daemon, fullname })
    }

    /// Unregisters (mdns-sd sends the goodbye, a record with TTL 0) and ends the daemon thread.
    pub(super) async fn stop(self) {
        match self.daemon.unregister(&self.fullname) {
            Ok(status) => match tokio::time::timeout(MDNS_TIMEOUT, status.recv_async()).await {
                Ok(Ok(status)) => tracing::debug!(?status, "mDNS goodbye sent"),
                Ok(Err(_)) => tracing::debug!("mDNS daemon gone before the goodbye"),
                Err(_) => tracing::warn!("mDNS goodbye not confirmed in time"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot unregister from mDNS"),
        }
        shut_down_daemon(&self.daemon).await;
    }

    /// For `Drop`: the same commands, without waiting for them.
    pub(super) fn stop_now(self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// mdns-sd includes loopback by default in the versions we use; asked explicitly so that two
/// apps on one computer (and the tests, which have nothing but `lo`) keep finding each other.
pub(super) fn enable_loopback(daemon: &ServiceDaemon) -> Result<(), mdns_sd::Error> {
    daemon.enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
}

/// Ends an mDNS daemon's thread and waits (briefly) for it to say so.
pub(super) async fn shut_down_daemon(daemon: &ServiceDaemon) {
    match daemon.shutdown() {
        Ok(status) => {
            if tokio::time::timeout(MDNS_TIMEOUT, status.recv_async())
                .await
                .is_err()
            {
                tracing::warn!("mDNS daemon did not stop in time");
            }
        }
        Err(mdns_sd::Error::DaemonShutdown) => {}
        Err(e) => tracing::warn!(error = %e, "cannot stop the mDNS daemon"),
    }
}
