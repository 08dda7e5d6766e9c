//! The workers' Prometheus counters, registered in the default registry.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, Opts};

fn counter(name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid counter");
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

pub(crate) static REWRAP_BLOBS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_rewrap_blobs_total",
        "Data keys re-wrapped under the primary key.",
    )
});

pub(crate) static SCRUB_CHECKED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_scrub_blobs_checked_total",
        "Blobs read in full and verified by the scrubber.",
    )
});

pub(crate) static SCRUB_CORRUPT: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_scrub_corrupt_total",
        "Blobs the scrubber found not to match their digest or seal.",
    )
});

pub(crate) static BACKFILL: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_backfill_blobs_total",
        "Blobs whose missing SHA-256 the scrubber computed and recorded.",
    )
});

pub(crate) static REPAIRS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_repairs_total",
        "Repairs of corrupt blobs by result (repaired, quarantined, failed).",
        &["result"],
    )
});

pub(crate) static REWRITTEN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_rewritten_blobs_total",
        "Copies rewritten by the encrypt-existing and decrypt-existing jobs.",
        &["job"],
    )
});
