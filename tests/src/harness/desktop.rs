//! A private desktop session bus with a real notification daemon on it: `dbus-daemon`, `dunst`
//! (which owns `org.freedesktop.Notifications` and draws on the test's Xvfb display) and
//! `dbus-monitor`, which records every `Notify` call the app makes. An app launched with
//! [`NotificationBus::env`] talks to this bus only, so a test sees exactly its own notifications
//! and never the runner's desktop.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// One `Notify` call as the bus carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The application name the caller gave.
    pub app: String,
    /// The first line.
    pub summary: String,
    /// The text.
    pub body: String,
}

/// The bus, the daemon and the monitor; all stopped on drop.
pub struct NotificationBus {
    address: String,
    bus: Child,
    daemon: Child,
    monitor: Child,
    monitor_log: PathBuf,
    daemon_log: PathBuf,
}

impl NotificationBus {
    /// Starts the three under `dir`. Needs a display (the daemon draws its bubbles).
    pub fn start(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let socket = dir.join("bus");
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting dbus-daemon (apt install dbus-daemon)")?;
        let stdout = bus
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no dbus-daemon output"))?;
        let mut address = String::new();
        BufReader::new(stdout).read_line(&mut address)?;
        let address = address.trim().to_owned();
        if address.is_empty() {
            let _ = bus.kill();
            bail!("dbus-daemon printed no address");
        }

        let daemon_log = dir.join("dunst.log");
        let daemon = Command::new("dunst")
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::null())
            .stdout(File::create(&daemon_log)?)
            .stderr(File::create(dir.join("dunst.err"))?)
            .spawn()
            .context("starting dunst (apt install dunst)")?;
        let monitor_log = dir.join("monitor.log");
        let monitor = Command::new("dbus-monitor")
            .args(["--address", &address])
            .arg("type='method_call',interface='org.freedesktop.Notifications',member='Notify'")
            .stdin(Stdio::null())
            .stdout(File::create(&monitor_log)?)
            .stderr(Stdio::null())
            .spawn()
            .context("starting dbus-monitor")?;
        let mut this = Self {
            address,
            bus,
            daemon,
            monitor,
            monitor_log,
            daemon_log,
        };
        this.wait_for_daemon()?;
        Ok(this)
    }

    /// Waits until the daemon owns the notification service: a call made before that would be
    /// refused by the bus, not shown.
    fn wait_for_daemon(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .args(["--print-reply", "--dest=org.freedesktop.DBus"])
                .args(["/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner"])
                .arg("string:org.freedesktop.Notifications")
                .output()
                .context("running dbus-send")?;
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return Ok(());
            }
            if let Some(status) = self.daemon.try_wait()? {
                bail!(
                    "dunst exited ({status}): {}",
                    std::fs::read_to_string(self.daemon_log.with_file_name("dunst.err"))
                        .unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("dunst did not take org.freedesktop.Notifications within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment that points an app at this bus.
    pub fn env(&self) -> Vec<(String, OsString)> {
        vec![(
            "DBUS_SESSION_BUS_ADDRESS".to_owned(),
            OsString::from(&self.address),
        )]
    }

    /// Every `Notify` call so far, in order.
    pub fn notifications(&self) -> Result<Vec<Notification>> {
        let text = std::fs::read_to_string(&self.monitor_log)?;
        Ok(parse_monitor(&text))
    }

    /// Waits for a `Notify` call that `matches`, and returns it.
    pub async fn wait_for(
        &self,
        what: &str,
        matches: impl Fn(&Notification) -> bool,
    ) -> Result<Notification> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.notifications()?;
            if let Some(n) = seen.iter().find(|n| matches(n)) {
                return Ok(n.clone());
            }
            if Instant::now() > deadline {
                bail!("no notification {what}; the bus carried {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many notifications the daemon has on screen or in its history: that it took them,
    /// not only that they were sent.
    pub fn shown_by_daemon(&self) -> Result<u32> {
        let mut total = 0;
        for which in ["displayed", "history", "waiting"] {
            let out = Command::new("dunstctl")
                .args(["count", which])
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .output()
                .context("running dunstctl")?;
            let text = String::from_utf8_lossy(&out.stdout);
            total += text.trim().parse::<u32>().unwrap_or(0);
        }
        Ok(total)
    }
}

impl Drop for NotificationBus {
    fn drop(&mut self) {
        for child in [&mut self.monitor, &mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Another program's window in front: it takes the keyboard focus from the app, as switching
/// to a browser would (Xvfb has no window manager to do it). Closed on drop.
pub struct ElsewhereWindow {
    window: Child,
}

impl ElsewhereWindow {
    /// Opens the window (`xev`) and gives it the focus (`xdotool`).
    pub fn focus() -> Result<Self> {
        let title = format!("natter-test-elsewhere-{}", std::process::id());
        let window = Command::new("xev")
            .args(["-name", &title])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting xev (apt install x11-utils)")?;
        let this = Self { window };
        let status = Command::new("xdotool")
            .args([
                "search",
                "--sync",
                "--name",
                &title,
                "windowfocus",
                "--sync",
            ])
            .status()
            .context("running xdotool (apt install xdotool)")?;
        if !status.success() {
            bail!("xdotool could not focus the other window: {status}");
        }
        Ok(this)
    }
}

impl Drop for ElsewhereWindow {
    fn drop(&mut self) {
        let _ = self.window.kill();
        let _ = self.window.wait();
    }
}

/// The `Notify` calls in `dbus-monitor` output: after each call's header line come its
/// arguments, one per line (`string "…"`, `uint32 …`, then the actions array and hints).
fn parse_monitor(text: &str) -> Vec<Notification> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !(line.starts_with("method call") && line.contains("member=Notify")) {
            continue;
        }
        let mut strings = Vec::new();
        while let Some(arg) = lines.peek() {
            if arg.starts_with("method call") || arg.starts_with("signal") {
                break;
            }
            let arg = lines.next().unwrap_or_default().trim();
            if let Some(s) = arg.strip_prefix("string \"") {
                strings.push(s.strip_suffix('"').unwrap_or(s).to_owned());
            }
            // app name, icon, summary, body: the hints that follow hold more strings.
            if strings.len() == 4 {
                break;
            }
        }
        if let [app, _icon, summary, body] = &strings[..] {
            out.push(Notification {
                app: app.clone(),
                summary: summary.clone(),
                body: body.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_calls_are_read_from_monitor_output_and_other_lines_ignored() {
        let text = "signal time=1 sender=org.freedesktop.DBus -> destination=:1.2 member=NameAcquired\n   string \":1.2\"\nmethod call time=2 sender=:1.5 -> destination=org.freedesktop.Notifications serial=7 path=/org/freedesktop/Notifications; interface=org.freedesktop.Notifications; member=Notify\n   string \"Natter\"\n   uint32 0\n   string \"\"\n   string \"bobby\"\n   string \"你好 alice\"\n   array [\n   ]\n   array [\n      dict entry(\n         string \"urgency\"\n         variant             byte 1\n      )\n   ]\n   int32 -1\n";
        assert_eq!(
            parse_monitor(text),
            vec![Notification {
                app: "Natter".into(),
                summary: "bobby".into(),
                body: "你好 alice".into(),
            }]
        );
    }
}
