//! LAN scenarios in a network namespace of their own. mDNS is multicast: run on the real
//! network it would announce test servers to (and hear from) every computer on the LAN. So a
//! LAN test calls [`in_private_network`] first: the outer run re-runs just that test inside
//! `unshare --net`, where the only interface is `lo` (made multicast-capable, with a route for
//! 224.0.0.0/4), and reports whether it passed; the inner run goes on with the scenario.
//!
//! Needs root (or unprivileged user namespaces), `unshare` (util-linux) and `ip` (iproute2).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// Set in the inner run: this process is inside its own network namespace.
pub const IN_NETNS: &str = "NATTER_IN_NETNS";

/// How long one test may take inside its namespace.
pub const NETNS_TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Sets up loopback for multicast, then runs the test binary with the arguments after it.
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && \
                     ip route add 224.0.0.0/4 dev lo && exec \"$0\" \"$@\"";

/// Whether this process is the inner run of a LAN test (inside its own namespace).
pub fn is_inner_run() -> bool {
    std::env::var_os(IN_NETNS).is_some()
}

/// Runs the test named `test` (its full name in this test binary) inside a fresh network
/// namespace. In the outer run: re-runs it there, fails unless exactly that test passed, and
/// returns `false` (the caller returns). In the inner run: checks that no interface but `lo`
/// exists and returns `true` (the caller runs the scenario).
pub fn in_private_network(test: &str) -> Result<bool> {
    if is_inner_run() {
        ensure_only_loopback()?;
        return Ok(true);
    }
    let mut command = Command::new("unshare");
    if !is_root() {
        command.arg("--map-root-user");
    }
    command
        .args(["--net", "--", "sh", "-c", SETUP])
        .arg(this_binary()?)
        // `--include-ignored`: the app suite's scenarios are ignored by a plain `cargo test`.
        .args([
            test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(IN_NETNS, "1");
    let output = run_captured(command, NETNS_TEST_TIMEOUT)
        .with_context(|| format!("while running `{test}` in a network namespace"))?;
    print!("{}", output.stdout);
    eprint!("{}", output.stderr);
    ensure!(
        output.success,
        "`{test}` failed in its network namespace (its output is above)"
    );
    ensure!(
        output.stdout.contains("1 passed"),
        "no test named `{test}` ran in the network namespace; is the name right?"
    );
    Ok(false)
}

/// A command that runs the test `test` of this binary, ignored or not, in this process's
/// network namespace (a second app on the same LAN). Only for the inner run.
pub fn sibling_test(test: &str) -> Result<tokio::process::Command> {
    ensure!(
        is_inner_run(),
        "a sibling process is started only inside a test's network namespace"
    );
    let mut command = tokio::process::Command::new(this_binary()?);
    command
        .args([test, "--exact", "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(IN_NETNS, "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}

fn this_binary() -> Result<PathBuf> {
    std::env::current_exe().context("while finding the test binary")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Refuses to go on if any interface but `lo` is present: the last guard against multicast on
/// a real network. `/proc/self/net/dev` is per namespace (unlike `/sys/class/net`, which shows
/// the namespace sysfs was mounted in).
fn ensure_only_loopback() -> Result<()> {
    let dev = std::fs::read_to_string("/proc/self/net/dev")
        .context("while listing this namespace's interfaces")?;
    let names: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    if names != ["lo"] {
        bail!("{IN_NETNS} is set but this namespace has interfaces {names:?}, not just lo");
    }
    Ok(())
}

struct Captured {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `command` to the end or kills it after `timeout`; output goes through files, so a
/// chatty child never blocks on a full pipe while we wait.
fn run_captured(mut command: Command, timeout: Duration) -> Result<Captured> {
    let out = tempfile::tempfile().context("while creating a file for stdout")?;
    let err = tempfile::tempfile().context("while creating a file for stderr")?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()
        .context("while starting unshare (is util-linux installed?)")?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |mut file: std::fs::File| -> Result<String> {
        use std::io::{Read, Seek};
        let mut text = String::new();
        file.rewind()?;
        file.read_to_string(&mut text)?;
        Ok(text)
    };
    let captured = Captured {
        success: status.is_some_and(|s| s.success()),
        stdout: read(out)?,
        stderr: read(err)?,
    };
    if status.is_none() {
        bail!(
            "still running after {timeout:?}, killed; its output:\n{}\n{}",
            captured.stdout,
            captured.stderr
        );
    }
    Ok(captured)
}
