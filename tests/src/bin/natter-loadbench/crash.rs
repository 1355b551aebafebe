//! The crash run: SIGKILL the server in the middle of a max-throughput step, start it again on
//! the same data directory and ports, let every client resume its session (guests keep their
//! identity across a restart: their grace period starts again at start-up, PROTOCOL §4.7) and
//! resend what was never accepted (same `client_msg_id`), then check by `msg_id` that every
//! accepted message reached its recipient, and that none came again after its receipt (that
//! is, after the server had committed the recipient's ack).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::client::{self, ClientHandle, Dial, Login, Mode, Out, Shared};
use crate::natter_child::{spawn_natter, stop_natter};
use crate::report::fmt_rate;
use crate::{ramp, Config, RAMP_LIMIT};

/// The one step of this run (index 1; 0 is unused).
const STEP: usize = 1;

/// Runs it; returns the report's markdown.
pub async fn run(cfg: &Config, dir: &Path) -> Result<String> {
    let n = cfg.crash_clients;
    let mut server = spawn_natter(cfg, dir, "crash", &["--no-tls"], n)?;
    let port = server.addr.port().to_string();
    let relay_port = server
        .ready_addr("relay")
        .map(|a| a.port().to_string())
        .context("ready file has no relay address")?;
    let dial = Dial::plain(server.addr);
    let shared = Arc::new(Shared::new(Mode::Natter, n, 2, STEP).with_ledger());
    eprintln!("[crash] natter-server pid {}; {n} clients", server.pid);
    let logged = ramp::guest_logins("crash", &shared, n, cfg, |_| &dial).await;
    let clients: Vec<ClientHandle> = logged.done.into_iter().map(|(_, c)| c).collect();
    if clients.len() < 2 {
        anyhow::bail!("only {} clients logged in", clients.len());
    }

    // The max step, with the kill half-way through.
    let step_time = cfg.crash_duration;
    let killer = async {
        tokio::time::sleep(step_time / 2).await;
        // From here on the dropped connections are expected.
        shared.closing.store(true, Relaxed);
        server.kill9();
        Instant::now()
    };
    let (sent, killed_at) = tokio::join!(
        crate::run_max(&shared, &clients, STEP as u8, step_time, cfg.max_inflight),
        killer
    );
    let accepted_before = shared.steps[STEP].accepted_n.load(Relaxed);
    let delivered_before = shared.steps[STEP].delivered.load(Relaxed);
    for c in &clients {
        c.abort();
    }
    drop(clients);
    eprintln!("[crash] killed mid-step: {sent} sent, {accepted_before} accepted, {delivered_before} delivered before the kill");

    // Restart on the same data directory and ports.
    let restart = Instant::now();
    let mut server = spawn_natter(
        cfg,
        dir,
        "crash",
        &["--no-tls", "--port", &port, "--relay-port", &relay_port],
        n,
    )?;
    let restart_secs = restart.elapsed().as_secs_f64();
    shared.closing.store(false, Relaxed);
    let dial = Dial::plain(server.addr);
    let resumed = ramp::run(
        "crash",
        n as u32,
        cfg.connect_concurrency,
        cfg.login_attempts,
        RAMP_LIMIT,
        |i, _| {
            let token = shared.tokens[i as usize]
                .lock()
                .expect("token lock")
                .clone();
            let shared = shared.clone();
            let dial = dial.clone();
            async move {
                let token = token.context("no session before the kill")?;
                client::connect(
                    shared.clone(),
                    &dial,
                    i,
                    Login::Resume {
                        name: shared.name(i),
                        token,
                    },
                )
                .await
            }
        },
    )
    .await;
    let resumed_line = resumed.summary("resumed");
    eprintln!("[crash] {resumed_line}");
    let clients: Vec<ClientHandle> = resumed.done.into_iter().map(|(_, c)| c).collect();
    // What was sent and never accepted goes again, as a client's outbox would.
    let mut resent = 0u64;
    for c in &clients {
        let pending: Vec<(u64, crate::stats::Unaccepted)> = shared.outbox[c.idx as usize]
            .lock()
            .expect("outbox lock")
            .iter()
            .map(|(s, u)| (*s, *u))
            .collect();
        for (seq, u) in pending {
            resent += 1;
            let _ = c.tx.send(Out::Send {
                to: u.to,
                ts: u.ts,
                step: u.step,
                seq: Some(seq),
            });
        }
    }

    // Wait until every accepted message was delivered and every send accepted.
    let deadline = Instant::now() + cfg.drain + Duration::from_secs(10);
    let (mut lost, mut unaccepted);
    loop {
        (lost, unaccepted) = tally(&shared);
        if (lost == 0 && unaccepted == 0) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates would come now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    (lost, unaccepted) = tally(&shared);
    let ledger = shared
        .ledger
        .as_ref()
        .expect("crash run keeps a ledger")
        .lock()
        .expect("ledger lock");
    let accepted = ledger.msgs.values().filter(|e| e.accepted).count();
    let after_receipt: u64 = ledger
        .msgs
        .values()
        .map(|e| u64::from(e.after_receipt))
        .sum();
    let repushed: u64 = ledger
        .msgs
        .values()
        .map(|e| u64::from(e.deliveries.saturating_sub(1)))
        .sum::<u64>()
        .saturating_sub(after_receipt);
    let unknown = ledger
        .msgs
        .values()
        .filter(|e| !e.accepted && e.deliveries > 0)
        .count();
    let dup_accepts = ledger.accepted_duplicates;
    drop(ledger);
    let stop = stop_natter(&mut server, &shared, Duration::from_secs(30), &clients);
    let _ = killed_at;

    let mut o = String::new();
    let _ = writeln!(o, "### kill -9 during the max step\n");
    let _ = writeln!(
        o,
        "{} clients (guest sessions, plain TCP) send as fast as they can ({} in flight each) for \
         {:.0} s; after {:.1} s the server gets SIGKILL. It is started again on the same data \
         directory and ports (ready in {restart_secs:.1} s), every client `resume`s its session \
         and resends the messages that never got `message_accepted` (same `client_msg_id`). Every \
         `msg_id` is tracked: accepted (any `message_accepted`), pushed to its recipient (over \
         all connections), receipted (the sender got the `receipt`: the ack was committed).\n",
        fmt_rate(n as f64),
        cfg.max_inflight,
        step_time.as_secs_f64(),
        step_time.as_secs_f64() / 2.0
    );
    let _ = writeln!(o, "| | result |\n|---|---|");
    let _ = writeln!(
        o,
        "| before the kill | {} sent, {} accepted, {} delivered |",
        fmt_rate(sent as f64),
        fmt_rate(accepted_before as f64),
        fmt_rate(delivered_before as f64)
    );
    let _ = writeln!(o, "| reconnect | {}; {} unaccepted sends resent ({} answered `duplicate: true`: stored before the kill) |", resumed_line, fmt_rate(resent as f64), dup_accepts);
    let _ = writeln!(o, "| accepted messages | {} |", fmt_rate(accepted as f64));
    let _ = writeln!(o, "| **lost** (accepted, never delivered) | **{lost}** |");
    let _ = writeln!(
        o,
        "| **duplicated after ack** (pushed again after its receipt) | **{after_receipt}** |"
    );
    let _ = writeln!(o, "| pushed again before the ack was committed (allowed: unacked messages come again at login) | {repushed} |");
    let _ = writeln!(
        o,
        "| sends never accepted after the restart | {unaccepted} |"
    );
    let _ = writeln!(o, "| delivered but never accepted (the sender's reply died with the server, and no resend matched) | {unknown} |");
    let _ = writeln!(
        o,
        "\nErrors seen by clients after the restart: {}; server stop: {stop}.\n",
        shared.errors_seen()
    );
    Ok(o)
}

/// (accepted messages not delivered yet, sends not accepted yet).
fn tally(shared: &Shared) -> (u64, u64) {
    let lost = shared
        .ledger
        .as_ref()
        .map(|l| {
            l.lock()
                .expect("ledger lock")
                .msgs
                .values()
                .filter(|e| e.accepted && e.deliveries == 0)
                .count() as u64
        })
        .unwrap_or(0);
    let unaccepted = shared
        .outbox
        .iter()
        .map(|o| o.lock().expect("outbox lock").len() as u64)
        .sum();
    (lost, unaccepted)
}
