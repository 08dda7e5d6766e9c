//! The jobs' shared schedule and their cluster-wide locks.

use strata_store::prelude::*;
use strata_store::{CONTROL_CANCELLED, JobSchedule, MetaStore, PgStore};

use crate::pg_cluster;

fn schedule(name: &str, runs: u64) -> JobSchedule {
    JobSchedule {
        name: name.into(),
        state: "idle".into(),
        holder: "worker-a".into(),
        next_run_ms: 2_000 + runs as i64,
        last_run_ms: 1_000,
        last_success_ms: Some(1_500),
        last_error: None,
        consecutive_failures: 0,
        runs,
        errors: 0,
        control: String::new(),
        updated_ms: 1_600,
    }
}

pub async fn job_schedule_round_trip_and_control(s: &dyn MetaStore) {
    assert_eq!(s.get_job_schedule("cleanup").await.unwrap(), None);
    assert!(s.list_job_schedules().await.unwrap().is_empty());
    // A job that never ran cannot be cancelled.
    assert!(!s.set_job_control("cleanup", CONTROL_CANCELLED, 1).await.unwrap());

    let a = schedule("reaper", 1);
    s.put_job_schedule(&a).await.unwrap();
    s.put_job_schedule(&schedule("cleanup", 3)).await.unwrap();
    assert_eq!(s.get_job_schedule("reaper").await.unwrap(), Some(a.clone()));
    let names: Vec<String> = s
        .list_job_schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, ["cleanup", "reaper"]);

    // The operator's control survives the worker's next status write, which
    // never writes it, and is cleared only by another control write.
    assert!(s.set_job_control("reaper", CONTROL_CANCELLED, 1_700).await.unwrap());
    let failing = JobSchedule {
        state: "failing".into(),
        holder: "worker-b".into(),
        last_error: Some("backend down".into()),
        consecutive_failures: 1,
        runs: 2,
        errors: 1,
        updated_ms: 1_800,
        ..a.clone()
    };
    s.put_job_schedule(&failing).await.unwrap();
    let got = s.get_job_schedule("reaper").await.unwrap().unwrap();
    assert_eq!(got.control, CONTROL_CANCELLED);
    assert_eq!(
        (got.state.as_str(), got.holder.as_str(), got.errors, got.runs),
        ("failing", "worker-b", 1, 2)
    );
    assert_eq!(got.last_error.as_deref(), Some("backend down"));
    assert_eq!(got.last_success_ms, Some(1_500));
    assert!(s.set_job_control("reaper", "", 1_900).await.unwrap());
    assert_eq!(s.get_job_schedule("reaper").await.unwrap().unwrap().control, "");
}

pub async fn job_lock_is_granted_and_released(s: &dyn MetaStore) {
    let lock = s
        .try_job_lock("cleanup")
        .await
        .unwrap()
        .expect("a free lock is granted");
    // Another job's lock is independent.
    let other = s.try_job_lock("reaper").await.unwrap().expect("another job's lock");
    lock.release().await.unwrap();
    other.release().await.unwrap();
    let again = s
        .try_job_lock("cleanup")
        .await
        .unwrap()
        .expect("a released lock is free again");
    again.release().await.unwrap();
}

/// Two stores on one database stand for two workers.
async fn two_workers() -> Option<(PgStore, PgStore)> {
    if pg_cluster::skipped() {
        return None;
    }
    let url = pg_cluster::fresh_database().await;
    let a = PgStore::connect(&url, 4).await.expect("open store a");
    let b = PgStore::connect(&url, 4).await.expect("open store b");
    Some((a, b))
}

#[tokio::test]
async fn pg_job_lock_excludes_other_workers_until_released_or_dropped() {
    let Some((a, b)) = two_workers().await else { return };
    let held = a.try_job_lock("cleanup").await.unwrap().expect("a takes the lock");
    assert!(b.try_job_lock("cleanup").await.unwrap().is_none(), "b must skip");
    // The same worker's second task is excluded as well (its own session).
    assert!(a.try_job_lock("cleanup").await.unwrap().is_none());
    // Other jobs are free.
    b.try_job_lock("reaper")
        .await
        .unwrap()
        .expect("other job")
        .release()
        .await
        .unwrap();
    held.release().await.unwrap();
    let held = b.try_job_lock("cleanup").await.unwrap().expect("free after release");
    // A lock dropped unreleased (a cancelled cycle, a crash) ends its session.
    drop(held);
    let mut freed = false;
    for _ in 0..50 {
        if let Some(l) = a.try_job_lock("cleanup").await.unwrap() {
            l.release().await.unwrap();
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(freed, "a dropped lock must be freed");
}
