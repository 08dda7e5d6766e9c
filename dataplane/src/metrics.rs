//! Prometheus metrics of the S3 front. Label values come from fixed sets.

use std::sync::LazyLock;

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use strata_core::ClusterStatus;
use strata_core::metrics::{counter, counter_vec, gauge, gauge_vec, histogram_vec};

// Every series below is a process-wide static in the default registry
// (`strata_core::metrics`); the structs hand out clones of them.

static S3_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_s3_requests_total",
        "S3 requests by operation and HTTP status",
        &["op", "status"],
    )
});
static S3_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "strata_s3_request_duration_seconds",
        "S3 request latency until response headers",
        &["op"],
        &[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ],
    )
});
static S3_BYTES_IN: LazyLock<IntCounter> =
    LazyLock::new(|| counter("strata_s3_bytes_in_total", "Request body bytes declared by clients"));
static S3_BYTES_OUT: LazyLock<IntCounter> =
    LazyLock::new(|| counter("strata_s3_bytes_out_total", "Response body bytes sent to clients"));

/// The S3 front's series, and the `/metrics` rendering.
#[derive(Clone)]
pub struct Metrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: S3_REQUESTS.clone(),
            duration: S3_DURATION.clone(),
            bytes_in: S3_BYTES_IN.clone(),
            bytes_out: S3_BYTES_OUT.clone(),
        }
    }

    /// Everything registered in this process, plus the backend gauges of
    /// `status` when the control plane answered (left out otherwise).
    pub fn render(&self, status: Option<&ClusterStatus>) -> String {
        let mut families = prometheus::default_registry().gather();
        if let Some(s) = status {
            families.extend(status_families(s));
        }
        TextEncoder::new().encode_to_string(&families).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot encode the metrics");
            String::new()
        })
    }
}

/// `strata_integrity_failures_total{backend,kind}`: reads whose stored bytes
/// failed authentication (`kind="decrypt"`) or their recorded SHA-256
/// (`kind="digest"`).
static INTEGRITY_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_integrity_failures_total",
        "Reads whose stored bytes failed authentication or their recorded SHA-256",
        &["backend", "kind"],
    )
});

/// Counts one integrity failure on a read from `backend`; `decrypt` when the
/// AEAD refused the bytes, else a digest mismatch.
pub fn integrity_failure(backend: &str, decrypt: bool) {
    let kind = if decrypt { "decrypt" } else { "digest" };
    INTEGRITY_FAILURES.with_label_values(&[backend, kind]).inc();
}

// --- write failover metrics (owned by the failover/spool code) ---

static WRITE_FAILOVERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_write_failovers_total",
        "Writes moved to another backend after the chosen one failed",
        &["from_backend"],
    )
});
static SPOOL_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "strata_spool_bytes",
        "Bytes of request bodies spooled for failover, in flight",
    )
});

/// Counters of the write-failover path.
#[derive(Clone)]
pub struct FailoverMetrics {
    /// `strata_write_failovers_total{from_backend}`: writes moved off a backend.
    pub failovers: IntCounterVec,
    /// `strata_spool_bytes`: bytes held in spool files right now.
    pub spool_bytes: IntGauge,
}

impl FailoverMetrics {
    /// The process-wide failover series.
    pub fn new() -> FailoverMetrics {
        FailoverMetrics {
            failovers: WRITE_FAILOVERS.clone(),
            spool_bytes: SPOOL_BYTES.clone(),
        }
    }

    /// Series of their own, in no registry: tests that assert exact values.
    #[cfg(test)]
    pub fn unregistered() -> FailoverMetrics {
        FailoverMetrics {
            failovers: IntCounterVec::new(Opts::new("t", "t"), &["from_backend"]).expect("valid metric"),
            spool_bytes: IntGauge::new("t", "t").expect("valid metric"),
        }
    }
}

// --- end of write failover metrics ---

// --- backend guard (breakers, traffic) and Redis shared counters ---

/// `strata_backend_{requests,egress_bytes,ingress_bytes}_total{backend}`.
pub(crate) static BACKEND_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_backend_requests_total",
        "Calls from this data plane to a backend",
        &["backend"],
    )
});
pub(crate) static BACKEND_EGRESS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_backend_egress_bytes_total",
        "Bytes read from a backend",
        &["backend"],
    )
});
pub(crate) static BACKEND_INGRESS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_backend_ingress_bytes_total",
        "Bytes written to a backend",
        &["backend"],
    )
});
/// Values: [`strata_core::BreakerState::gauge_value`].
pub(crate) static BACKEND_BREAKER_STATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_backend_breaker_state",
        "Circuit breaker of a backend in this data plane: 0 closed, 1 half-open, 2 open",
        &["backend"],
    )
});
pub(crate) static READ_FAILOVERS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_read_failovers_total",
        "Object reads that moved to another copy after a backend failed",
    )
});
/// Values: [`strata_core::BreakerState::gauge_value`].
pub(crate) static REDIS_BREAKER_STATE: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "strata_redis_breaker_state",
        "Breaker around Redis shared counters: 0 closed, 1 half-open, 2 open (counting locally)",
    )
});
pub(crate) static REDIS_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_redis_errors_total",
        "Failed or timed-out batches of shared usage counters",
    )
});
pub(crate) static USAGE_RESYNCS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_usage_resync_total",
        "Batches counted locally during a Redis outage (or re-seeding a Redis that lost its data) applied once Redis answered",
    )
});

/// The per-backend gauges and the dead-letter count of one status, built
/// afresh for each scrape (in a registry of their own, so concurrent scrapes
/// never see each other's values and a removed backend leaves no series).
fn status_families(s: &ClusterStatus) -> Vec<prometheus::proto::MetricFamily> {
    let registry = Registry::new();
    let gauge = |name: &str, help: &str| {
        let g = IntGaugeVec::new(Opts::new(name, help), &["backend"]).expect("valid metric");
        registry.register(Box::new(g.clone())).expect("metric registered once");
        g
    };
    let used = gauge(
        "strata_backend_bytes_used",
        "Bytes of current objects and uploaded parts on a backend",
    );
    let orphan = gauge(
        "strata_backend_orphan_bytes",
        "Bytes queued for deletion but still on a backend",
    );
    let reserved = gauge(
        "strata_backend_reserved_bytes",
        "Bytes of writes in progress to a backend",
    );
    let objects = gauge(
        "strata_backend_objects",
        "Blobs (segments and parts) stored on a backend",
    );
    let quota = gauge(
        "strata_backend_quota_bytes",
        "Configured quota of a backend (only when set)",
    );
    // Monthly usage (as reported by the data planes), from the status.
    let month_requests = gauge(
        "strata_backend_month_requests",
        "API requests to a backend this calendar month (UTC), all data planes",
    );
    let month_egress = gauge(
        "strata_backend_month_egress_bytes",
        "Bytes read from a backend this calendar month (UTC), all data planes",
    );
    let month_ingress = gauge(
        "strata_backend_month_ingress_bytes",
        "Bytes written to a backend this calendar month (UTC), all data planes",
    );
    let dead = IntGauge::new(
        "strata_cleanup_dead_letters",
        "Cleanup rows given up on after too many failed deletions",
    )
    .expect("valid metric");
    registry
        .register(Box::new(dead.clone()))
        .expect("metric registered once");
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    for b in &s.backends {
        let l = [b.backend_id.as_str()];
        used.with_label_values(&l).set(int(b.bytes_used));
        orphan.with_label_values(&l).set(int(b.orphan_bytes));
        reserved.with_label_values(&l).set(int(b.reserved_bytes));
        objects.with_label_values(&l).set(int(b.objects));
        if let Some(q) = b.quota_bytes {
            quota.with_label_values(&l).set(int(q));
        }
        month_requests.with_label_values(&l).set(int(b.usage.requests));
        month_egress.with_label_values(&l).set(int(b.usage.egress_bytes));
        month_ingress.with_label_values(&l).set(int(b.usage.ingress_bytes));
    }
    dead.set(int(s.cleanup_dead_letters));
    let labelled = |name: &str, help: &str, label: &str| {
        let g = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
        registry.register(Box::new(g.clone())).expect("metric registered once");
        g
    };
    let by_key = labelled(
        "strata_encryption_blobs",
        "Blobs by the key wrapping their data key (`` = not sealed)",
        "key_id",
    );
    for (key, n) in &s.encryption.blobs_by_key {
        // Customer keys are one series, not one per customer.
        let key = if key.starts_with(strata_core::SSE_C_KEY_PREFIX) {
            "sse-c"
        } else {
            key
        };
        by_key.with_label_values(&[key]).add(int(*n));
    }
    let corrupt = IntGauge::new(
        "strata_integrity_corrupt_blobs",
        "Blobs found corrupt and not yet repaired",
    )
    .expect("valid metric");
    registry
        .register(Box::new(corrupt.clone()))
        .expect("metric registered once");
    corrupt.set(int(s.encryption.corrupt_blobs));
    let job_done = labelled("strata_job_done", "Items a resumable job has handled in its run", "job");
    let job_total = labelled(
        "strata_job_total",
        "Items a resumable job's run covers (0: unknown)",
        "job",
    );
    let job_errors = labelled("strata_job_errors", "Items a resumable job's run failed on", "job");
    for j in &s.jobs {
        job_done.with_label_values(&[j.name.as_str()]).set(int(j.done));
        job_total.with_label_values(&[j.name.as_str()]).set(int(j.total));
        job_errors.with_label_values(&[j.name.as_str()]).set(int(j.errors));
    }
    registry.gather()
}

/// Names the S3 operation of a request from its shape, for metric labels.
pub fn classify(method: &http::Method, path: &str, query: Option<&str>, copy: bool) -> &'static str {
    let q = query.unwrap_or("");
    let has = |k: &str| q.split('&').any(|kv| kv == k || kv.starts_with(&format!("{k}=")));
    let trimmed = path.trim_start_matches('/');
    let depth = match trimmed.split_once('/') {
        _ if trimmed.is_empty() => 0,
        Some((_, k)) if !k.is_empty() => 2,
        _ => 1,
    };
    use http::Method as M;
    match (method, depth) {
        (&M::GET, 0) => "ListBuckets",
        (&M::PUT, 1) => "CreateBucket",
        (&M::HEAD, 1) => "HeadBucket",
        (&M::DELETE, 1) => "DeleteBucket",
        (&M::GET, 1) if has("location") => "GetBucketLocation",
        (&M::GET, 1) if has("uploads") => "ListMultipartUploads",
        (&M::GET, 1) if has("list-type") => "ListObjectsV2",
        (&M::GET, 1) => "ListObjects",
        (&M::POST, 1) if has("delete") => "DeleteObjects",
        (&M::PUT, 2) if has("partNumber") && copy => "UploadPartCopy",
        (&M::PUT, 2) if has("partNumber") => "UploadPart",
        (&M::PUT, 2) if copy => "CopyObject",
        (&M::PUT, 2) => "PutObject",
        (&M::GET, 2) if has("uploadId") => "ListParts",
        (&M::GET, 2) => "GetObject",
        (&M::HEAD, 2) => "HeadObject",
        (&M::POST, 2) if has("uploads") => "CreateMultipartUpload",
        (&M::POST, 2) if has("uploadId") => "CompleteMultipartUpload",
        (&M::DELETE, 2) if has("uploadId") => "AbortMultipartUpload",
        (&M::DELETE, 2) => "DeleteObject",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn renders_backend_gauges() {
        let m = Metrics::new();
        let status = ClusterStatus {
            backends: vec![
                strata_core::BackendStatus {
                    backend_id: "disk-1".into(),
                    bytes_used: 30_000,
                    objects: 3,
                    quota_bytes: Some(100_000),
                    ..Default::default()
                },
                strata_core::BackendStatus {
                    backend_id: "disk-2".into(),
                    ..Default::default()
                },
            ],
            cleanup_dead_letters: 4,
            ..Default::default()
        };
        let text = m.render(Some(&status));
        for line in [
            "strata_backend_bytes_used{backend=\"disk-1\"} 30000",
            "strata_backend_bytes_used{backend=\"disk-2\"} 0",
            "strata_backend_objects{backend=\"disk-1\"} 3",
            "strata_backend_quota_bytes{backend=\"disk-1\"} 100000",
            "strata_cleanup_dead_letters 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("strata_backend_quota_bytes{backend=\"disk-2\"}"));
        let without = m.render(None);
        assert!(without.contains("strata_s3_bytes_in_total") && !without.contains("strata_backend_"));
    }

    #[test]
    fn classifies() {
        assert_eq!(classify(&Method::GET, "/", None, false), "ListBuckets");
        assert_eq!(
            classify(&Method::GET, "/b", Some("list-type=2"), false),
            "ListObjectsV2"
        );
        assert_eq!(
            classify(&Method::PUT, "/b/k/x", Some("partNumber=1&uploadId=u"), false),
            "UploadPart"
        );
        assert_eq!(classify(&Method::PUT, "/b/k", None, true), "CopyObject");
        assert_eq!(classify(&Method::POST, "/b", Some("delete"), false), "DeleteObjects");
        assert_eq!(classify(&Method::PATCH, "/b/k", None, false), "Other");
    }
}
