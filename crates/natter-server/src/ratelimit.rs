//! Token buckets: per connection and per client IP (seed 004 marks query, register and heartbeat
//! as rate-limited; login attempts are limited too, against password guessing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// One bucket's shape: `burst` tokens, refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Rate {
    /// Bucket size.
    pub burst: f64,
    /// Tokens added per second.
    pub per_sec: f64,
}

impl Rate {
    const fn new(burst: f64, per_sec: f64) -> Self {
        Self { burst, per_sec }
    }
}

/// Every limit the server applies (TOML section `[limits]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Turn every limit off (benchmarks).
    pub enabled: bool,
    /// `query_username` per connection.
    pub query: Rate,
    /// `heartbeat` per connection.
    pub heartbeat: Rate,
    /// login, guest_login, resume and register attempts per connection.
    pub auth_per_conn: Rate,
    /// Every request per connection.
    pub requests: Rate,
    /// login, guest_login and resume per IP.
    pub login_per_ip: Rate,
    /// register per IP.
    pub register_per_ip: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            enabled: true,
            query: Rate::new(20.0, 5.0),
            heartbeat: Rate::new(5.0, 1.0),
            auth_per_conn: Rate::new(10.0, 0.5),
            requests: Rate::new(1000.0, 500.0),
            login_per_ip: Rate::new(60.0, 5.0),
            register_per_ip: Rate::new(20.0, 1.0),
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(self.rate.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.rate.per_sec <= 0.0 {
            Err(Duration::from_secs(3600))
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.rate.per_sec,
            ))
        }
    }

    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate.per_sec >= self.rate.burst
    }
}

/// Which per-IP bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKind {
    /// login, guest_login, resume.
    Login,
    /// register.
    Register,
}

/// Per-IP buckets shared by all connections.
#[derive(Debug, Default)]
pub struct IpLimiter {
    buckets: Mutex<HashMap<(IpAddr, IpKind), Bucket>>,
}

impl IpLimiter {
    /// Takes a token from `ip`'s bucket of `kind`.
    pub fn take(
        &self,
        limits: &Limits,
        ip: IpAddr,
        kind: IpKind,
        now: Instant,
    ) -> Result<(), Duration> {
        if !limits.enabled {
            return Ok(());
        }
        let rate = match kind {
            IpKind::Login => limits.login_per_ip,
            IpKind::Register => limits.register_per_ip,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry((ip, kind))
            .or_insert_with(|| Bucket::new(rate, now))
            .take(now)
    }

    /// Forgets buckets that have refilled, so the map does not grow without bound.
    pub fn sweep(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|_, b| !b.is_full(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Rate::new(3.0, 2.0), t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let wait = b.take(t0).expect_err("burst spent");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(
            b.take(t0 + Duration::from_millis(500)).is_ok(),
            "one token after 0.5 s at 2/s"
        );
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn ip_limiter_is_per_ip_and_sweeps() {
        let limits = Limits {
            login_per_ip: Rate::new(1.0, 1.0),
            ..Limits::default()
        };
        let lim = IpLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(lim.take(&limits, a, IpKind::Login, t0).is_ok());
        assert!(lim.take(&limits, a, IpKind::Login, t0).is_err());
        assert!(lim.take(&limits, b, IpKind::Login, t0).is_ok());
        assert!(lim.take(&limits, a, IpKind::Register, t0).is_ok());
        lim.sweep(t0 + Duration::from_secs(5));
        assert!(lim.buckets.lock().expect("lock").is_empty());
    }

    #[test]
    fn disabled_limits_never_refuse() {
        let limits = Limits {
            enabled: false,
            login_per_ip: Rate::new(0.0, 0.0),
            ..Limits::default()
        };
        let lim = IpLimiter::default();
        let ip: IpAddr = "::1".parse().expect("ip");
        for _ in 0..100 {
            assert!(lim.take(&limits, ip, IpKind::Login, Instant::now()).is_ok());
        }
    }
}
