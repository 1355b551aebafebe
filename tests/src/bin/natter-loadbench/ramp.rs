//! Bringing many clients up at once: a bounded number of handshakes in flight, a few attempts
//! per client, one overall time limit, every failure counted.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;

use crate::client::{self, ClientHandle, Dial, Login, Shared};
use crate::stats::username;
use crate::{Config, RAMP_LIMIT};

/// One handshake (connect + hello + login, or a registration) must finish within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a ramp went.
pub struct Ramp<T> {
    /// Client index and what its last attempt returned, for those that succeeded.
    pub done: Vec<(u32, T)>,
    /// Clients that never succeeded.
    pub failures: usize,
    /// Failed attempts, including ones a retry then fixed.
    pub failed_attempts: usize,
    /// Distinct failure messages with their counts, most frequent first.
    pub reasons: Vec<(String, usize)>,
    pub secs: f64,
}

/// Runs `attempt(i, n)` for every client `i` in `0..count` (`n` = attempt number), at most
/// `concurrency` at once, up to `attempts` tries each (with a short growing pause), and no new
/// attempt after `limit`.
pub async fn run<T, F, Fut>(
    label: &str,
    count: u32,
    concurrency: usize,
    attempts: u32,
    limit: Duration,
    attempt: F,
) -> Ramp<T>
where
    F: Fn(u32, u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let finished = AtomicU64::new(0);
    let outcomes: Vec<(u32, Option<T>, Vec<String>)> = futures::stream::iter(0..count)
        .map(|i| {
            let (attempt, finished) = (&attempt, &finished);
            async move {
                let mut failed = Vec::new();
                let mut ok = None;
                for n in 0..attempts.max(1) {
                    if start.elapsed() > limit {
                        failed.push(format!("ramp time limit of {limit:?} reached"));
                        break;
                    }
                    if n > 0 {
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(n))).await;
                    }
                    match tokio::time::timeout(CONNECT_TIMEOUT, attempt(i, n)).await {
                        Ok(Ok(t)) => {
                            ok = Some(t);
                            break;
                        }
                        Ok(Err(e)) => failed.push(format!("{e:#}")),
                        Err(_) => failed.push(format!("not finished within {CONNECT_TIMEOUT:?}")),
                    }
                }
                let f = finished.fetch_add(1, Relaxed) + 1;
                if f % 5000 == 0 {
                    eprintln!(
                        "[{label}]   {f} done ({:.1} s)",
                        start.elapsed().as_secs_f64()
                    );
                }
                (i, ok, failed)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut ramp = Ramp {
        done: Vec::with_capacity(count as usize),
        failures: 0,
        failed_attempts: 0,
        reasons: Vec::new(),
        secs: start.elapsed().as_secs_f64(),
    };
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (i, ok, failed) in outcomes {
        ramp.failed_attempts += failed.len();
        for reason in failed {
            *reasons.entry(reason).or_default() += 1;
        }
        match ok {
            Some(t) => ramp.done.push((i, t)),
            None => ramp.failures += 1,
        }
    }
    ramp.done.sort_by_key(|(i, _)| *i);
    ramp.reasons = reasons.into_iter().collect();
    ramp.reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    ramp
}

/// Logs in clients `0..count` as guests, client `i` dialling `dial(i)`, with the configured
/// concurrency and attempts. A real client retries a failed login with a fresh connection; a
/// failed `guest_login` may hold the first name for the grace period, so a retry uses another.
pub async fn guest_logins<'d>(
    label: &str,
    shared: &Arc<Shared>,
    count: usize,
    cfg: &Config,
    dial: impl Fn(u32) -> &'d Dial,
) -> Ramp<ClientHandle> {
    run(
        label,
        count as u32,
        cfg.connect_concurrency,
        cfg.login_attempts,
        RAMP_LIMIT,
        |i, attempt| {
            client::connect(
                shared.clone(),
                dial(i),
                i,
                Login::Guest {
                    name: username(i, attempt),
                },
            )
        },
    )
    .await
}

impl<T> Ramp<T> {
    /// "N of M in S s (R/s), F never succeeded, A failed attempts (most often …)".
    pub fn summary(&self, what: &str) -> String {
        let n = self.done.len();
        format!(
            "{n} of {} {what} in {:.1} s ({:.0}/s), {} never succeeded, {} failed attempts{}",
            n + self.failures,
            self.secs,
            n as f64 / self.secs.max(1e-9),
            self.failures,
            self.failed_attempts,
            self.reasons
                .first()
                .map(|(r, k)| format!(" (most often {k}× `{r}`)"))
                .unwrap_or_default()
        )
    }
}
