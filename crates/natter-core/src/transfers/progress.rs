//! Throughput as the UI shows it, smoothed so the figure does not jump with every chunk, and
//! reported a few times a second rather than per chunk.

use std::time::Duration;

use tokio::time::Instant;

/// How often a transfer reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// A transfer's smoothed rate and when it last reported.
pub(super) struct Meter {
    last: Instant,
    last_done: u64,
    rate: f64,
}

impl Meter {
    /// Starts measuring with `done` bytes already there.
    pub(super) fn new(done: u64) -> Self {
        Self::starting_at(done, Instant::now())
    }

    fn starting_at(done: u64, now: Instant) -> Self {
        Self {
            last: now,
            last_done: done,
            rate: 0.0,
        }
    }

    /// `Some(rate)` in bytes per second when it is time to report.
    pub(super) fn tick(&mut self, done: u64) -> Option<u64> {
        self.tick_at(done, Instant::now())
    }

    fn tick_at(&mut self, done: u64, now: Instant) -> Option<u64> {
        let elapsed = now.duration_since(self.last);
        if elapsed < PROGRESS_EVERY {
            return None;
        }
        let current = done.saturating_sub(self.last_done) as f64 / elapsed.as_secs_f64();
        self.rate = if self.rate == 0.0 {
            current
        } else {
            0.6 * self.rate + 0.4 * current
        };
        self.last = now;
        self.last_done = done;
        Some(self.rate as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_reported_before_the_interval() {
        let start = Instant::now();
        let mut meter = Meter::starting_at(0, start);
        assert_eq!(
            meter.tick_at(1000, start + Duration::from_millis(100)),
            None
        );
    }

    #[test]
    fn the_first_report_is_the_measured_rate_and_later_ones_are_smoothed() {
        let start = Instant::now();
        let mut meter = Meter::starting_at(0, start);
        let t1 = start + Duration::from_millis(500);
        assert_eq!(meter.tick_at(1000, t1), Some(2000));
        // 4000 bytes/s now: 0.6 × 2000 + 0.4 × 4000.
        let t2 = t1 + Duration::from_millis(500);
        assert_eq!(meter.tick_at(3000, t2), Some(2800));
    }
}
