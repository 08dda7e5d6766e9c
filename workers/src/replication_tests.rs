//! Health-aware replication: copies on a backend whose breaker stayed open
//! too long do not count, fresh or stale reports change nothing.

use std::time::Duration;

use strata_core::BreakerState;

use super::ReplicationJob;
use crate::testkit::{CpKit, cp_kit, enc};
use crate::{Job, Outcome};

fn job(k: &CpKit) -> ReplicationJob {
    let mut j = ReplicationJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        2,
        Duration::from_secs(1),
    );
    j.unhealthy_after = Duration::from_secs(30);
    j.health_window = Duration::from_secs(60);
    j
}

fn now_ms() -> i64 {
    (crate::system_clock())()
}

async fn report(k: &CpKit, backend: &str, state: BreakerState, at: i64) {
    let states = [(backend.to_owned(), state)];
    k.store.record_backend_health("dp-1", &states, at).await.unwrap();
}

fn holders(rec: &strata_core::ObjectRecord) -> Vec<String> {
    std::iter::once(&rec.segments)
        .chain(&rec.copies)
        .map(|c| c[0].backend_id.clone())
        .collect()
}

#[tokio::test]
async fn a_copy_on_a_long_unhealthy_backend_is_replaced_elsewhere() {
    let k = cp_kit(3, &enc(false)).await;
    k.put("k", b"hello replication", &["disk-2", "disk-3"], true).await;
    let j = job(&k);
    assert_eq!(j.run_once().await.unwrap(), Outcome::Busy);
    let rec = k.cp.locate("b", "k").await.unwrap();
    let first = holders(&rec);
    assert_eq!(first.len(), 2, "factor 2 reached");
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);

    // Open for a moment only: the copy still counts.
    let sick = first[1].clone();
    report(&k, &sick, BreakerState::Open, now_ms()).await;
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);

    // Open (then half-open) for longer than `unhealthy_after`, still reported.
    report(&k, &sick, BreakerState::Open, now_ms() - 40_000).await;
    report(&k, &sick, BreakerState::Closed, now_ms() - 40_000).await;
    report(&k, &sick, BreakerState::Open, now_ms() - 40_000).await;
    report(&k, &sick, BreakerState::HalfOpen, now_ms()).await;
    assert_eq!(j.run_once().await.unwrap(), Outcome::Busy);
    let rec = k.cp.locate("b", "k").await.unwrap();
    let now = holders(&rec);
    assert_eq!(now.len(), 3, "a further copy, the unhealthy one kept: {now:?}");
    let healthy: Vec<_> = now.iter().filter(|b| **b != sick).collect();
    assert_eq!(healthy.len(), 2, "two copies on healthy backends");
    for copy in 0..3 {
        assert_eq!(k.read("k", copy).await.unwrap(), b"hello replication");
    }
    assert_eq!(
        j.run_once().await.unwrap(),
        Outcome::Idle,
        "factor met on healthy backends"
    );
}

#[tokio::test]
async fn stale_reports_and_closed_breakers_do_not_make_a_backend_unhealthy() {
    let k = cp_kit(3, &enc(false)).await;
    k.put("k", b"abc", &["disk-2", "disk-3"], true).await;
    let j = job(&k);
    assert_eq!(j.run_once().await.unwrap(), Outcome::Busy);
    // Open long ago, but the reporter has not been heard from for 2 minutes.
    report(&k, "disk-1", BreakerState::Open, now_ms() - 600_000).await;
    report(&k, "disk-1", BreakerState::Open, now_ms() - 120_000).await;
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);
    // Open long ago, then closed now.
    report(&k, "disk-1", BreakerState::Closed, now_ms()).await;
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);
    assert!(k.store.unhealthy_backends(now_ms(), 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_control_plane_records_breaker_state_from_usage_reports() {
    let k = cp_kit(2, &enc(false)).await;
    let report = strata_core::UsageReport {
        reporter: "dp-9".into(),
        backends: vec![strata_core::BackendTraffic {
            backend_id: "disk-2".into(),
            breaker: BreakerState::Open,
            ..Default::default()
        }],
    };
    k.cp.report_usage(report).await.unwrap();
    let got = k
        .store
        .unhealthy_backends(now_ms() + 1, now_ms() - 5_000)
        .await
        .unwrap();
    assert_eq!(got, vec!["disk-2"]);
}

#[tokio::test]
async fn targets_over_their_quota_or_monthly_limit_are_not_used() {
    use strata_core::config::BackendConfig;
    let mut k = cp_kit(4, &enc(false)).await;
    // disk-3 has used up its monthly ingress; disk-4's quota is smaller than the object.
    for c in &mut k.configs {
        if let BackendConfig::Local { id, limits, .. } = c {
            match id.as_str() {
                "disk-3" => limits.ingress_byte_limit = Some(10),
                "disk-4" => limits.quota_bytes = Some(5),
                _ => {}
            }
        }
    }
    k.with_policy(&enc(false));
    let used = strata_core::UsageReport {
        reporter: "dp-1".into(),
        backends: vec![strata_core::BackendTraffic {
            backend_id: "disk-3".into(),
            ingress_bytes: 100,
            ..Default::default()
        }],
    };
    k.cp.report_usage(used).await.unwrap();
    k.put("k", b"twenty bytes of data", &["disk-2", "disk-3", "disk-4"], true)
        .await;
    let mut j = job(&k);
    j.factor = 4;
    assert_eq!(j.run_once().await.unwrap(), Outcome::Busy);
    for _ in 0..3 {
        // The cursor passes the object, then comes back to it: still no room.
        assert_ne!(j.run_once().await.unwrap(), Outcome::Busy, "no room for a third copy");
    }
    let rec = k.cp.locate("b", "k").await.unwrap();
    assert_eq!(holders(&rec), vec!["disk-1", "disk-2"]);
}
