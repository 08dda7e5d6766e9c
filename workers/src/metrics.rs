//! The workers' Prometheus series, all in the default registry (built with
//! `strata_core::metrics`), served on `workers.http_listen` `/metrics`. One
//! series per job where a job label applies; the other labels are backend ids
//! from the config or small fixed sets.

use std::sync::LazyLock;

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};
use strata_core::metrics::{counter, counter_vec, gauge_vec, register};

// --- the runner, one series per job ---

/// `strata_job_runs_total{job,outcome}`: cycles this process ran, by outcome
/// (busy, idle, throttled, done, error, cancelled).
pub(crate) static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_job_runs_total",
        "Job cycles this process ran, by outcome.",
        &["job", "outcome"],
    )
});

/// `strata_job_last_success_timestamp_seconds{job}`.
pub(crate) static LAST_SUCCESS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register(
        GaugeVec::new(
            Opts::new(
                "strata_job_last_success_timestamp_seconds",
                "Unix time of the job's last successful cycle run by this process.",
            ),
            &["job"],
        )
        .expect("valid metric"),
    )
});

/// `strata_job_consecutive_failures{job}`.
pub(crate) static CONSECUTIVE_FAILURES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_job_consecutive_failures",
        "Failed cycles in a row of the job, as of the last cycle this process ran.",
        &["job"],
    )
});

/// `strata_job_lock_skipped_total{job}`: cycles skipped because another
/// worker held the job's lock.
pub(crate) static LOCK_SKIPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_job_lock_skipped_total",
        "Job cycles skipped because another worker held the job's lock.",
        &["job"],
    )
});

/// Makes every job's series visible (at zero) before its first cycle.
pub(crate) fn touch(job: &str) {
    RUNS.with_label_values(&[job, "idle"]).inc_by(0);
    LOCK_SKIPPED.with_label_values(&[job]).inc_by(0);
    CONSECUTIVE_FAILURES.with_label_values(&[job]).add(0);
}

// --- what the jobs did ---

pub(crate) static MULTIPART_ABORTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_multipart_aborted_total",
        "Stale multipart uploads aborted (their parts queued for cleanup).",
    )
});

pub(crate) static LIFECYCLE_EXPIRED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_lifecycle_expired_total",
        "Objects deleted by lifecycle expiration rules (their bytes queued for cleanup).",
    )
});

pub(crate) static REPLICATION_COPIES_MADE: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_replication_copies_made_total",
        "Copies the replication job wrote and attached to an object.",
    )
});

pub(crate) static REPLICATION_UNHEALTHY_SKIPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_replication_unhealthy_skipped_total",
        "Copies not counted toward the replication factor because their backend's breaker stayed open too long.",
    )
});

pub(crate) static OVERREP_REMOVED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_overreplication_removed_total",
        "Surplus copies removed above replication.factor.",
    )
});

pub(crate) static REBALANCE_MOVES: LazyLock<IntCounter> =
    LazyLock::new(|| counter("strata_rebalance_moves_total", "Copies moved by the rebalance job."));

/// 1 for each backend's current lifecycle state, 0 for the others.
pub(crate) static BACKEND_STATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_backend_state",
        "Lifecycle state of each configured backend (1 = current): active, draining, drained, removed.",
        &["backend", "state"],
    )
});

pub(crate) static DRAIN_REMAINING_OBJECTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_drain_remaining_objects",
        "Objects with a copy still on a draining backend.",
        &["backend"],
    )
});

pub(crate) static DRAIN_REMAINING_BYTES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_drain_remaining_bytes",
        "Segment bytes still on a draining backend.",
        &["backend"],
    )
});

pub(crate) static DELTA_COMPACTED_REFS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_delta_compacted_refs_total",
        "Delta references recompressed into a smaller blob by the delta-compact job.",
    )
});

pub(crate) static DELTA_COMPACTED_DELTAS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_delta_compacted_deltas_total",
        "Delta objects re-encoded into a smaller delta by the delta-compact job.",
    )
});

pub(crate) static DELTA_COMPACT_SAVED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_delta_compact_bytes_saved_total",
        "Encoded bytes saved by recompressing delta references and re-encoding deltas.",
    )
});

// --- the reconciler, by backend ---

pub(crate) static RECONCILE_SCANNED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_scanned_total",
        "Blobs listed on a backend and merged against the catalog by the reconciler.",
        &["backend"],
    )
});
pub(crate) static RECONCILE_ORPHANS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_orphans_total",
        "Blobs found on a backend that no catalog row names, queued for cleanup.",
        &["backend"],
    )
});
pub(crate) static RECONCILE_MISSING: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_missing_total",
        "Blobs the catalog names as object segments or parts that are absent from their backend.",
        &["backend"],
    )
});
pub(crate) static RECONCILE_LOST: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_lost_total",
        "Missing blobs that were an object's last copy (quarantined; the object reads as an error).",
        &["backend"],
    )
});

// --- integrity, encryption ---

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
