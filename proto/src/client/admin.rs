//! `impl Admin for GrpcControlPlane`: one `Admin` RPC per method, for the
//! CLIs and `GET /status`.

use async_trait::async_trait;
use strata_core::{
    BackendHoldings, BackendReport, CleanupItem, ClusterStatus, CpResult, DeltaBucketReport, JobsReport, PurgePlan,
    Removal,
};

use super::GrpcControlPlane;
use crate::admin_pb as apb;
use crate::admin_pb::admin_client::AdminClient;
use crate::convert as cv;
use crate::error::malformed;
use crate::pb;

#[async_trait]
impl strata_core::Admin for GrpcControlPlane {
    async fn status(&self) -> CpResult<ClusterStatus> {
        call!(self, AdminClient.get_status(pb::Empty {}), read).map(cv::status_from_pb)
    }

    async fn delta_report(&self) -> CpResult<Vec<DeltaBucketReport>> {
        let r = call!(self, AdminClient.delta_report(pb::Empty {}), read)?;
        Ok(r.buckets.into_iter().map(cv::delta_report_from_pb).collect())
    }

    async fn list_backends(&self) -> CpResult<Vec<BackendReport>> {
        let r = call!(self, AdminClient.list_backends(pb::Empty {}), read)?;
        let reports = r.backends.into_iter().map(cv::backend_report_from_pb);
        reports.collect::<Result<_, _>>().map_err(malformed)
    }

    async fn drain_backend(&self, backend_id: &str, by: &str, reason: &str) -> CpResult<BackendHoldings> {
        let req = apb::DrainBackendRequest {
            backend_id: backend_id.to_owned(),
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        call!(self, AdminClient.drain_backend(req)).map(cv::holdings_from_pb)
    }

    async fn undrain_backend(&self, backend_id: &str, by: &str) -> CpResult<()> {
        let req = apb::BackendChangeRequest {
            backend_id: backend_id.to_owned(),
            by: by.to_owned(),
        };
        call!(self, AdminClient.undrain_backend(req)).map(|_| ())
    }

    async fn remove_backend(&self, backend_id: &str, by: &str, force: bool) -> CpResult<Removal> {
        let req = apb::RemoveBackendRequest {
            backend_id: backend_id.to_owned(),
            by: by.to_owned(),
            force,
        };
        call!(self, AdminClient.remove_backend(req)).map(cv::removal_from_pb)
    }

    async fn purge_preview(&self, backend_id: &str) -> CpResult<PurgePlan> {
        let req = apb::BackendRequest {
            backend_id: backend_id.to_owned(),
        };
        call!(self, AdminClient.purge_preview(req), read).map(cv::purge_plan_from_pb)
    }

    async fn purge_backend(&self, backend_id: &str, by: &str, token: &str) -> CpResult<Removal> {
        let req = apb::PurgeBackendRequest {
            backend_id: backend_id.to_owned(),
            by: by.to_owned(),
            token: token.to_owned(),
        };
        call!(self, AdminClient.purge_backend(req)).map(cv::removal_from_pb)
    }

    async fn take_backend_blobs(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        let req = apb::TakeBackendBlobsRequest {
            backend_id: backend_id.to_owned(),
            limit,
        };
        call!(self, AdminClient.take_backend_blobs(req)).map(|o| cv::obsolete_from_pb(Some(o)))
    }

    async fn list_jobs(&self) -> CpResult<JobsReport> {
        call!(self, AdminClient.list_jobs(pb::Empty {}), read).map(cv::jobs_from_pb)
    }

    async fn start_job(&self, name: &str) -> CpResult<String> {
        let name = name.to_owned();
        call!(self, AdminClient.start_job(apb::JobRequest { name })).map(|r| r.outcome)
    }

    async fn pause_job(&self, name: &str) -> CpResult<String> {
        let name = name.to_owned();
        call!(self, AdminClient.pause_job(apb::JobRequest { name })).map(|r| r.outcome)
    }

    async fn cancel_job(&self, name: &str) -> CpResult<String> {
        let name = name.to_owned();
        call!(self, AdminClient.cancel_job(apb::JobRequest { name })).map(|r| r.outcome)
    }
}
