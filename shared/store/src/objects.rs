//! Write intents and single objects: plan, commit, read and delete.

use async_trait::async_trait;
use strata_core::{CleanupItem, CpResult, ObjectRecord, WritePlan};

/// The write path of single objects.
#[async_trait]
pub trait Objects: Send + Sync + 'static {
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
    /// Like [`Objects::insert_intent`], but in one write transaction with
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
    /// replaces the current object at (bucket, key) with `record`, moves the
    /// replaced object's segments into the cleanup queue and removes the intent.
    /// Returns the queued cleanup items.
    async fn commit_object(&self, intent_id: &str, record: &ObjectRecord) -> CpResult<Vec<CleanupItem>>;
    /// Like [`Objects::commit_object`] for an object written to several
    /// backends at once (`record.copies` set): redeems every intent in
    /// `intent_ids` (one per copy; `Unavailable` if one is gone) in the same
    /// transaction, so either every copy becomes current or none does.
    async fn commit_replicated(&self, intent_ids: &[String], record: &ObjectRecord) -> CpResult<Vec<CleanupItem>>;
    /// `NoSuchBucket` or `NoSuchKey` when absent.
    async fn get_object(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord>;
    /// Removes the object and queues its segments; a missing key returns nothing.
    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>>;
}
