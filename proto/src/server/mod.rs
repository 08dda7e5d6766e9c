//! The gRPC services, each an adapter from its generated server trait to
//! the core role trait of the same name: `Catalog` (`catalog.rs`),
//! `Admin` (`admin.rs`), and the small `Identity` and `Usage` here. All of
//! them sit behind the same token check, leader gate and timing (see
//! `crate::router`).

mod admin;
mod catalog;

use std::sync::Arc;

use strata_core::{ControlPlane as CoreControlPlane, CpError, LeaderGate};
use tonic::{Request, Response, Status};

use crate::convert as cv;
use crate::error::{invalid, to_status};
use crate::pb::{self, identity_server, usage_server};

/// Metadata key naming the leader's URL on a follower's "not leader" answer.
pub const LEADER_HEADER: &str = "x-strata-leader";

/// The retryable answer of a follower: `Unavailable` (so clients that do not
/// know the header still retry), plus the leader's URL in [`LEADER_HEADER`]
/// when known. The call was not executed.
pub fn not_leader(leader: Option<&str>) -> Status {
    let mut md = tonic::metadata::MetadataMap::new();
    md.insert(
        crate::ERROR_HEADER,
        tonic::metadata::MetadataValue::from_static(CpError::Unavailable(String::new()).code()),
    );
    let leader = leader.and_then(|u| tonic::metadata::MetadataValue::try_from(u).ok().map(|v| (u, v)));
    let msg = match leader {
        Some((u, v)) => {
            md.insert(LEADER_HEADER, v);
            format!("this control plane is not the leader; the leader is {u}")
        }
        None => "this control plane is not the leader, and no leader is known yet".to_string(),
    };
    Status::with_metadata(tonic::Code::Unavailable, msg, md)
}

/// Refuses every call while the gate says we do not lead.
#[derive(Clone)]
pub(crate) struct GateInterceptor(pub(crate) Option<Arc<dyn LeaderGate>>);

impl tonic::service::Interceptor for GateInterceptor {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        match self.0.as_ref().map(|g| g.check_leader()) {
            None | Some(Ok(())) => Ok(req),
            Some(Err(leader)) => {
                tracing::debug!(
                    leader = leader.as_deref().unwrap_or("unknown"),
                    "refused a call: not the leader"
                );
                Err(not_leader(leader.as_deref()))
            }
        }
    }
}

/// Adapts a core [`strata_core::ControlPlane`] to the generated gRPC
/// services (one instance per service; clones share the control plane).
#[derive(Clone)]
pub struct GrpcServer {
    cp: Arc<dyn CoreControlPlane>,
}

impl GrpcServer {
    pub fn new(cp: Arc<dyn CoreControlPlane>) -> Self {
        GrpcServer { cp }
    }
}

pub(super) type Reply<T> = Result<Response<T>, Status>;

pub(super) fn reply<T, U>(r: Result<T, CpError>, f: impl FnOnce(T) -> U) -> Reply<U> {
    r.map(|v| Response::new(f(v))).map_err(|e| to_status(&e))
}

pub(super) fn v<T>(r: Result<T, String>) -> Result<T, Status> {
    r.map_err(invalid)
}

#[tonic::async_trait]
impl identity_server::Identity for GrpcServer {
    async fn get_credential(&self, req: Request<pb::GetCredentialRequest>) -> Reply<pb::GetCredentialResponse> {
        let r = req.into_inner();
        reply(self.cp.get_credential(&r.access_key_id).await, cv::credential_to_pb)
    }
}

#[tonic::async_trait]
impl usage_server::Usage for GrpcServer {
    async fn report_usage(&self, req: Request<pb::UsageReport>) -> Reply<pb::MonthlyUsageList> {
        let report = cv::report_from_pb(req.into_inner());
        reply(self.cp.report_usage(report).await, |b| pb::MonthlyUsageList {
            backends: b.into_iter().map(cv::monthly_to_pb).collect(),
        })
    }
}
