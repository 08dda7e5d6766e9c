//! Delta metrics, in the process-wide registry the front renders.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGaugeVec};
use strata_core::metrics::{counter_vec, gauge_vec};

/// The same series (name, help, labels) as the control plane's
/// (`strata_controlplane::metrics`): under `--role all` only the one registered
/// first is exported, so each write counts once; in split mode each plane
/// exports its own count.
static DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_delta_decisions_total",
        "Objects written, by delta compression decision",
        &["decision"],
    )
});

static SAVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_delta_bytes_saved_total",
        "Bytes not stored thanks to delta compression (original minus stored), by bucket",
        &["bucket"],
    )
});

static CACHE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_delta_ref_cache_total",
        "Reference cache lookups: disk or memory hits, misses fetched from a backend",
        &["result"],
    )
});

static CACHE_BYTES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_delta_ref_cache_bytes",
        "Bytes of decoded references cached, by tier",
        &["tier"],
    )
});

pub fn decision(decision: &str, bucket: &str, logical: u64, stored: u64) {
    DECISIONS.with_label_values(&[decision]).inc();
    SAVED
        .with_label_values(&[bucket])
        .inc_by(logical.saturating_sub(stored));
}

/// One reference lookup: served from `disk`, rebuilt from `memory`, or a `miss` (fetched).
pub fn cache(result: &str) {
    CACHE.with_label_values(&[result]).inc();
}

pub fn cache_bytes(disk: u64, memory: u64) {
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    CACHE_BYTES.with_label_values(&["disk"]).set(int(disk));
    CACHE_BYTES.with_label_values(&["memory"]).set(int(memory));
}
