//! [`Cell`]: one backend's circuit breaker and its traffic not yet
//! reported, with its Prometheus series and an optional [`TrafficHook`]
//! (the data plane's Redis shared counters).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use strata_core::BreakerState;
use tokio::sync::Notify;

use super::breaker::{Admit, Breaker};
use crate::BackendError;

/// A kind of traffic a [`TrafficHook`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficKind {
    Requests,
    Egress,
    Ingress,
}

/// Sees every backend call's traffic besides the cell's own counters, and
/// may refuse writes (the data plane's Redis shared counters: a monthly
/// limit used up cluster-wide).
pub trait TrafficHook: Send + Sync {
    /// Counts `n` of `kind` (1 per request, bytes otherwise).
    fn count(&self, kind: TrafficKind, n: u64);
    /// Whether writes must be refused: a monthly request or ingress limit is used up.
    fn write_exhausted(&self) -> bool;
}

/// What one backend call says about the backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Says nothing about the backend (the client's body failed, a bad key).
    Neutral,
}

/// How a backend error counts for the breaker: a 404 is a success, i/o and
/// remote errors (timeouts, 5xx, refused connections) are failures.
pub fn outcome_of(e: &BackendError) -> Outcome {
    match e {
        BackendError::NotFound => Outcome::Success,
        BackendError::Io(_) | BackendError::Remote(_) => Outcome::Failure,
        BackendError::Body(_) | BackendError::InvalidKey | BackendError::Key(_) => Outcome::Neutral,
    }
}

/// Prometheus series of one backend.
pub struct CellMetrics {
    pub requests: IntCounter,
    pub egress: IntCounter,
    pub ingress: IntCounter,
    pub state: IntGauge,
}

/// The breaker and the not yet reported traffic of one backend.
pub struct Cell {
    pub id: String,
    breaker: Mutex<Breaker>,
    /// Traffic since the last successful usage report.
    pub requests: AtomicU64,
    pub egress: AtomicU64,
    pub ingress: AtomicU64,
    metrics: CellMetrics,
    /// Woken on every breaker transition, so the reporter reports early.
    changed: Arc<Notify>,
    /// Redis shared counters, when `redis:` is configured.
    pub shared: OnceLock<Box<dyn TrafficHook>>,
}

impl Cell {
    /// A closed breaker for backend `id`; `changed` is woken on every transition.
    pub fn new(id: String, threshold: u32, open_for: Duration, metrics: CellMetrics, changed: Arc<Notify>) -> Cell {
        Cell {
            id,
            breaker: Mutex::new(Breaker::new(threshold, open_for)),
            requests: AtomicU64::new(0),
            egress: AtomicU64::new(0),
            ingress: AtomicU64::new(0),
            metrics,
            changed,
            shared: OnceLock::new(),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The breaker's state now (and its gauge set to it).
    pub fn state(&self) -> BreakerState {
        let s = self.breaker().state(Instant::now());
        self.metrics.state.set(s.gauge_value());
        s
    }

    pub(super) fn admit(&self) -> Admit {
        let admit = self.breaker().admit(Instant::now());
        if admit == Admit::Trial {
            self.metrics.state.set(BreakerState::HalfOpen.gauge_value());
        }
        admit
    }

    /// Records what a call said about the backend.
    pub fn record(&self, outcome: Outcome) {
        let changed = match outcome {
            Outcome::Success => self.breaker().success(),
            Outcome::Failure => self.breaker().failure(Instant::now()),
            Outcome::Neutral => {
                self.breaker().neutral();
                None
            }
        };
        if let Some(state) = changed {
            match state {
                BreakerState::Open => tracing::warn!(backend = %self.id, "circuit breaker opened"),
                _ => tracing::info!(backend = %self.id, state = state.as_str(), "circuit breaker changed"),
            }
            self.metrics.state.set(state.gauge_value());
            self.changed.notify_one();
        }
    }

    pub(super) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics.requests.inc();
        if let Some(h) = self.shared.get() {
            h.count(TrafficKind::Requests, 1);
        }
    }

    pub(super) fn count_egress(&self, n: u64) {
        self.egress.fetch_add(n, Ordering::Relaxed);
        self.metrics.egress.inc_by(n);
        if let Some(h) = self.shared.get() {
            h.count(TrafficKind::Egress, n);
        }
    }

    pub(super) fn count_ingress(&self, n: u64) {
        self.ingress.fetch_add(n, Ordering::Relaxed);
        self.metrics.ingress.inc_by(n);
        if let Some(h) = self.shared.get() {
            h.count(TrafficKind::Ingress, n);
        }
    }
}
