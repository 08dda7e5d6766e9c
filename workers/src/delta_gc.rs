//! Frees delta-compression references no object needs any more.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_store::MetaStore;

use crate::{Clock, Job, Outcome, system_clock};

/// Frees deltaspace references that no current object's blob decodes
/// against (`MetaStore::unreferenced_refs`): retired ones whose last delta
/// is gone, and current ones of deltaspaces without deltas. A reference
/// last handed out to a writer within `grace` is kept: that write may still
/// commit a delta against it.
///
/// Freeing drops the reference's row (re-checking in the same transaction
/// that nothing uses it, `MetaStore::drop_ref`), then deletes its object in
/// the hidden bucket `.refs.<bucket>` the normal way, which queues its blob
/// for the cleanup job.
pub struct DeltaGcJob {
    pub store: Arc<dyn MetaStore>,
    /// How long after it was last handed out a reference is kept.
    pub grace: Duration,
    /// References looked at per cycle.
    pub batch: u32,
    /// Pause between cycles when nothing is left to free.
    pub period: Duration,
    pub clock: Clock,
}

impl DeltaGcJob {
    /// A job with the defaults: a grace of 1 hour (like the reaper's
    /// minimum intent age: the longest single PUT), 100 per cycle, every
    /// 5 minutes, on the system clock.
    pub fn new(store: Arc<dyn MetaStore>) -> DeltaGcJob {
        DeltaGcJob {
            store,
            grace: Duration::from_secs(3600),
            batch: 100,
            period: Duration::from_secs(300),
            clock: system_clock(),
        }
    }
}

#[async_trait]
impl Job for DeltaGcJob {
    fn name(&self) -> &'static str {
        "delta-gc"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let grace_ms = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        let older_than = (self.clock)().saturating_sub(grace_ms);
        let refs = (self.store)
            .unreferenced_refs(older_than, self.batch)
            .await
            .map_err(|e| format!("list unreferenced delta references: {e}"))?;
        let mut freed = 0u64;
        for r in &refs {
            let dropped = (self.store)
                .drop_ref(&r.ref_id, older_than)
                .await
                .map_err(|e| format!("drop delta reference {}: {e}", r.ref_id))?;
            if !dropped {
                continue; // used again meanwhile
            }
            let queued = (self.store)
                .delete_object(&r.ref_bucket, &r.ref_key)
                .await
                .map_err(|e| format!("delete delta reference object {}/{}: {e}", r.ref_bucket, r.ref_key))?;
            freed += 1;
            tracing::info!(job = "delta-gc", ref_id = %r.ref_id, space = %r.space, blobs = queued.len(), "freed a delta reference");
        }
        if freed > 0 {
            tracing::debug!(job = "delta-gc", freed, "delta references freed");
        }
        Ok(if refs.len() as u64 >= u64::from(self.batch) {
            Outcome::Busy
        } else {
            Outcome::Idle
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strata_core::config::DeltaConfig;
    use strata_core::{Admin, Catalog, Commit, CpError, DeltaDecision, Encoding, ObjectMeta, Segment, WritePlan};

    use super::DeltaGcJob;
    use crate::testkit::{cp_kit, enc};
    use crate::{Job, Outcome};

    fn meta(size: u64) -> ObjectMeta {
        ObjectMeta {
            size,
            etag: "e".into(),
            ..ObjectMeta::default()
        }
    }

    fn seg(plan: &WritePlan, length: u64, encoding: Encoding) -> Segment {
        Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length,
            encoding: Some(encoding),
            ..Default::default()
        }
    }

    fn decision(kind: &str, ref_id: &str, stored: u64) -> DeltaDecision {
        DeltaDecision {
            decision: kind.into(),
            reason: "test".into(),
            ref_id: Some(ref_id.into()),
            logical_bytes: 1000,
            stored_bytes: stored,
        }
    }

    #[tokio::test]
    async fn references_are_planned_used_and_freed_with_their_last_delta() {
        let kit = cp_kit(1, &enc(false)).await;
        let config = DeltaConfig {
            enabled: true,
            min_size: 0,
            ..DeltaConfig::default()
        };
        let cp = strata_controlplane::ControlPlaneService::new(
            kit.store.clone(),
            strata_controlplane::Identity::new(&[], kit.store.clone()),
            &kit.configs,
            Default::default(),
        )
        .with_delta(config);

        // First write of the deltaspace: no reference yet; it makes one.
        let p1 = cp.plan_write("b", "x/v1", Some(1000), &[]).await.unwrap();
        let dp = p1.delta.clone().expect("delta is on");
        assert_eq!(dp.space, "b/x/");
        assert_eq!(dp.reference, None);
        assert_eq!(dp.max_delta_permille, 750);
        let pr = cp.plan_reference("b", &dp.space, Some(1000)).await.unwrap();
        let sha = "ab".repeat(32);
        let dref = cp
            .commit_reference(
                &pr,
                &dp.space,
                &sha,
                seg(&pr, 1000, Encoding::Zstd { encoded_len: 400 }),
            )
            .await
            .unwrap();
        assert_eq!(dref.ref_id, pr.object_id);
        assert_eq!((dref.size, dref.sha256.as_str()), (1000, sha.as_str()));
        let identity = Encoding::Delta {
            encoded_len: 10,
            ref_id: dref.ref_id.clone(),
        };
        cp.record_delta(&p1, decision("reference", &dref.ref_id, 10))
            .await
            .unwrap();
        cp.commit_write(
            &p1,
            Commit::new("b", "x/v1", meta(1000), vec![seg(&p1, 1000, identity.clone())]),
        )
        .await
        .unwrap();

        // The next write gets the reference and stores a delta.
        let p2 = cp.plan_write("b", "x/v2", Some(1000), &[]).await.unwrap();
        assert_eq!(p2.delta.as_ref().unwrap().reference.as_ref(), Some(&dref));
        let delta = Encoding::Delta {
            encoded_len: 30,
            ref_id: dref.ref_id.clone(),
        };
        cp.record_delta(&p2, decision("delta", &dref.ref_id, 30)).await.unwrap();
        cp.commit_write(
            &p2,
            Commit::new("b", "x/v2", meta(1000), vec![seg(&p2, 1000, delta.clone())]),
        )
        .await
        .unwrap();
        // Other buckets' keys and media are not planned for delta.
        let p3 = cp.plan_write("b", "x/v3.gz", Some(1000), &[]).await.unwrap();
        assert_eq!(p3.delta, None);
        cp.abort_write(&p3.intent_id).await.unwrap();

        // Reads see the encodings; the reference is located by id.
        assert_eq!(cp.locate("b", "x/v2").await.unwrap().segments[0].encoding, Some(delta));
        let rec = cp.locate_reference(&dref.ref_id).await.unwrap();
        assert_eq!(rec.segments[0].encoding, Some(Encoding::Zstd { encoded_len: 400 }));
        assert_eq!(rec.segments[0].sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(rec.bucket, ".refs.b");
        let names: Vec<String> = cp.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
        assert_eq!(names, vec!["b"]);

        let report = cp.delta_report().await.unwrap();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].logical_bytes, 2000);
        assert_eq!(report[0].stored_bytes, 10 + 30 + 400);
        assert_eq!(report[0].references, 1);
        let rendered = prometheus::TextEncoder::new()
            .encode_to_string(&prometheus::default_registry().gather())
            .unwrap();
        assert!(rendered.contains("strata_delta_decisions_total{decision=\"delta\"}"));
        assert!(rendered.contains("strata_delta_bytes_saved{bucket=\"b\"} 1560"));

        // The job: nothing to free while objects use the reference.
        let later = strata_controlplane::now_ms() + 2 * 3_600_000;
        let job = DeltaGcJob {
            clock: Arc::new(move || later),
            ..DeltaGcJob::new(kit.store.clone())
        };
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert!(kit.store.get_delta_ref(&dref.ref_id).await.unwrap().is_some());
        cp.delete_object("b", "x/v1").await.unwrap();
        job.run_once().await.unwrap();
        assert!(kit.store.get_delta_ref(&dref.ref_id).await.unwrap().is_some());

        // Once the last delta is gone, the reference is freed and its blob queued.
        cp.delete_object("b", "x/v2").await.unwrap();
        // Within the grace period it is kept.
        let early = DeltaGcJob::new(kit.store.clone());
        early.run_once().await.unwrap();
        assert!(kit.store.get_delta_ref(&dref.ref_id).await.unwrap().is_some());
        job.run_once().await.unwrap();
        assert_eq!(kit.store.get_delta_ref(&dref.ref_id).await.unwrap(), None);
        assert!(matches!(
            kit.store.get_object(&rec.bucket, &rec.key).await,
            Err(CpError::NoSuchKey)
        ));
        let queued: Vec<String> = (kit.store.pending_cleanup(100).await.unwrap().into_iter())
            .map(|c| c.backend_key)
            .collect();
        assert!(queued.contains(&pr.backend_key), "{queued:?}");
        assert!(matches!(
            cp.locate_reference(&dref.ref_id).await,
            Err(CpError::NoSuchKey)
        ));
        // The space starts over with a new reference.
        let p4 = cp.plan_write("b", "x/v4", Some(1000), &[]).await.unwrap();
        assert_eq!(p4.delta.unwrap().reference, None);
    }
}
