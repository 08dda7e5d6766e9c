//! [`Admin`]: the operator's calls: cluster status and reports, the
//! backends' lifecycle (drain, undrain, remove, purge) and the jobs (list,
//! start, pause, cancel). The CLIs (`strata backends`, `strata jobs`) call
//! it, over gRPC when the config names a control plane, in-process on the
//! opened store otherwise; either way the same implementation runs, on the
//! leader and behind its write fence. Served by the `Admin` gRPC service
//! (`proto/strata/admin/v1/admin.proto`).

use async_trait::async_trait;

use super::admin_types::{BackendHoldings, BackendReport, JobsReport, PurgePlan, Removal};
use crate::{CleanupItem, ClusterStatus, CpResult, DeltaBucketReport};

/// Status and operations of the cluster as a whole. Refusals an operator
/// must read (an unknown backend, a state that forbids the change, a stale
/// purge token) are `CpError::InvalidArgument` with the whole explanation.
#[async_trait]
pub trait Admin: Send + Sync + 'static {
    /// Per-backend usage and limits of every configured backend, plus the
    /// cleanup dead-letter count, for `GET /status` and the metrics.
    async fn status(&self) -> CpResult<ClusterStatus>;
    /// Per bucket: logical bytes, stored bytes, and decisions by kind.
    async fn delta_report(&self) -> CpResult<Vec<DeltaBucketReport>>;

    /// Every backend, the configured ones first (in configuration order),
    /// then those only the store still knows: state, holdings, drain.
    async fn list_backends(&self) -> CpResult<Vec<BackendReport>>;
    /// Stops new writes to an active or drained backend and records a
    /// running drain for the worker's drain job; returns what it holds.
    /// `by` and `reason` are kept with the state.
    async fn drain_backend(&self, backend_id: &str, by: &str, reason: &str) -> CpResult<BackendHoldings>;
    /// Cancels a drain: a draining or drained backend takes writes again.
    async fn undrain_backend(&self, backend_id: &str, by: &str) -> CpResult<()>;
    /// Marks a backend removed and drops its records from the catalog,
    /// leaving its bytes where they are. Refused while an object's only
    /// copy is there, unless `force` (then those objects are deleted).
    async fn remove_backend(&self, backend_id: &str, by: &str, force: bool) -> CpResult<Removal>;
    /// What purging a backend would delete, with the token that confirms it.
    async fn purge_preview(&self, backend_id: &str) -> CpResult<PurgePlan>;
    /// With a fresh token from [`Admin::purge_preview`] whose counts still
    /// hold: removes the backend as [`Admin::remove_backend`] with `force`,
    /// but keeps its blobs queued for deletion; the caller then deletes them
    /// from the backend, taking them with [`Admin::take_backend_blobs`].
    async fn purge_backend(&self, backend_id: &str, by: &str, token: &str) -> CpResult<Removal>;
    /// Takes (removes from the cleanup queue) up to `limit` queued blobs of a
    /// removed backend, for the caller to delete; empty when none is left.
    async fn take_backend_blobs(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>>;

    /// The background jobs' shared schedule and the resumable jobs' progress.
    async fn list_jobs(&self) -> CpResult<JobsReport>;
    /// Lets a cancelled background job run again, or starts (or resumes) a
    /// resumable one. Returns what happened: `started` or `running`.
    async fn start_job(&self, name: &str) -> CpResult<String>;
    /// Pauses a resumable job after the object in hand. Returns `paused`.
    async fn pause_job(&self, name: &str) -> CpResult<String>;
    /// Stops a job: a background job on every worker until started again, a
    /// resumable one for good (its next start begins afresh). Returns `cancelled`.
    async fn cancel_job(&self, name: &str) -> CpResult<String>;
}
