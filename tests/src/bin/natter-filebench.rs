//! File transfer throughput and memory on loopback, against a plain TCP copy of the same bytes
//! measured in the same run.
//!
//! ```text
//! cargo build --release -p natter-server -p natter-e2e --bin natter-filebench
//! target/release/natter-filebench             # writes the `files` section of docs/BENCHMARKS.md
//! target/release/natter-filebench --quick --no-write
//! ```
//!
//! For each size: the baseline copies the file over one TCP connection into a file (what any
//! store-and-forward server must at least do); Natter's upload is `send_file` → the server has
//! every byte and has verified the SHA-256; Natter's download is `accept_file` → the receiver
//! has the file, verified and renamed into place. Peak memory is VmHWM of the server process
//! (one fresh server per size) and the growth of this process's resident set during the
//! transfer (both clients run here), so "flat in the file size" can be read off directly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use natter_core::{Event, TransferState};
use natter_e2e::bench_report::{kib_field, write_section, Machine};
use natter_e2e::harness::core::befriend_devices;
use natter_e2e::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECTION: &str = "files";
const MIB: u64 = 1024 * 1024;

#[derive(Parser)]
#[command(about = "Natter file transfer throughput vs a plain TCP copy, and peak memory")]
struct Cli {
    /// One small size, one run.
    #[arg(long)]
    quick: bool,
    /// Print only; leave docs/BENCHMARKS.md alone.
    #[arg(long)]
    no_write: bool,
    /// Runs per size (median reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Sizes to run, in MiB (repeatable); default 64, 256 and 1024, and 4096 with `--huge`.
    #[arg(long = "size-mib")]
    sizes: Vec<u64>,
    /// Adds one 4 GiB transfer (one run) after the usual sizes.
    #[arg(long)]
    huge: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    if std::env::var_os("NATTER_SERVER_BIN").is_none() {
        std::env::set_var("NATTER_SERVER_BIN", dir.join("natter-server"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

/// File → one TCP connection on loopback → file, 512 KiB at a time.
async fn plain_copy(source: &Path, dest: &Path) -> Result<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let dest = dest.to_owned();
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        let mut out = tokio::fs::File::create(&dest).await?;
        let mut buf = vec![0u8; 512 * 1024];
        loop {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).await?;
        }
        out.sync_all().await?;
        anyhow::Ok(())
    });
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    let mut file = tokio::fs::File::open(source).await?;
    let mut buf = vec![0u8; 512 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sock.write_all(&buf[..n]).await?;
    }
    sock.shutdown().await?;
    receiver.await??;
    Ok(started.elapsed())
}

fn status_kib(pid: Option<u32>, key: &str) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| kib_field(&s, key))
        .unwrap_or(0)
}

/// Samples this process's resident set until stopped; returns the peak.
fn rss_sampler() -> (Arc<AtomicBool>, Arc<AtomicU64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let (s, p) = (stop.clone(), peak.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(status_kib(None, "VmRSS"), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (stop, peak)
}

async fn until_state(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    file_id: &str,
    state: TransferState,
) -> Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(600), events.recv()).await {
            Ok(Ok(Event::Transfer(t))) if t.file_id == file_id => {
                if t.state == state {
                    return Ok(());
                }
                if t.state == TransferState::Failed {
                    bail!("transfer failed: {:?}", t.error);
                }
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => bail!("events: {e}"),
            Err(_) => bail!("no {state:?} within 10 minutes"),
        }
    }
}

/// Writes every dirty page out before a timed phase, so each starts from the same quiet disk:
/// otherwise the gigabyte an upload left in the page cache is written back during the
/// download that follows it, and the copy before it pays for the file generated for it.
async fn settle_disk() -> Result<()> {
    let status = tokio::process::Command::new("sync").status().await?;
    if !status.success() {
        bail!("sync failed: {status}");
    }
    Ok(())
}

struct Run {
    plain: Duration,
    upload: Duration,
    /// The part of `upload` before the offer: hashing the file locally, one round trip.
    offer: Duration,
    download: Duration,
    server_hwm_kib: u64,
    client_growth_kib: u64,
}

async fn one_run(size: u64, work: &Path, seed: u64) -> Result<Run> {
    let source = work.join("source.bin");
    natter_e2e::harness::files::random_file(&source, size, seed)?;
    settle_disk().await?;
    let plain = plain_copy(&source, &work.join("plain.bin")).await?;
    std::fs::remove_file(work.join("plain.bin"))?;

    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    let mut bob = server.core_user("bobby").await?;
    befriend_devices(&mut alice, &mut bob).await?;
    let base_rss = status_kib(None, "VmRSS");
    let (stop, peak) = rss_sampler();

    let mut alice_events = alice.events();
    let mut bob_events = bob.events();
    settle_disk().await?;
    let started = Instant::now();
    let sent = alice.send_file("bobby", &source).await?;
    let offer = started.elapsed();
    until_state(&mut alice_events, &sent.file_id, TransferState::Uploaded).await?;
    let upload = started.elapsed();

    let dest = work.join("received.bin");
    settle_disk().await?;
    let started = Instant::now();
    bob.accept_file(&sent.file_id, &dest).await?;
    until_state(&mut bob_events, &sent.file_id, TransferState::Done).await?;
    let download = started.elapsed();
    stop.store(true, Ordering::Relaxed);

    if std::fs::metadata(&dest)?.len() != size {
        bail!("received file has the wrong size");
    }
    let run = Run {
        plain,
        upload,
        offer,
        download,
        server_hwm_kib: status_kib(server.pid(), "VmHWM"),
        client_growth_kib: peak.load(Ordering::Relaxed).saturating_sub(base_rss),
    };
    alice.shutdown().await;
    bob.shutdown().await;
    drop(server);
    std::fs::remove_file(&source)?;
    std::fs::remove_file(&dest)?;
    Ok(run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn mb_s(size: u64, d: Duration) -> f64 {
    size as f64 / 1e6 / d.as_secs_f64()
}

async fn run(cli: Cli) -> Result<()> {
    let machine = Machine::read();
    let runs = if cli.quick { 1 } else { cli.runs.max(1) };
    let mut sizes: Vec<(u64, usize)> = if cli.quick {
        vec![(16 * MIB, 1)]
    } else if cli.sizes.is_empty() {
        vec![(64 * MIB, runs), (256 * MIB, runs), (1024 * MIB, runs)]
    } else {
        cli.sizes.iter().map(|&m| (m * MIB, runs)).collect()
    };
    if cli.huge {
        // One run: it takes minutes and needs 12 GiB of free disk (source, stored, received).
        sizes.push((4096 * MIB, 1));
    }
    let work = tempfile::Builder::new()
        .prefix("natter-filebench-")
        .tempdir()?;
    let mut rows = Vec::new();
    for &(size, size_runs) in &sizes {
        let mut results = Vec::new();
        for r in 0..size_runs {
            let run = one_run(size, work.path(), 17 + r as u64).await?;
            eprintln!(
                "{} MiB run {}: plain {:.0} MB/s, upload {:.0} MB/s, download {:.0} MB/s, server peak {} MiB, clients +{} MiB",
                size / MIB,
                r + 1,
                mb_s(size, run.plain),
                mb_s(size, run.upload),
                mb_s(size, run.download),
                run.server_hwm_kib / 1024,
                run.client_growth_kib / 1024
            );
            results.push(run);
        }
        let plain = median(results.iter().map(|r| mb_s(size, r.plain)).collect());
        let up = median(results.iter().map(|r| mb_s(size, r.upload)).collect());
        let moving = median(
            results
                .iter()
                .map(|r| mb_s(size, r.upload.saturating_sub(r.offer)))
                .collect(),
        );
        let down = median(results.iter().map(|r| mb_s(size, r.download)).collect());
        // Each run against the copy measured seconds before it: this machine's speed drifts
        // between runs more than between the two halves of one.
        let paired = |of: fn(&Run) -> Duration| {
            median(
                results
                    .iter()
                    .map(|r| r.plain.as_secs_f64() / of(r).as_secs_f64())
                    .collect(),
            )
        };
        let (up_ratio, moving_ratio, down_ratio) = (
            paired(|r| r.upload),
            paired(|r| r.upload.saturating_sub(r.offer)),
            paired(|r| r.download),
        );
        let server = results.iter().map(|r| r.server_hwm_kib).max().unwrap_or(0);
        let clients = results
            .iter()
            .map(|r| r.client_growth_kib)
            .max()
            .unwrap_or(0);
        rows.push(format!(
            "| {} MiB{} | {plain:.0} MB/s | {up:.0} MB/s ({:.2}×) | {moving:.0} MB/s ({:.2}×) | {down:.0} MB/s ({:.2}×) | {:.1} MiB | {:.1} MiB |",
            size / MIB,
            if size_runs == runs { "" } else { " (1 run)" },
            up_ratio,
            moving_ratio,
            down_ratio,
            server as f64 / 1024.0,
            clients as f64 / 1024.0,
        ));
    }
    let body = format!(
        "## File transfers (natter-filebench)\n\n\
         {} · {} CPUs · {:.0} GiB RAM · Linux {} · {} · rev {} · release build · plain TCP on \
         127.0.0.1 · median of {runs} run(s) per size · files of random bytes\n\n\
         | Size | Plain TCP copy (baseline) | Natter upload (vs baseline) | Upload after the offer | Natter download (vs baseline) | Server peak RSS (VmHWM) | Both clients' RSS growth |\n\
         |---|---|---|---|---|---|---|\n{}\n\n\
         Upload = `send_file` until the server holds every byte and has verified the SHA-256 \
         (the sender hashes while it sends and names the hash with `file_complete`; \"after the \
         offer\" leaves out the offer's round trip); download = `accept_file` until the file \
         is verified and renamed into place. The baseline copies the same file over one TCP \
         connection into a file (and syncs it), in the same process, right before each run; the \
         ratio is the median of the runs' own ratios. Every phase starts after a `sync`.\n",
        machine.model,
        machine.cpus,
        machine.mem_gib,
        machine.kernel,
        machine.date,
        machine.git_rev,
        rows.join("\n")
    );
    println!("{body}");
    if !cli.no_write {
        // The target dir may live outside the clone; the source tree is where the docs are.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        write_section(&root.join("docs/BENCHMARKS.md"), SECTION, &body)?;
    }
    Ok(())
}
