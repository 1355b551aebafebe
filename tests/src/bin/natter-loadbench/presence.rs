//! The presence "all" run: N sessions log in with `hello {version: 2, presence: "all"}` (the
//! default a desktop client uses); every client keeps its own online list (`login_ok.online`
//! plus every presence push after it), and at the end each list must equal the set of all
//! sessions. Then a tenth of the clients drop their connections and every remaining list must
//! lose exactly them.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::client::{self, Dial, Mode, Shared};
use crate::natter_child::{errors_and_stop, spawn_natter, stop_natter};
use crate::report::{fmt_pct, fmt_rate};
use crate::sys::CpuMark;
use crate::{ramp, Config};

/// Without version 2 batching every login is one push to everyone online (N²/2 pushes): the
/// run is cut to this many sessions then.
const VERSION1_CAP: usize = 1_000;

/// Runs it; returns the report's markdown.
pub async fn run(cfg: &Config, dir: &Path) -> Result<String> {
    let mut n = cfg.presence_clients;
    let mut server = spawn_natter(cfg, dir, "presence", &["--no-tls"], n)?;
    let dial = Dial::plain(server.addr);
    let shared = Arc::new(Shared::new(Mode::Natter, n, 1, usize::MAX).with_presence_all());
    let mut o = String::new();
    let _ = writeln!(o, "### Presence \"all\" ramp\n");
    let version = client::probe_version(&shared, &dial).await?;
    if version < 2 && n > VERSION1_CAP {
        let _ = writeln!(
            o,
            "**The server does not support protocol version 2** (no batched presence): one \
             `user_online` per login to everyone online, so this run is cut to {VERSION1_CAP} \
             sessions instead of {n}.\n"
        );
        n = VERSION1_CAP;
    }
    eprintln!(
        "[presence] natter-server pid {}; {n} sessions with presence \"all\", version {version}",
        server.pid
    );
    let cpu = CpuMark::now(server.pid);
    let logged = ramp::guest_logins("presence", &shared, n, cfg, |_| &dial).await;
    let ramp_cpu = cpu.usage();
    eprintln!("[presence] {}", logged.summary("logged in"));
    let logged_line = logged.summary("sessions");
    let mut clients: Vec<_> = logged.done.into_iter().map(|(_, c)| c).collect();
    let book = shared
        .presence_book
        .as_ref()
        .expect("presence run keeps a book");

    // Converged: every client's list equals the set of connected clients.
    let members: Vec<u32> = clients.iter().map(|c| c.idx).collect();
    let (settle_secs, bad, missing, extra) = converge(book, &members, cfg.settle_limit).await;
    let settle_cpu = cpu.usage();
    let _ = writeln!(
        o,
        "{} sessions (plain TCP, `guest_login`) with `hello {{version: {version}, presence: \"all\"}}`, \
         {} logins at a time. Each client's online list starts as its `login_ok.online` and takes \
         every presence push after it (version 2: `presence` batches of set operations; version 1: \
         `user_online`/`user_offline`).\n",
        fmt_rate(n as f64),
        cfg.connect_concurrency
    );
    let _ = writeln!(o, "| | result |\n|---|---|");
    let _ = writeln!(o, "| login ramp | {} |", logged_line);
    let _ = writeln!(
        o,
        "| server CPU during the ramp / until every list was right | {} / {} (bench {}) |",
        fmt_pct(ramp_cpu.server),
        fmt_pct(settle_cpu.server),
        fmt_pct(settle_cpu.bench)
    );
    let _ = writeln!(
        o,
        "| `login_ok` bytes received (all clients) | {} |",
        bytes(shared.login_ok_bytes.load(Relaxed))
    );
    let _ = writeln!(
        o,
        "| presence frames / entries / bytes received (all clients) | {} / {} / {} |",
        fmt_rate(shared.presence_pushes.load(Relaxed) as f64),
        fmt_rate(shared.presence_entries.load(Relaxed) as f64),
        bytes(shared.presence_bytes.load(Relaxed))
    );
    let _ = writeln!(
        o,
        "| every list = all {} sessions | {} |",
        fmt_rate(members.len() as f64),
        verdict(bad, missing, extra, settle_secs)
    );

    // Churn: a tenth of the clients go away.
    let gone = (clients.len() / 10)
        .max(1)
        .min(clients.len().saturating_sub(1));
    if gone > 0 && server.alive() {
        let frames0 = shared.presence_pushes.load(Relaxed);
        let entries0 = shared.presence_entries.load(Relaxed);
        // Every tenth client, so the departures are spread over the index range.
        let mut kept = Vec::with_capacity(clients.len());
        let mut left = 0;
        for (k, c) in clients.drain(..).enumerate() {
            if k % 10 == 9 && left < gone {
                c.abort();
                left += 1;
            } else {
                kept.push(c);
            }
        }
        clients = kept;
        let members: Vec<u32> = clients.iter().map(|c| c.idx).collect();
        let (secs, bad, missing, extra) = converge(book, &members, cfg.settle_limit).await;
        let _ = writeln!(
            o,
            "| {left} clients close their connection: every remaining list loses exactly them | {} ({} frames, {} entries) |",
            verdict(bad, missing, extra, secs),
            fmt_rate((shared.presence_pushes.load(Relaxed) - frames0) as f64),
            fmt_rate((shared.presence_entries.load(Relaxed) - entries0) as f64),
        );
    }
    let stop = stop_natter(&mut server, &shared, Duration::from_secs(30), &clients);
    let _ = writeln!(
        o,
        "\nNames in presence data that are not bench clients: {}. {}\n",
        book.foreign.load(Relaxed),
        errors_and_stop(&shared, &stop)
    );
    Ok(o)
}

/// Waits (at most `limit`) until every member's list equals `members`. Returns the seconds
/// waited and, at the end, how many lists were wrong, and the total missing and extra entries.
async fn converge(
    book: &crate::stats::PresenceBook,
    members: &[u32],
    limit: Duration,
) -> (f64, usize, u64, u64) {
    let expected = book.reference(members.iter().copied());
    let start = Instant::now();
    loop {
        let (mut bad, mut missing, mut extra) = (0, 0, 0);
        for &m in members {
            let (a, b) = book.diff(m, &expected);
            if a + b > 0 {
                bad += 1;
                missing += a;
                extra += b;
            }
        }
        if bad == 0 || start.elapsed() >= limit {
            return (start.elapsed().as_secs_f64(), bad, missing, extra);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn verdict(bad: usize, missing: u64, extra: u64, waited: f64) -> String {
    if bad == 0 {
        format!("0 mismatches ({waited:.1} s after the last change every list was right)")
    } else {
        format!(
            "**{bad} lists wrong** after waiting {waited:.1} s ({missing} users missing, {extra} extra in all)"
        )
    }
}

fn bytes(b: u64) -> String {
    crate::report::fmt_kib(b / 1024)
}
