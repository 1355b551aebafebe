//! Finding Natter servers on the LAN: an mDNS browse for [`SERVICE_TYPE`] kept as a list.

use std::collections::BTreeMap;

use mdns_sd::{ResolvedService, ServiceDaemon, ServiceEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::mdns::{enable_loopback, shut_down_daemon};
use super::{rank_addresses, Announcement, HostError, SERVICE_TYPE};
use crate::ServerAddr;

/// A server found on the LAN, as the connect screen lists it.
///
/// To connect: start a client on [`tls_addr`](LanServer::tls_addr), pin the announced
/// certificate before the first request, then log in as usual:
/// `let client = Client::start(ClientConfig::new(server.tls_addr(), dir));
/// client.accept_certificate(&server.fingerprint)?;`
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LanServer {
    /// The DNS-SD instance name, unique on the LAN: the key to keep a list row by.
    pub id: String,
    /// Name the host chose to be listed under.
    pub name: String,
    /// The best address to reach it at (LAN IPv4 before IPv6 before loopback).
    pub host: String,
    /// Every usable address it announced, best first (`host` is the first).
    pub addresses: Vec<String>,
    /// Plain TCP port.
    pub port: u16,
    /// TLS port: the one to connect to.
    pub tls_port: u16,
    /// Certificate fingerprint to pin (lowercase hex SHA-256); show it to the user.
    pub fingerprint: String,
    /// Protocol version the server speaks.
    pub protocol_version: u32,
}

impl LanServer {
    /// The TLS address at the best host.
    pub fn tls_addr(&self) -> ServerAddr {
        ServerAddr {
            host: self.host.clone(),
            port: self.tls_port,
            tls: true,
        }
    }

    /// The TLS address at each further host, for `ClientConfig::fallbacks`.
    pub fn fallbacks(&self) -> Vec<ServerAddr> {
        self.addresses
            .iter()
            .skip(1)
            .map(|host| ServerAddr {
                host: host.clone(),
                port: self.tls_port,
                tls: true,
            })
            .collect()
    }

    /// Reads a resolved mDNS service; `Err` says why it cannot be listed.
    fn from_resolved(service: &ResolvedService) -> Result<Self, String> {
        let instance = instance_name(&service.fullname);
        let announcement = Announcement::from_txt(
            |key| service.txt_properties.get_property_val(key).flatten(),
            instance,
        )
        .map_err(|e| e.to_string())?;
        if service.port == 0 {
            return Err("SRV port 0".into());
        }
        let addresses: Vec<String> =
            rank_addresses(service.addresses.iter().map(|ip| ip.to_ip_addr()))
                .iter()
                .map(|ip| ip.to_string())
                .collect();
        let Some(host) = addresses.first().cloned() else {
            return Err("no usable address".into());
        };
        Ok(Self {
            id: service.fullname.to_lowercase(),
            name: announcement.name,
            host,
            addresses,
            port: service.port,
            tls_port: announcement.tls_port,
            fingerprint: announcement.fingerprint,
            protocol_version: announcement.protocol_version,
        })
    }
}

/// `Ada (1a2b3c4d)._natter._tcp.local.` → `Ada (1a2b3c4d)`.
fn instance_name(fullname: &str) -> &str {
    let lower = fullname.to_ascii_lowercase();
    match lower.strip_suffix(SERVICE_TYPE) {
        Some(rest) => fullname[..rest.len()].trim_end_matches('.'),
        None => fullname,
    }
}

/// A running mDNS browse for Natter servers. Needs a tokio runtime; stop it with
/// [`stop`](Discovery::stop) (dropping it stops it too, without waiting).
pub struct Discovery {
    daemon: ServiceDaemon,
    servers: watch::Receiver<Vec<LanServer>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("servers", &*self.servers.borrow())
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Starts browsing on every interface, loopback included.
    pub fn start() -> Result<Self, HostError> {
        let daemon = ServiceDaemon::new()?;
        let events = enable_loopback(&daemon).and_then(|()| daemon.browse(SERVICE_TYPE));
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                let _ = daemon.shutdown();
                return Err(e.into());
            }
        };
        let (list, servers) = watch::channel(Vec::new());
        let task = tokio::spawn(follow(events, list));
        Ok(Self {
            daemon,
            servers,
            task: Some(task),
        })
    }

    /// The servers announced right now, sorted by name.
    pub fn servers(&self) -> Vec<LanServer> {
        self.servers.borrow().clone()
    }

    /// The list, to await changes with `changed()`; it is replaced whenever a server appears,
    /// changes or leaves.
    pub fn watch(&self) -> watch::Receiver<Vec<LanServer>> {
        self.servers.clone()
    }

    /// Stops browsing and ends the mDNS thread.
    pub async fn stop(mut self) {
        shut_down_daemon(&self.daemon).await;
        if let Some(task) = self.task.take() {
            // The browse channel closes with the daemon, which ends the task.
            let _ = task.await;
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = self.daemon.shutdown();
            task.abort();
        }
    }
}

/// Applies mDNS events to the list until the browse ends.
async fn follow(events: mdns_sd::Receiver<ServiceEvent>, list: watch::Sender<Vec<LanServer>>) {
    let mut known: BTreeMap<String, LanServer> = BTreeMap::new();
    while let Ok(event) = events.recv_async().await {
        let changed = match event {
            ServiceEvent::ServiceResolved(service) => {
                let id = service.fullname.to_lowercase();
                match LanServer::from_resolved(&service) {
                    Ok(server) => known.insert(id, server.clone()).as_ref() != Some(&server),
                    Err(why) => {
                        // Anyone on the LAN can announce anything; not listed, not an error.
                        tracing::debug!(
                            instance = %service.fullname,
                            %why,
                            "ignoring an announcement"
                        );
                        known.remove(&id).is_some()
                    }
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                known.remove(&fullname.to_lowercase()).is_some()
            }
            _ => false,
        };
        if changed {
            let mut servers: Vec<LanServer> = known.values().cloned().collect();
            servers.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
            list.send_replace(servers);
        }
    }
    tracing::debug!("mDNS browse ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_name_is_the_full_name_without_the_service_type() {
        assert_eq!(
            instance_name("Ada (1a2b3c4d)._natter._tcp.local."),
            "Ada (1a2b3c4d)"
        );
        assert_eq!(instance_name("x._NATTER._tcp.local."), "x");
        assert_eq!(instance_name("odd"), "odd");
    }
}
