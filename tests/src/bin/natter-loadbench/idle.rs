//! The idle-sessions run: many concurrent sessions that only heartbeat, to measure what one
//! session costs the server. Client sockets are spread over several loopback source addresses
//! (127.0.0.2, 127.0.0.3, …, each bound before connecting), since one source address has only
//! the ephemeral port range (about 28,000 ports) to connect from.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::client::{Dial, Mode, Shared};
use crate::natter_child::{errors_and_stop, spawn_natter, stop_natter};
use crate::report::{fmt_kib, fmt_pct, fmt_rate};
use crate::sys::{self, CpuMark};
use crate::{ramp, Config, SETTLE};

/// Ephemeral ports one source address may use (leaving room for everything else).
fn ports_per_address() -> usize {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let v: Vec<usize> = t
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some(v.get(1)?.saturating_sub(*v.first()?))
        })
        .unwrap_or(28_000);
    (range * 3 / 4).max(1_000)
}

/// Runs it; returns the report's markdown.
pub async fn run(cfg: &Config, dir: &Path) -> Result<String> {
    let n = cfg.idle_sessions;
    // The bench and the server each hold one descriptor per session.
    if (cfg.nofile as usize) < n + 512 {
        bail!(
            "RLIMIT_NOFILE is {} and could not be raised to hold {n} sessions (raising the hard \
             limit needs root or CAP_SYS_RESOURCE)",
            cfg.nofile
        );
    }
    // Quick runs use several addresses too, so that the spreading itself is exercised.
    let per_address = if cfg.quick {
        n.div_ceil(3)
    } else {
        ports_per_address()
    };
    let addresses = n.div_ceil(per_address).clamp(1, 250);
    let mut server = spawn_natter(cfg, dir, "idle", &["--no-tls"], n)?;
    let shared = Arc::new(Shared::new(Mode::Natter, n, 1, usize::MAX));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = sys::mem(server.pid);
    eprintln!(
        "[idle] natter-server pid {}; {n} sessions from {addresses} source addresses",
        server.pid
    );
    let dials: Vec<Dial> = (0..addresses)
        .map(|k| Dial {
            addr: server.addr,
            source: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k as u8))),
            tls: None,
        })
        .collect();
    let cpu = CpuMark::now(server.pid);
    let logged = ramp::guest_logins("idle", &shared, n, cfg, |i| {
        &dials[i as usize / per_address]
    })
    .await;
    let ramp_cpu = cpu.usage();
    eprintln!("[idle] {}", logged.summary("logged in"));
    tokio::time::sleep(SETTLE).await;
    let idle = sys::mem(server.pid);
    let held = logged.done.len() as u64
        - shared
            .disconnects
            .load(Relaxed)
            .min(logged.done.len() as u64);
    let per = |a: u64, b: u64| {
        if held == 0 {
            "–".to_string()
        } else {
            format!("{:.1} KiB", (b as f64 - a as f64) / held as f64)
        }
    };
    let pss = match (before.pss_kib, idle.pss_kib) {
        (Some(a), Some(b)) => per(a, b),
        _ => "n/a".into(),
    };
    let mut o = String::new();
    let _ = writeln!(o, "### {} concurrent idle sessions\n", fmt_rate(n as f64));
    let _ = writeln!(
        o,
        "Plain TCP, `hello {{version: {}, presence: \"friends\"}}` + `guest_login`, then nothing but \
         heartbeats; client sockets bound to {addresses} source address(es) 127.0.0.2… (at most \
         {} each) before connecting. RLIMIT_NOFILE {} for the bench and the server (raised by the \
         bench; the server inherits it). Memory read {:.0} s after the last login.\n",
        shared.version(),
        fmt_rate(per_address as f64),
        cfg.nofile,
        SETTLE.as_secs_f64()
    );
    let _ = writeln!(o, "| | result |\n|---|---|");
    let _ = writeln!(o, "| login ramp | {} |", logged.summary("sessions"));
    let _ = writeln!(
        o,
        "| server CPU during the ramp | {} (bench {}) |",
        fmt_pct(ramp_cpu.server),
        fmt_pct(ramp_cpu.bench)
    );
    let _ = writeln!(
        o,
        "| sessions held {:.0} s later | {} |",
        SETTLE.as_secs_f64(),
        fmt_rate(held as f64)
    );
    let _ = writeln!(
        o,
        "| server RSS / PSS before → with the sessions | {} / {} → {} / {} |",
        fmt_kib(before.rss_kib),
        before.pss_kib.map(fmt_kib).unwrap_or_else(|| "n/a".into()),
        fmt_kib(idle.rss_kib),
        idle.pss_kib.map(fmt_kib).unwrap_or_else(|| "n/a".into()),
    );
    let _ = writeln!(
        o,
        "| **memory per idle session** (goal ≤ 12 KiB) | **{} RSS**, {} PSS |",
        per(before.rss_kib, idle.rss_kib),
        pss
    );
    let _ = writeln!(o, "| server threads | {} |", idle.threads);
    let clients = logged.done.iter().map(|(_, c)| c);
    let stop = stop_natter(&mut server, &shared, Duration::from_secs(60), clients);
    let _ = writeln!(o, "\n{}\n", errors_and_stop(&shared, &stop));
    Ok(o)
}
