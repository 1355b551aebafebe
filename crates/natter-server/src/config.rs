//! Server configuration: command-line flags (each with an environment variable), an optional TOML
//! file, and defaults — in that order of precedence.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::ratelimit::Limits;

/// Command-line flags of `natter-server`.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "natter-server", version, about = "The Natter messaging server")]
pub struct Cli {
    /// TOML file with any of the settings below (flags win over it).
    #[arg(long, env = "NATTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the database and TLS certificate live [default: the user's data dir/natter-server].
    #[arg(long, env = "NATTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL database shared by a cluster's nodes (`postgres://user:password@host/db`)
    /// [default: the embedded SQLite file in the data directory].
    #[arg(long, env = "NATTER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// NATS server of a cluster (`nats://host:4222`); needs --database-url, shared by every
    /// node [default: no cluster, this node alone].
    #[arg(long, env = "NATTER_NATS_URL")]
    pub nats_url: Option<String>,
    /// Silence after which a cluster node is taken for dead and its users go offline
    /// [default: 5000].
    #[arg(long, env = "NATTER_NODE_TIMEOUT_MS")]
    pub node_timeout_ms: Option<u64>,
    /// Name of the cluster on its NATS server: the first token of every bus subject, so that
    /// several clusters can share one NATS [default: natter].
    #[arg(long, env = "NATTER_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Where transferred files' bytes live; a cluster's nodes share one directory (a shared
    /// volume) so that any node serves any file [default: files/ in the data directory].
    #[arg(long, env = "NATTER_FILES_DIR")]
    pub files_dir: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "NATTER_BIND")]
    pub bind: Option<IpAddr>,
    /// Plain TCP port; 0 picks a free one [default: 4004].
    #[arg(long, env = "NATTER_PORT")]
    pub port: Option<u16>,
    /// TLS port; 0 picks a free one [default: 4399].
    #[arg(long, env = "NATTER_TLS_PORT")]
    pub tls_port: Option<u16>,
    /// Serve plain TCP only.
    #[arg(long, env = "NATTER_NO_TLS")]
    pub no_tls: bool,
    /// PEM certificate chain to serve instead of the generated self-signed one.
    #[arg(long, env = "NATTER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "NATTER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Once listening, write the bound addresses and certificate fingerprint here as JSON.
    #[arg(long, env = "NATTER_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Largest frame payload accepted [default: 16 MiB].
    #[arg(long, env = "NATTER_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// How often each side sends something at least [default: 15000].
    #[arg(long, env = "NATTER_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Silence after which a connection is dropped [default: 45000].
    #[arg(long, env = "NATTER_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// How often batched presence changes go out to version 2 clients [default: 200].
    #[arg(long, env = "NATTER_PRESENCE_INTERVAL_MS")]
    pub presence_interval_ms: Option<u64>,
    /// How long a disconnected guest keeps their name and can resume [default: 120000].
    #[arg(long, env = "NATTER_GUEST_GRACE_MS")]
    pub guest_grace_ms: Option<u64>,
    /// Most simultaneous connections [default: 20000].
    #[arg(long, env = "NATTER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Disable every rate limit (for load benchmarks only).
    #[arg(long, env = "NATTER_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// Largest file a `file_offer` may announce, in bytes [default: 8 GiB].
    #[arg(long, env = "NATTER_MAX_FILE_BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Largest image transfer, in bytes [default: 32 MiB].
    #[arg(long, env = "NATTER_MAX_IMAGE_BYTES")]
    pub max_image_bytes: Option<u64>,
    /// Most bytes one user's unexpired transfers may add up to [default: 20 GiB].
    #[arg(long, env = "NATTER_USER_QUOTA_BYTES")]
    pub user_quota_bytes: Option<u64>,
    /// How long after its offer a transfer and its bytes are deleted [default: 604800000, 7 days].
    #[arg(long, env = "NATTER_FILE_TTL_MS")]
    pub file_ttl_ms: Option<u64>,
    /// How often housekeeping (guest purge, transfer expiry) runs [default: half the guest
    /// grace period, between 100 ms and 30 s].
    #[arg(long, env = "NATTER_HOUSEKEEPING_INTERVAL_MS")]
    pub housekeeping_interval_ms: Option<u64>,
    /// UDP port of the voice relay, on the --bind address; 0 picks a free one [default: 4005,
    /// or a free one when --port is 0].
    #[arg(long, env = "NATTER_RELAY_PORT")]
    pub relay_port: Option<u16>,
    /// Host name or IP address calls advertise for the relay (behind NAT: the public one); the
    /// port is always the relay's [default: the address each client reached the server at].
    #[arg(long, env = "NATTER_RELAY_HOST")]
    pub relay_host: Option<String>,
    /// How long a call rings before it ends with no_answer [default: 30000].
    #[arg(long, env = "NATTER_RING_TIMEOUT_MS")]
    pub ring_timeout_ms: Option<u64>,
}

/// The TOML file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Cli::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Cli::database_url`].
    pub database_url: Option<String>,
    /// See [`Cli::nats_url`].
    pub nats_url: Option<String>,
    /// See [`Cli::node_timeout_ms`].
    pub node_timeout_ms: Option<u64>,
    /// See [`Cli::cluster_name`].
    pub cluster_name: Option<String>,
    /// See [`Cli::files_dir`].
    pub files_dir: Option<PathBuf>,
    /// See [`Cli::bind`].
    pub bind: Option<IpAddr>,
    /// See [`Cli::port`].
    pub port: Option<u16>,
    /// See [`Cli::tls_port`].
    pub tls_port: Option<u16>,
    /// See [`Cli::no_tls`].
    pub no_tls: Option<bool>,
    /// See [`Cli::tls_cert`].
    pub tls_cert: Option<PathBuf>,
    /// See [`Cli::tls_key`].
    pub tls_key: Option<PathBuf>,
    /// See [`Cli::max_frame_bytes`].
    pub max_frame_bytes: Option<usize>,
    /// See [`Cli::heartbeat_interval_ms`].
    pub heartbeat_interval_ms: Option<u64>,
    /// See [`Cli::idle_timeout_ms`].
    pub idle_timeout_ms: Option<u64>,
    /// See [`Cli::presence_interval_ms`].
    pub presence_interval_ms: Option<u64>,
    /// See [`Cli::guest_grace_ms`].
    pub guest_grace_ms: Option<u64>,
    /// See [`Cli::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`Cli::max_file_bytes`].
    pub max_file_bytes: Option<u64>,
    /// See [`Cli::max_image_bytes`].
    pub max_image_bytes: Option<u64>,
    /// See [`Cli::user_quota_bytes`].
    pub user_quota_bytes: Option<u64>,
    /// See [`Cli::file_ttl_ms`].
    pub file_ttl_ms: Option<u64>,
    /// See [`Cli::housekeeping_interval_ms`].
    pub housekeeping_interval_ms: Option<u64>,
    /// See [`Cli::relay_port`].
    pub relay_port: Option<u16>,
    /// See [`Cli::relay_host`].
    pub relay_host: Option<String>,
    /// See [`Cli::ring_timeout_ms`].
    pub ring_timeout_ms: Option<u64>,
    /// Rate limits.
    pub limits: Option<Limits>,
}

/// Configuration problems.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML file is malformed.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
    /// No data dir given and the platform has none.
    #[error("no data directory: pass --data-dir")]
    NoDataDir,
    /// Values that cannot work together.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database and certificate directory.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// The cluster bus, if this node is one of several.
    pub nats_url: Option<String>,
    /// How long a silent cluster node counts as alive.
    pub node_timeout: Duration,
    /// The cluster's name on the bus.
    pub cluster_name: String,
    /// Where transferred files' bytes live.
    pub files_dir: PathBuf,
    /// Listen address.
    pub bind: IpAddr,
    /// Plain port.
    pub port: u16,
    /// TLS port, or `None` for plain only.
    pub tls_port: Option<u16>,
    /// Configured certificate and key, if not self-signed.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Where to write the ready file.
    pub ready_file: Option<PathBuf>,
    /// Largest frame payload.
    pub max_frame_bytes: usize,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Period of batched presence pushes.
    pub presence_interval: Duration,
    /// Guest grace period.
    pub guest_grace: Duration,
    /// Connection cap.
    pub max_connections: usize,
    /// Largest file transfer.
    pub max_file_bytes: u64,
    /// Largest image transfer.
    pub max_image_bytes: u64,
    /// Most bytes of unexpired transfers per sender.
    pub user_quota_bytes: u64,
    /// Lifetime of a transfer from its offer.
    pub file_ttl: Duration,
    /// Period of the housekeeping chores.
    pub housekeeping_interval: Duration,
    /// UDP port of the voice relay (0: any free one).
    pub relay_port: u16,
    /// What calls advertise as the relay's host, or `None` for the address each client reached.
    pub relay_host: Option<String>,
    /// How long a call rings unanswered.
    pub ring_timeout: Duration,
    /// Rate limits.
    pub limits: Limits,
}

/// Default largest file transfer: 8 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 30;
/// Default largest image transfer: 32 MiB.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 32 << 20;
/// Default storage quota per user: 20 GiB.
pub const DEFAULT_USER_QUOTA_BYTES: u64 = 20 << 30;
/// Default transfer lifetime: 7 days.
pub const DEFAULT_FILE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default period of batched presence pushes: fast enough that a contact list feels live,
/// slow enough that a login storm costs a few frames per session, not one per login.
pub const DEFAULT_PRESENCE_INTERVAL: Duration = Duration::from_millis(200);

/// Default silence after which a cluster node is taken for dead: a few missed `alive`s (sent every
/// quarter of it), short enough that a dead node's users go offline within seconds.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default ring timeout (PROTOCOL.md §5.8 recommends 30 s).
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// Housekeeping runs twice per guest grace period, so a guest's name frees up at most half a
/// period late, but never busier than every 100 ms nor lazier than every 30 s.
fn default_housekeeping(guest_grace: Duration) -> Duration {
    (guest_grace / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

impl Config {
    /// Settings for tests: ephemeral ports on loopback, data in `data_dir`.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            database_url: None,
            nats_url: None,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            cluster_name: "natter".into(),
            files_dir: data_dir.join("files"),
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            tls_port: Some(0),
            tls_files: None,
            ready_file: None,
            max_frame_bytes: natter_proto::DEFAULT_MAX_FRAME,
            heartbeat_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            presence_interval: DEFAULT_PRESENCE_INTERVAL,
            guest_grace: Duration::from_secs(120),
            max_connections: 20_000,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            user_quota_bytes: DEFAULT_USER_QUOTA_BYTES,
            file_ttl: DEFAULT_FILE_TTL,
            housekeeping_interval: default_housekeeping(Duration::from_secs(120)),
            relay_port: 0,
            relay_host: None,
            ring_timeout: DEFAULT_RING_TIMEOUT,
            limits: Limits::default(),
        }
    }

    /// Resolves flags over the TOML file over defaults.
    pub fn resolve(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => FileConfig::default(),
        };
        Self::merge(cli, file)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let data_dir = match cli.data_dir.or(file.data_dir) {
            Some(dir) => dir,
            None => dirs::data_dir()
                .ok_or(ConfigError::NoDataDir)?
                .join("natter-server"),
        };
        let no_tls = cli.no_tls || file.no_tls.unwrap_or(false);
        let tls_files = match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key go together".into(),
                ))
            }
        };
        let mut limits = file.limits.unwrap_or_default();
        if cli.no_rate_limits {
            limits.enabled = false;
        }
        let ms = Duration::from_millis;
        let guest_grace = ms(cli
            .guest_grace_ms
            .or(file.guest_grace_ms)
            .unwrap_or(120_000));
        let port = cli.port.or(file.port).unwrap_or(natter_proto::DEFAULT_PORT);
        // A server told to pick a free TCP port (tests, benchmarks) picks a free UDP port too,
        // so that several of them, or one next to a real server, never fight over 4005.
        let relay_port = cli.relay_port.or(file.relay_port).unwrap_or(if port == 0 {
            0
        } else {
            natter_proto::DEFAULT_RELAY_PORT
        });
        let relay_host = match cli.relay_host.or(file.relay_host) {
            Some(host) => Some(relay_host(&host)?),
            None => None,
        };
        let database_url =
            match cli.database_url.or(file.database_url) {
                Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    Some(url)
                }
                Some(_) => return Err(ConfigError::Invalid(
                    "database_url must be a postgres:// URL (SQLite is the default: leave it out)"
                        .into(),
                )),
                None => None,
            };
        let nats_url = cli.nats_url.or(file.nats_url);
        if nats_url.is_some() && database_url.is_none() {
            return Err(ConfigError::Invalid(
                "nats_url joins a cluster, whose nodes share one database: set database_url too"
                    .into(),
            ));
        }
        let node_timeout = Duration::from_millis(
            cli.node_timeout_ms
                .or(file.node_timeout_ms)
                .unwrap_or(DEFAULT_NODE_TIMEOUT.as_millis() as u64)
                .max(100),
        );
        let cluster_name = cli
            .cluster_name
            .or(file.cluster_name)
            .unwrap_or_else(|| "natter".into());
        if cluster_name.is_empty()
            || !cluster_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::Invalid(format!(
                "cluster_name {cluster_name:?}: use letters, digits, - and _"
            )));
        }
        let files_dir = cli
            .files_dir
            .or(file.files_dir)
            .unwrap_or_else(|| data_dir.join("files"));
        let config = Self {
            data_dir,
            database_url,
            files_dir,
            nats_url,
            node_timeout,
            cluster_name,
            bind: cli.bind.or(file.bind).unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port,
            tls_port: if no_tls {
                None
            } else {
                Some(
                    cli.tls_port
                        .or(file.tls_port)
                        .unwrap_or(natter_proto::DEFAULT_TLS_PORT),
                )
            },
            tls_files,
            ready_file: cli.ready_file,
            max_frame_bytes: cli
                .max_frame_bytes
                .or(file.max_frame_bytes)
                .unwrap_or(natter_proto::DEFAULT_MAX_FRAME),
            heartbeat_interval: ms(cli
                .heartbeat_interval_ms
                .or(file.heartbeat_interval_ms)
                .unwrap_or(15_000)),
            idle_timeout: ms(cli
                .idle_timeout_ms
                .or(file.idle_timeout_ms)
                .unwrap_or(45_000)),
            presence_interval: cli
                .presence_interval_ms
                .or(file.presence_interval_ms)
                .map(ms)
                .unwrap_or(DEFAULT_PRESENCE_INTERVAL),
            guest_grace,
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(20_000),
            max_file_bytes: cli
                .max_file_bytes
                .or(file.max_file_bytes)
                .unwrap_or(DEFAULT_MAX_FILE_BYTES),
            max_image_bytes: cli
                .max_image_bytes
                .or(file.max_image_bytes)
                .unwrap_or(DEFAULT_MAX_IMAGE_BYTES),
            user_quota_bytes: cli
                .user_quota_bytes
                .or(file.user_quota_bytes)
                .unwrap_or(DEFAULT_USER_QUOTA_BYTES),
            file_ttl: cli
                .file_ttl_ms
                .or(file.file_ttl_ms)
                .map(ms)
                .unwrap_or(DEFAULT_FILE_TTL),
            housekeeping_interval: cli
                .housekeeping_interval_ms
                .or(file.housekeeping_interval_ms)
                .map(ms)
                .unwrap_or_else(|| default_housekeeping(guest_grace)),
            relay_port,
            relay_host,
            ring_timeout: cli
                .ring_timeout_ms
                .or(file.ring_timeout_ms)
                .map(ms)
                .unwrap_or(DEFAULT_RING_TIMEOUT),
            limits,
        };
        if config.heartbeat_interval.is_zero() || config.idle_timeout <= config.heartbeat_interval {
            return Err(ConfigError::Invalid(
                "idle timeout must be longer than a non-zero heartbeat interval".into(),
            ));
        }
        if config.max_frame_bytes < 1024 {
            return Err(ConfigError::Invalid("max frame size below 1 KiB".into()));
        }
        // Sizes are SQLite integers: signed 64-bit.
        let sizes = [
            config.max_file_bytes,
            config.max_image_bytes,
            config.user_quota_bytes,
        ];
        if sizes.iter().any(|&s| s > i64::MAX as u64) {
            return Err(ConfigError::Invalid(
                "file size limits and quotas must fit in a signed 64-bit integer".into(),
            ));
        }
        if config.file_ttl.is_zero() || config.file_ttl.as_millis() > i64::MAX as u128 / 2 {
            return Err(ConfigError::Invalid(
                "file_ttl_ms must be positive and below 2^62".into(),
            ));
        }
        if config.ring_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "ring_timeout_ms must be positive".into(),
            ));
        }
        if config.housekeeping_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "housekeeping_interval_ms must be positive".into(),
            ));
        }
        Ok(config)
    }
}

/// Checks a `relay_host` and writes it the way `host:port` needs it (an IPv6 literal in
/// brackets).
fn relay_host(host: &str) -> Result<String, ConfigError> {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::Ipv6Addr>() {
        return Ok(format!("[{ip}]"));
    }
    let is_name_or_v4 = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !is_name_or_v4 {
        return Err(ConfigError::Invalid(format!(
            "relay_host `{host}` is not a host name or IP address (the port is relay_port's)"
        )));
    }
    Ok(bare.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let file: FileConfig = toml::from_str(
            "port = 5000\ntls_port = 5001\nidle_timeout_ms = 9000\nheartbeat_interval_ms = 3000\n\
             max_file_bytes = 1000\nfile_ttl_ms = 5000\n[limits]\nenabled = false\n",
        )
        .expect("toml");
        let cli = Cli {
            port: Some(6000),
            data_dir: Some("/tmp/x".into()),
            max_file_bytes: Some(2000),
            ..Cli::default()
        };
        let c = Config::merge(cli, file).expect("valid");
        assert_eq!(c.port, 6000);
        assert_eq!(c.max_file_bytes, 2000);
        assert_eq!(c.file_ttl, Duration::from_secs(5));
        assert_eq!(c.tls_port, Some(5001));
        assert_eq!(c.idle_timeout, Duration::from_secs(9));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(
            c.guest_grace,
            Duration::from_secs(120),
            "unset keys keep defaults"
        );
        assert!(!c.limits.enabled);
        assert_eq!(
            c.limits.query,
            Limits::default().query,
            "unset limits keep defaults"
        );
    }

    #[test]
    fn defaults_are_the_documented_ports() {
        let c = Config::merge(
            Cli {
                data_dir: Some("/tmp/x".into()),
                ..Cli::default()
            },
            FileConfig::default(),
        )
        .expect("valid");
        assert_eq!((c.port, c.tls_port), (4004, Some(4399)));
        assert!(c.limits.enabled);
        assert_eq!(c.max_file_bytes, 8 * 1024 * 1024 * 1024);
        assert_eq!(c.max_image_bytes, 32 * 1024 * 1024);
        assert_eq!(c.user_quota_bytes, 20 * 1024 * 1024 * 1024);
        assert_eq!(c.file_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.housekeeping_interval, Duration::from_secs(30));
        assert_eq!(c.relay_port, 4005);
        assert_eq!(c.relay_host, None);
        assert_eq!(c.ring_timeout, Duration::from_secs(30));
    }

    #[test]
    fn call_settings_resolve_and_a_free_tcp_port_means_a_free_relay_port() {
        let base = || Cli {
            data_dir: Some("/tmp/x".into()),
            ..Cli::default()
        };
        let ephemeral = Config::merge(
            Cli {
                port: Some(0),
                ..base()
            },
            FileConfig::default(),
        )
        .expect("valid");
        assert_eq!(ephemeral.relay_port, 0);
        let file: FileConfig = toml::from_str(
            "relay_port = 6005\nrelay_host = \"chat.example.org\"\nring_timeout_ms = 250\n",
        )
        .expect("toml");
        let c = Config::merge(
            Cli {
                port: Some(0),
                ..base()
            },
            file,
        )
        .expect("valid");
        assert_eq!(c.relay_port, 6005, "an explicit relay port wins");
        assert_eq!(c.relay_host.as_deref(), Some("chat.example.org"));
        assert_eq!(c.ring_timeout, Duration::from_millis(250));
        let v6 = Config::merge(
            Cli {
                relay_host: Some("2001:db8::7".into()),
                ..base()
            },
            FileConfig::default(),
        )
        .expect("valid");
        assert_eq!(v6.relay_host.as_deref(), Some("[2001:db8::7]"));
        for bad in ["", "host:4005", "a b"] {
            let cli = Cli {
                relay_host: Some(bad.into()),
                ..base()
            };
            assert!(
                Config::merge(cli, FileConfig::default()).is_err(),
                "relay_host {bad:?} is refused"
            );
        }
        let cli = Cli {
            ring_timeout_ms: Some(0),
            ..base()
        };
        assert!(Config::merge(cli, FileConfig::default()).is_err());
    }

    #[test]
    fn one_node_on_sqlite_unless_told_and_a_cluster_needs_a_shared_database() {
        let base = || Cli {
            data_dir: Some("/tmp/x".into()),
            ..Cli::default()
        };
        let alone = Config::merge(base(), FileConfig::default()).expect("valid");
        assert_eq!((alone.database_url, alone.nats_url), (None, None));
        assert_eq!(alone.files_dir, Path::new("/tmp/x/files"));
        assert_eq!(alone.cluster_name, "natter");
        assert_eq!(alone.node_timeout, DEFAULT_NODE_TIMEOUT);

        let file: FileConfig = toml::from_str(
            "database_url = \"postgres://n@db/natter\"\nnats_url = \"nats://bus:4222\"\n\
             files_dir = \"/srv/files\"\ncluster_name = \"east-1\"\nnode_timeout_ms = 2000\n",
        )
        .expect("toml");
        let node = Config::merge(base(), file).expect("valid");
        assert_eq!(node.database_url.as_deref(), Some("postgres://n@db/natter"));
        assert_eq!(node.nats_url.as_deref(), Some("nats://bus:4222"));
        assert_eq!(node.files_dir, Path::new("/srv/files"));
        assert_eq!(node.cluster_name, "east-1");
        assert_eq!(node.node_timeout, Duration::from_secs(2));

        let refused = |cli: Cli| match Config::merge(cli, FileConfig::default()) {
            Err(ConfigError::Invalid(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let why = refused(Cli {
            nats_url: Some("nats://bus:4222".into()),
            ..base()
        });
        assert!(why.contains("database_url"), "{why}");
        let why = refused(Cli {
            database_url: Some("sqlite:///tmp/x.db".into()),
            ..base()
        });
        assert!(why.contains("postgres://"), "{why}");
        let why = refused(Cli {
            database_url: Some("postgres://n@db/natter".into()),
            cluster_name: Some("has.dots".into()),
            ..base()
        });
        assert!(why.contains("cluster_name"), "{why}");
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        let cli = Cli {
            data_dir: Some("/tmp/x".into()),
            heartbeat_interval_ms: Some(5000),
            idle_timeout_ms: Some(1000),
            ..Cli::default()
        };
        assert!(matches!(
            Config::merge(cli, FileConfig::default()),
            Err(ConfigError::Invalid(_))
        ));
        assert!(
            toml::from_str::<FileConfig>("prot = 1").is_err(),
            "typos are reported"
        );
    }
}
