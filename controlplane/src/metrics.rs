//! The control plane's Prometheus series, all in the default registry (see
//! `strata_core::metrics`), served on `control_plane.http_listen` `/metrics`
//! (and on the S3 port's `/metrics` under `--role all`).
//!
//! - `strata_cp_rpc_seconds{method,outcome}`: every gRPC call the control
//!   plane answered, from the request to the response headers. `method` is
//!   one of the `ControlPlane` service's methods (or `other`); `outcome` is
//!   `ok`, `not_found`, `rejected`, `no_capacity`, `unavailable` (this
//!   includes "not the leader" and "database unreachable"),
//!   `unauthenticated` or `internal` (see `strata_proto::timing`). Calls the
//!   data plane makes in-process under `--role all` are not timed here.
//! - leadership: `strata_cp_is_leader`, `strata_cp_term`,
//!   `strata_cp_leader_changes_total`;
//! - degraded mode: `strata_db_breaker_state` (0 closed, 1 half-open,
//!   2 open, as every breaker gauge), `strata_degraded_reads_total`;
//! - delta: `strata_delta_decisions_total{decision}`,
//!   `strata_delta_bytes_saved{bucket}`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};
use strata_core::metrics::{LATENCY_BUCKETS, counter, counter_vec, gauge, gauge_vec, histogram_vec};

static RPC_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "strata_cp_rpc_seconds",
        "Control-plane gRPC calls answered, by method and outcome: time to the response headers",
        &["method", "outcome"],
        LATENCY_BUCKETS,
    )
});

/// Records one answered gRPC call; hand it to `strata_proto::serve_gated`.
/// Both labels come from fixed sets (`strata_proto::timing::{METHODS, OUTCOMES}`).
pub fn observe_rpc(method: &'static str, outcome: &'static str, elapsed: Duration) {
    RPC_SECONDS
        .with_label_values(&[method, outcome])
        .observe(elapsed.as_secs_f64());
}

/// Registers the RPC histogram before the first call, so a scrape shows it.
pub fn register_rpc() {
    LazyLock::force(&RPC_SECONDS);
}

pub(crate) static IS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "strata_cp_is_leader",
        "1 while this control plane holds a valid leader lease, else 0",
    )
});

pub(crate) static TERM: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "strata_cp_term",
        "The leader term this control plane last held or saw (grows at every change of leader)",
    )
});

pub(crate) static LEADER_CHANGES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_cp_leader_changes_total",
        "Times this control plane gained or lost leadership",
    )
});

pub(crate) static DB_BREAKER_STATE: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "strata_db_breaker_state",
        "Breaker around the metadata database: 0 closed, 1 half-open (probe out), 2 open (degraded: cached reads, no writes)",
    )
});

pub(crate) static DEGRADED_READS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "strata_degraded_reads_total",
        "Metadata lookups answered from the cache while the database was unreachable",
    )
});

/// Objects written, by decision (`reference`, `delta`, `passthrough`).
pub(crate) static DELTA_DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_delta_decisions_total",
        "Objects written, by delta compression decision",
        &["decision"],
    )
});

/// Logical minus stored bytes per bucket, as of the last report.
pub(crate) static DELTA_BYTES_SAVED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "strata_delta_bytes_saved",
        "Bytes delta compression saves, per bucket (last report)",
        &["bucket"],
    )
});
