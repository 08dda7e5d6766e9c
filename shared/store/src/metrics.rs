//! Prometheus metrics of the metadata store. Label values come from fixed
//! sets: `op` is the name of a store method, `outcome` is `ok` or `error`.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::HistogramVec;
use strata_core::{CpResult, metrics};

/// `strata_store_call_seconds{op,outcome}`: the latency of every store call,
/// from its first statement to its commit.
static STORE_CALLS: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "strata_store_call_seconds",
        "Metadata store calls by operation and outcome",
        &["op", "outcome"],
        &[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    )
});

/// Runs one store call and records its latency under `op`.
pub(crate) async fn timed<T>(op: &'static str, call: impl Future<Output = CpResult<T>>) -> CpResult<T> {
    let start = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    STORE_CALLS
        .with_label_values(&[op, outcome])
        .observe(start.elapsed().as_secs_f64());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_counted_by_op_and_outcome() {
        let ok = timed("test_op", async { Ok(1) }).await;
        let err: CpResult<()> = timed("test_op", async { Err(strata_core::CpError::NoSuchBucket) }).await;
        assert!(ok.is_ok() && err.is_err());
        for outcome in ["ok", "error"] {
            let h = STORE_CALLS.with_label_values(&["test_op", outcome]);
            assert_eq!(h.get_sample_count(), 1, "{outcome}");
        }
    }
}
