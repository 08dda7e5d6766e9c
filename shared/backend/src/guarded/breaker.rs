//! One backend's circuit breaker: closed, open after `failure_threshold`
//! consecutive failures, half-open after `open_secs` (one trial request), and
//! closed again on a success. Pure state; the caller supplies the time.

use std::time::{Duration, Instant};

use strata_core::BreakerState;

/// Whether a call may go to the backend now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: call as usual.
    Yes,
    /// Half-open: this call is the one trial request.
    Trial,
    /// Open (or a trial is already out): fail fast.
    No,
}

/// The breaker of one backend.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
    /// When the current half-open trial started; a trial that never reports
    /// (its request was dropped) is replaced after `open_for`.
    trial_at: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            state: BreakerState::Closed,
            failures: 0,
            opened_at: None,
            trial_at: None,
        }
    }

    /// The state now (an open breaker whose wait is over reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match (self.state, self.opened_at) {
            (BreakerState::Open, Some(at)) if now.saturating_duration_since(at) >= self.open_for => {
                BreakerState::HalfOpen
            }
            (s, _) => s,
        }
    }

    /// Decides whether a call may go out; may move open to half-open.
    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.state(now) {
            BreakerState::Closed => Admit::Yes,
            BreakerState::Open => Admit::No,
            BreakerState::HalfOpen => {
                self.state = BreakerState::HalfOpen;
                let stale = self
                    .trial_at
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.open_for);
                if stale {
                    self.trial_at = Some(now);
                    Admit::Trial
                } else {
                    Admit::No
                }
            }
        }
    }

    /// A call succeeded (a 404 counts as success). Returns the new state if it changed.
    pub fn success(&mut self) -> Option<BreakerState> {
        self.failures = 0;
        self.trial_at = None;
        self.opened_at = None;
        let changed = self.state != BreakerState::Closed;
        self.state = BreakerState::Closed;
        changed.then_some(BreakerState::Closed)
    }

    /// A call failed (i/o error, timeout, 5xx). Returns the new state if it changed.
    pub fn failure(&mut self, now: Instant) -> Option<BreakerState> {
        match self.state {
            BreakerState::Closed => {
                self.failures = self.failures.saturating_add(1);
                if self.failures < self.threshold {
                    return None;
                }
            }
            // A failed trial re-opens for another full wait.
            BreakerState::HalfOpen => {}
            // A call that went out anyway (last resort) keeps the wait as is.
            BreakerState::Open => return None,
        }
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.trial_at = None;
        Some(BreakerState::Open)
    }

    /// A call ended in a way that says nothing about the backend (the
    /// client's body failed): a trial slot is freed for another request.
    pub fn neutral(&mut self) {
        self.trial_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers_through_one_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        assert_eq!(b.admit(t0), Admit::Yes);
        assert_eq!(b.failure(t0), None);
        assert_eq!(b.failure(t0), None);
        assert_eq!(b.success(), None, "a success resets the count");
        assert_eq!(b.failure(t0), None);
        assert_eq!(b.failure(t0), None);
        assert_eq!(b.failure(t0), Some(BreakerState::Open));
        assert_eq!(b.admit(t0 + Duration::from_secs(9)), Admit::No);
        assert_eq!(b.state(t0 + Duration::from_secs(9)), BreakerState::Open);

        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert_eq!(b.admit(t1), Admit::Trial);
        assert_eq!(b.admit(t1), Admit::No, "only one trial at a time");
        assert_eq!(b.failure(t1), Some(BreakerState::Open), "a failed trial re-opens");
        assert_eq!(b.admit(t1 + Duration::from_secs(5)), Admit::No);

        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.admit(t2), Admit::Trial);
        assert_eq!(b.success(), Some(BreakerState::Closed));
        assert_eq!(b.admit(t2), Admit::Yes);
    }

    #[test]
    fn lost_and_neutral_trials_free_the_slot() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(2));
        assert_eq!(b.failure(t0), Some(BreakerState::Open));
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(b.admit(t1), Admit::Trial);
        b.neutral();
        assert_eq!(b.admit(t1), Admit::Trial, "a neutral outcome frees the trial");
        assert_eq!(b.admit(t1 + Duration::from_secs(1)), Admit::No);
        assert_eq!(
            b.admit(t1 + Duration::from_secs(2)),
            Admit::Trial,
            "a lost trial expires"
        );
    }

    #[test]
    fn failures_while_open_do_not_extend_the_wait() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(2));
        b.failure(t0);
        assert_eq!(b.failure(t0 + Duration::from_secs(1)), None);
        assert_eq!(b.admit(t0 + Duration::from_secs(2)), Admit::Trial);
    }
}
