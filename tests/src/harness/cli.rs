//! natter-cli under test: a [`CliRunner`] runs the `natter-cli` binary against a
//! [`TestServer`] as one person's terminal, one-shot ([`CliRunner::run`]) or long-running
//! ([`CliRunner::spawn`], read line by line with [`CliProcess::expect_json`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::core::{DataDir, EVENT_TIMEOUT};
use super::replies::password_for;
use super::server::TestServer;

/// How long a one-shot `natter-cli` command may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The `natter-cli` binary: `$NATTER_CLI_BIN`, or the one next to this test executable, built
/// by cargo once per test process (`NATTER_E2E_NO_BUILD` skips that when a binary exists).
pub fn cli_binary() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        super::server::workspace_binary("natter-cli", "NATTER_CLI_BIN")
            .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// What a finished `natter-cli` run left behind.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// The JSON objects printed on stdout, one per line.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .with_context(|| format!("natter-cli printed a line that is not JSON: {l}"))
            })
            .collect()
    }

    /// Fails unless the run exited with 0.
    pub fn success(self) -> Result<Self> {
        if self.code != Some(0) {
            bail!(
                "natter-cli exited with {:?}\nstdout:\n{}\nstderr:\n{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }

    /// The first printed JSON object for which `pred` holds.
    pub fn find_json(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        self.json_lines()?
            .into_iter()
            .find(|v| pred(v))
            .ok_or_else(|| anyhow!("natter-cli printed no {what}; stdout:\n{}", self.stdout))
    }
}

/// `natter-cli` pointed at one server with one data directory (one person's terminal).
#[derive(Clone)]
pub struct CliRunner {
    bin: PathBuf,
    port: u16,
    tls: bool,
    dir: DataDir,
    login: Vec<String>,
    json: bool,
}

impl CliRunner {
    /// The CLI on the plain port with a fresh data directory, not logged in.
    pub fn plain(server: &TestServer) -> Result<Self> {
        Ok(Self {
            bin: cli_binary()?,
            port: server.plain_addr().port(),
            tls: false,
            dir: DataDir::new()?,
            login: Vec::new(),
            json: true,
        })
    }

    /// The CLI on the TLS port with a fresh data directory, not logged in.
    pub fn tls(server: &TestServer) -> Result<Self> {
        Ok(Self {
            bin: cli_binary()?,
            port: server.tls_addr()?.port(),
            tls: true,
            dir: DataDir::new()?,
            login: Vec::new(),
            json: true,
        })
    }

    /// Every run logs in as registered `user` (password [`password_for`]).
    pub fn as_user(mut self, user: &str) -> Self {
        self.login = vec![
            "--user".into(),
            user.into(),
            "--password".into(),
            password_for(user),
        ];
        self
    }

    /// Runs print text for people instead of JSON lines.
    pub fn text_mode(mut self) -> Self {
        self.json = false;
        self
    }

    /// Every run logs in as guest `name`.
    pub fn as_guest(mut self, name: &str) -> Self {
        self.login = vec!["--guest".into(), name.into()];
        self
    }

    /// The data directory (local history, pins).
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// The command line for `args`, with `--json` (unless in text mode) and this runner's server, directory and
    /// login; inherited `NATTER_*` variables are removed so they cannot change what runs.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("NATTER_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("NO_COLOR", "1").env("RUST_LOG", "warn");
        if self.json {
            cmd.arg("--json");
        }
        cmd.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--data-dir")
            .arg(self.dir.path());
        if self.tls {
            cmd.arg("--tls");
        }
        cmd.args(&self.login).args(args).kill_on_drop(true);
        cmd
    }

    /// Runs a one-shot command to completion (within [`CLI_TIMEOUT`]).
    pub async fn run(&self, args: &[&str]) -> Result<CliOutput> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        let output = tokio::time::timeout(CLI_TIMEOUT, cmd.output())
            .await
            .map_err(|_| anyhow!("natter-cli {args:?} did not finish within {CLI_TIMEOUT:?}"))?
            .with_context(|| format!("while running natter-cli {args:?}"))?;
        Ok(CliOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts a long-running command (`follow`, `shell`) whose output is read line by line.
    pub fn spawn(&self, args: &[&str]) -> Result<CliProcess> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("while starting natter-cli {args:?}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        Ok(CliProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            seen: Vec::new(),
            what: format!("natter-cli {}", args.join(" ")),
        })
    }
}

/// A running `natter-cli` (killed when dropped).
pub struct CliProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
    what: String,
}

impl CliProcess {
    /// Waits for a printed JSON object for which `pred` holds, and returns it.
    pub async fn expect_json(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let start = self.seen.len();
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.stdout.next_line()).await {
                Ok(line) => line.context("while reading natter-cli's output")?,
                Err(_) => bail!(
                    "`{}` printed no {what} within {EVENT_TIMEOUT:?}; it printed:\n{}",
                    self.what,
                    self.seen[start..].join("\n")
                ),
            };
            let Some(line) = line else {
                let status = self.child.wait().await.ok();
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = err.read_to_string(&mut stderr).await;
                }
                bail!(
                    "`{}` ended ({status:?}) before printing {what}; it printed:\n{}\nstderr:\n{stderr}",
                    self.what,
                    self.seen[start..].join("\n")
                );
            };
            self.seen.push(line.clone());
            let value: serde_json::Value = serde_json::from_str(&line).with_context(|| {
                format!("`{}` printed a line that is not JSON: {line}", self.what)
            })?;
            if pred(&value) {
                return Ok(value);
            }
        }
    }

    /// Types a line into the process (for `shell`).
    pub async fn type_line(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("stdin of `{}` is closed", self.what))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Closes stdin and waits for the process to exit; returns its exit code and every line it
    /// printed since the last [`expect_json`](CliProcess::expect_json) match.
    pub async fn finish(mut self) -> Result<(Option<i32>, Vec<String>)> {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        let drain = async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                rest.push(line);
            }
            self.child.wait().await
        };
        let status = tokio::time::timeout(CLI_TIMEOUT, drain)
            .await
            .map_err(|_| anyhow!("`{}` did not exit within {CLI_TIMEOUT:?}", self.what))??;
        Ok((status.code(), rest))
    }

    /// Stops the process (SIGKILL) and reaps it.
    pub async fn stop(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Every line printed so far.
    pub fn printed(&self) -> &[String] {
        &self.seen
    }
}
