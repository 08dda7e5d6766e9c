//! [`ControlPlaneService`]: the [`ControlPlane`] implementation over the
//! metadata store, which the gRPC server and `--role all` data plane call.
//! It plans writes (placement, intents, encryption and delta plans), commits
//! them, and answers catalog, multipart, usage and status calls; the
//! statements themselves live in `strata_store`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use strata_core::config::{BackendConfig, PlacementConfig};
use strata_core::{
    BlobKey, BucketInfo, CleanupItem, Commit, CpError, CpResult, Credential, ListPage, ListPartsPage, ListQuery,
    ListUploadsPage, ListUploadsQuery, MonthlyUsage, ObjectId, ObjectMeta, ObjectRecord, PartInfo, Segment, UploadInfo,
    UsageReport, WriteCondition, WritePlan,
};
use strata_store::{BlobState, MetaStore};

use crate::Identity;
use crate::keys::{self, Sealer};
use crate::placement::Placement;
use crate::usage::{BreakerView, DEFAULT_BREAKER_WINDOW, current_month, with_limits};

/// The control plane's answers, backed by a [`MetaStore`]. The data plane
/// calls it directly under `--role all`, and through gRPC otherwise.
pub struct ControlPlaneService {
    pub(crate) store: Arc<dyn MetaStore>,
    identity: Identity,
    /// The backends (configuration order, with their limits) and the policy.
    pub(crate) placement: Placement,
    /// `BackendConfig::kind` of each backend, in the order of `placement.backends()`.
    pub(crate) kinds: Vec<&'static str>,
    /// The data planes' last breaker states, for `status`.
    pub(crate) breakers: BreakerView,
    /// This month's totals as last read, for placement: they change only
    /// when a report arrives (which refreshes them here), so a plan reads
    /// them from the store at most once per `MONTHLY_TTL`.
    monthly: std::sync::Mutex<Option<(std::time::Instant, String, Vec<MonthlyUsage>)>>,
    /// Backends that take no writes (draining, drained, removed) as last
    /// read from the store, trusted for `STATES_TTL`.
    inactive: std::sync::Mutex<Option<(std::time::Instant, Inactive)>>,
    /// Encryption policy and master keys.
    sealer: Arc<Sealer>,
    /// Signs and checks purge confirmation tokens (`cluster.secret`); purge
    /// is refused without it.
    pub(crate) purge_secret: Option<String>,
    /// Delta compression policy (see `crate::delta`).
    delta: Arc<strata_core::config::DeltaConfig>,
    /// The leader term plans are stamped with (`None`: always term 1, the
    /// single SQLite process). See `crate::leader`.
    fence: Option<strata_store::WriteFence>,
}

/// How long placement trusts cached monthly totals (reports from other
/// control-plane instances become visible within this time).
const MONTHLY_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long placement trusts the cached backend states (a drain started by
/// another process or the CLI takes effect within this time).
const STATES_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Backends out of writes, with their state (`draining`, `drained`, `removed`).
type Inactive = Vec<(String, &'static str)>;

impl ControlPlaneService {
    /// `backends` in configuration order (`Config::effective_backends`).
    pub fn new(
        store: Arc<dyn MetaStore>,
        identity: Identity,
        backends: &[BackendConfig],
        placement: PlacementConfig,
    ) -> Self {
        ControlPlaneService {
            store,
            identity,
            placement: Placement::new(backends, placement),
            kinds: backends.iter().map(BackendConfig::kind).collect(),
            breakers: BreakerView::new(DEFAULT_BREAKER_WINDOW),
            monthly: std::sync::Mutex::new(None),
            inactive: std::sync::Mutex::new(None),
            sealer: Arc::new(Sealer::disabled()),
            purge_secret: None,
            delta: Arc::default(),
            fence: None,
        }
    }

    /// Plans writes with delta compression as `config` says (default: off).
    pub fn with_delta(mut self, config: strata_core::config::DeltaConfig) -> Self {
        crate::delta::register_metrics();
        self.delta = Arc::new(config);
        self
    }

    /// Leads under `fence` (see `crate::leader`): plans carry its term, and
    /// every write transaction of the store fails once the lease has moved
    /// on to a newer term. `store` must be fenced by the same `fence`.
    pub fn with_fence(mut self, store: Arc<dyn MetaStore>, fence: strata_store::WriteFence) -> Self {
        self.store = store;
        self.fence = Some(fence);
        self
    }

    /// The term plans are stamped with.
    fn term(&self) -> u64 {
        self.fence.as_ref().map_or(1, |f| f.term().max(0) as u64)
    }

    /// Seals new blobs as `sealer`'s policy says, and opens sealed ones.
    pub fn with_sealer(mut self, sealer: Arc<Sealer>) -> Self {
        self.sealer = sealer;
        self
    }

    /// Signs purge confirmation tokens with `secret` (`cluster.secret`).
    pub fn with_purge_secret(mut self, secret: Option<String>) -> Self {
        self.purge_secret = secret;
        self
    }

    pub fn sealer(&self) -> &Arc<Sealer> {
        &self.sealer
    }

    /// Data planes report every `flush_secs`; a breaker state counts for three
    /// report periods, then the backend's breaker shows as `unknown`.
    pub fn with_usage_flush_secs(mut self, flush_secs: u64) -> Self {
        self.breakers = BreakerView::new(std::time::Duration::from_secs(flush_secs.max(1) * 3));
        self
    }

    /// This month's traffic of every configured backend, with exhaustion flags.
    pub(crate) async fn month_usage(&self) -> CpResult<Vec<MonthlyUsage>> {
        let month = current_month();
        let totals = self.store.monthly_usage(&month).await?;
        Ok(with_limits(&month, &totals, self.placement.backends()))
    }

    /// This month's totals, from the cache when fresh.
    async fn monthly_totals(&self) -> CpResult<Vec<MonthlyUsage>> {
        let month = current_month();
        if let Some((at, m, totals)) = &*self.monthly.lock().expect("monthly cache")
            && *m == month
            && at.elapsed() < MONTHLY_TTL
        {
            return Ok(totals.clone());
        }
        let totals = self.store.monthly_usage(&month).await?;
        *self.monthly.lock().expect("monthly cache") = Some((std::time::Instant::now(), month, totals.clone()));
        Ok(totals)
    }

    /// The backends whose persisted state keeps them out of writes (see
    /// `strata backends`), from the cache when fresh: several control planes
    /// agree within `STATES_TTL` of a change.
    pub async fn inactive_backends(&self) -> CpResult<Vec<(String, &'static str)>> {
        if let Some((at, list)) = &*self.inactive.lock().expect("states cache")
            && at.elapsed() < STATES_TTL
        {
            return Ok(list.clone());
        }
        let list: Vec<(String, &'static str)> = (self.store.backend_states().await?.into_iter())
            .filter(|s| !s.state.takes_writes())
            .map(|s| (s.backend_id, s.state.as_str()))
            .collect();
        *self.inactive.lock().expect("states cache") = Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    pub fn store(&self) -> &Arc<dyn MetaStore> {
        &self.store
    }

    /// Chooses the backend for a new object of `bucket`, from the usage
    /// counters as they are now (one small query per plan).
    async fn place(&self, bucket: &str, size_hint: Option<u64>, exclude: &[String]) -> CpResult<String> {
        let usage = self.store.backend_usage().await?;
        let monthly = self.monthly_totals().await?;
        let inactive = self.inactive_backends().await?;
        let chosen = (self.placement).choose_active(bucket, size_hint, &usage, &monthly, exclude, &inactive);
        if let Err(CpError::NoCapacity(why)) = &chosen {
            tracing::warn!(bucket, ?size_hint, reason = %why, "no backend has capacity");
        }
        chosen.map(str::to_owned)
    }

    async fn new_plan(
        &self,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        self.new_plan_as(bucket, key, size_hint, exclude, None).await
    }

    /// [`Self::new_plan`] with a given object id (a delta reference's id).
    /// Blobs of a hidden `.refs.<bucket>` are placed as `<bucket>`'s.
    async fn new_plan_as(
        &self,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        exclude: &[String],
        object_id: Option<&str>,
    ) -> CpResult<WritePlan> {
        let placed_as = strata_store::user_bucket_of(bucket).unwrap_or(bucket);
        // The choice reads the counters without a lock; the reservation
        // re-checks the quota in the same transaction that records the
        // intent. A backend that filled up in between is excluded and the
        // choice made again.
        let mut exclude = exclude.to_vec();
        loop {
            let backend_id = self.place(placed_as, size_hint, &exclude).await?;
            let quota = self.placement.quota_of(&backend_id);
            let object_id = object_id.map_or_else(|| ObjectId::random().to_string(), str::to_owned);
            let plan = WritePlan {
                intent_id: ObjectId::random().to_string(),
                backend_key: object_id.clone(),
                object_id,
                backend_id,
                term: self.term(),
                ..Default::default()
            };
            if (self.store)
                .reserve_intent(&plan, bucket, key, size_hint, now_ms(), quota)
                .await?
            {
                let mut plan = plan;
                if let Err(e) = self.sealer.seal_plan(&*self.store, bucket, &mut plan, now_ms()).await {
                    let _ = self.store.delete_intent(&plan.intent_id).await;
                    return Err(e);
                }
                return Ok(plan);
            }
            tracing::debug!(backend = %plan.backend_id, "backend filled up while planning; choosing again");
            exclude.push(plan.backend_id);
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl strata_core::Catalog for ControlPlaneService {
    async fn create_bucket(&self, bucket: &str, owner: &str) -> CpResult<()> {
        self.store.create_bucket(bucket, owner, now_ms()).await
    }

    async fn delete_bucket(&self, bucket: &str) -> CpResult<()> {
        self.store.delete_bucket(bucket).await
    }

    async fn head_bucket(&self, bucket: &str) -> CpResult<BucketInfo> {
        self.store.get_bucket(bucket).await
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        self.store.list_buckets().await
    }

    async fn plan_write(
        &self,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        // The reservation checks the bucket in its transaction; a missing
        // bucket wins over a full cluster.
        let mut plan = match self.new_plan(bucket, key, size_hint, exclude).await {
            Err(CpError::NoCapacity(why)) => {
                self.store.get_bucket(bucket).await?;
                return Err(CpError::NoCapacity(why));
            }
            other => other?,
        };
        match crate::delta::plan_for(&*self.store, &self.delta, bucket, key, size_hint, now_ms()).await {
            Ok(delta) => plan.delta = delta,
            // Delta compression is an optimisation: the write goes on without it.
            Err(e) => tracing::warn!(error = %e, bucket, "no delta plan"),
        }
        Ok(plan)
    }

    async fn commit_write(&self, plan: &WritePlan, commit: Commit) -> CpResult<Vec<CleanupItem>> {
        let Commit {
            bucket,
            key,
            mut meta,
            segments,
            copies,
            condition,
        } = commit;
        if !copies.is_empty() && (plan.delta.is_some() || copies.iter().any(|(p, _)| p.delta.is_some())) {
            return Err(CpError::InvalidArgument(
                "delta-encoded writes are stored as one copy".into(),
            ));
        }
        meta.last_modified_unix_ms = now_ms();
        let intents: Vec<String> = std::iter::once(plan.intent_id.clone())
            .chain(copies.iter().map(|(p, _)| p.intent_id.clone()))
            .collect();
        let record = ObjectRecord {
            bucket,
            key,
            object_id: plan.object_id.clone(),
            meta,
            segments,
            copies: copies.into_iter().map(|(_, s)| s).collect(),
        };
        // Before the commit: once the object is current, its blobs' encoding
        // keeps their delta reference alive.
        crate::delta::record_encodings(&*self.store, &record.segments, now_ms()).await?;
        let obsolete = self.store.commit_replicated(&intents, &record, &condition).await?;
        let all: Vec<Segment> = (record.segments.iter())
            .chain(record.copies.iter().flatten())
            .cloned()
            .collect();
        if let Err(e) = keys::record_digests(&*self.store, &all, now_ms()).await {
            // The object is committed; the backfill job fills the digest in.
            tracing::warn!(error = %e, "could not record a blob digest");
        }
        Ok(obsolete)
    }

    async fn record_blob_key(&self, plan: &WritePlan, key: &BlobKey) -> CpResult<()> {
        keys::record_key(
            &*self.store,
            &plan.backend_id,
            &plan.backend_key,
            &key.stored(),
            now_ms(),
        )
        .await
    }

    async fn plan_reference(&self, bucket: &str, space: &str, size_hint: Option<u64>) -> CpResult<WritePlan> {
        let hidden = crate::delta::prepare_reference(&*self.store, bucket, space, now_ms()).await?;
        let ref_id = ObjectId::random().to_string();
        let key = crate::delta::ref_key(space, &ref_id);
        self.new_plan_as(&hidden, &key, size_hint, &[], Some(&ref_id)).await
    }

    async fn commit_reference(
        &self,
        plan: &WritePlan,
        space: &str,
        sha256: &str,
        segment: Segment,
    ) -> CpResult<strata_core::DeltaRef> {
        crate::delta::commit_reference(&*self.store, plan, space, sha256, segment, now_ms()).await
    }

    async fn locate_reference(&self, ref_id: &str) -> CpResult<ObjectRecord> {
        let mut rec = crate::delta::locate_reference(&*self.store, ref_id).await?;
        self.sealer.attach(&*self.store, &mut rec).await?;
        Ok(rec)
    }

    async fn record_delta(&self, plan: &WritePlan, decision: strata_core::DeltaDecision) -> CpResult<()> {
        crate::delta::record_decision(&*self.store, &self.delta, plan, decision, now_ms()).await
    }

    async fn report_corrupt(&self, backend_id: &str, backend_key: &str, reason: &str) -> CpResult<()> {
        tracing::error!(
            backend = backend_id,
            blob = backend_key,
            reason,
            "blob reported corrupt"
        );
        (self.store)
            .mark_blob(backend_id, backend_key, BlobState::Corrupt, now_ms())
            .await
    }

    async fn abort_write(&self, intent_id: &str) -> CpResult<()> {
        self.store.delete_intent(intent_id).await
    }

    async fn locate(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        let mut rec = self.store.get_object(bucket, key).await?;
        self.sealer.attach(&*self.store, &mut rec).await?;
        Ok(rec)
    }

    async fn list_objects(&self, query: ListQuery) -> CpResult<ListPage> {
        self.store.list_objects(&query).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        self.store.get_bucket(bucket).await?;
        self.store.delete_object(bucket, key).await
    }

    async fn ack_cleanup(&self, ids: Vec<i64>) -> CpResult<()> {
        self.store.ack_cleanup(&ids).await
    }

    async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> CpResult<UploadInfo> {
        self.store.get_bucket(bucket).await?;
        let upload = UploadInfo {
            upload_id: ObjectId::random().to_string(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            meta,
            initiated_unix_ms: now_ms(),
        };
        self.store.create_upload(&upload).await?;
        Ok(upload)
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
        self.store.get_upload(bucket, upload_id).await
    }

    async fn plan_part(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number: u32,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        if !(1..=10_000).contains(&part_number) {
            return Err(CpError::InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive".into(),
            ));
        }
        let upload = self.store.get_upload(bucket, upload_id).await?;
        self.new_plan(bucket, &upload.key, size_hint, exclude).await
    }

    async fn commit_part(
        &self,
        plan: &WritePlan,
        bucket: &str,
        upload_id: &str,
        mut part: PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        part.last_modified_unix_ms = now_ms();
        let obsolete = self
            .store
            .commit_part(&plan.intent_id, bucket, upload_id, &part)
            .await?;
        if let Err(e) = keys::record_digests(&*self.store, std::slice::from_ref(&part.segment), now_ms()).await {
            tracing::warn!(error = %e, "could not record a part digest");
        }
        Ok(obsolete)
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        self.store
            .list_parts(bucket, upload_id, part_number_marker, max_parts)
            .await
    }

    async fn list_uploads(&self, query: ListUploadsQuery) -> CpResult<ListUploadsPage> {
        self.store.get_bucket(&query.bucket).await?;
        self.store.list_uploads(&query).await
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        let object_id = ObjectId::random().to_string();
        let (rec, obsolete) = self
            .store
            .complete_upload(bucket, upload_id, &parts, &object_id, now_ms(), condition)
            .await?;
        if rec.object_id != object_id {
            // A repeated completion: the object was made (and reported) before.
            return Ok((rec, obsolete));
        }
        // Multipart objects keep their parts as they are; where delta
        // compression applies, the decision says so.
        if let Ok(space) = self.delta.policy(bucket, &rec.key, Some(rec.meta.size)) {
            let plan = WritePlan {
                object_id: rec.object_id.clone(),
                delta: Some(strata_core::DeltaPlan {
                    space,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let decision = strata_core::DeltaDecision {
                decision: "passthrough".into(),
                reason: "multipart upload (its parts are stored as they are)".into(),
                ref_id: None,
                logical_bytes: rec.meta.size,
                stored_bytes: rec.meta.size,
            };
            if let Err(e) = crate::delta::record_decision(&*self.store, &self.delta, &plan, decision, now_ms()).await {
                tracing::warn!(error = %e, "could not record the delta decision of a multipart upload");
            }
        }
        Ok((rec, obsolete))
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        self.store.abort_upload(bucket, upload_id).await
    }
}

#[async_trait]
impl strata_core::Identity for ControlPlaneService {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<Credential>> {
        self.identity.get(access_key_id).await
    }
}

#[async_trait]
impl strata_core::Usage for ControlPlaneService {
    async fn report_usage(&self, report: UsageReport) -> CpResult<Vec<MonthlyUsage>> {
        self.breakers.record(&report, std::time::Instant::now());
        // The cluster-wide view for jobs in other processes (replication).
        let health: Vec<(String, strata_core::BreakerState)> = (report.backends.iter())
            .map(|b| (b.backend_id.clone(), b.breaker))
            .collect();
        if let Err(e) = (self.store)
            .record_backend_health(&report.reporter, &health, now_ms())
            .await
        {
            tracing::warn!(error = %e, reporter = %report.reporter, "could not record backend health");
        }
        let month = current_month();
        self.store.add_monthly_usage(&month, &report.backends).await?;
        let totals = self.store.monthly_usage(&month).await?;
        *self.monthly.lock().expect("monthly cache") = Some((std::time::Instant::now(), month.clone(), totals.clone()));
        let view = with_limits(&month, &totals, self.placement.backends());
        for m in view
            .iter()
            .filter(|m| m.requests_exhausted || m.egress_exhausted || m.ingress_exhausted)
        {
            tracing::debug!(
                backend = %m.backend_id,
                month = %m.month,
                requests = m.requests,
                egress = m.egress_bytes,
                ingress = m.ingress_bytes,
                "a monthly limit is used up"
            );
        }
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use strata_core::config::BackendLimits;
    use strata_store::SqliteStore;

    use super::*;
    use strata_core::{Admin, BackendStatus, Catalog, Usage};

    fn local(id: &str, quota: Option<u64>) -> BackendConfig {
        BackendConfig::Local {
            encryption: None,
            id: id.into(),
            path: format!("/nonexistent/{id}").into(),
            limits: BackendLimits {
                quota_bytes: quota,
                max_object_size: Some(1000),
                ..BackendLimits::default()
            },
        }
    }

    #[tokio::test]
    async fn status_reports_usage_and_limits_of_every_configured_backend() {
        let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        let identity = Identity::new(&[], store.clone());
        let backends = [local("disk-1", Some(100)), local("disk-2", None)];
        let cp = ControlPlaneService::new(store, identity, &backends, PlacementConfig::default());

        let empty = cp.status().await.unwrap();
        assert_eq!(empty.cleanup_dead_letters, 0);
        let ids: Vec<_> = empty.backends.iter().map(|b| b.backend_id.as_str()).collect();
        assert_eq!(ids, ["disk-1", "disk-2"], "configured backends appear with zero usage");
        assert!(
            empty
                .backends
                .iter()
                .all(|b| b.bytes_used == 0 && b.eligible_for_writes)
        );

        cp.create_bucket("b", "owner").await.unwrap();
        let plan = cp.plan_write("b", "k", Some(100), &[]).await.unwrap();
        assert_eq!(plan.backend_id, "disk-1");
        let reserved = cp.status().await.unwrap();
        assert_eq!(reserved.backends[0].reserved_bytes, 100);
        let segment = Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length: 100,
            ..Default::default()
        };
        let meta = ObjectMeta {
            size: 100,
            ..ObjectMeta::default()
        };
        cp.commit_write(&plan, Commit::new("b", "k", meta, vec![segment]))
            .await
            .unwrap();

        let status = cp.status().await.unwrap();
        let d1 = &status.backends[0];
        assert_eq!(
            d1,
            &BackendStatus {
                backend_id: "disk-1".into(),
                kind: "local".into(),
                bytes_used: 100,
                orphan_bytes: 0,
                reserved_bytes: 0,
                objects: 1,
                quota_bytes: Some(100),
                max_object_size: Some(1000),
                eligible_for_writes: false,
                usage: MonthlyUsage {
                    backend_id: "disk-1".into(),
                    month: current_month(),
                    ..MonthlyUsage::default()
                },
                breaker: "unknown".into(),
                ..BackendStatus::default()
            }
        );
        let d2 = &status.backends[1];
        assert_eq!((d2.bytes_used, d2.objects, d2.quota_bytes), (0, 0, None));
        assert!(d2.eligible_for_writes);

        cp.delete_object("b", "k").await.unwrap();
        let status = cp.status().await.unwrap();
        assert_eq!(
            (status.backends[0].bytes_used, status.backends[0].orphan_bytes),
            (0, 100)
        );
        assert!(
            !status.backends[0].eligible_for_writes,
            "orphan bytes still fill the quota"
        );
    }

    #[tokio::test]
    async fn usage_reports_fill_status_and_overflow_writes() {
        use strata_core::{BackendTraffic, BreakerState};
        let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        let identity = Identity::new(&[], store.clone());
        let limited = BackendConfig::Local {
            encryption: None,
            id: "disk-1".into(),
            path: "/nonexistent/disk-1".into(),
            limits: BackendLimits {
                api_request_limit: Some(3),
                ..BackendLimits::default()
            },
        };
        let backends = [limited, local("disk-2", None)];
        let cp =
            ControlPlaneService::new(store, identity, &backends, PlacementConfig::default()).with_usage_flush_secs(1);
        cp.create_bucket("b", "owner").await.unwrap();
        assert_eq!(
            cp.plan_write("b", "k", Some(1), &[]).await.unwrap().backend_id,
            "disk-1"
        );

        let traffic = |requests, breaker| UsageReport {
            reporter: "dp-1".into(),
            backends: vec![BackendTraffic {
                backend_id: "disk-1".into(),
                requests,
                egress_bytes: 10,
                ingress_bytes: 20,
                breaker,
            }],
        };
        let view = cp.report_usage(traffic(2, BreakerState::Open)).await.unwrap();
        assert_eq!(view.len(), 2);
        assert_eq!((view[0].requests, view[0].requests_exhausted), (2, false));
        let status = cp.status().await.unwrap();
        assert_eq!(status.backends[0].breaker, "open");
        assert_eq!(status.backends[1].breaker, "unknown");
        assert_eq!(status.backends[0].api_request_limit, Some(3));

        let view = cp.report_usage(traffic(1, BreakerState::Closed)).await.unwrap();
        assert!(view[0].requests_exhausted);
        assert_eq!((view[0].egress_bytes, view[0].ingress_bytes), (20, 40));
        let status = cp.status().await.unwrap();
        assert_eq!(status.backends[0].breaker, "closed");
        assert!(!status.backends[0].eligible_for_writes, "requests are used up");
        assert_eq!(status.backends[0].usage.requests, 3);
        assert_eq!(
            cp.plan_write("b", "k", Some(1), &[]).await.unwrap().backend_id,
            "disk-2",
            "writes overflow once the limit is reached"
        );
    }
}
