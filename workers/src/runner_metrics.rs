//! The runner's Prometheus metrics (default registry), one series per job.

use std::sync::LazyLock;

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

/// `strata_job_runs_total{job,outcome}`: cycles this process ran, by outcome
/// (busy, idle, throttled, done, error, cancelled).
pub(crate) static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("strata_job_runs_total", "Job cycles this process ran, by outcome."),
            &["job", "outcome"],
        )
        .expect("valid metric"),
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
    register(
        IntGaugeVec::new(
            Opts::new(
                "strata_job_consecutive_failures",
                "Failed cycles in a row of the job, as of the last cycle this process ran.",
            ),
            &["job"],
        )
        .expect("valid metric"),
    )
});

/// `strata_job_lock_skipped_total{job}`: cycles skipped because another
/// worker held the job's lock.
pub(crate) static LOCK_SKIPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "strata_job_lock_skipped_total",
                "Job cycles skipped because another worker held the job's lock.",
            ),
            &["job"],
        )
        .expect("valid metric"),
    )
});

/// Makes every job's series visible (at zero) before its first cycle.
pub(crate) fn touch(job: &str) {
    RUNS.with_label_values(&[job, "idle"]).inc_by(0);
    LOCK_SKIPPED.with_label_values(&[job]).inc_by(0);
    CONSECUTIVE_FAILURES.with_label_values(&[job]).add(0);
}

/// `strata_multipart_aborted_total`: stale multipart uploads aborted.
pub(crate) static MULTIPART_ABORTED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    register(
        prometheus::IntCounter::new(
            "strata_multipart_aborted_total",
            "Stale multipart uploads aborted (their parts queued for cleanup).",
        )
        .expect("valid metric"),
    )
});

/// `strata_lifecycle_expired_total`: objects deleted by lifecycle rules.
pub(crate) static LIFECYCLE_EXPIRED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    register(
        prometheus::IntCounter::new(
            "strata_lifecycle_expired_total",
            "Objects deleted by lifecycle expiration rules (their bytes queued for cleanup).",
        )
        .expect("valid metric"),
    )
});
