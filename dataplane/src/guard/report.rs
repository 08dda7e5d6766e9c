//! The usage reporter: sends each backend's traffic since the last report
//! (and its breaker state) to the control plane, and keeps the answer as the
//! current view of this month's usage.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_core::{BackendTraffic, ControlPlane, CpResult, MonthlyUsage, UsageReport};

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
        self.report_with(|r| cp.report_usage(r)).await
    }

    async fn report_with<F, Fut>(&self, send: F) -> Result<(), String>
    where
        F: FnOnce(UsageReport) -> Fut,
        Fut: Future<Output = CpResult<Vec<MonthlyUsage>>>,
    {
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
        let answer = send(report).await.map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use strata_backend::{Backend, Backends, ByteStream, LocalDisk};
    use strata_core::CpError;
    use strata_core::config::{BackendConfig, BackendLimits, BreakerConfig};

    use super::*;

    fn body(n: usize) -> ByteStream {
        Box::pin(futures::stream::iter([Ok(Bytes::from(vec![7u8; n]))]))
    }

    #[tokio::test]
    async fn failed_reports_keep_the_traffic_and_sent_traffic_is_not_counted_twice() {
        let dir = std::env::temp_dir().join(format!("strata-guard-{}", rand::random::<u64>()));
        let disk: Arc<dyn Backend> = Arc::new(LocalDisk::open("d".into(), dir.clone()).await.unwrap());
        let backends: Backends = [disk].into_iter().collect();
        let config = BackendConfig::Local {
            encryption: None,
            id: "d".into(),
            path: dir.clone(),
            limits: BackendLimits {
                egress_byte_limit: Some(120),
                ..BackendLimits::default()
            },
        };
        let guard = Guard::new(&backends, &[config], &BreakerConfig::default());
        let b = guard.backends().get("d").cloned().unwrap();
        let key = strata_core::ObjectId::random().to_string();
        b.put(&key, &Default::default(), body(100)).await.unwrap();
        assert!(!guard.near_a_limit());
        let got: Vec<Bytes> = futures::TryStreamExt::try_collect(b.get(&key, 0, 100).await.unwrap())
            .await
            .unwrap();
        assert_eq!(got.concat().len(), 100);
        assert!(guard.near_a_limit(), "100 of 120 egress bytes is above 80 %");
        assert!(!guard.egress_exhausted("d"));

        let failed = guard
            .report_with(|_| async { Err(CpError::Unavailable("down".into())) })
            .await;
        assert!(failed.is_err());
        let sent = std::sync::Mutex::new(Vec::new());
        guard
            .report_with(|r| {
                sent.lock().unwrap().push(r.clone());
                async {
                    Ok(vec![MonthlyUsage {
                        backend_id: "d".into(),
                        egress_bytes: 150,
                        egress_exhausted: true,
                        ..MonthlyUsage::default()
                    }])
                }
            })
            .await
            .unwrap();
        let t = sent.lock().unwrap()[0].backends[0].clone();
        assert_eq!(
            (t.requests, t.ingress_bytes, t.egress_bytes),
            (2, 100, 100),
            "nothing lost"
        );
        assert!(
            guard.egress_exhausted("d"),
            "the control plane's answer is the new view"
        );

        b.head(&strata_core::ObjectId::random().to_string()).await.unwrap_err();
        guard
            .report_with(|r| {
                let t = &r.backends[0];
                assert_eq!(
                    (t.requests, t.ingress_bytes, t.egress_bytes),
                    (1, 0, 0),
                    "sent traffic is gone"
                );
                async { Ok(Vec::new()) }
            })
            .await
            .unwrap();
        assert_eq!(
            guard.state("d"),
            strata_core::BreakerState::Closed,
            "a 404 is no failure"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
