//! Child processes (the server under test and the echo baseline), /proc readings (memory,
//! CPU time) and a description of the machine.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use natter_e2e::bench_report::kib_field;

/// Linux reports utime/stime in clock ticks; USER_HZ is 100 on every mainstream build.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// A child process that is killed if still running when dropped.
pub struct ChildProc {
    pub name: &'static str,
    pub child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// The ready file's JSON (natter-server: `plain`, `tls`, `relay`, `cert_sha256`, …).
    pub ready: serde_json::Value,
}

impl ChildProc {
    /// Spawns `cmd` (stdout+stderr to `log`), then waits up to `wait` for `ready_file` to hold
    /// JSON with a `plain` address.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        ready_file: &Path,
        log: PathBuf,
        wait: Duration,
    ) -> Result<Self> {
        let out = fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {name}: {cmd:?}"))?;
        let pid = child.id();
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(text) = fs::read_to_string(ready_file) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    let addr = v["plain"]
                        .as_str()
                        .context("ready file has no `plain` address")?
                        .parse()
                        .context("ready file `plain` is not an address")?;
                    return Ok(Self {
                        name,
                        child,
                        pid,
                        addr,
                        log,
                        ready: v,
                    });
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{name} exited with {status} before it was ready; log tail:\n{}",
                    log_tail(&log, 30)
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{name} not ready after {wait:?}; log tail:\n{}",
                    log_tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL now (no shutdown of any kind), and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An address from the ready file, e.g. `tls` or `relay`.
    pub fn ready_addr(&self, key: &str) -> Option<SocketAddr> {
        self.ready[key].as_str()?.parse().ok()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns how it ended.
    pub fn stop(&mut self, grace: Duration) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had already exited ({status})");
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("exited after SIGTERM ({status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!("did not exit within {grace:?} of SIGTERM; killed")
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Bytes of `*.db` and `*.db-wal` files directly in the data directory.
pub fn db_bytes(data_dir: &Path) -> (u64, u64) {
    let (mut db, mut wal) = (0, 0);
    for entry in fs::read_dir(data_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if name.ends_with(".db") {
            db += len;
        } else if name.ends_with(".db-wal") {
            wal += len;
        }
    }
    (db, wal)
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Log lines that look like warnings or errors: their count, and the distinct messages (the
/// timestamp removed) with how often each occurred, most frequent first, at most `keep`.
pub fn log_problems(path: &Path, keep: usize) -> (usize, Vec<(String, usize)>) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut count = 0;
    let mut groups: std::collections::HashMap<String, usize> = Default::default();
    for line in text.lines() {
        let line = strip_ansi(line);
        if !(line.contains("ERROR") || line.contains("WARN") || line.contains("panicked")) {
            continue;
        }
        count += 1;
        // tracing's format starts with an RFC 3339 timestamp; drop it so repeats group.
        let body = match line.split_once(' ') {
            Some((first, rest)) if first.len() > 19 && first.as_bytes()[4] == b'-' => rest,
            _ => line.as_str(),
        };
        *groups.entry(body.chars().take(300).collect()).or_default() += 1;
    }
    let mut groups: Vec<(String, usize)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    groups.truncate(keep);
    (count, groups)
}

/// Removes terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub pss_kib: Option<u64>,
    pub threads: u64,
}

/// VmRSS, VmHWM and thread count from /proc/PID/status, Pss from /proc/PID/smaps_rollup.
pub fn mem(pid: u32) -> Mem {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok();
    Mem {
        rss_kib: kib_field(&status, "VmRSS:").unwrap_or(0),
        hwm_kib: kib_field(&status, "VmHWM:").unwrap_or(0),
        pss_kib: rollup.as_deref().and_then(|r| kib_field(r, "Pss:")),
        threads: kib_field(&status, "Threads:").unwrap_or(0),
    }
}

/// User + system CPU seconds used so far by a process (all threads). `None` if it is gone.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SEC)
}

/// CPU seconds of each thread of a process: tid → (thread name, seconds).
fn thread_secs(pid: u32) -> HashMap<u32, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        // schedstat's first field is exact nanoseconds on a CPU; stat's ticks are the fallback.
        let exact = fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map(|ns| ns / 1e9);
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let sampled = match (ticks(11), ticks(12)) {
            (Some(u), Some(s)) => Some((u + s) / CLOCK_TICKS_PER_SEC),
            _ => None,
        };
        if let Some(secs) = exact.or(sampled) {
            out.insert(tid, (comm, secs));
        }
    }
    out
}

/// Idle + iowait seconds of the whole machine from /proc/stat. With NO_HZ the idle figure is
/// exact, while the busy fields are sampled at timer ticks and miss short bursts; so busy time
/// is taken as wall time × cores − idle.
fn machine_idle_secs() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((v.get(3)? + v.get(4)?) / CLOCK_TICKS_PER_SEC)
}

/// CPU use between two instants.
#[derive(Debug, Clone, Default)]
pub struct CpuUse {
    /// The server process, % of one core.
    pub server: Option<f64>,
    /// This benchmark process, % of one core.
    pub bench: Option<f64>,
    /// The whole machine (every process, kernel, softirq), % of one core; cores × 100 = full.
    pub machine: Option<f64>,
    /// The server's threads grouped by name: ("name ×count", % of one core), busiest first.
    pub top_threads: Vec<(String, f64)>,
    /// The server's single busiest thread and its % of one core.
    pub busiest_thread: Option<(String, f64)>,
}

/// A reading to measure CPU use from.
#[derive(Debug, Clone)]
pub struct CpuMark {
    at: Instant,
    server_pid: u32,
    server: Option<f64>,
    bench: Option<f64>,
    machine_idle: Option<f64>,
    threads: HashMap<u32, (String, f64)>,
}

impl CpuMark {
    pub fn now(server_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            server_pid,
            server: cpu_secs(Some(server_pid)),
            bench: cpu_secs(None),
            machine_idle: machine_idle_secs(),
            threads: thread_secs(server_pid),
        }
    }

    /// CPU use since `self`.
    pub fn usage(&self) -> CpuUse {
        let later = Self::now(self.server_pid);
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let pct = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall * 100.0);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        let machine = match (self.machine_idle, later.machine_idle) {
            (Some(i0), Some(i1)) => Some(((cores * wall - (i1 - i0)) / wall * 100.0).max(0.0)),
            _ => None,
        };
        let mut groups: HashMap<String, (usize, f64)> = HashMap::new();
        let mut busiest_thread: Option<(String, f64)> = None;
        for (tid, (comm, secs)) in &later.threads {
            let before = self.threads.get(tid).map_or(0.0, |(_, s)| *s);
            let p = (secs - before) / wall * 100.0;
            let g = groups.entry(comm.clone()).or_default();
            g.0 += 1;
            g.1 += p;
            if !matches!(&busiest_thread, Some((_, b)) if *b >= p) {
                busiest_thread = Some((comm.clone(), p));
            }
        }
        let mut top_threads: Vec<(String, f64)> = groups
            .into_iter()
            .filter(|(_, (_, p))| *p >= 1.0)
            .map(|(comm, (n, p))| {
                let label = if n > 1 { format!("{comm} ×{n}") } else { comm };
                (label, p)
            })
            .collect();
        top_threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        top_threads.truncate(4);
        CpuUse {
            server: pct(self.server, later.server),
            bench: pct(self.bench, later.bench),
            machine,
            top_threads,
            busiest_thread,
        }
    }
}

/// Facts about the machine for the report.
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub date: String,
    pub git_rev: String,
    /// Machine CPU busy (% of one core) in the second before the benchmark began.
    pub busy_before: Option<f64>,
}

pub fn machine() -> Machine {
    let m = natter_e2e::bench_report::Machine::read();
    Machine {
        cpus: m.cpus,
        model: m.model,
        mem_gib: m.mem_gib,
        kernel: m.kernel,
        date: m.date,
        git_rev: m.git_rev,
        busy_before: None,
    }
}

/// Raises RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// Read and write syscalls of a process (`syscr`/`syscw` of /proc/PID/io: sockets and files).
#[derive(Debug, Clone, Copy, Default)]
pub struct Io {
    pub reads: u64,
    pub writes: u64,
}

impl Io {
    /// The calls made between `earlier` and `self`.
    pub fn since(&self, earlier: &Io) -> Io {
        Io {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
        }
    }
}

/// `None` if the process is gone or /proc/PID/io is not readable.
pub fn io(pid: u32) -> Option<Io> {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(Io {
        reads: field("syscr:")?,
        writes: field("syscw:")?,
    })
}

/// Raises RLIMIT_NOFILE (soft and hard) to at least `want` if the process may (root may raise
/// the hard limit up to fs.nr_open); children inherit it. Returns the soft limit now in force.
pub fn raise_nofile_to(want: u64) -> u64 {
    let nr_open = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = want.min(nr_open);
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        if soft < want {
            let hard = hard.max(want);
            if rlimit::setrlimit(rlimit::Resource::NOFILE, want, hard).is_err() {
                return raise_nofile();
            }
        }
    }
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0)
}
