//! The usage reporter: sends each backend's traffic since the last report
//! (and its breaker state) to the control plane, and keeps the answer as the
//! current view of this month's usage.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_core::{BackendTraffic, ControlPlane, UsageReport};

use super::Guard;

/// The fastest report period, used near a limit.
const FAST: Duration = Duration::from_secs(1);
/// How long shutdown waits for the last report.
const FINAL_TIMEOUT: Duration = Duration::from_secs(5);

impl Guard {
    /// Reports every `flush` (every second near a limit, and at once after a
    /// breaker transition) until `shutdown` resolves, then reports once more.
    pub async fn run_reporter(
        self: Arc<Self>,
        cp: Arc<dyn ControlPlane>,
        flush: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let period = if self.near_a_limit() { FAST.min(flush) } else { flush };
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = self.changed.notified() => {}
                () = &mut shutdown => break,
            }
            if let Err(e) = self.report(cp.as_ref()).await {
                tracing::warn!(error = %e, "usage report failed; the traffic stays counted for the next one");
            }
        }
        match tokio::time::timeout(FINAL_TIMEOUT, self.report(cp.as_ref())).await {
            Ok(Ok(())) => tracing::debug!("final usage report sent"),
            Ok(Err(e)) => tracing::warn!(error = %e, "final usage report failed; its traffic is lost"),
            Err(_) => tracing::warn!("final usage report timed out; its traffic is lost"),
        }
    }

    /// Sends one report. The counters are decreased by what was sent only
    /// when the control plane accepted it, so a failed report loses nothing
    /// and a successful one is never counted twice.
    pub async fn report(&self, cp: &dyn ControlPlane) -> Result<(), String> {
        let backends: Vec<BackendTraffic> = self
            .slots
            .iter()
            .map(|s| BackendTraffic {
                backend_id: s.cell.id.clone(),
                requests: s.cell.requests.load(Ordering::Relaxed),
                egress_bytes: s.cell.egress.load(Ordering::Relaxed),
                ingress_bytes: s.cell.ingress.load(Ordering::Relaxed),
                breaker: s.cell.state(),
            })
            .collect();
        let report = UsageReport {
            reporter: self.reporter.clone(),
            backends: backends.clone(),
        };
        let answer = cp.report_usage(report).await.map_err(|e| e.to_string())?;
        for (slot, sent) in self.slots.iter().zip(&backends) {
            slot.cell.requests.fetch_sub(sent.requests, Ordering::Relaxed);
            slot.cell.egress.fetch_sub(sent.egress_bytes, Ordering::Relaxed);
            slot.cell.ingress.fetch_sub(sent.ingress_bytes, Ordering::Relaxed);
        }
        tracing::debug!(reporter = %self.reporter, backends = answer.len(), "usage reported");
        let mut month = self.month.write().unwrap_or_else(|p| p.into_inner());
        *month = answer.into_iter().map(|m| (m.backend_id.clone(), m)).collect();
        Ok(())
    }
}
