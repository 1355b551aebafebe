//! natter-loadbench: N logged-in clients send private messages at set rates to a real
//! natter-server child process; reports delivery latency p50/p99, messages/s and server memory,
//! with a raw tokio TCP echo server (same frames, same clients, same rates) measured in the same
//! run as the baseline. Loopback only. It measures and reports; it never asserts a target.
//!
//! ```text
//! cargo build --release -p natter-e2e --bin natter-loadbench -p natter-server
//! target/release/natter-loadbench            # full run, writes docs/BENCHMARKS.md
//! target/release/natter-loadbench --quick    # smoke run
//! ```

// `is_multiple_of` needs Rust 1.87; the workspace promises 1.80.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

#[path = "natter-loadbench/client.rs"]
mod client;
#[path = "natter-loadbench/cluster.rs"]
mod cluster;
#[path = "natter-loadbench/crash.rs"]
mod crash;
#[path = "natter-loadbench/echo.rs"]
mod echo;
#[path = "natter-loadbench/idle.rs"]
mod idle;
#[path = "natter-loadbench/natter_child.rs"]
mod natter_child;
#[path = "natter-loadbench/presence.rs"]
mod presence;
#[path = "natter-loadbench/ramp.rs"]
mod ramp;
#[path = "natter-loadbench/report.rs"]
mod report;
#[path = "natter-loadbench/stats.rs"]
mod stats;
#[path = "natter-loadbench/sys.rs"]
mod sys;
#[path = "natter-loadbench/tls_login.rs"]
mod tls_login;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use client::{now_ns, ClientHandle, Dial, Mode, Out, Shared};
use natter_child::{spawn_natter, stop_natter};
use sys::{ChildProc, CpuMark, CpuUse, Mem};

/// No login attempt starts after the ramp has taken this long.
const RAMP_LIMIT: Duration = Duration::from_secs(180);
/// Idle time after the ramp before the idle memory is read.
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Parser, Debug)]
#[command(
    name = "natter-loadbench",
    about = "Load benchmark: N logged-in clients sending private messages through natter-server, \
             with a raw TCP echo server as the baseline",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// natter-server binary [default: target/release/natter-server next to this executable]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Concurrent logged-in clients [default: 10000; --quick: 200]
    #[arg(long)]
    clients: Option<usize>,
    /// Offered total send rates (messages/s), one step each [default: 5000,20000,50000;
    /// --quick: 500,2000]
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<u64>>,
    /// Seconds per rate step [default: 10; --quick: 3]
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Seconds of the max-throughput step [default: --duration-secs]
    #[arg(long)]
    max_secs: Option<f64>,
    /// Messages each client may have in flight (sent, not yet delivered) in the max step
    #[arg(long, default_value_t = 1)]
    max_inflight: u32,
    /// Unreported warm-up at the first rate before the steps [default: 2; --quick: 1]
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// After a step stops sending, wait at most this long for the backlog to drain
    #[arg(long, default_value_t = 10.0)]
    drain_secs: f64,
    /// Before a step, wait at most this long for earlier steps' undelivered messages
    #[arg(long, default_value_t = 60.0)]
    backlog_secs: f64,
    /// The overload step offers this many times the best delivered rate measured (0: no
    /// overload step)
    #[arg(long, default_value_t = 2.0)]
    overload_factor: f64,
    /// Run every rate step even after a lower rate was not kept up with
    #[arg(long)]
    keep_going: bool,
    /// Login attempts per client (a retry uses a fresh connection and name) before it counts
    /// as failed
    #[arg(long, default_value_t = 5)]
    login_attempts: u32,
    /// Logins in progress at once during the ramp
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// RUST_LOG for the server child (unless RUST_LOG is already set)
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Markdown file whose `<!-- loadbench:begin -->`…`<!-- loadbench:end -->` section is
    /// replaced [default: docs/BENCHMARKS.md of the workspace]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report only; leave the markdown file alone
    #[arg(long)]
    no_write: bool,
    /// Skip the echo baseline
    #[arg(long)]
    skip_echo: bool,
    /// Small smoke run: 200 clients, short steps, small versions of the other runs
    #[arg(long)]
    quick: bool,
    /// Which runs to do, in this order: `steps` (rate steps, max, overload, echo baseline),
    /// `tls` (TLS + password logins), `presence` (presence "all" ramp), `idle` (idle sessions,
    /// memory), `crash` (kill -9 during the max step); `cluster` (one node against two, on
    /// PostgreSQL + NATS: needs scripts/cluster-services.sh, so not in the default list; a
    /// cluster-only run writes its own section)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "steps,tls,presence,idle,crash"
    )]
    runs: Vec<Run>,
    /// Sessions of the TLS + password run [default: 2000; --quick: 50]
    #[arg(long)]
    tls_clients: Option<usize>,
    /// Offered msg/s of the TLS run's rate step [default: 2000; --quick: 200]
    #[arg(long)]
    tls_rate: Option<u64>,
    /// Sessions of the presence "all" run [default: --clients; --quick: 300]
    #[arg(long)]
    presence_clients: Option<usize>,
    /// Sessions of the idle run [default: 50000; --quick: 3000]
    #[arg(long)]
    idle_sessions: Option<usize>,
    /// Clients of the kill -9 run [default: --clients; --quick: 200]
    #[arg(long)]
    crash_clients: Option<usize>,
    /// Seconds of the kill -9 run's max step; the kill comes half-way [default: --max-secs;
    /// --quick: 4]
    #[arg(long)]
    crash_secs: Option<f64>,
    /// Sessions of the cluster run [default: 2000; --quick: 100]
    #[arg(long)]
    cluster_clients: Option<usize>,
    /// Offered msg/s of the cluster run's paced step [default: 2000; --quick: 200]
    #[arg(long)]
    cluster_rate: Option<u64>,
    /// How long the presence run waits for every online list to be right
    #[arg(long, default_value_t = 30.0)]
    settle_secs: f64,
}

/// One of the runs `--runs` selects.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Steps,
    Tls,
    Presence,
    Idle,
    Crash,
    Cluster,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The baseline server (started by the benchmark itself).
    #[command(hide = true)]
    EchoServer {
        #[arg(long)]
        ready_file: PathBuf,
    },
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub server_bin: PathBuf,
    pub clients: usize,
    pub rates: Vec<u64>,
    pub duration: Duration,
    pub max_duration: Duration,
    pub max_inflight: u32,
    pub warmup: Duration,
    pub drain: Duration,
    pub backlog_wait: Duration,
    pub keep_going: bool,
    pub overload_factor: f64,
    pub connect_concurrency: usize,
    pub login_attempts: u32,
    pub server_log: String,
    pub out: Option<PathBuf>,
    pub skip_echo: bool,
    pub quick: bool,
    pub nofile: u64,
    pub command_line: String,
    pub runs: Vec<Run>,
    pub tls_clients: usize,
    pub tls_rate: u64,
    pub presence_clients: usize,
    pub idle_sessions: usize,
    pub crash_clients: usize,
    pub crash_duration: Duration,
    pub settle_limit: Duration,
    pub cluster_clients: usize,
    pub cluster_rate: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::EchoServer { ready_file }) = &cli.cmd {
        return echo::main(ready_file);
    }
    let cfg = resolve(cli)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cfg))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn resolve(cli: Cli) -> Result<Config> {
    let exe = std::env::current_exe()?;
    let exe_dir = exe.parent().context("executable has no directory")?;
    // target/<profile>/natter-loadbench → workspace root two levels up.
    let workspace = exe_dir
        .parent()
        .and_then(Path::parent)
        .filter(|w| w.join("Cargo.toml").exists())
        .map(Path::to_path_buf);
    let server_bin = cli.server_bin.clone().unwrap_or_else(|| {
        exe_dir
            .parent()
            .unwrap_or(exe_dir)
            .join("release")
            .join("natter-server")
    });
    if !server_bin.exists() {
        bail!(
            "server binary {} not found: build it with `cargo build --release -p natter-server` \
             or pass --server-bin",
            server_bin.display()
        );
    }
    let (clients, rates, duration, warmup) = if cli.quick {
        (200, vec![500, 2000], 3.0, 1.0)
    } else {
        (10_000, vec![5_000, 20_000, 50_000], 10.0, 2.0)
    };
    let duration = secs(cli.duration_secs.unwrap_or(duration));
    // Names are `lb` + six digits.
    let mut clients = cli.clients.unwrap_or(clients).clamp(2, 999_999);
    let q = |quick: usize, full: usize| if cli.quick { quick } else { full };
    let idle_sessions = cli
        .idle_sessions
        .unwrap_or(q(3_000, 50_000))
        .clamp(2, 999_999);
    let runs = cli.runs.clone();
    let biggest = if runs.contains(&Run::Idle) {
        idle_sessions.max(clients)
    } else {
        clients
    };
    let nofile = sys::raise_nofile_to(biggest as u64 + 4096);
    // Each client holds one descriptor here; keep some for the runtime, files and children.
    let fd_budget = nofile.saturating_sub(256) as usize;
    // A run's session count: the flag, else its quick or full default, within what fds allow.
    let sessions = |flag: Option<usize>, quick: usize, full: usize| {
        flag.unwrap_or(q(quick, full)).clamp(2, fd_budget.max(2))
    };
    // A run's offered rate: the flag, else its quick or full default.
    let rate = |flag: Option<u64>, quick: u64, full: u64| {
        flag.unwrap_or(if cli.quick { quick } else { full }).max(1)
    };
    if clients > fd_budget {
        eprintln!(
            "RLIMIT_NOFILE is {nofile}: running with {fd_budget} clients instead of {clients}"
        );
        clients = fd_budget.max(2);
    }
    let rates: Vec<u64> = cli
        .rates
        .clone()
        .unwrap_or(rates)
        .into_iter()
        .filter(|r| *r > 0)
        .collect();
    let out = if cli.no_write {
        None
    } else {
        Some(cli.out.clone().unwrap_or_else(|| {
            workspace
                .clone()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("docs")
                .join("BENCHMARKS.md")
        }))
    };
    let command_line = std::iter::once("natter-loadbench".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Config {
        server_bin,
        clients,
        rates,
        duration,
        max_duration: cli.max_secs.map(secs).unwrap_or(duration),
        max_inflight: cli.max_inflight.max(1),
        warmup: secs(cli.warmup_secs.unwrap_or(warmup)),
        drain: secs(cli.drain_secs),
        backlog_wait: secs(cli.backlog_secs),
        keep_going: cli.keep_going,
        overload_factor: cli.overload_factor.clamp(0.0, 20.0),
        connect_concurrency: cli.connect_concurrency.clamp(1, 4096),
        login_attempts: cli.login_attempts.clamp(1, 9),
        server_log: cli.server_log,
        out,
        skip_echo: cli.skip_echo,
        quick: cli.quick,
        nofile,
        command_line,
        runs,
        tls_clients: sessions(cli.tls_clients, 50, 2_000),
        tls_rate: rate(cli.tls_rate, 200, 2_000),
        presence_clients: sessions(cli.presence_clients, 300, clients),
        idle_sessions,
        crash_clients: sessions(cli.crash_clients, 200, clients),
        crash_duration: secs(cli.crash_secs.unwrap_or(if cli.quick {
            4.0
        } else {
            cli.max_secs.unwrap_or(duration.as_secs_f64())
        }))
        .max(Duration::from_secs(1)),
        settle_limit: secs(cli.settle_secs),
        cluster_clients: sessions(cli.cluster_clients, 100, 2_000),
        cluster_rate: rate(cli.cluster_rate, 200, 2_000),
    })
}

/// Small fast PRNG (xorshift64*); the bench needs spread, not quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that neighbouring seeds diverge at once.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n < 2^32).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// A position in `0..n` other than `not` (n ≥ 2).
    fn other(&mut self, n: usize, not: usize) -> usize {
        let r = self.below(n - 1);
        if r >= not {
            r + 1
        } else {
            r
        }
    }
}

/// What one step measured.
pub struct StepResult {
    pub label: String,
    /// The overload step (offered at --overload-factor × the best delivered rate).
    pub overload: bool,
    /// `slow_down` answers to this step's sends (each one retried).
    pub slow_downs: u64,
    /// The server's read/write syscalls from the step's start to the end of its drain.
    pub server_io: Option<sys::Io>,
    /// Offered messages/s; `None` for the max-throughput step.
    pub offered: Option<u64>,
    pub window_secs: f64,
    pub dispatched: u64,
    /// Delivered while the step was sending, per second of the step.
    pub delivered_per_sec: f64,
    /// Delivered by the end of the drain.
    pub delivered: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub receipts: u64,
    pub drained: bool,
    pub drain_secs: f64,
    /// Earlier steps' messages still undelivered when this step began.
    pub backlog_at_start: u64,
    pub delivery: Histogram<u64>,
    /// Scheduled send time → `message_accepted` (slow_down waits and retries included).
    pub accepted_lat: Histogram<u64>,
    /// Write of the accepted attempt → its `message_accepted` (the overload target's figure).
    pub attempt_lat: Histogram<u64>,
    /// The part of `attempt_lat` before the server's commit.
    pub attempt_to_commit: Histogram<u64>,
    pub receipt_lat: Histogram<u64>,
    pub send_lag: Histogram<u64>,
    pub cpu: CpuUse,
    pub server_mem: Mem,
    /// Size of the server's SQLite database and its WAL after the step, bytes.
    pub db_bytes: Option<(u64, u64)>,
}

/// What one server (natter or echo) measured.
pub struct PhaseResult {
    pub mode: Mode,
    pub target_clients: usize,
    pub connected: usize,
    /// Clients that never logged in, after all attempts.
    pub connect_failures: usize,
    /// Failed login attempts, including ones a retry then fixed.
    pub failed_attempts: usize,
    /// Distinct failure messages with their counts, most frequent first.
    pub failure_reasons: Vec<(String, usize)>,
    pub ramp_secs: f64,
    pub ramp_cpu: CpuUse,
    pub mem_before: Mem,
    pub mem_idle: Mem,
    pub mem_end: Mem,
    pub steps: Vec<StepResult>,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub disconnects: u64,
    pub presence_pushes: u64,
    pub heartbeats: u64,
    pub other_frames: u64,
    pub acks_sent: u64,
    pub acked_ids: u64,
    /// Protocol version the server agreed to.
    pub version: u32,
    /// `ok` replies the clients got (acks without an id get none).
    pub oks: u64,
    pub stop_note: String,
    pub log_problem_count: usize,
    pub log_problems: Vec<(String, usize)>,
    pub aborted: Option<String>,
    /// Skipped steps and backlog waits, in order.
    pub notes: Vec<String>,
    /// Rate steps not run because a lower rate already fell behind: (label, rate).
    pub skipped: Vec<(String, u64)>,
}

async fn run(cfg: Config) -> Result<()> {
    let mut machine = sys::machine();
    // Other work on the machine skews everything; measure what was already running.
    let quiet = CpuMark::now(std::process::id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    machine.busy_before = quiet.usage().machine;
    if machine.busy_before.unwrap_or(0.0) > 20.0 {
        eprintln!(
            "warning: the machine was {:.0} % busy before the benchmark started",
            machine.busy_before.unwrap_or(0.0)
        );
    }
    let started = Instant::now();
    eprintln!(
        "natter-loadbench: {} clients, rates {:?}/s, {:?} per step, max step {:?}, server {}",
        cfg.clients,
        cfg.rates,
        cfg.duration,
        cfg.max_duration,
        cfg.server_bin.display()
    );
    let tmp = tempfile::Builder::new()
        .prefix("natter-loadbench-")
        .tempdir()?;

    let mut steps = None;
    let mut sections = Vec::new();
    for run in &cfg.runs {
        let run_started = Instant::now();
        let section = match run {
            Run::Steps => {
                steps = Some(run_steps(&cfg, tmp.path()).await?);
                continue;
            }
            Run::Tls => tls_login::run(&cfg, tmp.path()).await,
            Run::Presence => presence::run(&cfg, tmp.path()).await,
            Run::Idle => idle::run(&cfg, tmp.path()).await,
            Run::Crash => crash::run(&cfg, tmp.path()).await,
            Run::Cluster => cluster::run(&cfg, tmp.path()).await,
        };
        let secs = run_started.elapsed().as_secs_f64();
        eprintln!("[{run:?}] run took {secs:.1} s");
        sections.push(section.unwrap_or_else(|e| {
            eprintln!("[{run:?}] failed: {e:#}");
            format!("### Run `{run:?}`\n\n**The run failed:** {e:#}\n")
        }));
    }

    let mut text = match &steps {
        Some((natter, echo)) => {
            report::render(&cfg, &machine, natter, echo.as_ref(), started.elapsed())
        }
        None => report::header(&cfg, &machine, started.elapsed()),
    };
    for section in sections {
        text.push('\n');
        text.push_str(section.trim_end());
        text.push('\n');
    }
    println!("{text}");
    if let Some(out) = &cfg.out {
        // A cluster-only run (the services it needs are not always there) must not replace the
        // whole load section with a page that has only its own table.
        let section = if cfg.runs == [Run::Cluster] {
            report::CLUSTER_SECTION
        } else {
            report::SECTION
        };
        natter_e2e::bench_report::write_section(out, section, &text)?;
        eprintln!("wrote the loadbench section of {}", out.display());
    }
    Ok(())
}

/// The rate steps, max and overload against natter-server, then the same against the echo
/// baseline.
async fn run_steps(cfg: &Config, dir: &Path) -> Result<(PhaseResult, Option<PhaseResult>)> {
    let mut server = spawn_natter(cfg, dir, "natter", &["--no-tls"], cfg.clients)?;
    eprintln!(
        "natter-server pid {} listening on {}",
        server.pid, server.addr
    );
    let data_dir = dir.join("natter-data");
    let natter = run_phase(Mode::Natter, &mut server, cfg, Some(&data_dir)).await;
    let echo = if cfg.skip_echo {
        None
    } else {
        let ready = dir.join("echo-ready.json");
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("echo-server").arg("--ready-file").arg(&ready);
        let mut echo = ChildProc::spawn(
            "echo-server",
            cmd,
            &ready,
            dir.join("echo-server.log"),
            Duration::from_secs(30),
        )?;
        eprintln!("echo-server pid {} listening on {}", echo.pid, echo.addr);
        Some(run_phase(Mode::Echo, &mut echo, cfg, None).await)
    };
    Ok((natter, echo))
}

/// Connects the clients, measures idle memory, runs the steps, then stops the server.
async fn run_phase(
    mode: Mode,
    proc: &mut ChildProc,
    cfg: &Config,
    data_dir: Option<&Path>,
) -> PhaseResult {
    let name = proc.name;
    let steps_total = cfg.rates.len() + 3; // warm-up, rates..., max, overload
    let max_step = steps_total - 2;
    let overload_step = steps_total - 1;
    let shared = Arc::new(Shared::new(mode, cfg.clients, steps_total, max_step));
    let mut result = PhaseResult {
        mode,
        target_clients: cfg.clients,
        connected: 0,
        connect_failures: 0,
        failed_attempts: 0,
        failure_reasons: Vec::new(),
        ramp_secs: 0.0,
        ramp_cpu: CpuUse::default(),
        mem_before: sys::mem(proc.pid),
        mem_idle: Mem::default(),
        mem_end: Mem::default(),
        steps: Vec::new(),
        errors: 0,
        error_samples: Vec::new(),
        disconnects: 0,
        presence_pushes: 0,
        heartbeats: 0,
        other_frames: 0,
        acks_sent: 0,
        acked_ids: 0,
        version: 0,
        oks: 0,
        stop_note: String::new(),
        log_problem_count: 0,
        log_problems: Vec::new(),
        aborted: None,
        notes: Vec::new(),
        skipped: Vec::new(),
    };

    // Ramp: logins in bounded parallel batches.
    eprintln!("[{name}] connecting {} clients...", cfg.clients);
    let ramp_cpu = CpuMark::now(proc.pid);
    let dial = Dial::plain(proc.addr);
    let ramp = ramp::guest_logins(name, &shared, cfg.clients, cfg, |_| &dial).await;
    result.ramp_secs = ramp.secs;
    result.ramp_cpu = ramp_cpu.usage();
    result.failed_attempts = ramp.failed_attempts;
    result.connect_failures = ramp.failures;
    result.failure_reasons = ramp.reasons;
    let mut clients: Vec<ClientHandle> = ramp.done.into_iter().map(|(_, c)| c).collect();
    clients.sort_by_key(|c| c.idx);
    result.connected = clients.len();
    eprintln!(
        "[{name}] {} connected, {} failed ({} failed attempts{}), in {:.1} s",
        result.connected,
        result.connect_failures,
        result.failed_attempts,
        result
            .failure_reasons
            .first()
            .map(|(r, n)| format!(", most often {n}× `{r}`"))
            .unwrap_or_default(),
        result.ramp_secs
    );

    tokio::time::sleep(SETTLE).await;
    result.mem_idle = sys::mem(proc.pid);
    eprintln!(
        "[{name}] memory: {} KiB RSS before clients, {} KiB with {} idle sessions",
        result.mem_before.rss_kib, result.mem_idle.rss_kib, result.connected
    );

    if clients.len() < 2 || !proc.alive() {
        result.aborted = Some(format!(
            "only {} clients connected (server alive: {}); no load steps run",
            clients.len(),
            proc.alive()
        ));
    } else {
        let mut rng = Rng::new(0x4e41_5454_4552);
        let mut plan: Vec<(usize, Option<u64>, Duration, String)> = Vec::new();
        if !cfg.warmup.is_zero() {
            let rate = cfg.rates.first().copied().unwrap_or(1000);
            plan.push((0, Some(rate), cfg.warmup, "warm-up".into()));
        }
        for (i, rate) in cfg.rates.iter().enumerate() {
            plan.push((i + 1, Some(*rate), cfg.duration, format!("{rate}/s")));
        }
        plan.push((max_step, None, cfg.max_duration, "max".into()));
        if mode == Mode::Natter && cfg.overload_factor > 0.0 {
            // Its rate is known once the max step has run.
            plan.push((overload_step, None, cfg.duration, "overload".into()));
        }
        let mut dispatched_by_step = vec![0u64; steps_total];
        // The lowest offered rate the system did not keep up with, if any.
        let mut fell_behind_at: Option<u64> = None;
        for (step, mut rate, duration, mut label) in plan {
            if !proc.alive() {
                result.aborted = Some(format!("{name} exited during the run"));
                break;
            }
            if step == overload_step {
                let capacity = result
                    .steps
                    .iter()
                    .map(|r| r.delivered_per_sec)
                    .fold(0.0, f64::max);
                if capacity < 1.0 {
                    result
                        .notes
                        .push("overload step skipped: no capacity measured".into());
                    continue;
                }
                let offered = (capacity * cfg.overload_factor).round() as u64;
                label = format!("overload {:.1}× max", cfg.overload_factor);
                rate = Some(offered);
            } else if let (Some(rate), Some(failed)) = (rate, fell_behind_at) {
                if rate >= failed && !cfg.keep_going {
                    let why = format!(
                        "step {label} skipped: the system already fell behind at {failed}/s \
                         (--keep-going runs it anyway)"
                    );
                    eprintln!("[{name}] {why}");
                    result.notes.push(why);
                    result.skipped.push((label, rate));
                    continue;
                }
            }
            // Let an earlier step's backlog through first, so that steps do not mix.
            let backlog = undelivered(&shared, &dispatched_by_step);
            if backlog > 0 {
                let (cleared, secs) =
                    drain_all(&shared, &dispatched_by_step, cfg.backlog_wait).await;
                let left = undelivered(&shared, &dispatched_by_step);
                let note = format!(
                    "before step {label}: waited {secs:.1} s for {backlog} undelivered messages of \
                     earlier steps ({}/s); {}",
                    (backlog.saturating_sub(left) as f64 / secs.max(1e-9)) as u64,
                    if cleared {
                        "all delivered, accepted and receipted".to_string()
                    } else {
                        format!("{left} still undelivered when this step started")
                    }
                );
                eprintln!("[{name}] {note}");
                result.notes.push(note);
            }
            let backlog_at_start = undelivered(&shared, &dispatched_by_step);
            let io_before = sys::io(proc.pid);
            let cpu = CpuMark::now(proc.pid);
            let t0 = Instant::now();
            let dispatched = match rate {
                Some(rate) => {
                    let (sent, back) = run_paced(&clients, step as u8, rate, duration, rng).await;
                    rng = back;
                    sent
                }
                None => run_max(&shared, &clients, step as u8, duration, cfg.max_inflight).await,
            };
            dispatched_by_step[step] = dispatched;
            let window_secs = t0.elapsed().as_secs_f64();
            let cpu = cpu.usage();
            let st = &shared.steps[step];
            // Only this step's own messages count, whatever else was still in flight.
            let delivered_window = st.delivered.load(Relaxed);
            // Retries after slow_down make the overload step's backlog longer to clear.
            let drain_limit = if step == overload_step {
                cfg.drain + duration
            } else {
                cfg.drain
            };
            let (drained, drain_secs) = drain(&shared, step, dispatched, drain_limit).await;
            let io_after = sys::io(proc.pid);
            let r = StepResult {
                overload: step == overload_step,
                slow_downs: st.slow_downs.load(Relaxed),
                server_io: io_before.zip(io_after).map(|(a, b)| b.since(&a)),
                label,
                offered: rate,
                window_secs,
                dispatched,
                delivered_per_sec: delivered_window as f64 / window_secs.max(1e-9),
                delivered: st.delivered.load(Relaxed),
                accepted: st.accepted_n.load(Relaxed),
                duplicates: st.duplicates.load(Relaxed),
                receipts: st.receipts.load(Relaxed),
                drained,
                drain_secs,
                backlog_at_start,
                delivery: st.delivery.snapshot(),
                accepted_lat: st.accepted.snapshot(),
                attempt_lat: st.attempt.snapshot(),
                attempt_to_commit: st.attempt_to_commit.snapshot(),
                receipt_lat: st.receipt.snapshot(),
                send_lag: st.send_lag.snapshot(),
                cpu,
                server_mem: sys::mem(proc.pid),
                db_bytes: data_dir.map(sys::db_bytes),
            };
            eprintln!("[{name}] {}", report::step_line(mode, &r));
            if let Some(rate) = rate.filter(|_| step != overload_step) {
                if step != 0 && (!drained || r.delivered_per_sec < 0.9 * rate as f64) {
                    fell_behind_at = Some(fell_behind_at.map_or(rate, |f| f.min(rate)));
                }
            }
            if step != 0 {
                result.steps.push(r);
            }
        }
    }

    result.mem_end = sys::mem(proc.pid);
    result.stop_note = stop_natter(proc, &shared, Duration::from_secs(30), &clients);
    eprintln!("[{name}] stopped: {}", result.stop_note);
    drop(clients);
    result.errors = shared.errors.load(Relaxed);
    result.error_samples = shared.error_samples.lock().expect("samples").clone();
    result.disconnects = shared.disconnects.load(Relaxed);
    result.presence_pushes = shared.presence_pushes.load(Relaxed);
    result.heartbeats = shared.heartbeats.load(Relaxed);
    result.other_frames = shared.other_frames.load(Relaxed);
    result.acks_sent = shared.acks_sent.load(Relaxed);
    result.acked_ids = shared.acked_ids.load(Relaxed);
    result.version = shared.version.load(Relaxed);
    result.oks = shared.oks.load(Relaxed);
    let (count, lines) = sys::log_problems(&proc.log, 10);
    result.log_problem_count = count;
    result.log_problems = lines;
    result
}

/// Offers `rate` messages/s in total for `duration`. A dispenser on its own OS thread (so the
/// tokio timer's millisecond granularity and a busy runtime do not skew the schedule) hands each
/// message, when its scheduled time comes, to a random client's writer, addressed to a random
/// other client. The message is stamped with its *scheduled* time, so a late bench is not
/// hidden. Returns how many were dispatched and gives the PRNG back.
async fn run_paced(
    clients: &[ClientHandle],
    step: u8,
    rate: u64,
    duration: Duration,
    mut rng: Rng,
) -> (u64, Rng) {
    let senders: Vec<(u32, mpsc::UnboundedSender<Out>)> =
        clients.iter().map(|c| (c.idx, c.tx.clone())).collect();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let job = tokio::task::spawn_blocking(move || {
        let n = senders.len();
        let t0 = now_ns();
        let hard_stop = Instant::now() + duration + Duration::from_secs(5);
        let sched = |k: u64| t0 + (k as u128 * 1_000_000_000 / rate as u128) as u64;
        let mut sent: u64 = 0;
        while sent < total && Instant::now() < hard_stop {
            let now = now_ns();
            while sent < total && sched(sent) <= now {
                let s = rng.below(n);
                let r = rng.other(n, s);
                let _ = senders[s].1.send(Out::Send {
                    to: senders[r].0,
                    ts: sched(sent),
                    step,
                    seq: None,
                });
                sent += 1;
            }
            let wait = sched(sent).saturating_sub(now_ns());
            if wait > 0 {
                std::thread::sleep(Duration::from_nanos(wait.min(1_000_000)));
            }
        }
        (sent, rng)
    });
    job.await.expect("dispenser thread panicked")
}

/// As fast as possible for `duration`: every client sends to random others, with at most
/// `inflight` of its messages not yet delivered. Returns how many were sent.
async fn run_max(
    shared: &Arc<Shared>,
    clients: &[ClientHandle],
    step: u8,
    duration: Duration,
    inflight: u32,
) -> u64 {
    let n = clients.len();
    let idxs: Arc<Vec<u32>> = Arc::new(clients.iter().map(|c| c.idx).collect());
    let dispatched = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(n);
    for (pos, c) in clients.iter().enumerate() {
        shared.permits[c.idx as usize].add_permits(inflight as usize);
        let (shared, idxs, dispatched, tx) = (
            shared.clone(),
            idxs.clone(),
            dispatched.clone(),
            c.tx.clone(),
        );
        let me = c.idx as usize;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(pos as u64 ^ 0x006d_6178);
            // Ends when the semaphores are closed at the deadline (or the channel is gone).
            while let Ok(permit) = shared.permits[me].acquire().await {
                permit.forget();
                if Instant::now() >= deadline {
                    break;
                }
                let to = idxs[rng.other(n, pos)];
                if tx
                    .send(Out::Send {
                        to,
                        ts: now_ns(),
                        step,
                        seq: None,
                    })
                    .is_err()
                {
                    break;
                }
                dispatched.fetch_add(1, Relaxed);
            }
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    for c in clients {
        shared.permits[c.idx as usize].close();
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    dispatched.load(Relaxed)
}

/// Messages of all steps so far that have not reached their recipient.
fn undelivered(shared: &Shared, dispatched: &[u64]) -> u64 {
    dispatched
        .iter()
        .zip(&shared.steps)
        .map(|(d, st)| d.saturating_sub(st.delivered.load(Relaxed)))
        .sum()
}

/// [`drain`] for every step so far, within one overall `limit`.
async fn drain_all(shared: &Shared, dispatched: &[u64], limit: Duration) -> (bool, f64) {
    let start = Instant::now();
    let mut all = true;
    for (step, d) in dispatched.iter().enumerate() {
        let left = limit.saturating_sub(start.elapsed());
        all &= drain(shared, step, *d, left).await.0;
    }
    (all, start.elapsed().as_secs_f64())
}

/// Waits until every message of `step` was delivered (and, for natter, accepted and
/// receipted), at most `limit`. Returns (complete, seconds waited).
async fn drain(shared: &Shared, step: usize, dispatched: u64, limit: Duration) -> (bool, f64) {
    let start = Instant::now();
    let st = &shared.steps[step];
    loop {
        let mut complete = st.delivered.load(Relaxed) >= dispatched;
        if shared.mode == Mode::Natter {
            complete &= st.accepted_n.load(Relaxed) >= dispatched
                && st.receipts.load(Relaxed) >= dispatched;
        }
        if complete || start.elapsed() >= limit {
            return (complete, start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
