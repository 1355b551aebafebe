//! natter-appbench: the desktop app measured in its real window (Tauri + WebKitGTK, driven
//! through tauri-driver) against a real natter-server child process on 127.0.0.1:
//!
//! - opening a chat of 100,000 stored messages (alice ↔ bobby, seeded into alice's local store),
//!   against a chat of 100 messages (alice ↔ carol) in the same run; paging older messages;
//!   message rows in the DOM against messages loaded (the list is virtualised);
//! - memory (PSS) of the app and its WebKit processes, idle at the login screen, logged in, and
//!   with the long chat open;
//! - launch to the login screen; with `--build-time`, a release build from a clean target dir.
//!
//! It measures and reports; it asserts no target. Needs a display and tauri-driver:
//!
//! ```text
//! cargo build --release -p natter-app -p natter-server -p natter-e2e --bin natter-appbench
//! xvfb-run -a -s "-screen 0 1280x800x24" target/release/natter-appbench   # writes docs/BENCHMARKS.md
//! xvfb-run -a -s "-screen 0 1280x800x24" target/release/natter-appbench --quick --no-write
//! ```

#[path = "natter-appbench/page.rs"]
mod page;
#[path = "natter-appbench/procs.rs"]
mod procs;
#[path = "natter-appbench/report.rs"]
mod report;
#[path = "natter-appbench/seed.rs"]
mod seed;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use natter_core::ServerAddr;
use natter_e2e::harness::app::AppInstance;
use natter_e2e::harness::core::befriend_devices;
use natter_e2e::{password_for, TestServer};

use procs::Snapshot;

/// Messages in the short (baseline) conversation.
const SHORT_CHAT: usize = 100;
/// Pause after opening or leaving a chat, so the app's follow-up work (the server's history
/// page, previews) is done before the next measurement starts.
const SETTLE: Duration = Duration::from_millis(600);

#[derive(Parser, Debug)]
#[command(
    name = "natter-appbench",
    about = "Desktop app benchmark: opening a chat of 100,000 stored messages, paging, idle \
             memory of the app and its WebKit processes, launch to the login screen"
)]
struct Cli {
    /// Smoke run: 5,000 messages, fewer repetitions, shorter idle waits
    #[arg(long)]
    quick: bool,
    /// Print the report only; leave docs/BENCHMARKS.md alone
    #[arg(long)]
    no_write: bool,
    /// Messages in the long conversation [default: 100000; --quick: 5000]
    #[arg(long)]
    messages: Option<usize>,
    /// Also time `npm --prefix ui run build` + `cargo build --release -p natter-app` in a fresh
    /// CARGO_TARGET_DIR (a cold build: about 10 minutes on 2 cores)
    #[arg(long)]
    build_time: bool,
    /// The markdown file whose appbench section is replaced
    #[arg(long)]
    out: Option<PathBuf>,
    /// Chat openings per conversation, alternating between the two chats [default: 15; --quick: 4]
    #[arg(long)]
    reps: Option<usize>,
    /// App restarts, each followed by a first ("cold") opening of each chat [default: 5; --quick: 1]
    #[arg(long)]
    restarts: Option<usize>,
    /// Pages of older messages to load [default: 10; --quick: 3]
    #[arg(long)]
    pages: Option<usize>,
    /// Launches timed to the login screen [default: 5; --quick: 2]
    #[arg(long)]
    launches: Option<usize>,
    /// Seconds the app idles before its memory is read [default: 10; --quick: 3]
    #[arg(long)]
    idle_secs: Option<u64>,
    /// The app binary [default: $NATTER_APP_BIN, else `natter` next to this executable]
    #[arg(long)]
    app_bin: Option<PathBuf>,
    /// The server binary [default: $NATTER_SERVER_BIN, else `natter-server` next to this
    /// executable]
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// The run's settings, defaults resolved.
pub struct Config {
    pub quick: bool,
    pub messages: usize,
    pub reps: usize,
    pub restarts: usize,
    pub pages: usize,
    pub launches: usize,
    pub idle: Duration,
    pub build_time: bool,
    pub out: Option<PathBuf>,
    pub app_bin: PathBuf,
    pub server_bin: PathBuf,
    pub command_line: String,
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// `flag`, else `$var`, else `name` next to this executable; it must exist.
fn binary(flag: Option<PathBuf>, var: &str, name: &str) -> Result<PathBuf> {
    let path = match flag.or_else(|| std::env::var_os(var).map(PathBuf::from)) {
        Some(path) => path,
        None => std::env::current_exe()
            .context("while locating this executable")?
            .with_file_name(name),
    };
    if !path.is_file() {
        bail!(
            "{} is not a file: build it (cargo build --release -p natter-app -p natter-server) \
             or pass --app-bin / --server-bin ({var})",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("while resolving {}", path.display()))
}

impl Config {
    fn new(cli: Cli) -> Result<Self> {
        let q = cli.quick;
        Ok(Self {
            quick: q,
            messages: cli
                .messages
                .unwrap_or(if q { 5_000 } else { 100_000 })
                .max(2),
            reps: cli.reps.unwrap_or(if q { 4 } else { 15 }).max(1),
            restarts: cli.restarts.unwrap_or(if q { 1 } else { 5 }),
            pages: cli.pages.unwrap_or(if q { 3 } else { 10 }).max(1),
            launches: cli.launches.unwrap_or(if q { 2 } else { 5 }).max(1),
            idle: Duration::from_secs(cli.idle_secs.unwrap_or(if q { 3 } else { 10 })),
            build_time: cli.build_time,
            out: (!cli.no_write).then(|| {
                cli.out
                    .unwrap_or_else(|| workspace_dir().join("docs/BENCHMARKS.md"))
            }),
            app_bin: binary(cli.app_bin, "NATTER_APP_BIN", "natter")?,
            server_bin: binary(cli.server_bin, "NATTER_SERVER_BIN", "natter-server")?,
            command_line: std::iter::once("natter-appbench".to_owned())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" "),
        })
    }
}

fn main() -> Result<()> {
    let cfg = Config::new(Cli::parse())?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!("no display: run it under xvfb-run -a -s \"-screen 0 1280x800x24\"");
    }
    // The harness finds both binaries through these; set before any thread exists.
    std::env::set_var("NATTER_APP_BIN", &cfg.app_bin);
    std::env::set_var("NATTER_SERVER_BIN", &cfg.server_bin);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the runtime")?
        .block_on(run(cfg))
}

/// Everything one run measured.
pub struct Results {
    pub machine: natter_e2e::bench_report::Machine,
    pub webkit: String,
    pub launches: Vec<Launch>,
    pub login_screen_mem: Snapshot,
    pub chat: ChatRun,
    pub build: Option<BuildRun>,
    pub elapsed: Duration,
}

async fn run(cfg: Config) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("natter-appbench-")
        .tempdir()
        .context("while creating the work directory")?;
    eprintln!(
        "app {}, server {}, work dir {}",
        cfg.app_bin.display(),
        cfg.server_bin.display(),
        work.path().display()
    );
    let measured = measure(&cfg, work.path()).await;
    remove_work_dir(work).await;
    let text = report::render(&cfg, &measured?);
    println!("{text}");
    if let Some(out) = &cfg.out {
        natter_e2e::bench_report::write_section(out, report::SECTION, &text)?;
        eprintln!("wrote the appbench section of {}", out.display());
    }
    Ok(())
}

async fn measure(cfg: &Config, work: &Path) -> Result<Results> {
    let started = Instant::now();
    let machine = natter_e2e::bench_report::Machine::read();
    eprintln!("== launch to the login screen ({} launches)", cfg.launches);
    let (launches, login_screen_mem) = measure_launches(cfg, work).await?;

    eprintln!("== chats");
    let chat = chat_run(cfg, work).await?;

    let build = if cfg.build_time {
        eprintln!("== release build from a clean target dir");
        Some(build_run(work).await?)
    } else {
        None
    };
    Ok(Results {
        machine,
        webkit: webkit_version(),
        launches,
        login_screen_mem,
        chat,
        build,
        elapsed: started.elapsed(),
    })
}

/// Removes the work dir, as much of it as can go. The app's accessibility bus and GTK's document
/// portal (started for the app, living as long as the display) keep a socket and a FUSE mount
/// in each instance's XDG cache dir until xvfb-run ends; those few entries stay behind.
async fn remove_work_dir(work: tempfile::TempDir) {
    let path = work.keep();
    if std::fs::remove_dir_all(&path).is_ok() {
        return;
    }
    let left = remove_what_can_go(&path);
    eprintln!(
        "left {left} entries in {} (held by the display session's helpers)",
        path.display()
    );
}

/// Deletes everything under `path` that can be deleted; returns how many entries remain.
fn remove_what_can_go(path: &Path) -> usize {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return usize::from(std::fs::remove_file(path).is_err());
    }
    let mut left = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            left += remove_what_can_go(&entry.path());
        }
    }
    if std::fs::remove_dir(path).is_err() {
        left += 1;
    }
    left
}

fn webkit_version() -> String {
    Command::new("pkg-config")
        .args(["--modversion", "webkit2gtk-4.1"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

// ---- launch to the login screen ------------------------------------------------------------

/// One launch, all times in ms after `AppInstance::launch` was called.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    /// The connect screen's first field was in the DOM.
    pub screen_ms: f64,
    /// The WebDriver session was open (tauri-driver listening, app started, page loaded).
    pub session_ms: f64,
    /// The page's navigation started.
    pub navigation_ms: f64,
    /// First contentful paint, if reported.
    pub fcp_ms: Option<f64>,
    /// The screen was already there when the session opened (`screen_ms` is then an upper bound).
    pub already: bool,
    /// The app process started.
    pub process_ms: Option<f64>,
}

/// The app as shipped renders in software; the test harness turns GPU compositing on for its
/// screenshots, which this benchmark does not take.
fn shipped_rendering() -> Vec<(String, std::ffi::OsString)> {
    vec![("NATTER_GPU".into(), "0".into())]
}

/// Times one launch of the app in `dir`, from the call that starts it to its first screen.
async fn launch_once(name: &str, dir: &Path) -> Result<(AppInstance, Launch)> {
    let at = unix_ms();
    let t0 = Instant::now();
    let app = AppInstance::launch_with_env(name, dir, shipped_rendering()).await?;
    let session_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let process_ms = app
        .driver_pid()
        .and_then(|driver| procs::app_pid(driver).ok())
        .and_then(procs::started_unix_ms)
        .map(|started| started - at);
    let screen = page::first_screen(app.webdriver()?).await?;
    let launch = Launch {
        screen_ms: screen.seen_at - at,
        session_ms,
        navigation_ms: screen.origin - at,
        fcp_ms: screen.fcp_ms.map(|f| screen.origin + f - at),
        already: screen.already,
        process_ms,
    };
    Ok((app, launch))
}

/// Fresh launches (empty data dirs) timed to the connect screen; the last one then idles and
/// its memory is read.
async fn measure_launches(cfg: &Config, work: &Path) -> Result<(Vec<Launch>, Snapshot)> {
    let mut out = Vec::new();
    let mut mem = Snapshot::default();
    for i in 0..cfg.launches {
        let dir = work.join(format!("launch-{i}"));
        let (mut app, launch) = launch_once(&format!("launch-{i}"), &dir).await?;
        eprintln!("launch {i}: {launch:?}");
        out.push(launch);
        if i + 1 == cfg.launches {
            tokio::time::sleep(cfg.idle).await;
            mem = app_memory(&app)?;
        }
        app.quit().await;
    }
    Ok((out, mem))
}

fn app_memory(app: &AppInstance) -> Result<Snapshot> {
    let driver = app
        .driver_pid()
        .context("the app's tauri-driver is not running")?;
    let snapshot = procs::snapshot(procs::app_pid(driver)?);
    for p in &snapshot.procs {
        eprintln!(
            "  pid {} {}: PSS {} KiB, USS {} KiB, RSS {} KiB",
            p.pid, p.name, p.pss_kib, p.uss_kib, p.rss_kib
        );
    }
    if !snapshot.others.is_empty() {
        eprintln!("  also running: {}", snapshot.others.join(", "));
    }
    Ok(snapshot)
}

// ---- chats ---------------------------------------------------------------------------------

/// What the chat part measured.
pub struct ChatRun {
    pub seeded_messages: usize,
    pub seed_took: Duration,
    pub db_bytes: u64,
    /// First opening of each chat after the app started (login, then each restart).
    pub cold_long: Vec<page::Opened>,
    pub cold_short: Vec<page::Opened>,
    /// The same first openings by their place after the start: the first chat opened, and the
    /// second (the order alternates between restarts).
    pub first_after_start: Vec<f64>,
    pub second_after_start: Vec<f64>,
    /// Later openings in the same app session.
    pub warm_long: Vec<page::Opened>,
    pub warm_short: Vec<page::Opened>,
    /// Messages the app held after opening the long chat, and after the pages.
    pub loaded_after_open: Option<u32>,
    pub pages: Vec<page::Paged>,
    pub loaded_after_pages: Option<u32>,
    pub rows_after_pages: Option<u32>,
    pub idle_mem: Snapshot,
    /// The long chat open after its first opening.
    pub first_open_mem: Snapshot,
    /// The long chat open again after the repeated openings.
    pub reopened_mem: Snapshot,
    /// After the pages of older messages.
    pub paged_mem: Snapshot,
    pub restarts: usize,
}

/// Connects the app to `server`'s plain port and logs alice in with her password.
async fn log_in(app: &AppInstance, server: &TestServer) -> Result<()> {
    app.fill("connect-host", "127.0.0.1").await?;
    let tls = app.el("connect-tls").await?;
    if tls.is_selected().await? {
        tls.click().await?;
    }
    app.fill("connect-port", &server.plain_addr().port().to_string())
        .await?;
    app.click("connect-submit").await?;
    app.click("tab-password").await?;
    app.fill("login-username", "alice").await?;
    app.fill("login-password", &password_for("alice")).await?;
    app.click("login-submit").await?;
    app.el("main-view").await?;
    Ok(())
}

/// Opens the chat with `conv`'s peer (timed), then switches to the square.
async fn open_and_leave(app: &AppInstance, conv: &seed::Conversation) -> Result<page::Opened> {
    let client = app.webdriver()?;
    let testid = format!("conv-user-{}", conv.peer);
    let opened = page::open_chat(client, &testid, conv.newest_id(), &conv.newest_text)
        .await
        .with_context(|| format!("while opening the chat with {}", conv.peer))?;
    tokio::time::sleep(SETTLE).await;
    page::leave_chat(client, "conv-square", conv.newest_id()).await?;
    tokio::time::sleep(SETTLE).await;
    Ok(opened)
}

/// Opens the two chats once each, the short one first if `flip`; returns (long, short).
async fn open_both(
    app: &AppInstance,
    seeded: &seed::Seeded,
    flip: bool,
) -> Result<(page::Opened, page::Opened)> {
    if flip {
        let short = open_and_leave(app, &seeded.short).await?;
        Ok((open_and_leave(app, &seeded.long).await?, short))
    } else {
        let long = open_and_leave(app, &seeded.long).await?;
        Ok((long, open_and_leave(app, &seeded.short).await?))
    }
}

async fn chat_run(cfg: &Config, work: &Path) -> Result<ChatRun> {
    let mut server = TestServer::start().await?;
    {
        let mut alice = server.core_user("alice").await?;
        let mut bobby = server.core_user("bobby").await?;
        let mut carol = server.core_user("carol").await?;
        befriend_devices(&mut alice, &mut bobby).await?;
        befriend_devices(&mut alice, &mut carol).await?;
        for device in [alice, bobby, carol] {
            device.shutdown().await;
        }
    }

    let app_dir = work.join("alice");
    let addr = ServerAddr {
        host: "127.0.0.1".into(),
        port: server.plain_addr().port(),
        tls: false,
    };
    let store = natter_core::store_path(&app_dir.join("natter"), &addr, "alice");
    eprintln!(
        "seeding {} + {SHORT_CHAT} messages into {}",
        cfg.messages,
        store.display()
    );
    let seeded = seed::seed_store(
        &store,
        "alice",
        ("bobby", cfg.messages),
        ("carol", SHORT_CHAT),
    )
    .await?;
    eprintln!(
        "seeded in {:.1} s ({} MiB)",
        seeded.took.as_secs_f64(),
        seeded.db_bytes / (1 << 20)
    );

    let mut app = AppInstance::launch_with_env("alice", &app_dir, shipped_rendering()).await?;
    log_in(&app, &server).await?;
    app.el(&format!("conv-user-{}", seeded.long.peer)).await?;
    app.el(&format!("conv-user-{}", seeded.short.peer)).await?;
    eprintln!("logged in; idling {} s", cfg.idle.as_secs());
    tokio::time::sleep(cfg.idle).await;
    let idle_mem = app_memory(&app)?;

    let client = app.webdriver()?;
    let long = &seeded.long;
    let long_testid = format!("conv-user-{}", long.peer);

    // The first opening of each chat in this session is a cold one; the long chat then stays
    // open for a memory reading.
    let first_long = page::open_chat(client, &long_testid, long.newest_id(), &long.newest_text)
        .await
        .context("while opening the long chat")?;
    tokio::time::sleep(cfg.idle).await;
    let first_open_mem = app_memory(&app)?;
    page::leave_chat(client, "conv-square", long.newest_id()).await?;
    tokio::time::sleep(SETTLE).await;
    let first_short = open_and_leave(&app, &seeded.short).await?;
    eprintln!(
        "first opens: long {:.1} ms ({} rows), short {:.1} ms ({} rows)",
        first_long.dom_ms, first_long.rows, first_short.dom_ms, first_short.rows
    );
    let mut first_after_start = vec![first_long.dom_ms];
    let mut second_after_start = vec![first_short.dom_ms];
    let mut cold_long = vec![first_long];
    let mut cold_short = vec![first_short];
    let mut warm_long = Vec::new();
    let mut warm_short = Vec::new();
    for rep in 1..=cfg.reps {
        let (long, short) = open_both(&app, &seeded, rep % 2 == 0).await?;
        eprintln!(
            "rep {rep}: long {:.1} ms ({} rows), short {:.1} ms ({} rows)",
            long.dom_ms, long.rows, short.dom_ms, short.rows
        );
        warm_long.push(long);
        warm_short.push(short);
    }

    // The long chat open again, idle: memory; then paging back through it.
    page::open_chat(client, &long_testid, long.newest_id(), &long.newest_text).await?;
    tokio::time::sleep(cfg.idle).await;
    let reopened_mem = app_memory(&app)?;

    let mut pages = Vec::new();
    for i in 0..cfg.pages {
        let paged = page::page_older(client)
            .await
            .with_context(|| format!("while loading page {} of older messages", i + 1))?;
        eprintln!("page {}: {paged:?}", i + 1);
        pages.push(paged);
        tokio::time::sleep(SETTLE).await;
    }
    tokio::time::sleep(cfg.idle).await;
    let paged_mem = app_memory(&app)?;
    let loaded_after_open = pages.first().and_then(|p| p.loaded_before);
    let loaded_after_pages = pages.last().and_then(|p| p.loaded_settled);
    let rows_after_pages = pages.last().map(|p| p.rows);
    tokio::time::sleep(SETTLE).await;
    page::leave_chat(client, "conv-square", long.newest_id()).await?;

    for i in 0..cfg.restarts {
        app.restart().await?;
        app.el("main-view").await?;
        app.el(&long_testid).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let short_first = i % 2 == 0;
        let (long, short) = open_both(&app, &seeded, short_first).await?;
        let (first, second) = if short_first {
            (short.dom_ms, long.dom_ms)
        } else {
            (long.dom_ms, short.dom_ms)
        };
        first_after_start.push(first);
        second_after_start.push(second);
        eprintln!(
            "restart {}: long {:.1} ms, short {:.1} ms",
            i + 1,
            long.dom_ms,
            short.dom_ms
        );
        cold_long.push(long);
        cold_short.push(short);
    }

    app.quit().await;
    let _ = server.terminate().await;
    Ok(ChatRun {
        seeded_messages: seeded.long.ids.len(),
        seed_took: seeded.took,
        db_bytes: seeded.db_bytes,
        cold_long,
        cold_short,
        first_after_start,
        second_after_start,
        warm_long,
        warm_short,
        loaded_after_open,
        pages,
        loaded_after_pages,
        rows_after_pages,
        idle_mem,
        first_open_mem,
        reopened_mem,
        paged_mem,
        restarts: cfg.restarts,
    })
}

// ---- release build -------------------------------------------------------------------------

/// A release build of the app from a clean target dir.
pub struct BuildRun {
    pub npm: Duration,
    pub cargo: Duration,
    /// The freshly built app, launched to the connect screen.
    pub launch: Launch,
}

fn timed(mut cmd: Command, what: &str, log: &Path) -> Result<Duration> {
    let file = std::fs::File::create(log)?;
    let t0 = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("while starting {what}"))?;
    let took = t0.elapsed();
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "{what} failed ({status}):\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
    Ok(took)
}

async fn build_run(work: &Path) -> Result<BuildRun> {
    let workspace = workspace_dir();
    let target = tempfile::Builder::new()
        .prefix("natter-appbench-target-")
        .tempdir()
        .context("while creating a target dir")?;
    let mut npm = Command::new("npm");
    npm.args(["--prefix", "ui", "run", "build"])
        .current_dir(&workspace);
    let npm = timed(
        npm,
        "npm --prefix ui run build",
        &work.join("npm-build.log"),
    )?;
    eprintln!("npm build: {:.1} s", npm.as_secs_f64());
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--release", "-p", "natter-app"])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target.path());
    let cargo = timed(
        cargo,
        "cargo build --release -p natter-app",
        &work.join("cargo-build.log"),
    )?;
    eprintln!("cargo build: {:.1} s", cargo.as_secs_f64());

    let bin = target.path().join("release/natter");
    let previous = std::env::var_os("NATTER_APP_BIN");
    // The harness reads the app binary from the environment; nothing else runs at this point.
    std::env::set_var("NATTER_APP_BIN", &bin);
    let launched = launch_once("fresh-build", &work.join("fresh-build")).await;
    if let Some(previous) = previous {
        std::env::set_var("NATTER_APP_BIN", previous);
    }
    let (mut app, launch) = launched?;
    app.quit().await;
    Ok(BuildRun { npm, cargo, launch })
}
