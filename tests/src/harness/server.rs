//! The real `natter-server` binary as a child process: its own temporary data directory,
//! ephemeral ports, a log file, and a ready file that says where it listens.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use super::tls;

/// How long a server may take from spawn to writing its ready file.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown (SIGTERM) may take.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How many log lines a failing test prints.
const LOG_TAIL_LINES: usize = 60;

/// What the server writes to `--ready-file` once both listeners are bound.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadyFile {
    /// Plain TCP listener.
    pub plain: SocketAddr,
    /// TLS listener; `None` with `--no-tls`.
    #[serde(default)]
    pub tls: Option<SocketAddr>,
    /// Lowercase hex SHA-256 of the DER certificate.
    #[serde(default)]
    pub cert_sha256: Option<String>,
    /// Absolute path of the PEM certificate.
    #[serde(default)]
    pub cert_pem: Option<PathBuf>,
    /// The voice relay's UDP socket; `None` from a server that predates calls.
    #[serde(default)]
    pub relay: Option<SocketAddr>,
    /// The server's process id.
    pub pid: u32,
}

/// A running server under test. Killed (SIGKILL) when dropped; when the test is failing, the
/// tail of its log is printed so the failure explains itself.
pub struct TestServer {
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready: ReadyFile,
    cert: Option<CertificateDer<'static>>,
    starts: u32,
    /// The PostgreSQL database of this server (dropped with it), when the suite runs on that
    /// backend.
    database: Option<PgDatabase>,
}

/// The environment variable that switches every server of the suites to PostgreSQL: the URL of
/// a database to connect to for administration (`scripts/cluster-services.sh` sets it). Each
/// [`TestServer`] then gets a database of its own, so the protocol suites run unchanged on both
/// backends.
pub const POSTGRES_ENV: &str = "NATTER_TEST_POSTGRES";

/// A throw-away database on the suite's PostgreSQL server.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// Where a server connects.
    pub url: String,
}

impl PgDatabase {
    /// Creates a fresh, empty database next to the one `admin_url` names.
    pub fn create(admin_url: &str) -> Result<Self> {
        let (base, _) = admin_url
            .rsplit_once('/')
            .ok_or_else(|| anyhow!("{POSTGRES_ENV}={admin_url} is not postgres://…/dbname"))?;
        let name = format!("natter_{}", uuid::Uuid::new_v4().simple());
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// The suite's PostgreSQL database for a new server, if the suite runs on PostgreSQL.
    pub fn for_suite() -> Result<Option<Self>> {
        match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => Self::create(&url).map(Some),
            _ => Ok(None),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Hundreds of servers per suite run: leaving their databases would fill the disk.
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin_url, &drop) {
            eprintln!("natter-e2e: {e:#}");
        }
    }
}

/// Runs one SQL statement with `psql`; returns what it printed (unaligned, tuples only).
pub fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-tA", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("while running psql (apt-get install postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> Result<TestServer> {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra command-line arguments, e.g.
    /// `["--heartbeat-interval-ms", "200"]`.
    pub async fn start_with(args: &[&str]) -> Result<TestServer> {
        Self::start_with_env(args, &[]).await
    }

    /// Starts a server with extra arguments and environment variables, e.g.
    /// `[("NATTER_HEARTBEAT_INTERVAL_MS", "1500")]`. Inherited `NATTER_*` variables are never
    /// passed on; only these are.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<TestServer> {
        let dir = tempfile::Builder::new()
            .prefix("natter-e2e-")
            .tempdir()
            .context("while creating the server's temporary directory")?;
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        // A cluster node names its shared database itself.
        let database = if args.iter().any(|a| a == "--database-url") {
            None
        } else {
            PgDatabase::for_suite()?
        };
        if let Some(db) = &database {
            args.extend(["--database-url".to_owned(), db.url.clone()]);
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, ready) = spawn(dir.path(), &args, &env, None, 1).await?;
        let mut server = TestServer {
            dir: Some(dir),
            child: Some(child),
            args,
            env,
            ready,
            cert: None,
            starts: 1,
            database,
        };
        server.load_cert()?;
        Ok(server)
    }

    /// Whether this server runs on PostgreSQL (the suite's [`POSTGRES_ENV`] is set).
    pub fn on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// Cuts every connection the server holds to its PostgreSQL database, as a database restart
    /// or a network blip would. An error if the server is not on PostgreSQL.
    pub fn cut_database_connections(&self) -> Result<()> {
        let db = self
            .database
            .as_ref()
            .ok_or_else(|| anyhow!("this server runs on SQLite"))?;
        psql(
            &db.admin_url,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                db.name
            ),
        )
        .map(drop)
    }

    /// The plain TCP address.
    pub fn plain_addr(&self) -> SocketAddr {
        self.ready.plain
    }

    /// The TLS address; an error if the server runs with `--no-tls`.
    pub fn tls_addr(&self) -> Result<SocketAddr> {
        self.ready
            .tls
            .ok_or_else(|| anyhow!("the server has no TLS listener (ready file says tls: null)"))
    }

    /// The voice relay's UDP address.
    pub fn relay_addr(&self) -> Result<SocketAddr> {
        self.ready
            .relay
            .ok_or_else(|| anyhow!("the ready file names no relay address"))
    }

    /// The server's certificate (DER), checked against the ready file's fingerprint.
    pub fn cert_der(&self) -> Result<&CertificateDer<'static>> {
        self.cert
            .as_ref()
            .ok_or_else(|| anyhow!("the server has no TLS certificate (TLS disabled)"))
    }

    /// Path of the server's PEM certificate as the ready file gives it.
    pub fn cert_pem_path(&self) -> Result<&Path> {
        self.ready
            .cert_pem
            .as_deref()
            .ok_or_else(|| anyhow!("the ready file names no cert_pem"))
    }

    /// The ready file of the current run.
    pub fn ready(&self) -> &ReadyFile {
        &self.ready
    }

    /// The server's data directory (database, certificate).
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir().join("data")
    }

    /// The server's log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.base_dir().join("server.log")
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL, as a crash or power loss would: no shutdown code runs.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` is SIGKILL on unix.
            child
                .kill()
                .context("while sending SIGKILL to the server")?;
            child.wait().context("while reaping the killed server")?;
        }
        Ok(())
    }

    /// Asks the server to shut down gracefully (SIGTERM) and waits for it to exit.
    pub async fn terminate(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .context("while running `kill -TERM`")?;
        if !status.success() {
            bail!("`kill -TERM {}` failed: {status}", child.id());
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("while waiting for the server")? {
                if !status.success() {
                    bail!(
                        "the server exited with {status} after SIGTERM\n{}",
                        self.log_tail(LOG_TAIL_LINES)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the server did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM\n{}",
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same data directory and the same ports, with the same
    /// arguments. A server still running is shut down gracefully first; after [`kill9`] this
    /// is a restart after a crash.
    ///
    /// [`kill9`]: TestServer::kill9
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.terminate().await?;
        }
        let ports = Ports {
            plain: self.ready.plain.port(),
            tls: self.ready.tls.map(|a| a.port()),
            relay: self.ready.relay.map(|a| a.port()),
        };
        self.starts += 1;
        let (child, ready) = spawn(
            self.base_dir(),
            &self.args,
            &self.env,
            Some(ports),
            self.starts,
        )
        .await?;
        self.child = Some(child);
        self.ready = ready;
        self.load_cert()
    }

    fn base_dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the temporary directory lives as long as the server")
            .path()
    }

    fn load_cert(&mut self) -> Result<()> {
        if self.ready.tls.is_none() {
            self.cert = None;
            return Ok(());
        }
        let path = self.cert_pem_path()?.to_owned();
        let cert = tls::read_cert_pem(&path)?;
        let actual = tls::cert_fingerprint(&cert);
        let announced = self.ready.cert_sha256.as_deref().unwrap_or("<missing>");
        if actual != announced {
            bail!(
                "ready file says cert_sha256 {announced}, but {} hashes to {actual}",
                path.display()
            );
        }
        self.cert = Some(cert);
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- natter-server log (last {LOG_TAIL_LINES} lines of {}) ----\n{}\n---- end of server log ----",
                self.log_path().display(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        if std::env::var_os("NATTER_E2E_KEEP_DIR").is_some() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("natter-e2e: kept server directory {}", kept.display());
            }
        }
    }
}

/// The ports of a run, pinned again by a restart.
struct Ports {
    plain: u16,
    tls: Option<u16>,
    relay: Option<u16>,
}

/// Spawns the server and waits for its ready file. `ports` pins the ports of a restart.
async fn spawn(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
    ports: Option<Ports>,
    start_number: u32,
) -> Result<(Child, ReadyFile)> {
    let bin = server_binary()?;
    let data = dir.join("data");
    let ready_path = dir.join("ready.json");
    let log_path = dir.join("server.log");
    match std::fs::remove_file(&ready_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("while removing the previous ready file"),
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .context("while opening the server log")?;
    {
        use std::io::Write;
        writeln!(log, "==== natter-e2e: start #{start_number} ====")?;
    }
    let ports = ports.unwrap_or(Ports {
        plain: 0,
        tls: Some(0),
        relay: Some(0),
    });
    let mut cmd = Command::new(&bin);
    // A developer's exported NATTER_* settings must not change what the tests see.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NATTER_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("--data-dir")
        .arg(&data)
        .args(["--bind", "127.0.0.1", "--port", &ports.plain.to_string()])
        .args(["--tls-port", &ports.tls.unwrap_or(0).to_string()])
        .args(["--relay-port", &ports.relay.unwrap_or(0).to_string()])
        .arg("--ready-file")
        .arg(&ready_path)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        // The log is a file, not a terminal: no colour codes in it.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("while sharing the log file")?)
        .stderr(log);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("while starting {}", bin.display()))?;

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        // The server renames the file into place, so existing means complete.
        match std::fs::read(&ready_path) {
            Ok(bytes) => {
                let ready: ReadyFile = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "ready file is not the agreed JSON: {}",
                        String::from_utf8_lossy(&bytes)
                    )
                })?;
                return Ok((child, ready));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("while reading the ready file"),
        }
        if let Some(status) = child.try_wait().context("while checking on the server")? {
            bail!(
                "natter-server exited with {status} before it was ready\n{}",
                log_tail(&log_path, LOG_TAIL_LINES)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "natter-server wrote no ready file within {STARTUP_TIMEOUT:?}\n{}",
                log_tail(&log_path, LOG_TAIL_LINES)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The last `lines` lines of a log file, or a note saying why there are none.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no server log at {}: {e})", path.display()),
    }
}

/// The `natter-server` binary: `$NATTER_SERVER_BIN`, or the one next to this test executable,
/// built by cargo once per test process so a stale binary is never tested by accident
/// (`cargo test -p natter-e2e` alone would not rebuild it).
pub fn server_binary() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        workspace_binary("natter-server", "NATTER_SERVER_BIN").map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// A binary of this workspace (package and binary share the name `package`): `$env_var` if
/// set, else built next to this test executable.
pub fn workspace_binary(package: &str, env_var: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{env_var}={} is not a file", path.display());
        }
        return Ok(path);
    }
    // Test executables live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().context("while locating the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot derive the target directory from {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow!("cannot derive the target directory from {}", exe.display()))?;
    let bin = profile_dir.join(format!("{package}{}", std::env::consts::EXE_SUFFIX));
    let skip_build = std::env::var_os("NATTER_E2E_NO_BUILD").is_some();
    if skip_build && bin.is_file() {
        return Ok(bin);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("tests/ has a parent: the workspace"))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    // Cargo gives test processes the variables of the test's own package. Passed on, they
    // differ from a normal build's, build scripts that watch them (ring watches
    // CARGO_MANIFEST_DIR) rerun, and every `cargo test` recompiles half the tree.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        let set_for_tests = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ];
        if set_for_tests.iter().any(|p| key_text.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(workspace)
        .args(["build", "--quiet", "-p", package, "--bin", package])
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    let output = cmd
        .output()
        .with_context(|| format!("while running `{cmd:?}` to build {package}"))?;
    if !output.status.success() {
        bail!(
            "could not build {package} (`{cmd:?}` exited with {}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if !bin.is_file() {
        bail!(
            "cargo built {package}, but there is no binary at {}",
            bin.display()
        );
    }
    Ok(bin)
}
