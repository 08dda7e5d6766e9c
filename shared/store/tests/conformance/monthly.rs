//! Monthly traffic counters: additive per backend, separate per month.

use strata_core::{BackendTraffic, MonthlyUsage};
use strata_store::MetaStore;

fn traffic(id: &str, requests: u64, egress: u64, ingress: u64) -> BackendTraffic {
    BackendTraffic {
        backend_id: id.into(),
        requests,
        egress_bytes: egress,
        ingress_bytes: ingress,
        ..BackendTraffic::default()
    }
}

fn month(id: &str, month: &str, requests: u64, egress: u64, ingress: u64) -> MonthlyUsage {
    MonthlyUsage {
        backend_id: id.into(),
        month: month.into(),
        requests,
        egress_bytes: egress,
        ingress_bytes: ingress,
        ..MonthlyUsage::default()
    }
}

pub async fn monthly_usage_adds_up_per_backend(s: &dyn MetaStore) {
    assert!(s.monthly_usage("2026-11").await.unwrap().is_empty());
    s.add_monthly_usage("2026-11", &[traffic("d2", 1, 0, 10), traffic("d1", 2, 5, 0)])
        .await
        .unwrap();
    for _ in 0..20 {
        s.add_monthly_usage("2026-11", &[traffic("d1", 1, 1, 1)]).await.unwrap();
    }
    // Empty traffic is accepted and changes nothing.
    s.add_monthly_usage("2026-11", &[traffic("d3", 0, 0, 0)]).await.unwrap();
    s.add_monthly_usage("2026-11", &[]).await.unwrap();
    assert_eq!(
        s.monthly_usage("2026-11").await.unwrap(),
        vec![month("d1", "2026-11", 22, 25, 20), month("d2", "2026-11", 1, 0, 10)]
    );
}

pub async fn monthly_usage_starts_from_zero_each_month(s: &dyn MetaStore) {
    s.add_monthly_usage("2026-11", &[traffic("d1", 7, 70, 700)])
        .await
        .unwrap();
    assert!(s.monthly_usage("2026-12").await.unwrap().is_empty());
    s.add_monthly_usage("2026-12", &[traffic("d1", 1, 2, 3)]).await.unwrap();
    assert_eq!(
        s.monthly_usage("2026-12").await.unwrap(),
        vec![month("d1", "2026-12", 1, 2, 3)]
    );
    assert_eq!(
        s.monthly_usage("2026-11").await.unwrap(),
        vec![month("d1", "2026-11", 7, 70, 700)],
        "earlier months are kept"
    );
}
