//! The markdown report, printed to stdout and written between the loadbench markers of
//! docs/BENCHMARKS.md (by `natter_e2e::bench_report::write_section`).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::client::Mode;
use super::sys::{CpuUse, Machine, Mem};
use super::{Config, PhaseResult, StepResult};

/// The section of docs/BENCHMARKS.md this bench owns (see `natter_e2e::bench_report`).
pub const SECTION: &str = "loadbench";
/// The section a cluster-only run writes.
pub const CLUSTER_SECTION: &str = "loadbench-cluster";

/// Milliseconds with a precision that suits the size, from a µs histogram.
fn ms_of(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

fn q(h: &Histogram<u64>, quantile: f64) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(quantile))
}

fn lat(h: &Histogram<u64>, quantiles: &[f64]) -> String {
    if h.is_empty() {
        return "–".into();
    }
    quantiles
        .iter()
        .map(|&x| ms_of(h.value_at_quantile(x)))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn lat_max(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        "–".into()
    } else {
        format!(
            "{} / {} / {}",
            ms_of(h.value_at_quantile(0.5)),
            ms_of(h.value_at_quantile(0.99)),
            ms_of(h.max())
        )
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.0} %")).unwrap_or_else(|| "?".into())
}

fn rate(x: f64) -> String {
    let r = x.round() as u64;
    // Thousands separators keep the big numbers readable.
    let s = r.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn offered(r: &StepResult) -> String {
    match r.offered {
        Some(o) => rate(o as f64),
        None => "max".into(),
    }
}

fn kib(k: u64) -> String {
    if k >= 10 * 1024 {
        format!("{:.1} MiB", k as f64 / 1024.0)
    } else {
        format!("{k} KiB")
    }
}

fn per_session(before: u64, idle: u64, n: usize) -> String {
    if n == 0 {
        return "–".into();
    }
    format!("{:.1} KiB", (idle as f64 - before as f64) / n as f64)
}

/// The server's threads by name, e.g. `tokio-rt-worker ×2 57 %, sqlx-sqlite-wor ×8 12 %`.
fn threads(c: &CpuUse) -> String {
    if c.top_threads.is_empty() {
        return "–".into();
    }
    c.top_threads
        .iter()
        .take(3)
        .map(|(name, p)| format!("{name} {p:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One progress line for stderr.
pub fn step_line(mode: Mode, r: &StepResult) -> String {
    let mut s = format!(
        "step {:>8}: sent {} in {:.1} s, delivered {:.0}/s during the step, {}/{} after drain ({:.1} s){}; delivery p50/p99/max {} ms",
        r.label,
        r.dispatched,
        r.window_secs,
        r.delivered_per_sec,
        r.delivered,
        r.dispatched,
        r.drain_secs,
        if r.drained { "" } else { " NOT DRAINED" },
        lat_max(&r.delivery),
    );
    if mode == Mode::Natter {
        let _ = write!(
            s,
            "; accepted p50/p99 {} ms per attempt (to the commit {} ms), {} ms from schedule; slow_down {}; receipts {}",
            lat(&r.attempt_lat, &[0.5, 0.99]),
            lat(&r.attempt_to_commit, &[0.5, 0.99]),
            lat(&r.accepted_lat, &[0.5, 0.99]),
            r.slow_downs,
            r.receipts
        );
    }
    let _ = write!(
        s,
        "; send lag p99 {} ms; CPU server {} bench {} machine {}; server threads {}",
        lat(&r.send_lag, &[0.99]),
        pct(r.cpu.server),
        pct(r.cpu.bench),
        pct(r.cpu.machine),
        threads(&r.cpu)
    );
    if let Some((db, wal)) = r.db_bytes {
        let _ = write!(s, "; db {} wal {}", kib(db / 1024), kib(wal / 1024));
    }
    s
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 100.0 {
                format!("{r:.0}×")
            } else if r >= 10.0 {
                format!("{r:.1}×")
            } else {
                format!("{r:.2}×")
            }
        }
        _ => "–".into(),
    }
}

/// The server's `syscw` per delivered message.
fn syscalls_per_msg(s: &StepResult) -> String {
    match s.server_io {
        Some(io) if s.delivered > 0 => format!("{:.2}", io.writes as f64 / s.delivered as f64),
        _ => "–".into(),
    }
}

/// The overload step against its target: the per-attempt accepted p99 (what the server accepts
/// stays fast while the excess is refused), with the end-to-end figure beside it as context.
fn overload_cell(s: &StepResult) -> String {
    let p99 = q(&s.attempt_lat, 0.99);
    let lost = s
        .accepted
        .saturating_sub(s.duplicates)
        .saturating_sub(s.delivered);
    format!(
        "offered {}/s ({}): accepted p99 {} ms per attempt{} (from the scheduled time, slow_down \
         waits and retries included: p99 {} ms), {} accepted, {} delivered after drain, {} \
         slow_down; {}",
        offered(s),
        s.label,
        p99.map(ms_of).unwrap_or_else(|| "–".into()),
        match p99 {
            Some(p) if p < 1_000_000 => " — met",
            Some(_) => " — not met",
            None => "",
        },
        lat(&s.accepted_lat, &[0.99]),
        rate(s.accepted as f64),
        rate(s.delivered as f64),
        rate(s.slow_downs as f64),
        if s.slow_downs == 0 && s.accepted > 0 {
            "the server never answered slow_down (no admission control seen)".to_string()
        } else if lost == 0 && s.drained {
            "0 accepted messages lost".to_string()
        } else {
            format!("**{lost} accepted but not delivered** when the drain ended")
        }
    )
}

fn mem_cell(m: &Mem) -> String {
    format!(
        "{} / {}",
        kib(m.rss_kib),
        m.pss_kib.map(kib).unwrap_or_else(|| "n/a".into())
    )
}

/// The title, the run's provenance and the machine (without the markers).
pub fn header(cfg: &Config, machine: &Machine, elapsed: Duration) -> String {
    let mut o = String::new();
    let cores = machine.cpus;
    let _ = writeln!(o, "## Load benchmark (`natter-loadbench`)\n");
    let _ = writeln!(
        o,
        "_Generated {} by `{}` at git `{}`{}; the run took {:.0} s._\n",
        machine.date,
        cfg.command_line,
        machine.git_rev,
        if cfg.quick {
            " (**--quick smoke run**, not the real figures)"
        } else {
            ""
        },
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "**Machine:** {} × {}, {:.1} GiB RAM, Linux {}. The load generator, natter-server and the \
         echo baseline all run on this one machine over 127.0.0.1 and share its {} cores; CPU \
         columns are % of one core ({} % = every core busy); \"machine CPU\" is everything \
         on the machine, so machine − server − bench is kernel work not charged to either process \
         plus any other process. The machine was {} busy in the second before the run. \
         RLIMIT_NOFILE of the bench: {}.\n",
        cores,
        machine.model,
        machine.mem_gib,
        machine.kernel,
        cores,
        cores * 100,
        pct(machine.busy_before),
        cfg.nofile
    );
    o
}

/// Renders the whole section (without the markers).
pub fn render(
    cfg: &Config,
    machine: &Machine,
    natter: &PhaseResult,
    echo: Option<&PhaseResult>,
    elapsed: Duration,
) -> String {
    let mut o = header(cfg, machine, elapsed);
    let cores = machine.cpus;
    let _ = writeln!(
        o,
        "**Load:** {} clients, each one TCP connection (plain, no TLS) with `hello` \
         (`presence: \"friends\"`) and `guest_login` (guest accounts: no Argon2 cost). \
         `presence: \"friends\"` is deliberate: with the default `\"all\"`, every login pushes \
         `user_online` to everyone already online, about N²/2 ≈ {} pushes for the ramp \
         alone. Each rate step lasts {:.0} s: a central dispenser on its own thread hands each \
         message, at its scheduled time, to a random client's writer task, addressed to a random other client \
         (`send_message`, a ~60-byte text). The text carries the message's *scheduled* send time \
         (nanoseconds on one clock of the bench process), so a late load generator shows up as \
         latency instead of hiding it. Recipients decode the `message` push, record \
         send → delivery latency and `ack` in batches (64 ids or 20 ms); senders record \
         send → `message_accepted` and count `receipt`s, whose `msg_id`s go into the same ack \
         batches (as a real client's do). Clients ask for protocol version 2 (falling back to 1 \
         if refused), where an `ack` without a request id gets no `ok` back; a `slow_down` \
         answer is retried after its `retry_after_ms` with the same `client_msg_id`; that client \
         holds its other sends until then too and then sends one at a time until one is \
         accepted (as natter-core's outbox does). \"bench send lag\" stops at the hold: it is the \
         bench's own lateness, not the wait. After each step the bench waits (at most \
         {:.0} s) until everything sent was delivered, accepted and receipted. The **max** step \
         ({:.0} s) lets every client send as fast as it can with at most {} message(s) in flight \
         (sent, not yet delivered). The server runs with `--no-rate-limits`, `RUST_LOG={}`, a \
         fresh data directory and SQLite database. A {:.0} s warm-up at the first rate precedes \
         the steps and is not reported.\n",
        natter.target_clients,
        rate((natter.target_clients as f64).powi(2) / 2.0),
        cfg.duration.as_secs_f64(),
        cfg.drain.as_secs_f64(),
        cfg.max_duration.as_secs_f64(),
        cfg.max_inflight,
        std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.server_log.clone()),
        cfg.warmup.as_secs_f64(),
    );
    let _ = writeln!(
        o,
        "**Baseline:** a raw tokio TCP server (`natter-loadbench echo-server`, a separate child \
         process with its own multi-thread runtime) that parses the same length-prefixed frames \
         and writes each one back to its sender. Same client count, same frames, same rates, same \
         bench process, measured right after natter-server in this run. Its \"delivery\" is the \
         frame coming back to the sender: one server hop each way, like natter's \
         sender → server → recipient, but without JSON decoding, routing, persistence, \
         `message_accepted`, `ack` or `receipt` on the server side.\n"
    );

    // Targets.
    let _ = writeln!(o, "### Targets (reported, not asserted)\n");
    let _ = writeln!(o, "| target | this run |\n|---|---|");
    let _ = writeln!(
        o,
        "| 10,000 concurrent sessions | {} of {} clients logged in and held ({} never logged in, {} failed attempts){} |",
        rate(natter.connected as f64),
        rate(natter.target_clients as f64),
        natter.connect_failures,
        natter.failed_attempts,
        if natter.disconnects > 0 {
            format!(", {} dropped later", natter.disconnects)
        } else {
            String::new()
        }
    );
    let best = natter
        .steps
        .iter()
        .max_by(|a, b| a.delivered_per_sec.total_cmp(&b.delivered_per_sec));
    let _ = writeln!(
        o,
        "| 50,000 delivered messages/s | {} |",
        match best {
            Some(b) => format!(
                "best {}/s delivered (step {}, offered {}){}",
                rate(b.delivered_per_sec),
                b.label,
                offered(b),
                if b.delivered_per_sec >= 50_000.0 {
                    " — reached"
                } else {
                    " — not reached"
                }
            ),
            None => "no load step ran".into(),
        }
    );
    let at20k = natter.steps.iter().find(|s| s.offered == Some(20_000));
    let _ = writeln!(
        o,
        "| p99 under 10 ms at 20,000 messages/s | {} |",
        match at20k.and_then(|s| q(&s.delivery, 0.99).map(|p| (s, p))) {
            Some((s, p99)) => format!(
                "delivery p99 {} ms at {}/s delivered{}",
                ms_of(p99),
                rate(s.delivered_per_sec),
                if p99 < 10_000 && s.delivered_per_sec >= 19_000.0 {
                    " — met"
                } else {
                    " — not met"
                }
            ),
            None => "no 20,000/s step in this run".into(),
        }
    );
    let knee = natter
        .steps
        .iter()
        .filter(|s| {
            s.offered
                .is_some_and(|off| s.delivered_per_sec >= 0.95 * off as f64)
                && q(&s.delivery, 0.99).is_some_and(|p| p < 10_000)
        })
        .max_by_key(|s| s.offered);
    let _ = writeln!(
        o,
        "| (context) highest offered rate kept up with at delivery p99 < 10 ms | {} |",
        match knee {
            Some(s) => format!("{}/s (p99 {} ms)", offered(s), lat(&s.delivery, &[0.99])),
            None => "none of the rate steps".into(),
        }
    );
    let _ = writeln!(
        o,
        "| accepted p99 < 1 s at 2× capacity offered (per attempt: the accepted `send_message` \
         written → its `message_accepted`); nothing accepted lost | {} |",
        match natter.steps.iter().find(|s| s.overload) {
            Some(s) => overload_cell(s),
            None => "no overload step in this run".into(),
        }
    );
    let _ = writeln!(
        o,
        "| memory per idle session | {} RSS, {} PSS (natter-server); echo baseline {} RSS |\n",
        per_session(
            natter.mem_before.rss_kib,
            natter.mem_idle.rss_kib,
            natter.connected
        ),
        match (natter.mem_before.pss_kib, natter.mem_idle.pss_kib) {
            (Some(a), Some(b)) => per_session(a, b, natter.connected),
            _ => "n/a".into(),
        },
        echo.map(|e| per_session(e.mem_before.rss_kib, e.mem_idle.rss_kib, e.connected))
            .unwrap_or_else(|| "–".into())
    );

    // natter steps.
    let _ = writeln!(o, "### natter-server, per step\n");
    if let Some(why) = &natter.aborted {
        let _ = writeln!(o, "**Load steps did not run:** {why}\n");
    }
    let _ = writeln!(
        o,
        "| step | offered msg/s | sent | delivered msg/s | delivered after drain | accepted per attempt p50 / p99 ms | accepted from schedule p50 / p99 ms | delivery p50 / p99 / max ms | receipt p50 / p99 ms | slow_down | server syscw / delivered msg | bench send lag p99 ms | server CPU | bench CPU | machine CPU | server threads (CPU) | DB / WAL after |"
    );
    let _ = writeln!(
        o,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
    );
    for s in &natter.steps {
        if s.offered.is_none() {
            // Skipped rate steps go where they would have run: before the max step.
            for (label, r) in &natter.skipped {
                let _ = writeln!(
                    o,
                    "| {label} | {} | skipped: a lower rate already fell behind | | | | | | | | | | | | | | |",
                    rate(*r as f64)
                );
            }
        }
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.label,
            offered(s),
            rate(s.dispatched as f64),
            rate(s.delivered_per_sec),
            rate(s.delivered as f64),
            if s.drained {
                String::new()
            } else {
                not_delivered(s)
            },
            lat(&s.attempt_lat, &[0.5, 0.99]),
            lat(&s.accepted_lat, &[0.5, 0.99]),
            lat_max(&s.delivery),
            lat(&s.receipt_lat, &[0.5, 0.99]),
            rate(s.slow_downs as f64),
            syscalls_per_msg(s),
            lat(&s.send_lag, &[0.99]),
            pct(s.cpu.server),
            pct(s.cpu.bench),
            pct(s.cpu.machine),
            threads(&s.cpu),
            s.db_bytes
                .map(|(db, wal)| format!("{} / {}", kib(db / 1024), kib(wal / 1024)))
                .unwrap_or_else(|| "–".into()),
        );
    }
    let _ = writeln!(
        o,
        "\n\"delivered msg/s\" counts `message` pushes that reached their recipient while the step \
         was sending, divided by the step's length; \"delivered after drain\" is the total once the \
         backlog was let through. \"bench send lag\" is how late the bench's own writer task was \
         against the schedule (part of every latency figure). \"slow_down\" counts the server's \
         `slow_down` answers to the step's sends; each was sent again (same `client_msg_id`) after \
         `retry_after_ms`. \"accepted per attempt\" runs from the moment the bench encoded the \
         attempt the server accepted to its `message_accepted` (the overload target's figure: what \
         the server takes on stays fast while it refuses the excess); \"accepted from schedule\" \
         runs from the message's original scheduled time, slow_down waits and retries included \
         (what a user waiting for the tick would see). \"server syscw\" is `syscw` of /proc/PID/io from the step's start to the end of \
         its drain, divided by the messages delivered. It counts write(2), writev(2) and pwrite(2) \
         (SQLite's WAL writes included) but **not** send(2)/sendto(2), which Rust's std uses for a \
         plain TCP write, so it is only a rough hint at socket writes, not an exact count.\n"
    );

    // Echo comparison.
    if let Some(e) = echo {
        let _ = writeln!(o, "### Baseline comparison: raw tokio TCP echo\n");
        if let Some(why) = &e.aborted {
            let _ = writeln!(o, "**Echo steps did not run:** {why}\n");
        }
        let _ = writeln!(
            o,
            "| step | offered msg/s | echo delivered msg/s | echo p50 / p99 / max ms | echo server CPU | bench CPU | machine CPU | bench send lag p99 ms | natter/echo delivered msg/s | natter/echo p50 | natter/echo p99 |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for es in &e.steps {
            let ns = natter.steps.iter().find(|s| s.label == es.label);
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                es.label,
                offered(es),
                rate(es.delivered_per_sec),
                lat_max(&es.delivery),
                pct(es.cpu.server),
                pct(es.cpu.bench),
                pct(es.cpu.machine),
                lat(&es.send_lag, &[0.99]),
                ratio(ns.map(|s| s.delivered_per_sec), Some(es.delivered_per_sec)),
                ratio(
                    ns.and_then(|s| q(&s.delivery, 0.5)).map(|v| v as f64),
                    q(&es.delivery, 0.5).map(|v| v as f64)
                ),
                ratio(
                    ns.and_then(|s| q(&s.delivery, 0.99)).map(|v| v as f64),
                    q(&es.delivery, 0.99).map(|v| v as f64)
                ),
            );
        }
        let _ = writeln!(
            o,
            "\nRatios are natter ÷ echo: below 1× for throughput and above 1× for latency mean \
             natter-server is slower than the bare socket relay.\n"
        );
    }

    // Memory.
    let _ = writeln!(o, "### Server memory\n");
    let _ = writeln!(
        o,
        "RSS from `/proc/PID/status` (VmRSS), PSS from `/proc/PID/smaps_rollup`. \"idle\" is read \
         {} s after the last login, before any message was sent.\n",
        super::SETTLE.as_secs()
    );
    let _ = writeln!(
        o,
        "| | natter-server RSS / PSS | echo RSS / PSS |\n|---|---:|---:|"
    );
    let e_or = |f: &dyn Fn(&PhaseResult) -> String| echo.map(f).unwrap_or_else(|| "–".into());
    let _ = writeln!(
        o,
        "| started, no clients | {} | {} |",
        mem_cell(&natter.mem_before),
        e_or(&|e| mem_cell(&e.mem_before))
    );
    let _ = writeln!(
        o,
        "| {} idle sessions | {} | {} |",
        rate(natter.connected as f64),
        mem_cell(&natter.mem_idle),
        e_or(&|e| mem_cell(&e.mem_idle))
    );
    let _ = writeln!(
        o,
        "| **per idle session** | **{}** / {} | {} / {} |",
        per_session(
            natter.mem_before.rss_kib,
            natter.mem_idle.rss_kib,
            natter.connected
        ),
        match (natter.mem_before.pss_kib, natter.mem_idle.pss_kib) {
            (Some(a), Some(b)) => per_session(a, b, natter.connected),
            _ => "n/a".into(),
        },
        e_or(&|e| per_session(e.mem_before.rss_kib, e.mem_idle.rss_kib, e.connected)),
        e_or(&|e| match (e.mem_before.pss_kib, e.mem_idle.pss_kib) {
            (Some(a), Some(b)) => per_session(a, b, e.connected),
            _ => "n/a".into(),
        }),
    );
    let _ = writeln!(
        o,
        "| after the load steps | {} | {} |",
        mem_cell(&natter.mem_end),
        e_or(&|e| mem_cell(&e.mem_end))
    );
    let _ = writeln!(
        o,
        "| peak RSS (VmHWM) | {} | {} |",
        kib(natter.mem_end.hwm_kib),
        e_or(&|e| kib(e.mem_end.hwm_kib))
    );
    let _ = writeln!(
        o,
        "| threads | {} | {} |\n",
        natter.mem_end.threads,
        e_or(&|e| e.mem_end.threads.to_string())
    );

    // Ramp.
    let _ = writeln!(o, "### Connection ramp\n");
    for p in std::iter::once(natter).chain(echo) {
        let what = match p.mode {
            Mode::Natter => "natter-server (connect + hello + guest_login)",
            Mode::Echo => "echo (connect only)",
        };
        let _ = writeln!(
            o,
            "- {what}: {} sessions in {:.1} s ({}/s, {} at a time, up to {} attempts each), server CPU {} during the ramp, {} never logged in, {} failed attempts{}",
            rate(p.connected as f64),
            p.ramp_secs,
            rate(p.connected as f64 / p.ramp_secs.max(1e-9)),
            cfg.connect_concurrency,
            cfg.login_attempts,
            pct(p.ramp_cpu.server),
            p.connect_failures,
            p.failed_attempts,
            if p.failure_reasons.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    p.failure_reasons
                        .iter()
                        .take(5)
                        .map(|(r, n)| format!("{n}× `{}`", r.replace('`', "'")))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    let _ = writeln!(o);

    // Observations.
    let _ = writeln!(o, "### Observations\n");
    for p in std::iter::once(natter).chain(echo) {
        let who = match p.mode {
            Mode::Natter => "natter",
            Mode::Echo => "echo",
        };
        for n in &p.notes {
            let _ = writeln!(o, "- {who}: {n}.");
        }
        for s in &p.steps {
            let mut notes = Vec::new();
            if s.backlog_at_start > 0 {
                notes.push(format!(
                    "began with {} undelivered messages of earlier steps still queued",
                    s.backlog_at_start
                ));
            }
            if let Some(off) = s.offered {
                if s.delivered_per_sec < 0.95 * off as f64 {
                    notes.push(format!(
                        "delivered {}/s of {}/s offered — the system fell behind",
                        rate(s.delivered_per_sec),
                        rate(off as f64)
                    ));
                }
            }
            let busy = s.cpu.machine.unwrap_or(0.0);
            if busy >= 0.85 * (cores * 100) as f64 {
                notes.push(format!(
                    "the machine was CPU-saturated ({} of {} %: server {}, bench {}, the rest kernel/other)",
                    pct(s.cpu.machine),
                    cores * 100,
                    pct(s.cpu.server),
                    pct(s.cpu.bench),
                ));
            }
            if let (Some(m), Some(sv), Some(b)) = (s.cpu.machine, s.cpu.server, s.cpu.bench) {
                let other = m - sv - b;
                if other >= 30.0 {
                    notes.push(format!(
                        "{other:.0} % of a core went to neither the server nor the bench \
                         (kernel network work, or other processes on the machine): figures of \
                         this step may be disturbed"
                    ));
                }
            }
            if let Some((thread, busy)) = &s.cpu.busiest_thread {
                if *busy >= 85.0 {
                    notes.push(format!(
                        "the server thread `{thread}` was busy {busy:.0} % of the step: one \
                         thread near a full core is a serial bottleneck"
                    ));
                }
            }
            if q(&s.send_lag, 0.99).unwrap_or(0) > 5_000 {
                notes.push(format!(
                "the bench itself dispatched late (send lag p99 {} ms), so part of the latency is the load generator's",
                lat(&s.send_lag, &[0.99])
            ));
            }
            if !s.drained && p.mode == Mode::Echo {
                notes.push(format!(
                    "{} frames had not come back within {:.0} s of the step's end",
                    s.dispatched.saturating_sub(s.delivered),
                    s.drain_secs
                ));
            } else if !s.drained {
                notes.push(format!(
                "{} messages were not delivered, {} not accepted and {} not receipted within {:.0} s of the step's end",
                s.dispatched.saturating_sub(s.delivered),
                s.dispatched.saturating_sub(s.accepted),
                s.dispatched.saturating_sub(s.receipts),
                s.drain_secs
            ));
            }
            if p.mode == Mode::Natter && s.duplicates > 0 {
                notes.push(format!(
                    "{} `message_accepted` said duplicate",
                    s.duplicates
                ));
            }
            if !notes.is_empty() {
                let _ = writeln!(o, "- {who} step {}: {}.", s.label, notes.join("; "));
            }
        }
    }
    for p in std::iter::once(natter).chain(echo) {
        let name = match p.mode {
            Mode::Natter => "natter-server",
            Mode::Echo => "echo server",
        };
        let _ = writeln!(
            o,
            "- {name}: {} error(s) seen by clients, {} connection(s) dropped while in use{}; stop: {}.",
            p.errors,
            p.disconnects,
            if p.error_samples.is_empty() {
                String::new()
            } else {
                format!(
                    " (first: `{}`)",
                    p.error_samples
                        .iter()
                        .take(5)
                        .map(|s| s.replace('`', "'"))
                        .collect::<Vec<_>>()
                        .join("`; `")
                )
            },
            p.stop_note
        );
        if p.mode == Mode::Natter {
            let _ = writeln!(
                o,
                "- natter-server: protocol version {} in use{}; {} presence pushes (expected 0 with `presence: \"friends\"`), {} server heartbeats, {} other frames; clients sent {} acks covering {} messages and receipts ({}), and got {} `ok` replies.",
                p.version,
                if p.version < 2 {
                    " (**the server does not support version 2**: acks carry an id and are answered with `ok`)"
                } else {
                    ""
                },
                p.presence_pushes,
                p.heartbeats,
                p.other_frames,
                p.acks_sent,
                p.acked_ids,
                if p.version >= 2 { "without a request id" } else { "each with a request id" },
                p.oks
            );
            if p.log_problem_count > 0 {
                let _ = writeln!(
                    o,
                    "- natter-server log: {} warning/error line(s): {}",
                    p.log_problem_count,
                    p.log_problems
                        .iter()
                        .take(5)
                        .map(|(l, n)| format!("{n}× `{}`", l.replace('`', "'")))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                let _ = writeln!(o, "- natter-server log: no warnings or errors.");
            }
        }
    }
    o
}

/// Latency quantiles in ms ("p50 / p99 / …", `1.0` = max) for the other runs' tables.
pub fn fmt_lat(h: &Histogram<u64>, quantiles: &[f64]) -> String {
    lat(h, quantiles)
}

/// "% of one core", or "?".
pub fn fmt_pct(x: Option<f64>) -> String {
    pct(x)
}

/// A whole number with thousands separators.
pub fn fmt_rate(x: f64) -> String {
    rate(x)
}

/// KiB or MiB.
pub fn fmt_kib(k: u64) -> String {
    kib(k)
}

/// The "delivered after drain" cell's note for a step that did not drain: what was still on its
/// way, told apart from what the server had accepted (only that would be a loss, and the
/// accepted-lost count says whether any was).
fn not_delivered(s: &StepResult) -> String {
    let undelivered = s.dispatched.saturating_sub(s.delivered);
    let unaccepted = s.dispatched.saturating_sub(s.accepted);
    let accepted_waiting = undelivered.saturating_sub(unaccepted);
    if accepted_waiting > 0 {
        format!(
            " (**{undelivered} not delivered** after {:.0} s; {unaccepted} of them not yet accepted, held by their clients after `slow_down`)",
            s.drain_secs
        )
    } else {
        format!(
            " ({undelivered} not yet accepted after {:.0} s: held by their clients after `slow_down`, all accepted ones delivered)",
            s.drain_secs
        )
    }
}
