//! The TLS + password run: sessions over the server's TLS port (its self-signed certificate
//! pinned by the `cert_sha256` of its ready file), registered accounts (`register`, Argon2id on
//! the server), then `login` for all of them, then one moderate rate step.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use natter_core::transport::pinned_verifier;

use crate::client::{self, Dial, Login, Mode, Shared};
use crate::natter_child::{errors_and_stop, spawn_natter, stop_natter};
use crate::report::{fmt_lat, fmt_pct, fmt_rate};
use crate::sys::CpuMark;
use crate::{ramp, Config, RAMP_LIMIT};

/// The password of every bench account.
const PASSWORD: &str = "loadbench-password";

/// A client configuration that trusts only the certificate with this fingerprint (natter-core's
/// pinning verifier, as the app uses it).
pub fn pinned_config(sha256: &str) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(pinned_verifier(&sha256.to_ascii_lowercase()))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs it; returns the report's markdown.
pub async fn run(cfg: &Config, dir: &Path) -> Result<String> {
    let n = cfg.tls_clients;
    let mut server = spawn_natter(cfg, dir, "tls", &["--tls-port", "0"], n)?;
    let tls_addr = server
        .ready_addr("tls")
        .context("server wrote no TLS address (started without TLS?)")?;
    let sha = server.ready["cert_sha256"]
        .as_str()
        .context("ready file has no cert_sha256")?
        .to_string();
    let dial = Dial {
        addr: tls_addr,
        source: None,
        tls: Some(pinned_config(&sha)?),
    };
    eprintln!(
        "[tls] natter-server pid {} TLS on {tls_addr}; registering {n} accounts",
        server.pid
    );
    // Steps: 0 unused, 1 the rate step; no max step (permits unused).
    let shared = Arc::new(Shared::new(Mode::Natter, n, 2, usize::MAX));
    let concurrency = cfg.connect_concurrency;
    // Argon2id is CPU-bound on the server: more registrations in flight than it has cores only
    // make each wait longer (and time out), without more per second.
    let register_concurrency = concurrency.min(16);

    let cpu = CpuMark::now(server.pid);
    let registered = ramp::run(
        "tls",
        n as u32,
        register_concurrency,
        cfg.login_attempts,
        RAMP_LIMIT,
        |i, _| {
            let (shared, dial) = (shared.clone(), dial.clone());
            async move {
                client::register(&shared, &dial, &crate::stats::username(i, 0), PASSWORD).await
            }
        },
    )
    .await;
    let register_cpu = cpu.usage();
    eprintln!("[tls] {}", registered.summary("registered"));

    let cpu = CpuMark::now(server.pid);
    let names: Vec<u32> = registered.done.iter().map(|(i, _)| *i).collect();
    let logged = ramp::run(
        "tls",
        names.len() as u32,
        concurrency,
        cfg.login_attempts,
        RAMP_LIMIT,
        |k, _| {
            let i = names[k as usize];
            client::connect(
                shared.clone(),
                &dial,
                i,
                Login::Password {
                    name: crate::stats::username(i, 0),
                    password: PASSWORD.into(),
                },
            )
        },
    )
    .await;
    let login_cpu = cpu.usage();
    eprintln!("[tls] {}", logged.summary("logged in"));
    let logged_line = logged.summary("sessions");
    let clients: Vec<_> = logged.done.into_iter().map(|(_, c)| c).collect();

    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(o, "### TLS sessions with password logins\n");
    let _ = writeln!(
        o,
        "{} sessions over TLS (the server's self-signed certificate, pinned by the `cert_sha256` of its \
         ready file, as a client told the fingerprint out of band would), registered accounts \
         (`register`: Argon2id on the server), `presence: \"friends\"`, protocol version {}.{}\n",
        fmt_rate(n as f64),
        shared.version(),
        if cfg.quick || n < 10_000 {
            format!(
                " Fewer than 10,000 sessions (`--tls-clients {n}`): every account costs one Argon2id \
                 hash to register and one to log in, on the same 2 cores as the bench."
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "| phase | result | server CPU | bench CPU |\n|---|---|---:|---:|"
    );
    let _ = writeln!(
        o,
        "| register (TLS + hello + `register`, one connection each) | {} | {} | {} |",
        registered.summary("accounts"),
        fmt_pct(register_cpu.server),
        fmt_pct(register_cpu.bench)
    );
    let _ = writeln!(
        o,
        "| login ramp (TLS + hello + `login`) | {} | {} | {} |",
        logged_line,
        fmt_pct(login_cpu.server),
        fmt_pct(login_cpu.bench)
    );
    if clients.len() >= 2 && server.alive() {
        let rate = cfg.tls_rate;
        let cpu = CpuMark::now(server.pid);
        let t0 = std::time::Instant::now();
        let (sent, _) = crate::run_paced(&clients, 1, rate, cfg.duration, crate::Rng::new(7)).await;
        let window = t0.elapsed().as_secs_f64();
        let st = &shared.steps[1];
        let during = st.delivered.load(Relaxed);
        let cpu = cpu.usage();
        let (drained, _) = crate::drain(&shared, 1, sent, cfg.drain).await;
        let _ = writeln!(
            o,
            "| {}/s offered for {:.0} s | sent {}, delivered {:.0}/s during the step, {} after drain{}; delivery p50 / p99 / max {} ms; accepted p50 / p99 {} ms; slow_down {} | {} | {} |",
            fmt_rate(rate as f64),
            cfg.duration.as_secs_f64(),
            fmt_rate(sent as f64),
            during as f64 / window.max(1e-9),
            fmt_rate(st.delivered.load(Relaxed) as f64),
            if drained { "" } else { " (**not drained**)" },
            fmt_lat(&st.delivery.snapshot(), &[0.5, 0.99, 1.0]),
            fmt_lat(&st.accepted.snapshot(), &[0.5, 0.99]),
            st.slow_downs.load(Relaxed),
            fmt_pct(cpu.server),
            fmt_pct(cpu.bench)
        );
    } else {
        let _ = writeln!(
            o,
            "| rate step | not run: {} sessions, server alive: {} | | |",
            clients.len(),
            server.alive()
        );
    }
    let stop = stop_natter(&mut server, &shared, Duration::from_secs(30), &clients);
    let _ = writeln!(o, "\n{}\n", errors_and_stop(&shared, &stop));
    Ok(o)
}
