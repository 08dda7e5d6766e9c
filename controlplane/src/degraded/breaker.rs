//! The breaker around the metadata database: closed, open after
//! `failure_threshold` consecutive "unavailable" answers, and closed again by
//! a successful probe. While open, writes fail fast and reads are answered
//! from the cache. Pure state; the caller supplies the time.

use std::time::{Duration, Instant};

/// The states are those of every breaker ([`strata_core::BreakerState`],
/// whose `gauge_value` the `strata_db_breaker_state` gauge shows); half-open
/// means a probe is out.
pub(crate) use strata_core::BreakerState as DbState;

#[derive(Debug)]
pub(crate) struct DbBreaker {
    threshold: u32,
    open_for: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

impl DbBreaker {
    pub fn new(threshold: u32, open_for: Duration) -> DbBreaker {
        DbBreaker {
            threshold: threshold.max(1),
            open_for,
            failures: 0,
            opened_at: None,
            probing: false,
        }
    }

    pub fn state(&self) -> DbState {
        match (self.opened_at, self.probing) {
            (None, _) => DbState::Closed,
            (Some(_), false) => DbState::Open,
            (Some(_), true) => DbState::HalfOpen,
        }
    }

    /// Whether calls may go to the database.
    pub fn closed(&self) -> bool {
        self.opened_at.is_none()
    }

    /// The database answered. Returns true when this closed the breaker.
    pub fn success(&mut self) -> bool {
        self.failures = 0;
        self.probing = false;
        self.opened_at.take().is_some()
    }

    /// The database was unreachable. Returns true when this opened the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        if self.opened_at.is_some() {
            // A failed probe waits another full period.
            if self.probing {
                self.probing = false;
                self.opened_at = Some(now);
            }
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < self.threshold {
            return false;
        }
        self.opened_at = Some(now);
        true
    }

    /// Whether to send a probe now (open for `open_for`, none out yet); if so,
    /// the breaker is half-open until the probe's outcome is recorded.
    pub fn probe_due(&mut self, now: Instant) -> bool {
        match self.opened_at {
            Some(at) if !self.probing && now.saturating_duration_since(at) >= self.open_for => {
                self.probing = true;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_closes_by_a_probe() {
        let t0 = Instant::now();
        let mut b = DbBreaker::new(2, Duration::from_secs(2));
        assert!(!b.failure(t0));
        assert!(!b.success() && b.closed(), "a success resets the count");
        assert!(!b.failure(t0));
        assert!(b.failure(t0), "the second failure in a row opens it");
        assert_eq!(b.state(), DbState::Open);
        assert!(!b.probe_due(t0 + Duration::from_secs(1)), "not before open_for");
        assert!(b.probe_due(t0 + Duration::from_secs(2)));
        assert_eq!(b.state(), DbState::HalfOpen);
        assert!(!b.probe_due(t0 + Duration::from_secs(3)), "one probe at a time");
        assert!(!b.failure(t0 + Duration::from_secs(3)), "a failed probe keeps it open");
        assert_eq!(b.state(), DbState::Open);
        assert!(!b.probe_due(t0 + Duration::from_secs(4)), "and waits a full period");
        assert!(b.probe_due(t0 + Duration::from_secs(5)));
        assert!(b.success(), "a good probe closes it");
        assert_eq!(b.state(), DbState::Closed);
    }
}
