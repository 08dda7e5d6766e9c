//! The data plane's guard around every backend call: a circuit breaker per
//! backend and monthly usage counters (requests, ingress, egress), reported
//! to the control plane by [`Guard::run_reporter`].
//!
//! [`Guard::backends`] hands out the guarded backends; the S3 code uses them
//! like any other, so every write, read, HEAD and delete is counted and
//! drives the breaker.

mod redis;
mod report;
mod shared_counters;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus::IntCounter;
use strata_backend::{Backend, Backends};
use strata_core::config::{BackendConfig, BackendLimits, BreakerConfig, RedisConfig};
use strata_core::{BreakerState, MonthlyUsage};
use tokio::sync::Notify;

use crate::metrics;

pub use redis::RedisSync;
use shared_counters::{SharedCounters, SharedHook};
pub use strata_backend::GuardedBackend;
use strata_backend::guarded::{Cell, CellMetrics};

/// One backend: its raw handle, limits and guard state.
struct Slot {
    raw: Arc<dyn Backend>,
    cell: Arc<Cell>,
    limits: BackendLimits,
}

/// Breakers and usage counters of every backend of one data plane.
pub struct Guard {
    slots: Vec<Slot>,
    guarded: Backends,
    /// This month's usage as the control plane last answered a report.
    month: RwLock<HashMap<String, MonthlyUsage>>,
    /// Woken by breaker transitions, for an early report.
    changed: Arc<Notify>,
    reporter: String,
    read_failovers: IntCounter,
    /// Redis shared counters, when `redis:` is configured.
    shared: OnceLock<Arc<SharedCounters>>,
}

impl Guard {
    /// Wraps `backends`; `configs` gives their limits (a backend without a
    /// config entry has none). Its series are `crate::metrics`' `BACKEND_*`.
    pub fn new(backends: &Backends, configs: &[BackendConfig], breaker: &BreakerConfig) -> Guard {
        let changed = Arc::new(Notify::new());
        let open_for = Duration::from_secs(breaker.open_secs);
        let slots: Vec<Slot> = backends
            .all()
            .iter()
            .map(|raw| {
                let id = raw.id().to_owned();
                let l = [id.as_str()];
                let metrics = CellMetrics {
                    requests: metrics::BACKEND_REQUESTS.with_label_values(&l),
                    egress: metrics::BACKEND_EGRESS.with_label_values(&l),
                    ingress: metrics::BACKEND_INGRESS.with_label_values(&l),
                    state: metrics::BACKEND_BREAKER_STATE.with_label_values(&l),
                };
                metrics.state.set(0);
                let cell = Cell::new(
                    id.clone(),
                    breaker.failure_threshold,
                    open_for,
                    metrics,
                    changed.clone(),
                );
                let limits = configs
                    .iter()
                    .find(|c| c.id() == id)
                    .map(|c| c.limits().clone())
                    .unwrap_or_default();
                Slot {
                    raw: raw.clone(),
                    cell: Arc::new(cell),
                    limits,
                }
            })
            .collect();
        let guarded = slots
            .iter()
            .map(|s| Arc::new(GuardedBackend::new(s.raw.clone(), s.cell.clone(), true)) as Arc<dyn Backend>)
            .collect();
        Guard {
            slots,
            guarded,
            month: RwLock::new(HashMap::new()),
            changed,
            reporter: reporter_id(),
            read_failovers: metrics::READ_FAILOVERS.clone(),
            shared: OnceLock::new(),
        }
    }

    /// Counts every backend call against the shared per-month counters in
    /// Redis too (`redis:`), and checks limits against the shared totals.
    /// Returns the sync loop to run; call once.
    pub fn enable_redis(&self, config: &RedisConfig) -> Result<RedisSync, String> {
        let ids = self.slots.iter().map(|s| s.cell.id.clone()).collect();
        let limits = self.slots.iter().map(|s| s.limits.clone()).collect();
        let counters = Arc::new(SharedCounters::new(ids, limits));
        let sync = RedisSync::new(counters.clone(), config, self.reporter.clone())?;
        if self.shared.set(counters.clone()).is_err() {
            return Err("redis shared counters are already enabled".into());
        }
        for (index, s) in self.slots.iter().enumerate() {
            let _ = s.cell.shared.set(Box::new(SharedHook {
                counters: counters.clone(),
                index,
            }));
        }
        Ok(sync)
    }

    /// Counts a read that moved to another copy.
    pub fn read_failover(&self) {
        self.read_failovers.inc();
    }

    /// The guarded backends: an open breaker fails calls fast.
    pub fn backends(&self) -> Backends {
        self.guarded.clone()
    }

    /// A guarded handle that calls the backend even when its breaker is open
    /// (a read's last resort); the outcome still drives the breaker.
    pub fn last_resort(&self, id: &str) -> Option<Arc<dyn Backend>> {
        let s = self.slot(id)?;
        Some(Arc::new(GuardedBackend::new(s.raw.clone(), s.cell.clone(), false)))
    }

    fn slot(&self, id: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.cell.id == id)
    }

    /// The breaker state of backend `id` (closed for an unknown id).
    pub fn state(&self, id: &str) -> BreakerState {
        self.slot(id).map_or(BreakerState::Closed, |s| s.cell.state())
    }

    /// Backends whose breaker is open now, or (with Redis shared counters)
    /// whose monthly request or ingress limit is used up: to exclude from
    /// write plans.
    pub fn open_backends(&self) -> Vec<String> {
        let shared = self.shared.get();
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, s)| s.cell.state() == BreakerState::Open || shared.is_some_and(|c| c.write_exhausted(*i)))
            .map(|(_, s)| s.cell.id.clone())
            .collect()
    }

    /// Whether backend `id` has used up its monthly egress limit, counting
    /// the traffic not yet reported.
    pub fn egress_exhausted(&self, id: &str) -> bool {
        let Some(s) = self.slot(id) else { return false };
        let month = self.month.read().unwrap_or_else(|p| p.into_inner());
        let reported = month.get(id);
        if reported.is_some_and(|m| m.egress_exhausted) {
            return true;
        }
        if let Some(c) = self.shared.get()
            && c.index(id).is_some_and(|i| c.egress_exhausted(i))
        {
            return true;
        }
        let Some(limit) = s.limits.egress_byte_limit else {
            return false;
        };
        let used = reported.map_or(0, |m| m.egress_bytes);
        used.saturating_add(s.cell.egress.load(Ordering::Relaxed)) >= limit
    }

    /// Whether any backend is above 80 % of one of its monthly limits
    /// (reported plus unreported traffic): reports then come every second.
    fn near_a_limit(&self) -> bool {
        let month = self.month.read().unwrap_or_else(|p| p.into_inner());
        self.slots.iter().any(|s| {
            let m = month.get(&s.cell.id);
            let near = |reported: u64, pending: u64, limit: Option<u64>| {
                limit.is_some_and(|l| (reported.saturating_add(pending) as f64) >= 0.8 * l as f64)
            };
            let c = &s.cell;
            near(
                m.map_or(0, |m| m.requests),
                c.requests.load(Ordering::Relaxed),
                s.limits.api_request_limit,
            ) || near(
                m.map_or(0, |m| m.egress_bytes),
                c.egress.load(Ordering::Relaxed),
                s.limits.egress_byte_limit,
            ) || near(
                m.map_or(0, |m| m.ingress_bytes),
                c.ingress.load(Ordering::Relaxed),
                s.limits.ingress_byte_limit,
            )
        })
    }
}

/// `hostname-pid-random`: distinct per process, stable for its lifetime.
fn reporter_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let n: u32 = rand::random();
    format!("{host}-{}-{n:08x}", std::process::id())
}
