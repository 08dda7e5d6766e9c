//! The metadata store: the persistence API of the control plane. Only the
//! control plane and the background jobs it runs (`strata-workers`) link this
//! crate; data planes never open the database.

mod backend_state;
mod blobs;
mod delta;
mod job_schedule;
mod lease;
mod listing;
mod multipart_rules;
mod postgres;
mod reconcile;
mod sqlite;

use async_trait::async_trait;
use strata_core::{
    BucketInfo, CleanupItem, CpResult, ListPage, ListPartsPage, ListQuery, ListUploadsPage, ListUploadsQuery,
    ObjectRecord, PartInfo, Segment, UploadInfo, WriteCondition, WritePlan,
};

pub use backend_state::{BackendHoldings, BackendState, BackendStateRecord};
pub use blobs::{BlobRecord, BlobState, JobProgress};
pub use delta::{
    DeltaDecisionRecord, DeltaRefRecord, DeltaSpaceRecord, REF_CURRENT, REF_RETIRED, ReselectPolicy, refs_bucket,
    user_bucket_of,
};
pub use job_schedule::{CONTROL_CANCELLED, Granted, JobLock, JobSchedule};
pub use lease::{Lease, WriteFence};
pub use postgres::PgStore;
pub use reconcile::{BlobUse, KnownBlob};
pub use sqlite::SqliteStore;

/// A stored access key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub unrestricted: bool,
}

/// What one backend holds, according to the catalog. Sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendUsage {
    pub backend_id: String,
    /// Bytes of current objects' segments and of uploaded multipart parts.
    pub bytes_used: u64,
    /// Bytes queued for deletion (in the cleanup queue) but not yet acknowledged
    /// as deleted: still on the backend.
    pub orphan_bytes: u64,
    /// Size hints of pending write intents: bytes being written right now.
    pub reserved_bytes: u64,
    /// Blobs (segments and parts) counted in `bytes_used`.
    pub objects: u64,
}

/// A cleanup-queue row claimed by [`MetaStore::claim_cleanup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupClaim {
    pub item: CleanupItem,
    /// Failed deletion attempts so far.
    pub attempts: u32,
}

/// A pending write intent older than the age asked of [`MetaStore::stale_intents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleIntent {
    pub intent_id: String,
    pub backend_id: String,
    pub backend_key: String,
    pub created_ms: i64,
    /// The object id the plan was made for.
    pub object_id: String,
    pub bucket: String,
    pub key: String,
}

/// Persistence for buckets, objects, intents, multipart state, the cleanup
/// queue and generated credentials. Every method is one transaction.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<StoredCredential>>;
    async fn insert_credential(&self, cred: &StoredCredential) -> CpResult<()>;
    async fn count_credentials(&self) -> CpResult<u64>;

    /// Fails with `BucketAlreadyOwnedByYou` when it exists.
    async fn create_bucket(&self, name: &str, owner: &str, now_ms: i64) -> CpResult<()>;
    /// Fails with `NoSuchBucket`, or `BucketNotEmpty` when it holds objects or uploads.
    async fn delete_bucket(&self, name: &str) -> CpResult<()>;
    async fn get_bucket(&self, name: &str) -> CpResult<BucketInfo>;
    /// Sorted by name. Internal buckets (names starting with `.`, such as
    /// the `.refs.<bucket>` of delta references) are left out.
    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>>;

    /// Records a pending intent before any byte reaches a backend. A known
    /// `size_hint` counts as reserved bytes of the plan's backend until the
    /// intent is committed or deleted.
    async fn insert_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
    ) -> CpResult<()>;
    /// Like [`MetaStore::insert_intent`], but in one write transaction with
    /// checking that the plan's backend still has room: with `quota` set, the
    /// intent is recorded only if `bytes_used + orphan_bytes + reserved_bytes +
    /// size_hint` (at least 1 byte) stays within it, and `false` is returned
    /// otherwise. Concurrent planners therefore never overshoot a quota.
    /// Fails with `NoSuchBucket` when the bucket does not exist.
    async fn reserve_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
        quota: Option<u64>,
    ) -> CpResult<bool>;
    async fn delete_intent(&self, intent_id: &str) -> CpResult<()>;

    /// In one transaction: fails with `NoSuchBucket` if the bucket is gone,
    /// with `PreconditionFailed` or `NoSuchKey` if `condition` does not hold
    /// of the current object (checked under the key's write lock), replaces
    /// the current object at (bucket, key) with `record`, moves the replaced
    /// object's segments into the cleanup queue and removes the intent.
    /// Returns the queued cleanup items.
    async fn commit_object(
        &self,
        intent_id: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>>;
    /// `NoSuchBucket` or `NoSuchKey` when absent.
    async fn get_object(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord>;
    /// Lists in UTF-8 byte order with prefix, delimiter grouping, `after` and
    /// `max_keys` (counting objects plus common prefixes). `NoSuchBucket` when absent.
    async fn list_objects(&self, query: &ListQuery) -> CpResult<ListPage>;
    /// Removes the object and queues its segments; a missing key returns nothing.
    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>>;
    /// Removes cleanup-queue rows whose bytes were deleted.
    async fn ack_cleanup(&self, ids: &[i64]) -> CpResult<()>;
    /// Cleanup rows not yet acknowledged, oldest first.
    async fn pending_cleanup(&self, limit: u32) -> CpResult<Vec<CleanupItem>>;
    /// In one write transaction, claims up to `limit` cleanup rows that are due
    /// (`next_attempt_ms <= now_ms`) and not claimed by anyone (`claimed_until_ms
    /// <= now_ms`), oldest first, for `lease_ms`. Two concurrent claimers never get
    /// the same row; a claim that is neither acknowledged nor failed becomes
    /// claimable again when its lease ends.
    async fn claim_cleanup(&self, now_ms: i64, lease_ms: i64, limit: u32) -> CpResult<Vec<CleanupClaim>>;
    /// Records a failed deletion of cleanup row `id`: one more attempt and its
    /// error. Once the attempts reach `max_attempts` the row moves to the dead
    /// letter table (its bytes still count as orphan bytes) and `true` is
    /// returned; otherwise the row is released and becomes due again after
    /// `min(2^attempts s, 1 h)`. A row that no longer exists returns `false`.
    async fn fail_cleanup(&self, id: i64, error: &str, now_ms: i64, max_attempts: u32) -> CpResult<bool>;
    /// Cleanup rows given up on after too many failed attempts.
    async fn dead_letter_count(&self) -> CpResult<u64>;
    /// Pending intents created before `older_than_ms`, oldest first.
    async fn stale_intents(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<StaleIntent>>;

    async fn create_upload(&self, upload: &UploadInfo) -> CpResult<()>;
    /// `NoSuchUpload` unless the upload exists in that bucket.
    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo>;
    /// Records (or replaces) a part and removes the intent; a replaced part's
    /// segment is queued for cleanup and returned.
    async fn commit_part(
        &self,
        intent_id: &str,
        bucket: &str,
        upload_id: &str,
        part: &PartInfo,
    ) -> CpResult<Vec<CleanupItem>>;
    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)>;
    async fn list_uploads(&self, query: &ListUploadsQuery) -> CpResult<ListUploadsPage>;
    /// Validates the part list (ascending numbers, known parts with matching
    /// ETags, every part but the last at least 5 MiB), then in one transaction
    /// makes the object current with one segment per part, queues the replaced
    /// object and the unused parts for cleanup, and removes the upload, if
    /// `condition` holds of the key's current object. The upload is
    /// remembered for a day: completing it again returns the object it made
    /// (with nothing to clean up) while that object is still current.
    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)>;
    /// Removes the upload and queues all its parts.
    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>>;

    /// In one transaction: redeems the intent (`Unavailable` when it is gone),
    /// then appends `segments` as a further copy of the object at (bucket,
    /// key) if that is still object `object_id`, and returns `true`. When the
    /// object was replaced or deleted meanwhile, the segments are queued for
    /// cleanup instead and `false` is returned.
    async fn add_copy(
        &self,
        intent_id: &str,
        bucket: &str,
        key: &str,
        object_id: &str,
        segments: &[Segment],
    ) -> CpResult<bool>;
    /// Objects with fewer than `factor` copies (the primary included), with
    /// object ids greater than `after`, in object-id order.
    async fn under_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>>;
    /// Resolves a stale intent whose bytes turned out complete on their
    /// backend: in one transaction, unless the key's current object was
    /// written at or after `written_after_ms` (then nothing changes and
    /// `false` is returned), makes `record` current (queueing the replaced
    /// object's bytes for cleanup) and removes the intent.
    async fn promote_intent(&self, intent_id: &str, record: &ObjectRecord, written_after_ms: i64) -> CpResult<bool>;

    /// Usage of every backend the catalog has ever recorded bytes for, sorted
    /// by id. Kept exact in the same transactions that add or remove segments,
    /// parts, cleanup rows and intents (see `migrations/0002_usage.sql`).
    async fn backend_usage(&self) -> CpResult<Vec<BackendUsage>>;

    /// Adds data-plane traffic to the counters of `month` (`YYYY-MM`, UTC).
    /// Each call is one transaction; concurrent calls land on different shards.
    async fn add_monthly_usage(&self, month: &str, traffic: &[strata_core::BackendTraffic]) -> CpResult<()>;
    /// Traffic totals of `month` for every backend that had any, sorted by id.
    /// The `*_exhausted` flags are false: limits are the control plane's business.
    async fn monthly_usage(&self, month: &str) -> CpResult<Vec<strata_core::MonthlyUsage>>;

    /// Upserts blob facts. For an existing row, a `None` field keeps the
    /// stored value (so the cipher recorded at plan time and the sha256
    /// recorded at commit merge); `state` and `checked_ms` are only written on
    /// insert, `now_ms` is the new rows' creation time (see `prune_blobs`).
    async fn put_blobs(&self, blobs: &[BlobRecord], now_ms: i64) -> CpResult<()>;
    /// The facts of the given (backend_id, backend_key) blobs that have a row, in any order.
    async fn get_blobs(&self, keys: &[(String, String)]) -> CpResult<Vec<BlobRecord>>;
    /// Sets state and checked_ms of one blob (no-op if absent).
    async fn mark_blob(&self, backend_id: &str, backend_key: &str, state: BlobState, checked_ms: i64) -> CpResult<()>;
    /// Rows per key_id (rows with a NULL key_id are counted under ""), sorted by key id.
    async fn blob_key_counts(&self) -> CpResult<Vec<(String, u64)>>;
    /// Up to `limit` rows whose key_id is not NULL, does not start with
    /// `sse-c:` and differs from `key_id`, ordered by (backend_id, backend_key).
    async fn blobs_not_under(&self, key_id: &str, limit: u32) -> CpResult<Vec<BlobRecord>>;
    /// Up to `limit` rows in state `corrupt`, ordered by (backend_id, backend_key).
    async fn corrupt_blobs(&self, limit: u32) -> CpResult<Vec<BlobRecord>>;
    /// The (bucket, key) of the current object one of whose segments (of
    /// any copy) is the blob (`backend_id`, `backend_key`), if any.
    async fn blob_owner(&self, backend_id: &str, backend_key: &str) -> CpResult<Option<(String, String)>>;
    /// The number of current objects in all buckets.
    async fn count_objects(&self) -> CpResult<u64>;
    /// Compare-and-set: replaces key_id and wrapped_dek only if the row still
    /// has `old_key_id`; returns whether it did.
    async fn rewrap_blob(
        &self,
        backend_id: &str,
        backend_key: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped: &[u8],
    ) -> CpResult<bool>;
    /// Deletes up to `limit` rows created before `older_than_ms` whose blob is
    /// referenced by no segment, part or intent; returns how many.
    async fn prune_blobs(&self, older_than_ms: i64, limit: u32) -> CpResult<u64>;
    /// Current objects in (bucket, key) byte order strictly after `after`
    /// (`("", "")` = from the start), up to `limit`, as full records (segments
    /// and copies), for scrubbing and rewriting jobs.
    async fn objects_after(&self, after: (&str, &str), limit: u32) -> CpResult<Vec<ObjectRecord>>;
    /// In one transaction: if object `object_id` is still current at (bucket,
    /// key) and copy `copy` (0 = primary, else `copies[copy - 1]`) still has
    /// exactly the segments `old` (compared by backend_id, backend_key and
    /// length), replaces that copy's segment rows with `new` (same copy index),
    /// queues the old blobs for cleanup (usage counters follow through the
    /// triggers) and returns `Some(queued items)`. Otherwise queues those of
    /// `new` the current object does not reference and returns `None`. Used to
    /// rewrite, repair or re-encrypt a copy. `new` must not be empty.
    /// `intent_id`, the intent under which `new` was written, is deleted in
    /// the same transaction whether the replacement wins or loses, so that
    /// the reaper never sees it.
    #[allow(clippy::too_many_arguments)]
    async fn replace_copy(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
        new: &[Segment],
        intent_id: Option<&str>,
        now_ms: i64,
    ) -> CpResult<Option<Vec<CleanupItem>>>;
    /// In one transaction: if the object is current, has more than one copy
    /// and copy `copy` has the segments `old`, removes that copy, renumbers
    /// the later copies down by one (copies stay dense: copy 1 becomes the
    /// primary when the primary is dropped), queues its blobs and returns
    /// `Some(items)`; `None` otherwise. Never removes the last copy.
    async fn drop_copy(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
    ) -> CpResult<Option<Vec<CleanupItem>>>;

    /// The saved progress of job `name`.
    async fn get_job(&self, name: &str) -> CpResult<Option<JobProgress>>;
    /// Saves (inserts or replaces) a job's progress.
    async fn put_job(&self, job: &JobProgress) -> CpResult<()>;
    /// Every job's progress, sorted by name.
    async fn list_jobs(&self) -> CpResult<Vec<JobProgress>>;

    /// Takes the cluster-wide lock of job `name` for one cycle: `None` when
    /// another worker holds it. PostgreSQL: a session advisory lock on a
    /// dedicated connection; SQLite (one process): always granted.
    async fn try_job_lock(&self, name: &str) -> CpResult<Option<Box<dyn JobLock>>> {
        let _ = name;
        Ok(Some(Box::new(Granted)))
    }
    /// The shared schedule and status of job `name`, if it ever ran.
    async fn get_job_schedule(&self, name: &str) -> CpResult<Option<JobSchedule>> {
        let _ = name;
        Ok(None)
    }
    /// Records a job's schedule and status (every field but `control`).
    async fn put_job_schedule(&self, schedule: &JobSchedule) -> CpResult<()> {
        let _ = schedule;
        Ok(())
    }
    /// Every job's schedule and status, by name.
    async fn list_job_schedules(&self) -> CpResult<Vec<JobSchedule>> {
        Ok(Vec::new())
    }
    /// Sets the operator's `control` of job `name` (`cancelled` or empty);
    /// `false` when the job never ran.
    async fn set_job_control(&self, name: &str, control: &str, now_ms: i64) -> CpResult<bool> {
        let _ = (name, control, now_ms);
        Err(strata_core::CpError::Internal(
            "this store keeps no job schedule".into(),
        ))
    }

    /// The state of deltaspace `space`; `None` when it never had a reference.
    async fn get_deltaspace(&self, space: &str) -> CpResult<Option<DeltaSpaceRecord>>;
    /// A reference, current or retired; `None` once dropped.
    async fn get_delta_ref(&self, ref_id: &str) -> CpResult<Option<DeltaRefRecord>>;
    /// In one transaction: inserts `reference` (state `current`, whatever
    /// its `state` says) as the current reference of its space, retires the
    /// space's previous current reference, empties the space's window of
    /// recent ratios and clears `want_new_ref`. Returns the id of the
    /// reference it retired. Fails when the `ref_id` exists.
    async fn set_current_ref(&self, reference: &DeltaRefRecord) -> CpResult<Option<String>>;
    /// Raises a reference's `last_used_ms` to `now_ms` (no-op if absent).
    async fn touch_delta_ref(&self, ref_id: &str, now_ms: i64) -> CpResult<()>;
    /// In one transaction: upserts the decision of `decision.object_id`;
    /// when it is a `delta` and `space` exists, pushes its ratio
    /// (`stored * 1000 / logical`) into the space's window of the last
    /// `policy.window` ratios and sets `want_new_ref` once the window is
    /// full and its mean exceeds `policy.threshold_permille`. Returns the
    /// space's `want_new_ref` afterwards (false without a space).
    /// `InvalidArgument` unless the decision is `reference`, `delta` or
    /// `passthrough`.
    async fn record_delta_decision(
        &self,
        decision: &DeltaDecisionRecord,
        space: Option<&str>,
        policy: ReselectPolicy,
    ) -> CpResult<bool>;
    /// Per user bucket that has any decision or reference, sorted by name,
    /// over current objects only: logical bytes = sizes of all its current
    /// objects; stored bytes = the decisions' `stored_bytes` (an object
    /// without a decision counts its size) plus the encoded bytes of the
    /// primary copy of every reference not yet dropped; decisions counted
    /// by kind; references = references not yet dropped.
    async fn delta_report(&self) -> CpResult<Vec<strata_core::DeltaBucketReport>>;
    /// Up to `limit` references (current or retired) last used before
    /// `older_than_ms` whose id no current segment's blob names as its
    /// `ref_id`, least recently used first: safe to free. A current one
    /// of those serves a deltaspace none of whose objects is a delta.
    async fn unreferenced_refs(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<DeltaRefRecord>>;
    /// In one transaction, re-checking what [`MetaStore::unreferenced_refs`]
    /// checks (last used before `older_than_ms`, named by no current
    /// segment's blob): deletes the reference's row and clears it as its
    /// space's current reference; returns whether it did. The reference's
    /// object (in `.refs.<bucket>`) is the caller's to delete.
    async fn drop_ref(&self, ref_id: &str, older_than_ms: i64) -> CpResult<bool>;
    /// Up to `limit` references (current or retired) whose
    /// `compacted_level` is below `below_level` (0 until
    /// [`MetaStore::mark_ref_compacted`]), oldest (`created_ms`, then
    /// `ref_id`) first: those the `delta-compact` job has yet to recompress.
    async fn refs_to_compact(&self, below_level: i32, limit: u32) -> CpResult<Vec<DeltaRefRecord>>;
    /// Sets a reference's `compacted_level` (no-op if absent).
    async fn mark_ref_compacted(&self, ref_id: &str, level: i32) -> CpResult<()>;
    /// Up to `limit` current objects (`(bucket, key, object_id)`) whose
    /// decision is `delta` and whose decision's `compacted_level` is below
    /// `below_level` (0 until [`MetaStore::mark_delta_compacted`]), oldest
    /// decision (`created_ms`, then `object_id`) first: the deltas the
    /// `delta-compact` job has yet to re-encode. Decisions of objects
    /// replaced or deleted since are left out.
    async fn deltas_to_compact(&self, below_level: i32, limit: u32) -> CpResult<Vec<(String, String, String)>>;
    /// Sets the `compacted_level` of an object's decision and, when
    /// `stored_bytes` is given (its delta was replaced by one of that many
    /// encoded bytes), its `stored_bytes`, which the report sums. No-op if
    /// the object has no decision.
    async fn mark_delta_compacted(&self, object_id: &str, level: i32, stored_bytes: Option<u64>) -> CpResult<()>;

    /// Up to `limit` distinct blob keys of backend `backend_id` strictly
    /// after `after`, in byte order, that any catalog row names: a segment of
    /// any copy, a multipart part, a pending intent's planned blob, a
    /// cleanup-queue row or a dead letter; each with the strongest such use.
    /// What the reconciler merges against the backend's listing.
    async fn known_blobs(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<KnownBlob>> {
        let _ = (backend_id, after, limit);
        Err(strata_core::CpError::Internal(
            "this store cannot list known blobs".into(),
        ))
    }
    /// In one write transaction: unless a catalog row names the blob (see
    /// [`MetaStore::known_blobs`]), queues it for cleanup as `length` orphan
    /// bytes and returns `true`. The reconciler's only way to remove bytes.
    async fn enqueue_orphan(&self, backend_id: &str, backend_key: &str, length: u64) -> CpResult<bool> {
        let _ = (backend_id, backend_key, length);
        Err(strata_core::CpError::Internal("this store cannot queue orphans".into()))
    }

    /// Every backend with a persisted lifecycle state, sorted by id; a
    /// backend without a row is active.
    async fn backend_states(&self) -> CpResult<Vec<BackendStateRecord>> {
        Ok(Vec::new())
    }
    /// Compare-and-set: records `rec` as the backend's state if its current
    /// state (`Active` without a row) is one of `from` (any state when `from`
    /// is empty); returns whether it did.
    async fn set_backend_state(&self, rec: &BackendStateRecord, from: &[BackendState]) -> CpResult<bool> {
        let _ = (rec, from);
        Err(strata_core::CpError::Internal(
            "this store keeps no backend states".into(),
        ))
    }
    /// Current objects with a segment (of any copy) on `backend_id` and an
    /// object id greater than `after`, up to `limit`, in object-id order, as
    /// full records.
    async fn objects_on_backend(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        let _ = (backend_id, after, limit);
        Ok(Vec::new())
    }
    /// Objects with more than `factor` copies (the primary included) and an
    /// object id greater than `after`, up to `limit`, in object-id order.
    async fn over_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        let _ = (factor, after, limit);
        Ok(Vec::new())
    }
    /// What the catalog still references on `backend_id`.
    async fn backend_holdings(&self, backend_id: &str) -> CpResult<BackendHoldings> {
        let _ = backend_id;
        Ok(BackendHoldings::default())
    }
    /// In one transaction: unless a segment, part or pending intent still
    /// names `backend_id` (then `InvalidArgument` with the counts), deletes up
    /// to `limit` of its cleanup-queue and dead-letter rows and returns them
    /// (their bytes are the caller's to delete or abandon); once none is
    /// left, also its `blobs` rows. Call until it returns nothing.
    async fn forget_backend(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        let _ = (backend_id, limit);
        Err(strata_core::CpError::Internal(
            "this store cannot forget backends".into(),
        ))
    }

    /// Records the breaker state one data plane (`reporter`) has for each
    /// backend; a backend's unhealthy-since time is kept while the reporter
    /// keeps reporting it not closed, and cleared by a closed report.
    /// (`migrations/0012_backend_health.sql`.)
    async fn record_backend_health(
        &self,
        _reporter: &str,
        _states: &[(String, strata_core::BreakerState)],
        _now_ms: i64,
    ) -> CpResult<()> {
        Ok(())
    }
    /// Backends that a reporter heard from at or after `fresh_ms` has reported
    /// not closed (open or half-open) continuously since `since_ms` or
    /// earlier, sorted by id.
    async fn unhealthy_backends(&self, _since_ms: i64, _fresh_ms: i64) -> CpResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// Like [`MetaStore::under_replicated`], but a copy with a segment on one
    /// of the `unhealthy` backends does not count.
    async fn under_replicated_healthy(
        &self,
        factor: u32,
        after: &str,
        limit: u32,
        unhealthy: &[String],
    ) -> CpResult<Vec<ObjectRecord>> {
        if !unhealthy.is_empty() {
            return Err(strata_core::CpError::Internal(
                "this store does not track backend health".into(),
            ));
        }
        self.under_replicated(factor, after, limit).await
    }
    /// Like [`MetaStore::commit_object`] for an object written to several
    /// backends at once (`record.copies` set): redeems every intent in
    /// `intent_ids` (one per copy; `Unavailable` if one is gone) in the same
    /// transaction, so either every copy becomes current or none does.
    async fn commit_replicated(
        &self,
        intent_ids: &[String],
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        match intent_ids {
            [one] if record.copies.is_empty() => self.commit_object(one, record, condition).await,
            _ => Err(strata_core::CpError::Internal(
                "this store cannot commit several copies at once".into(),
            )),
        }
    }

    /// Control-plane leadership (docs/leadership.md). In one transaction:
    /// takes the lease for `ttl_ms` when there is none or it has expired
    /// (term 1 for the first holder, else the previous term + 1), extends it
    /// when `holder` already holds it (same term), and otherwise changes
    /// nothing. Returns the lease afterwards: it is ours when
    /// `lease.holder == holder`.
    async fn acquire_lease(&self, _holder: &str, _url: &str, _ttl_ms: i64) -> CpResult<Lease> {
        Err(strata_core::CpError::Internal("this store has no leader lease".into()))
    }
    /// Extends the lease by `ttl_ms` from now if `holder` still holds it at
    /// `term` and it has not expired; returns whether it did.
    async fn renew_lease(&self, _holder: &str, _term: i64, _ttl_ms: i64) -> CpResult<bool> {
        Ok(false)
    }
    /// Lets the lease expire now if `holder` holds it at `term` (a clean
    /// shutdown hands over without waiting for the expiry).
    async fn release_lease(&self, _holder: &str, _term: i64) -> CpResult<()> {
        Ok(())
    }
    /// The lease, if anyone ever took it.
    async fn get_lease(&self) -> CpResult<Option<Lease>> {
        Ok(None)
    }
    /// The same store, with every write transaction fenced by `fence`: it
    /// fails with `Unavailable` unless the lease still carries
    /// `fence.term()`. `None` when the store cannot fence.
    fn fenced(&self, _fence: WriteFence) -> Option<std::sync::Arc<dyn MetaStore>> {
        None
    }
}
