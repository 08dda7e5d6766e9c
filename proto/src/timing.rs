//! Times every control-plane RPC the server answers: a tower wrapper around
//! the whole control-plane service stack (outside the token and leader
//! checks, so refused calls count too) that reports the method, a bounded
//! outcome class and the time to the response headers to an [`RpcObserver`].
//!
//! The gRPC layer knows the wire (paths, `grpc-status`, `x-strata-error`);
//! the metric itself lives with its role (`strata_controlplane::metrics`).

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use strata_core::CpError;
use tonic::Code;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use crate::ERROR_HEADER;

/// Receives one observation per answered call: the method (one of
/// [`METHODS`] or `"other"`), the outcome (one of [`OUTCOMES`]) and the time
/// from the request to the response headers (for unary calls, the handler's
/// time).
pub type RpcObserver = fn(method: &'static str, outcome: &'static str, elapsed: Duration);

/// The methods of `strata.controlplane.v1.ControlPlane`, the only method
/// label values besides `"other"` (a test keeps this list equal to the proto).
pub const METHODS: [&str; 29] = [
    "GetCredential",
    "CreateBucket",
    "DeleteBucket",
    "HeadBucket",
    "ListBuckets",
    "PlanWrite",
    "CommitWrite",
    "AbortWrite",
    "RecordBlobKey",
    "ReportCorrupt",
    "Locate",
    "ListObjects",
    "DeleteObject",
    "AckCleanup",
    "CreateUpload",
    "GetUpload",
    "PlanPart",
    "CommitPart",
    "ListParts",
    "ListUploads",
    "CompleteUpload",
    "AbortUpload",
    "PlanReference",
    "CommitReference",
    "LocateReference",
    "RecordDelta",
    "DeltaReport",
    "GetStatus",
    "ReportUsage",
];

/// Outcome label values: `ok`, then the error classes.
pub const OUTCOMES: [&str; 7] = [
    "ok",
    "not_found",
    "rejected",
    "no_capacity",
    "unavailable",
    "unauthenticated",
    "internal",
];

/// The outcome class of a control-plane error.
pub fn outcome_of(e: &CpError) -> &'static str {
    match e {
        CpError::NoSuchBucket | CpError::NoSuchKey | CpError::NoSuchUpload => "not_found",
        CpError::BucketAlreadyOwnedByYou
        | CpError::BucketNotEmpty
        | CpError::InvalidPart(_)
        | CpError::InvalidPartOrder
        | CpError::EntityTooSmall
        | CpError::InvalidArgument(_)
        | CpError::PreconditionFailed => "rejected",
        CpError::NoCapacity(_) => "no_capacity",
        CpError::Unavailable(_) => "unavailable",
        CpError::Internal(_) | CpError::KeyUnavailable(_) => "internal",
    }
}

/// The outcome class of a response, from its headers. An error answer is
/// "trailers only", so its `grpc-status` is a header; a success carries its
/// status in the trailers, after the headers.
fn outcome_of_headers(h: &http::HeaderMap) -> &'static str {
    let Some(status) = h.get("grpc-status") else {
        return "ok";
    };
    let code = status
        .to_str()
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    if code == Code::Ok {
        return "ok";
    }
    // Our own errors name their variant; the transport's and tonic's do not.
    if let Some(v) = h.get(ERROR_HEADER).and_then(|v| v.to_str().ok()) {
        return outcome_of(&CpError::from_code(v, String::new()));
    }
    match code {
        Code::Unauthenticated => "unauthenticated",
        Code::Unavailable => "unavailable",
        Code::NotFound => "not_found",
        Code::InvalidArgument => "rejected",
        _ => "internal",
    }
}

/// The method label of a request path (`/strata.controlplane.v1.ControlPlane/PlanWrite`).
fn method_of(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or("");
    METHODS.iter().find(|m| **m == name).copied().unwrap_or("other")
}

/// The wrapper: add it around a service with [`Timed::new`].
#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
    observe: RpcObserver,
}

impl<S> Timed<S> {
    pub fn new(inner: S, observe: RpcObserver) -> Timed<S> {
        Timed { inner, observe }
    }
}

impl<S: NamedService> NamedService for Timed<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, RB> Service<http::Request<B>> for Timed<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (method, observe, start) = (method_of(req.uri().path()), self.observe, Instant::now());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            let outcome = match &r {
                Ok(resp) => outcome_of_headers(resp.headers()),
                Err(_) => "internal",
            };
            observe(method, outcome, start.elapsed());
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_those_of_the_proto() {
        let proto = include_str!("../strata/controlplane/v1/controlplane.proto");
        let declared: Vec<&str> = proto
            .split("rpc ")
            .skip(1)
            .map(|s| s.split('(').next().unwrap_or("").trim())
            .collect();
        assert_eq!(declared, METHODS.to_vec());
    }

    #[test]
    fn classifies_paths_and_answers() {
        assert_eq!(method_of("/strata.controlplane.v1.ControlPlane/PlanWrite"), "PlanWrite");
        assert_eq!(method_of("/strata.controlplane.v1.ControlPlane/Nope"), "other");
        let mut h = http::HeaderMap::new();
        assert_eq!(outcome_of_headers(&h), "ok");
        h.insert("grpc-status", http::HeaderValue::from_static("16"));
        assert_eq!(outcome_of_headers(&h), "unauthenticated");
        h.insert("grpc-status", http::HeaderValue::from_static("5"));
        h.insert(ERROR_HEADER, http::HeaderValue::from_static("NoSuchKey"));
        assert_eq!(outcome_of_headers(&h), "not_found");
        h.insert(ERROR_HEADER, http::HeaderValue::from_static("KeyUnavailable"));
        assert_eq!(outcome_of_headers(&h), "internal");
        for e in [CpError::NoCapacity(String::new()), CpError::Unavailable(String::new())] {
            assert!(OUTCOMES.contains(&outcome_of(&e)));
        }
    }
}
