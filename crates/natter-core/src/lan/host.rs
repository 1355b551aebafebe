//! "Host a server on this computer": natter-server inside this process, announced on the LAN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use natter_proto::{ClientMessage, Frame, FrameCodec, PresenceScope, ServerMessage};
use natter_server::{Cli, Config, Listeners, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

use super::mdns::Announcer;
use super::{host_port, rank_addresses, Announcement, HostError};

/// How long a freshly started server may take to answer `hello` (the first start creates the
/// database and a certificate).
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What to host.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HostConfig {
    /// Where the server keeps its SQLite file, certificate and transferred files.
    pub data_dir: PathBuf,
    /// Name the server is listed under on other computers (say, this computer's host name).
    pub name: String,
    /// Address to listen on; the default 0.0.0.0 lets the LAN reach the server.
    pub bind: IpAddr,
    /// Preferred plain TCP port (`None`: 4004). A port that is taken is replaced by a free one.
    pub port: Option<u16>,
    /// Preferred TLS port (`None`: 4399). A port that is taken is replaced by a free one.
    pub tls_port: Option<u16>,
}

impl HostConfig {
    /// Defaults: every interface, the protocol's ports, listed under this computer's name.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            name: computer_name(),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: None,
            tls_port: None,
        }
    }
}

/// This computer's host name, or "Natter" when the platform will not say.
pub fn computer_name() -> String {
    let from_env = std::env::var("COMPUTERNAME").ok();
    let from_file = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
    };
    from_env
        .or_else(from_file)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "Natter".to_owned())
}

/// What the settings screen shows about a hosted server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HostInfo {
    /// Name it is announced under.
    pub name: String,
    /// `host:port` of the TLS listener on each address it can be reached at, LAN addresses
    /// first and loopback last (the list is read from the interfaces on every call).
    pub addresses: Vec<String>,
    /// Plain TCP port in use.
    pub port: u16,
    /// TLS port in use.
    pub tls_port: u16,
    /// Certificate fingerprint (lowercase hex SHA-256 of its DER) for clients to pin.
    pub fingerprint: String,
}

/// A natter-server running in this process and announced over mDNS. Stop it with
/// [`stop`](HostedServer::stop); dropping it stops it too, but without waiting.
pub struct HostedServer {
    name: String,
    bind: IpAddr,
    port: u16,
    tls_port: u16,
    fingerprint: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    mdns: Option<Announcer>,
}

impl std::fmt::Debug for HostedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedServer")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("tls_port", &self.tls_port)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl HostedServer {
    /// Binds the ports (a taken one is replaced by a free one), starts the server on the current
    /// tokio runtime, waits until it answers `hello`, then announces it. Needs a tokio runtime.
    pub async fn start(config: HostConfig) -> Result<Self, HostError> {
        let (listeners, server_config) = bind(&config).await?;
        let port = listeners.plain_addr().map_err(ServerError::from)?.port();
        let tls_port = listeners
            .tls_addr()
            .map_err(ServerError::from)?
            .map(|a| a.port());
        let fingerprint = listeners
            .tls
            .as_ref()
            .map(|(_, setup)| setup.cert_sha256.clone());
        let (Some(tls_port), Some(fingerprint)) = (tls_port, fingerprint) else {
            // `server_config` always asks for TLS; without it there is nothing to pin.
            return Err(HostError::NotServing {
                addr: config.bind.to_string(),
                why: "no TLS listener".into(),
            });
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        // A dropped sender stops the server as well: a HostedServer dropped without `stop`
        // does not leave a server running.
        let task = tokio::spawn(natter_server::run(listeners, server_config, async move {
            let _ = stopped.await;
        }));
        let mut server = Self {
            name: match config.name.trim() {
                "" => computer_name(),
                name => name.to_owned(),
            },
            bind: config.bind,
            port,
            tls_port,
            fingerprint,
            shutdown: Some(shutdown),
            task: Some(task),
            mdns: None,
        };
        if let Err(e) = server.wait_until_serving().await {
            let _ = server.stop().await;
            return Err(e);
        }
        let announcement = Announcement {
            name: server.name.clone(),
            protocol_version: natter_proto::PROTOCOL_VERSION,
            tls_port: server.tls_port,
            fingerprint: server.fingerprint.clone(),
        };
        match Announcer::start(&announcement, server.bind, server.port) {
            Ok(announcer) => server.mdns = Some(announcer),
            Err(e) => {
                let _ = server.stop().await;
                return Err(e);
            }
        }
        tracing::info!(
            name = %server.name,
            port,
            tls_port,
            fingerprint = %server.fingerprint,
            "hosting a server"
        );
        Ok(server)
    }

    /// Addresses, ports and fingerprint, for the settings screen.
    pub fn info(&self) -> HostInfo {
        HostInfo {
            name: self.name.clone(),
            addresses: reachable_addresses(self.bind)
                .iter()
                .map(|ip| host_port(ip, self.tls_port))
                .collect(),
            port: self.port,
            tls_port: self.tls_port,
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// Says goodbye on mDNS (browsers drop the server a second later), then shuts the server down:
    /// every session is kicked with `shutdown`, connections close, the database is closed. Returns
    /// when all of that is done, with the server's own error if it failed while running.
    pub async fn stop(mut self) -> Result<(), HostError> {
        if let Some(announcer) = self.mdns.take() {
            announcer.stop().await;
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(HostError::from),
                Err(e) => Err(HostError::Task(e.to_string())),
            },
            None => Ok(()),
        }
    }

    /// Asks the server for `hello` on its plain port, and fails at once if its task ends first
    /// (say, the database could not be opened).
    async fn wait_until_serving(&mut self) -> Result<(), HostError> {
        let addr = SocketAddr::new(probe_ip(self.bind), self.port);
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        tokio::select! {
            ended = task => {
                self.task = None;
                let why = match ended {
                    Ok(Ok(())) => "it stopped at once".to_owned(),
                    Ok(Err(e)) => return Err(HostError::Server(e)),
                    Err(e) => e.to_string(),
                };
                Err(HostError::NotServing { addr: addr.to_string(), why })
            }
            answered = tokio::time::timeout(READY_TIMEOUT, say_hello(addr)) => match answered {
                Ok(Ok(())) => Ok(()),
                Ok(Err(why)) => Err(HostError::NotServing { addr: addr.to_string(), why }),
                Err(_) => Err(HostError::NotServing {
                    addr: addr.to_string(),
                    why: format!("no answer within {READY_TIMEOUT:?}"),
                }),
            },
        }
    }
}

impl Drop for HostedServer {
    fn drop(&mut self) {
        // The mDNS thread would outlive us otherwise; the server stops because `shutdown` drops.
        if let Some(announcer) = self.mdns.take() {
            announcer.stop_now();
        }
    }
}

/// Ports to try, and whether a taken one was already replaced.
#[derive(Debug, Clone, Copy)]
struct Ports {
    plain: u16,
    tls: u16,
    relay: u16,
}

impl Ports {
    fn preferred(config: &HostConfig) -> Self {
        let plain = config.port.unwrap_or(natter_proto::DEFAULT_PORT);
        Self {
            plain,
            tls: config.tls_port.unwrap_or(natter_proto::DEFAULT_TLS_PORT),
            // As the server does: asked for any free TCP port, it takes any free UDP port too.
            relay: if plain == 0 {
                0
            } else {
                natter_proto::DEFAULT_RELAY_PORT
            },
        }
    }

    /// The same ports, each one that is taken on `ip` replaced by 0 (any free one). Racy by
    /// nature (a port can be taken between this check and the bind), hence the second fallback
    /// in [`bind`].
    fn without_taken(self, ip: IpAddr) -> Self {
        let tcp_free = |port: u16| port == 0 || std::net::TcpListener::bind((ip, port)).is_ok();
        let udp_free = |port: u16| port == 0 || std::net::UdpSocket::bind((ip, port)).is_ok();
        Self {
            plain: if tcp_free(self.plain) { self.plain } else { 0 },
            tls: if tcp_free(self.tls) { self.tls } else { 0 },
            relay: if udp_free(self.relay) { self.relay } else { 0 },
        }
    }

    fn any() -> Self {
        Self {
            plain: 0,
            tls: 0,
            relay: 0,
        }
    }
}

/// Binds the listeners on the preferred ports, replacing taken ones by free ones, so that
/// hosting works next to another server (or a second app) on this computer.
async fn bind(config: &HostConfig) -> Result<(Listeners, Config), HostError> {
    let preferred = Ports::preferred(config);
    let mut attempts = vec![preferred];
    let mut last_err = None;
    let mut tried = 0;
    while let Some(ports) = attempts.pop() {
        tried += 1;
        let server_config = server_config(config, ports)?;
        match Listeners::bind(&server_config).await {
            Ok(listeners) => {
                if tried > 1 {
                    tracing::warn!(
                        ?preferred,
                        plain = ?listeners.plain_addr().ok(),
                        tls = ?listeners.tls_addr().ok().flatten(),
                        "preferred ports taken; hosting on others"
                    );
                }
                return Ok((listeners, server_config));
            }
            Err(e) if is_addr_in_use(&e) && tried == 1 => {
                tracing::info!(error = %e, "a preferred port is taken");
                let fallback = ports.without_taken(config.bind);
                attempts.push(Ports::any());
                attempts.push(fallback);
                last_err = Some(e);
            }
            Err(e) if is_addr_in_use(&e) => last_err = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err
        .map(HostError::from)
        .unwrap_or_else(|| HostError::NotServing {
            addr: config.bind.to_string(),
            why: "no ports to try".into(),
        }))
}

fn is_addr_in_use(e: &ServerError) -> bool {
    match e {
        ServerError::Io(io) => io.kind() == std::io::ErrorKind::AddrInUse,
        ServerError::Relay { source, .. } => source.kind() == std::io::ErrorKind::AddrInUse,
        _ => false,
    }
}

/// The server's own defaults (rate limits, timeouts, sizes) with our directory and ports.
fn server_config(config: &HostConfig, ports: Ports) -> Result<Config, HostError> {
    Ok(Config::resolve(Cli {
        data_dir: Some(config.data_dir.clone()),
        bind: Some(config.bind),
        port: Some(ports.plain),
        tls_port: Some(ports.tls),
        relay_port: Some(ports.relay),
        ..Cli::default()
    })?)
}

/// Where this computer reaches its own server.
fn probe_ip(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// One `hello` exchange: the server is accepting and its database is open.
async fn say_hello(addr: SocketAddr) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut framed = Framed::new(stream, FrameCodec::default());
    let hello = ClientMessage::Hello {
        id: "host-check".into(),
        version: natter_proto::PROTOCOL_VERSION,
        client: concat!("natter-core/", env!("CARGO_PKG_VERSION"), " host check").into(),
        presence: PresenceScope::Friends,
    };
    framed
        .send(natter_proto::encode(&hello))
        .await
        .map_err(|e| e.to_string())?;
    match framed.next().await {
        Some(Ok(Frame::Json(payload))) => match natter_proto::decode_server(&payload) {
            Ok(ServerMessage::HelloOk { .. }) => Ok(()),
            Ok(other) => Err(format!("unexpected answer: {other:?}")),
            Err(e) => Err(e.to_string()),
        },
        Some(Ok(Frame::Binary(_))) => Err("unexpected binary frame".into()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("connection closed".into()),
    }
}

/// The addresses another computer can reach a server bound to `bind` at, best first.
fn reachable_addresses(bind: IpAddr) -> Vec<IpAddr> {
    if !bind.is_unspecified() {
        return vec![bind];
    }
    let interfaces = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list network interfaces");
            Vec::new()
        }
    };
    // 0.0.0.0 takes IPv4 only; `::` takes both on the platforms we run on (dual stack).
    let wants_v6 = bind.is_ipv6();
    rank_addresses(
        interfaces
            .iter()
            .filter(|i| i.is_oper_up())
            .map(|i| i.ip())
            .filter(|ip| ip.is_ipv4() || wants_v6),
    )
}
