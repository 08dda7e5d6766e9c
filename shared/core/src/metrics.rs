//! The one way Strata registers Prometheus metrics (docs/style.md, "Metrics"):
//! each crate declares its series as `LazyLock` statics in its `metrics.rs`,
//! built with these helpers, which register them in the process-wide default
//! registry. Every role's `/metrics` renders that registry, so a series shows
//! up wherever its code runs, `--role all` included.
//!
//! ```ignore
//! static MOVES: LazyLock<IntCounter> =
//!     LazyLock::new(|| metrics::counter("strata_rebalance_moves_total", "Objects moved"));
//! ```
//!
//! Label values must come from fixed sets (an operation, an outcome class, a
//! backend id from the config), never from user input such as keys.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Latency buckets, in seconds, for calls between the planes and to the
/// database: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Registers `c` in the default registry and returns it. When an identical
/// series is already registered (the one delta series both planes define, under
/// `--role all`), the second definition counts unseen; a different series under
/// the same name is a bug, and is logged as a warning.
pub fn register<C: Collector + Clone + 'static>(c: C) -> C {
    match prometheus::default_registry().register(Box::new(c.clone())) {
        Ok(()) => {}
        Err(prometheus::Error::AlreadyReg) => tracing::debug!("metric already registered in this process"),
        Err(e) => tracing::warn!(error = %e, "metric not registered"),
    }
    c
}

/// A registered counter without labels.
pub fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("valid metric"))
}

/// A registered counter with `labels`.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

/// A registered gauge without labels.
pub fn gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::new(name, help).expect("valid metric"))
}

/// A registered gauge with `labels`.
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

/// A registered histogram with `labels` and `buckets` (seconds).
pub fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    register(HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("valid metric"))
}

/// The default registry in the Prometheus text format (what `/metrics` serves).
pub fn render() -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&prometheus::default_registry().gather())
        .unwrap_or_else(|e| format!("# metrics encoding failed: {e}\n"))
}
