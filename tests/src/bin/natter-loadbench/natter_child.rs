//! The natter-server child every run measures: starting it on the run's own data directory,
//! and ending the run (stop it, let go of the clients) with the line that says how it ended.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Result;

use crate::client::{ClientHandle, Shared};
use crate::sys::ChildProc;
use crate::Config;

/// Starts natter-server on 127.0.0.1 with `<dir>/<tag>-data` as its data directory (kept if it
/// exists, for restarts), `--no-rate-limits`, room for `sessions` connections, and `extra`
/// flags (ports, TLS). Waits for its ready file.
pub fn spawn_natter(
    cfg: &Config,
    dir: &Path,
    tag: &str,
    extra: &[&str],
    sessions: usize,
) -> Result<ChildProc> {
    let data_dir = dir.join(format!("{tag}-data"));
    std::fs::create_dir_all(&data_dir)?;
    let ready = dir.join(format!("{tag}-ready.json"));
    let _ = std::fs::remove_file(&ready);
    let mut cmd = Command::new(&cfg.server_bin);
    cmd.arg("--data-dir")
        .arg(&data_dir)
        .args(["--bind", "127.0.0.1"])
        .arg("--ready-file")
        .arg(&ready)
        .arg("--no-rate-limits")
        .args([
            "--max-connections",
            &(sessions + 1000).max(20_000).to_string(),
        ]);
    if !extra.contains(&"--port") {
        cmd.args(["--port", "0"]);
    }
    cmd.args(extra);
    cmd.env("NO_COLOR", "1");
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", &cfg.server_log);
    }
    // Each restart gets a log of its own.
    let mut log = dir.join(format!("{tag}-server.log"));
    for n in 2.. {
        if !log.exists() {
            break;
        }
        log = dir.join(format!("{tag}-server.{n}.log"));
    }
    ChildProc::spawn("natter-server", cmd, &ready, log, Duration::from_secs(60))
}

/// Ends a run: the drops that follow are expected, the server gets SIGTERM (SIGKILL after
/// `grace`), then the clients let go of their sockets. Returns how the server ended.
pub fn stop_natter<'c>(
    server: &mut ChildProc,
    shared: &Shared,
    grace: Duration,
    clients: impl IntoIterator<Item = &'c ClientHandle>,
) -> String {
    shared.closing.store(true, Relaxed);
    let stop = server.stop(grace);
    for c in clients {
        c.abort();
    }
    stop
}

/// "Errors seen by clients: …; connections dropped: …; server stop: …." for a run's section.
pub fn errors_and_stop(shared: &Shared, stop: &str) -> String {
    format!(
        "Errors seen by clients: {}; connections dropped: {}; server stop: {stop}.",
        shared.errors_seen(),
        shared.disconnects.load(Relaxed)
    )
}
