//! natter-core and natter-cli under test: a [`Device`] is one running `natter_core::Client`
//! with its own data directory and a recorder of every event it emitted; [`CliRunner`] runs the
//! `natter-cli` binary against a [`TestServer`]; a [`Proxy`] between a device and the server
//! can make the network path die silently or turn one server answer into an error.
//!
//! Scenarios wait for what they expect ([`Device::wait_for`], [`CliProcess::expect_json`]) with
//! a timeout that fails loudly and lists what did arrive instead. A short bounded window appears
//! only to show that something does *not* happen ([`Device::settle`]).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use natter_core::{
    Client, ClientConfig, ClientError, ConnectionState, Event, LocalMessage, LoginInfo,
    MessageState, Registration, ServerAddr,
};
use natter_proto::{ErrorCode, MessageBody, MsgId, Target};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::broadcast::{self, error::RecvError};

use super::replies::password_for;
use super::server::TestServer;

/// How long a device may take to show an expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a device is watched to show that nothing more arrives.
pub const SETTLE_WINDOW: Duration = Duration::from_millis(400);
/// How long a one-shot `natter-cli` command may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Reconnect backoff of test devices: a restarted server is found again within half a second.
pub const TEST_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(50), Duration::from_millis(500));

/// A data directory that outlives the [`Device`]s using it (an app restarted on one disk).
#[derive(Clone)]
pub struct DataDir(Arc<tempfile::TempDir>);

impl DataDir {
    /// A fresh, empty directory.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("natter-e2e-client-")
            .tempdir()
            .context("while creating a client data directory")?;
        Ok(Self(Arc::new(dir)))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// The plain TCP address of `server` as natter-core spells it.
pub fn plain_server(server: &TestServer) -> ServerAddr {
    ServerAddr {
        host: "127.0.0.1".into(),
        port: server.plain_addr().port(),
        tls: false,
    }
}

/// The TLS address of `server` as natter-core spells it.
pub fn tls_server(server: &TestServer) -> Result<ServerAddr> {
    Ok(ServerAddr {
        host: "127.0.0.1".into(),
        port: server.tls_addr()?.port(),
        tls: true,
    })
}

/// The settings test devices use: short backoff and request timeout, so faults heal quickly.
pub fn test_config(server: ServerAddr, dir: &DataDir) -> ClientConfig {
    let mut config = ClientConfig::new(server, dir.path());
    config.backoff = TEST_BACKOFF;
    config.request_timeout = Duration::from_secs(5);
    config
}

/// The text of a text message.
pub fn text_in(message: &LocalMessage) -> Option<&str> {
    match &message.body {
        MessageBody::Text { text } => Some(text),
        _ => None,
    }
}

/// Asserts that `result` is an error with wire code `code` (from the server or from the
/// client's own validation) and returns the error.
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: ErrorCode,
) -> Result<ClientError> {
    match result {
        Ok(value) => bail!("expected `{code}`, but it succeeded: {value:?}"),
        Err(e) if e.code() == Some(code) => Ok(e),
        Err(e) => bail!("expected `{code}`, got {e:?}"),
    }
}

/// Asserts the server refused with `code` (not the client's own validation).
pub fn expect_server_code<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: ErrorCode,
) -> Result<ClientError> {
    match expect_code(result, code)? {
        e @ ClientError::Server { .. } => Ok(e),
        other => bail!("expected the server to refuse with `{code}`, got {other:?}"),
    }
}

/// Asserts the client refused with `code` before sending anything.
pub fn expect_invalid<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: ErrorCode,
) -> Result<ClientError> {
    match expect_code(result, code)? {
        e @ ClientError::Invalid { .. } => Ok(e),
        other => bail!("expected client-side validation `{code}`, got {other:?}"),
    }
}

/// One app on one device: a natter-core [`Client`] plus everything it has emitted.
/// Derefs to the [`Client`], so scenarios call `alice.send_text(…)` directly.
pub struct Device {
    /// Who uses it (the username it logs in as).
    pub name: String,
    client: Client,
    events: broadcast::Receiver<Event>,
    log: Vec<Event>,
    cursor: usize,
    server: ServerAddr,
    dir: DataDir,
}

impl Deref for Device {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Device {
    /// Starts an app for `name` on `server` with `dir` (nothing is sent yet).
    pub fn start(name: &str, server: ServerAddr, dir: DataDir) -> Self {
        Self::start_with(name, test_config(server, &dir), dir)
    }

    /// Starts an app with a custom configuration (its `data_dir` must be `dir`).
    pub fn start_with(name: &str, config: ClientConfig, dir: DataDir) -> Self {
        let server = config.server.clone();
        let client = Client::start(config);
        let events = client.events();
        Self {
            name: name.to_owned(),
            client,
            events,
            log: Vec::new(),
            cursor: 0,
            server,
            dir,
        }
    }

    /// A fresh app with an empty data directory, on the plain port.
    pub fn fresh(name: &str, server: &TestServer) -> Result<Self> {
        Ok(Self::start(name, plain_server(server), DataDir::new()?))
    }

    /// A fresh app with an empty data directory, on the TLS port.
    pub fn fresh_tls(name: &str, server: &TestServer) -> Result<Self> {
        Ok(Self::start(name, tls_server(server)?, DataDir::new()?))
    }

    /// The client handle.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// The server this app talks to.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// The conversation with this device's user, as others address it.
    pub fn target(&self) -> Target {
        Target::User {
            username: self.name.clone(),
        }
    }

    /// Quits the app and starts it again on the same data directory (same pins, same store);
    /// the new app is not logged in.
    pub async fn restart_app(self) -> Self {
        self.client.shutdown().await;
        Self::start(&self.name, self.server.clone(), self.dir.clone())
    }

    /// Registers this device's user with the world's password.
    pub async fn register_me(&self) -> Result<()> {
        self.client
            .register(Registration {
                username: self.name.clone(),
                password: password_for(&self.name),
                ..Default::default()
            })
            .await
            .with_context(|| format!("while registering {}", self.name))?;
        Ok(())
    }

    /// Logs this device's user in with the world's password.
    pub async fn log_in(&self) -> Result<LoginInfo> {
        self.client
            .login(&self.name, &password_for(&self.name))
            .await
            .with_context(|| format!("while logging {} in", self.name))
    }

    /// Logs in as a guest under this device's name.
    pub async fn log_in_as_guest(&self) -> Result<LoginInfo> {
        self.client
            .guest_login(&self.name)
            .await
            .with_context(|| format!("while logging {} in as a guest", self.name))
    }

    fn describe(&self, from: usize) -> String {
        let seen: Vec<String> = self.log[from..]
            .iter()
            .map(|e| format!("  {}", short(e)))
            .collect();
        if seen.is_empty() {
            "  (nothing)".to_owned()
        } else {
            seen.join("\n")
        }
    }

    fn record(&mut self, event: Result<Event, RecvError>) -> Result<()> {
        match event {
            Ok(event) => {
                self.log.push(event);
                Ok(())
            }
            Err(RecvError::Lagged(n)) => bail!(
                "{}'s test recorder fell {n} events behind; the events are lost",
                self.name
            ),
            Err(RecvError::Closed) => bail!("{}'s client engine has stopped", self.name),
        }
    }

    /// Waits for the first event after the previous match for which `matcher` says `Some`,
    /// and returns what it said. Fails after [`EVENT_TIMEOUT`], listing what did arrive.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut matcher: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T> {
        let start = self.cursor;
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            while self.cursor < self.log.len() {
                let index = self.cursor;
                self.cursor += 1;
                if let Some(found) = matcher(&self.log[index]) {
                    return Ok(found);
                }
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(event) => self.record(event)?,
                Err(_) => bail!(
                    "{} saw no {what} within {EVENT_TIMEOUT:?} (connection {:?}); events since the last match:\n{}",
                    self.name,
                    self.client.connection_state(),
                    self.describe(start)
                ),
            }
        }
    }

    /// Like [`wait_for`](Device::wait_for), but for events that can match only once (they
    /// name a message id): looks through everything recorded so far, however old, and leaves
    /// the position of ordered waits alone.
    pub async fn find_or_wait<T>(
        &mut self,
        what: &str,
        mut matcher: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        let mut checked = 0;
        loop {
            while checked < self.log.len() {
                if let Some(found) = matcher(&self.log[checked]) {
                    return Ok(found);
                }
                checked += 1;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(event) => self.record(event)?,
                Err(_) => bail!(
                    "{} never saw {what} within {EVENT_TIMEOUT:?} (connection {:?}); the last events:\n{}",
                    self.name,
                    self.client.connection_state(),
                    self.describe(self.log.len().saturating_sub(20))
                ),
            }
        }
    }

    /// Records what has been emitted so far and moves past it: later waits look only at what
    /// comes after this point. World builders call it once a device is set up.
    pub fn catch_up(&mut self) -> Result<()> {
        loop {
            match self.events.try_recv() {
                Ok(event) => self.log.push(event),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Lagged(n)) => bail!(
                    "{}'s test recorder fell {n} events behind; the events are lost",
                    self.name
                ),
                Err(broadcast::error::TryRecvError::Closed) => {
                    bail!("{}'s client engine has stopped", self.name)
                }
            }
        }
        self.cursor = self.log.len();
        Ok(())
    }

    /// Events recorded after index `from` of [`log`](Device::log).
    pub fn log_since(&self, from: usize) -> &[Event] {
        &self.log[from.min(self.log.len())..]
    }

    /// Records whatever arrives during `window` (without consuming it) and returns how many
    /// events that was.
    pub async fn settle(&mut self, window: Duration) -> Result<usize> {
        let before = self.log.len();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            self.record(event)?;
        }
        Ok(self.log.len() - before)
    }

    /// Everything this app has emitted so far (recorded events only; see [`settle`]).
    ///
    /// [`settle`]: Device::settle
    pub fn log(&self) -> &[Event] {
        &self.log
    }

    /// Every message event recorded so far.
    pub fn messages_seen(&self) -> Vec<LocalMessage> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits for a message from `from` with `text`.
    pub async fn expect_message(&mut self, from: &str, text: &str) -> Result<LocalMessage> {
        self.wait_for(&format!("message {text:?} from {from}"), |e| match e {
            Event::Message(m) if m.from.eq_ignore_ascii_case(from) && text_in(m) == Some(text) => {
                Some(m.clone())
            }
            _ => None,
        })
        .await
    }

    /// Waits for the next `n` message events (from anyone) and returns them.
    pub async fn expect_messages(&mut self, n: usize) -> Result<Vec<LocalMessage>> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let what = format!("message {} of {n}", got.len() + 1);
            got.push(
                self.wait_for(&what, |e| match e {
                    Event::Message(m) => Some(m.clone()),
                    _ => None,
                })
                .await?,
            );
        }
        Ok(got)
    }

    /// Waits for `Sent` of an outgoing message (or finds it among earlier events); returns
    /// the server's id and time.
    pub async fn expect_sent(&mut self, client_msg_id: &str) -> Result<(MsgId, i64)> {
        self.find_or_wait(&format!("sent {client_msg_id}"), |e| match e {
            Event::Sent {
                client_msg_id: c,
                msg_id,
                ts,
            } if c == client_msg_id => Some((*msg_id, *ts)),
            _ => None,
        })
        .await
    }

    /// Waits for `Delivered` of an outgoing message (or finds it among earlier events);
    /// returns the server's id.
    pub async fn expect_delivered(&mut self, client_msg_id: &str) -> Result<MsgId> {
        self.find_or_wait(&format!("delivered {client_msg_id}"), |e| match e {
            Event::Delivered {
                client_msg_id: c,
                msg_id,
                ..
            } if c == client_msg_id => Some(*msg_id),
            _ => None,
        })
        .await
    }

    /// Waits for the connection to reach `state`.
    pub async fn expect_connection(&mut self, state: ConnectionState) -> Result<()> {
        self.wait_for(&format!("connection {state:?}"), |e| {
            matches!(e, Event::Connection(s) if *s == state).then_some(())
        })
        .await
    }

    /// Waits for `username` to come online.
    pub async fn expect_online(&mut self, username: &str) -> Result<natter_proto::OnlineUser> {
        self.wait_for(&format!("{username} online"), |e| match e {
            Event::UserOnline(u) if u.username.eq_ignore_ascii_case(username) => Some(u.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for `username` to go offline.
    pub async fn expect_offline(&mut self, username: &str) -> Result<()> {
        self.wait_for(&format!("{username} offline"), |e| {
            matches!(e, Event::UserOffline { username: u } if u.eq_ignore_ascii_case(username))
                .then_some(())
        })
        .await
    }

    /// The local copy of one message in the conversation `with`.
    pub async fn local_copy(&self, with: &Target, client_msg_id: &str) -> Result<LocalMessage> {
        let page = self.client.local_history(with, None, 200).await?;
        page.into_iter()
            .find(|m| m.client_msg_id == client_msg_id)
            .ok_or_else(|| {
                anyhow!(
                    "{}'s local history with {with:?} has no message {client_msg_id}",
                    self.name
                )
            })
    }

    /// The state of one message in local history.
    pub async fn local_state(&self, with: &Target, client_msg_id: &str) -> Result<MessageState> {
        Ok(self.local_copy(with, client_msg_id).await?.state)
    }

    /// Sends a text and waits until the server has stored it; returns the local message with
    /// the server's id filled in.
    pub async fn send_and_confirm(&mut self, to: Target, text: &str) -> Result<LocalMessage> {
        let mut queued = self.client.send_text(to, text).await?;
        let (msg_id, ts) = self.expect_sent(&queued.client_msg_id).await?;
        queued.msg_id = Some(msg_id);
        queued.ts = ts;
        Ok(queued)
    }
}

/// A one-line account of an event for failure messages.
pub fn short(event: &Event) -> String {
    match event {
        Event::Message(m) => format!(
            "Message #{:?} {} -> {:?}: {:?} ({:?})",
            m.msg_id,
            m.from,
            m.to,
            text_in(m).unwrap_or("<not text>"),
            m.state
        ),
        Event::LoggedIn(_) => "LoggedIn".to_owned(),
        other => {
            let text = format!("{other:?}");
            if text.len() > 200 {
                format!(
                    "{}…",
                    &text[..text.char_indices().nth(200).map_or(0, |(i, _)| i)]
                )
            } else {
                text
            }
        }
    }
}

/// How many times each text occurs among `messages`.
pub fn count_texts(messages: &[LocalMessage]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in messages {
        *counts
            .entry(text_in(m).unwrap_or("<not text>").to_owned())
            .or_insert(0) += 1;
    }
    counts
}

/// World builders on natter-core devices.
impl TestServer {
    /// Registers `name` and logs in from a fresh app on the plain port; the app is online and
    /// its recorder has moved past the login.
    pub async fn core_user(&self, name: &str) -> Result<Device> {
        let mut device = Device::fresh(name, self)?;
        device.register_me().await?;
        device.log_in().await?;
        device.catch_up()?;
        Ok(device)
    }

    /// Registers `name` and logs in from a fresh app on the TLS port.
    pub async fn core_user_tls(&self, name: &str) -> Result<Device> {
        let mut device = Device::fresh_tls(name, self)?;
        device.register_me().await?;
        device.log_in().await?;
        device.catch_up()?;
        Ok(device)
    }

    /// A guest `name` logged in from a fresh app.
    pub async fn core_guest(&self, name: &str) -> Result<Device> {
        let mut device = Device::fresh(name, self)?;
        device.log_in_as_guest().await?;
        device.catch_up()?;
        Ok(device)
    }

    /// Registers `name` without logging in (the user exists and is offline).
    pub async fn core_register(&self, name: &str) -> Result<()> {
        let device = Device::fresh(name, self)?;
        device.register_me().await?;
        device.shutdown().await;
        Ok(())
    }
}

/// Makes two logged-in devices' users friends: `a` asks, `b` accepts, both hear of it.
pub async fn befriend_devices(a: &mut Device, b: &mut Device) -> Result<()> {
    a.friend_request(&b.name, "hi").await?;
    let from = a.name.clone();
    b.wait_for(&format!("friend request from {from}"), |e| match e {
        Event::FriendRequest(r) if r.from.eq_ignore_ascii_case(&from) => Some(()),
        _ => None,
    })
    .await?;
    b.friend_respond(&a.name, true).await?;
    let other = b.name.clone();
    a.wait_for(&format!("{other} accepting"), |e| match e {
        Event::FriendResponse {
            username,
            accepted: true,
            ..
        } if username.eq_ignore_ascii_case(&other) => Some(()),
        _ => None,
    })
    .await
}

// ---- natter-cli ---------------------------------------------------------------------------

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

// ---- a network path that can fail silently ---------------------------------------------------

/// A TCP relay between a client and the server. [`Proxy::blackhole`] makes the connections it
/// carries at that moment go silent — bytes in both directions vanish, yet neither side sees
/// a close — as when a phone walks out of Wi-Fi range. Later connections are relayed normally.
/// [`Proxy::fail_next_resume`] turns the server's next `login_ok` for a resumed session into an
/// error, as a server in trouble would answer.
pub struct Proxy {
    port: u16,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    fault: Arc<std::sync::Mutex<Option<ErrorCode>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Relays 127.0.0.1:<port> to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("while binding the proxy")?;
        let port = listener.local_addr()?.port();
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let fault = Arc::new(std::sync::Mutex::new(None));
        let shared = generation.clone();
        let shared_fault = fault.clone();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = *shared.borrow();
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                links.spawn(relay_bytes(client_rx, server_tx, shared.subscribe(), born));
                links.spawn(relay_frames(
                    server_rx,
                    client_tx,
                    shared.subscribe(),
                    born,
                    shared_fault.clone(),
                ));
            }
        });
        Ok(Proxy {
            port,
            generation,
            fault,
            task,
        })
    }

    /// The port clients dial.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// natter-core's address for the proxy (plain TCP).
    pub fn server_addr(&self) -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: false,
        }
    }

    /// Every connection open now goes silent for good; new ones are relayed.
    pub fn blackhole(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// The next `login_ok` with `resumed: true` reaches the client as an `error` with `code`
    /// (same request id) instead; the server itself considers the session resumed.
    pub fn fail_next_resume(&self, code: ErrorCode) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(code);
    }

    /// Whether the armed fault has been used.
    pub fn fault_used(&self) -> bool {
        self.fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_bytes(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: tokio::sync::watch::Receiver<u64>,
    born: u64,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if *generation.borrow() != born {
            continue; // Swallowed: the path is dead, but nobody is told.
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    end_of_relay(to, generation, born).await
}

async fn relay_frames(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    generation: tokio::sync::watch::Receiver<u64>,
    born: u64,
    fault: Arc<std::sync::Mutex<Option<ErrorCode>>>,
) {
    use futures::{SinkExt, StreamExt};
    use natter_proto::{decode_server, encode, Frame, FrameCodec, ServerMessage};
    let mut reader = tokio_util::codec::FramedRead::new(from, FrameCodec::default());
    let mut writer = tokio_util::codec::FramedWrite::new(to, FrameCodec::default());
    while let Some(Ok(mut frame)) = reader.next().await {
        if *generation.borrow() != born {
            continue;
        }
        if let Frame::Json(payload) = &frame {
            if let Ok(ServerMessage::LoginOk {
                id, resumed: true, ..
            }) = decode_server(payload)
            {
                let armed = fault.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(code) = armed {
                    frame = encode(&ServerMessage::error(
                        Some(&id),
                        code,
                        "injected by the test proxy",
                    ));
                }
            }
        }
        if writer.send(frame).await.is_err() {
            break;
        }
    }
    end_of_relay(writer.into_inner(), generation, born).await
}

async fn end_of_relay(
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: tokio::sync::watch::Receiver<u64>,
    born: u64,
) {
    if *generation.borrow() == born {
        let _ = to.shutdown().await;
    } else {
        // A dead path never reports a close either.
        std::future::pending::<()>().await;
    }
}
