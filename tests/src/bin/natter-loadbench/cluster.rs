//! The cluster run: the same load against one node on its embedded SQLite, one node on
//! PostgreSQL, and two nodes on PostgreSQL + NATS with the clients split between them (every
//! message then has an even chance of crossing the bus). PostgreSQL and nats-server are the
//! operator's (`scripts/cluster-services.sh`), named by `NATTER_CLUSTER_POSTGRES` and
//! `NATTER_TEST_NATS`; each topology gets a database of its own.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use natter_e2e::harness::server::PgDatabase as Database;

use crate::client::{ClientHandle, Dial, Mode, Shared};
use crate::natter_child::{errors_and_stop, spawn_natter};
use crate::report::{fmt_lat, fmt_pct, fmt_rate};
use crate::sys::{ChildProc, CpuMark};
use crate::Config;

/// The steps of each topology: 1 the paced rate, 2 as fast as the clients go.
const PACED: usize = 1;
const MAX: usize = 2;

/// One row of the report.
struct Row {
    topology: &'static str,
    paced: String,
    max_rate: f64,
    max_lat: String,
    node_cpu: Vec<Option<f64>>,
    machine_cpu: Option<f64>,
    bench_cpu: Option<f64>,
    /// Nodes' CPU per delivered message in the max step, µs.
    us_per_msg: Option<f64>,
    note: String,
}

/// Runs it; returns the report's markdown.
pub async fn run(cfg: &Config, dir: &Path) -> Result<String> {
    let pg = std::env::var("NATTER_CLUSTER_POSTGRES").unwrap_or_default();
    let nats = std::env::var("NATTER_TEST_NATS").unwrap_or_default();
    if pg.is_empty() || nats.is_empty() {
        bail!(
            "set NATTER_CLUSTER_POSTGRES and NATTER_TEST_NATS \
             (eval \"$(bash scripts/cluster-services.sh start DIR)\")"
        );
    }
    let fsync = pg_setting(&pg, "fsync");
    let sync_commit = pg_setting(&pg, "synchronous_commit");
    let mut rows = Vec::new();
    rows.push(topology(cfg, dir, "1 node, SQLite (default)", &[], 1).await?);
    let db = Database::create(&pg)?;
    rows.push(
        topology(
            cfg,
            dir,
            "1 node, PostgreSQL",
            &["--database-url", &db.url],
            1,
        )
        .await?,
    );
    drop(db);
    let db = Database::create(&pg)?;
    let name = format!("bench{}", std::process::id());
    rows.push(
        topology(
            cfg,
            dir,
            "2 nodes, PostgreSQL + NATS",
            &[
                "--database-url",
                &db.url,
                "--nats-url",
                &nats,
                "--cluster-name",
                &name,
            ],
            2,
        )
        .await?,
    );
    drop(db);

    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "### Cluster: one node against two\n");
    let _ = writeln!(
        o,
        "{} guest sessions (plain TCP, `presence: \"friends\"`), spread round-robin over the \
         nodes; {}/s offered for {:.0} s, then {:.0} s as fast as the clients go (1 message in \
         flight each). Random sender → random recipient: with two nodes half the messages cross \
         NATS. PostgreSQL 15 (`fsync = {fsync}`, `synchronous_commit = {sync_commit}`, a \
         throw-away data directory on this machine's disk, as `scripts/cluster-services.sh` \
         starts it) and nats-server run on the same 2 cores as the nodes and the bench, so a second \
         node cannot add capacity here: the table shows what the cluster's machinery costs. \
         \"DB + bus + kernel\" is the machine's CPU minus the nodes' and the bench's.\n",
        fmt_rate(cfg.cluster_clients as f64),
        fmt_rate(cfg.cluster_rate as f64),
        cfg.duration.as_secs_f64(),
        cfg.max_duration.as_secs_f64(),
    );
    let _ = writeln!(
        o,
        "| topology | paced step | max step delivered msg/s | max step delivery p50 / p99 ms | node CPU | bench CPU | DB + bus + kernel | nodes' CPU per delivered msg |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    let base = rows.first().map(|r| r.max_rate).unwrap_or(0.0);
    for r in &rows {
        let nodes: f64 = r.node_cpu.iter().flatten().sum();
        let other = match (r.machine_cpu, r.bench_cpu) {
            (Some(m), Some(b)) => Some((m - b - nodes).max(0.0)),
            _ => None,
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} ({:.2}× the SQLite node) | {} | {} | {} | {} | {} |",
            r.topology,
            r.paced,
            fmt_rate(r.max_rate),
            if base > 0.0 { r.max_rate / base } else { 0.0 },
            r.max_lat,
            r.node_cpu
                .iter()
                .map(|c| fmt_pct(*c))
                .collect::<Vec<_>>()
                .join(" + "),
            fmt_pct(r.bench_cpu),
            fmt_pct(other),
            r.us_per_msg
                .map(|u| format!("{u:.0} µs"))
                .unwrap_or_else(|| "–".into()),
        );
    }
    for r in &rows {
        let _ = writeln!(o, "\n{}: {}", r.topology, r.note);
    }
    Ok(o)
}

async fn topology(
    cfg: &Config,
    dir: &Path,
    label: &'static str,
    extra: &[&str],
    nodes: usize,
) -> Result<Row> {
    let n = cfg.cluster_clients;
    let mut servers: Vec<ChildProc> = Vec::new();
    for k in 0..nodes {
        let tag = format!("cluster-{}-{k}", label.len() + nodes);
        let mut args = vec!["--no-tls"];
        args.extend_from_slice(extra);
        servers.push(spawn_natter(cfg, dir, &tag, &args, n)?);
    }
    let dials: Vec<Dial> = servers.iter().map(|s| Dial::plain(s.addr)).collect();
    eprintln!(
        "[cluster] {label}: node pids {:?}; {n} clients",
        servers.iter().map(|s| s.pid).collect::<Vec<_>>()
    );
    let shared = Arc::new(Shared::new(Mode::Natter, n, MAX + 1, MAX));
    let logged = crate::ramp::guest_logins("cluster", &shared, n, cfg, |i| {
        &dials[i as usize % dials.len()]
    })
    .await;
    let logged_line = logged.summary("sessions");
    let clients: Vec<ClientHandle> = logged.done.into_iter().map(|(_, c)| c).collect();
    if clients.len() < 2 {
        bail!("{label}: only {} clients logged in", clients.len());
    }

    let t0 = Instant::now();
    let (sent, _) = crate::run_paced(
        &clients,
        PACED as u8,
        cfg.cluster_rate,
        cfg.duration,
        crate::Rng::new(11),
    )
    .await;
    let window = t0.elapsed().as_secs_f64();
    let st = &shared.steps[PACED];
    let during = st.delivered.load(Relaxed) as f64 / window.max(1e-9);
    let (drained, _) = crate::drain(&shared, PACED, sent, cfg.drain).await;
    let paced = format!(
        "{}/s delivered of {}/s; p50 / p99 {} ms{}",
        fmt_rate(during),
        fmt_rate(cfg.cluster_rate as f64),
        fmt_lat(&st.delivery.snapshot(), &[0.5, 0.99]),
        if drained { "" } else { " (**not drained**)" }
    );

    let marks: Vec<CpuMark> = servers.iter().map(|s| CpuMark::now(s.pid)).collect();
    let t0 = Instant::now();
    let max_sent = crate::run_max(
        &shared,
        &clients,
        MAX as u8,
        cfg.max_duration,
        cfg.max_inflight,
    )
    .await;
    let window = t0.elapsed().as_secs_f64();
    let usage: Vec<_> = marks.iter().map(CpuMark::usage).collect();
    let st = &shared.steps[MAX];
    let delivered = st.delivered.load(Relaxed);
    let max_rate = delivered as f64 / window.max(1e-9);
    let (drained, _) = crate::drain(&shared, MAX, max_sent, cfg.drain).await;
    let node_cpu: Vec<Option<f64>> = usage.iter().map(|u| u.server).collect();
    let nodes_core_secs: Option<f64> = node_cpu.iter().map(|c| c.map(|p| p / 100.0 * window)).sum();
    let us_per_msg = nodes_core_secs
        .filter(|_| delivered > 0)
        .map(|s| s * 1e6 / delivered as f64);
    let max_lat = fmt_lat(&st.delivery.snapshot(), &[0.5, 0.99]);

    shared.closing.store(true, Relaxed);
    let mut stops = Vec::new();
    for s in &mut servers {
        stops.push(s.stop(Duration::from_secs(30)));
    }
    for c in &clients {
        c.abort();
    }
    let note = format!(
        "{}{} {}",
        logged_line,
        if drained {
            ""
        } else {
            "; the max step did **not** drain"
        },
        errors_and_stop(&shared, &stops.join(" / "))
    );
    Ok(Row {
        topology: label,
        paced,
        max_rate,
        max_lat,
        node_cpu,
        machine_cpu: usage.first().and_then(|u| u.machine),
        bench_cpu: usage.first().and_then(|u| u.bench),
        us_per_msg,
        note,
    })
}

/// A PostgreSQL setting as the server reports it, or "?".
fn pg_setting(admin: &str, name: &str) -> String {
    natter_e2e::harness::server::psql(admin, &format!("SHOW {name}")).unwrap_or_else(|_| "?".into())
}
