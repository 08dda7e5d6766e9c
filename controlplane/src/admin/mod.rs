//! `impl Admin for ControlPlaneService`: the operator's calls, on the
//! leader's (fenced) store like every other write. One module per theme:
//! `status`, `backends` (list, drain, undrain), `removal` (remove, purge)
//! and `jobs`.

mod backends;
mod jobs;
mod removal;
mod status;

use async_trait::async_trait;
use strata_core::{
    Admin, BackendHoldings, BackendReport, CleanupItem, ClusterStatus, CpResult, DeltaBucketReport, JobsReport,
    PurgePlan, Removal,
};

use crate::ControlPlaneService;

#[async_trait]
impl Admin for ControlPlaneService {
    async fn status(&self) -> CpResult<ClusterStatus> {
        status::status(self).await
    }

    async fn delta_report(&self) -> CpResult<Vec<DeltaBucketReport>> {
        crate::delta::report(&*self.store).await
    }

    async fn list_backends(&self) -> CpResult<Vec<BackendReport>> {
        backends::list(self).await
    }

    async fn drain_backend(&self, backend_id: &str, by: &str, reason: &str) -> CpResult<BackendHoldings> {
        backends::drain(self, backend_id, by, reason).await
    }

    async fn undrain_backend(&self, backend_id: &str, by: &str) -> CpResult<()> {
        backends::undrain(self, backend_id, by).await
    }

    async fn remove_backend(&self, backend_id: &str, by: &str, force: bool) -> CpResult<Removal> {
        backends::known(self, backend_id).await?;
        removal::remove(self, backend_id, by, force).await
    }

    async fn purge_preview(&self, backend_id: &str) -> CpResult<PurgePlan> {
        backends::known(self, backend_id).await?;
        removal::preview(self, backend_id).await
    }

    async fn purge_backend(&self, backend_id: &str, by: &str, token: &str) -> CpResult<Removal> {
        backends::known(self, backend_id).await?;
        removal::purge(self, backend_id, by, token).await
    }

    async fn take_backend_blobs(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        removal::take_blobs(self, backend_id, limit).await
    }

    async fn list_jobs(&self) -> CpResult<JobsReport> {
        jobs::list(self).await
    }

    async fn start_job(&self, name: &str) -> CpResult<String> {
        jobs::control(self, name, "running").await
    }

    async fn pause_job(&self, name: &str) -> CpResult<String> {
        jobs::control(self, name, "paused").await
    }

    async fn cancel_job(&self, name: &str) -> CpResult<String> {
        jobs::control(self, name, "cancelled").await
    }
}
