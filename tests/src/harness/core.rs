//! natter-core under test: a [`Device`] is one running `natter_core::Client` with its own data
//! directory and a recorder of every event it emitted. natter-cli has its own module
//! ([`super::cli`]), as does the [`Proxy`](super::proxy::Proxy) that makes a device's network
//! path fail; both are re-exported here, so the natter-core suites need one import.
//!
//! Scenarios wait for what they expect ([`Device::wait_for`]) with a timeout that fails loudly
//! and lists what did arrive instead. A short bounded window appears only to show that
//! something does *not* happen ([`Device::settle`]).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use natter_core::{
    Client, ClientConfig, ClientError, ConnectionState, Event, FailedMessage, LocalMessage,
    LoginInfo, MessageState, Registration, SentMessage, ServerAddr,
};
use natter_proto::{ErrorCode, FriendAnswer, MessageBody, MsgId, Target};
use tokio::sync::broadcast::{self, error::RecvError};

use super::replies::password_for;
use super::server::TestServer;

pub use super::cli::{cli_binary, CliOutput, CliProcess, CliRunner, CLI_TIMEOUT};
pub use super::proxy::Proxy;

/// How long a device may take to show an expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a device is watched to show that nothing more arrives.
pub const SETTLE_WINDOW: Duration = Duration::from_millis(400);

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

    /// How many events are recorded (an index for [`log_since`](Device::log_since)).
    pub fn logged(&self) -> usize {
        self.log.len()
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
            Event::Sent(SentMessage {
                client_msg_id: c,
                msg_id,
                ts,
            }) if c == client_msg_id => Some((*msg_id, *ts)),
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

    /// Waits for `Failed` of an outgoing message; returns the wire code it failed with.
    pub async fn expect_failed(&mut self, client_msg_id: &str) -> Result<ErrorCode> {
        self.wait_for(&format!("failed {client_msg_id}"), |e| match e {
            Event::Failed(FailedMessage {
                client_msg_id: c,
                code,
                ..
            }) if c == client_msg_id => Some(*code),
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
        signed_in(Device::fresh(name, self)?).await
    }

    /// Registers `name` and logs in from a fresh app on the TLS port.
    pub async fn core_user_tls(&self, name: &str) -> Result<Device> {
        signed_in(Device::fresh_tls(name, self)?).await
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

/// Registers the device's user and logs in; the recorder moves past the login.
async fn signed_in(mut device: Device) -> Result<Device> {
    device.register_me().await?;
    device.log_in().await?;
    device.catch_up()?;
    Ok(device)
}

/// A fresh server with alice and bob (`bobby`) online on fresh apps, in that order.
pub async fn core_alice_and_bob() -> Result<(TestServer, Device, Device)> {
    let server = TestServer::start().await?;
    let alice = server.core_user("alice").await?;
    let bob = server.core_user("bobby").await?;
    Ok((server, alice, bob))
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
        Event::FriendResponse(FriendAnswer {
            username,
            accepted: true,
            ..
        }) if username.eq_ignore_ascii_case(&other) => Some(()),
        _ => None,
    })
    .await
}
