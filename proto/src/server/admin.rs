//! The `Admin` gRPC service (`admin.proto`), delegating to the core
//! [`strata_core::Admin`]: status, delta report, backends and jobs.

use tonic::Request;

use super::{GrpcServer, Reply, reply, v};
use crate::admin_pb::{self as apb, admin_server as svc};
use crate::convert::{self as cv, required};
use crate::pb;

#[tonic::async_trait]
impl svc::Admin for GrpcServer {
    async fn get_status(&self, _req: Request<pb::Empty>) -> Reply<apb::ClusterStatus> {
        reply(self.cp.status().await, cv::status_to_pb)
    }

    async fn delta_report(&self, _req: Request<pb::Empty>) -> Reply<apb::DeltaReportResponse> {
        reply(self.cp.delta_report().await, |b| apb::DeltaReportResponse {
            buckets: b.into_iter().map(cv::delta_report_to_pb).collect(),
        })
    }

    async fn list_backends(&self, _req: Request<pb::Empty>) -> Reply<apb::ListBackendsResponse> {
        reply(self.cp.list_backends().await, |b| apb::ListBackendsResponse {
            backends: b.into_iter().map(cv::backend_report_to_pb).collect(),
        })
    }

    async fn drain_backend(&self, req: Request<apb::DrainBackendRequest>) -> Reply<apb::BackendHoldings> {
        let r = req.into_inner();
        let id = v(required("backend_id", r.backend_id))?;
        let res = self.cp.drain_backend(&id, &r.by, &r.reason).await;
        reply(res, cv::holdings_to_pb)
    }

    async fn undrain_backend(&self, req: Request<apb::BackendChangeRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let id = v(required("backend_id", r.backend_id))?;
        reply(self.cp.undrain_backend(&id, &r.by).await, |()| pb::Empty {})
    }

    async fn remove_backend(&self, req: Request<apb::RemoveBackendRequest>) -> Reply<apb::Removal> {
        let r = req.into_inner();
        let id = v(required("backend_id", r.backend_id))?;
        reply(self.cp.remove_backend(&id, &r.by, r.force).await, cv::removal_to_pb)
    }

    async fn purge_preview(&self, req: Request<apb::BackendRequest>) -> Reply<apb::PurgePlan> {
        let id = v(required("backend_id", req.into_inner().backend_id))?;
        reply(self.cp.purge_preview(&id).await, cv::purge_plan_to_pb)
    }

    async fn purge_backend(&self, req: Request<apb::PurgeBackendRequest>) -> Reply<apb::Removal> {
        let r = req.into_inner();
        let id = v(required("backend_id", r.backend_id))?;
        reply(self.cp.purge_backend(&id, &r.by, &r.token).await, cv::removal_to_pb)
    }

    async fn take_backend_blobs(&self, req: Request<apb::TakeBackendBlobsRequest>) -> Reply<pb::Obsolete> {
        let r = req.into_inner();
        let id = v(required("backend_id", r.backend_id))?;
        reply(self.cp.take_backend_blobs(&id, r.limit).await, cv::obsolete_to_pb)
    }

    async fn list_jobs(&self, _req: Request<pb::Empty>) -> Reply<apb::JobsReport> {
        reply(self.cp.list_jobs().await, cv::jobs_to_pb)
    }

    async fn start_job(&self, req: Request<apb::JobRequest>) -> Reply<apb::JobControlResponse> {
        let name = v(required("name", req.into_inner().name))?;
        reply(self.cp.start_job(&name).await, outcome)
    }

    async fn pause_job(&self, req: Request<apb::JobRequest>) -> Reply<apb::JobControlResponse> {
        let name = v(required("name", req.into_inner().name))?;
        reply(self.cp.pause_job(&name).await, outcome)
    }

    async fn cancel_job(&self, req: Request<apb::JobRequest>) -> Reply<apb::JobControlResponse> {
        let name = v(required("name", req.into_inner().name))?;
        reply(self.cp.cancel_job(&name).await, outcome)
    }
}

fn outcome(outcome: String) -> apb::JobControlResponse {
    apb::JobControlResponse { outcome }
}
