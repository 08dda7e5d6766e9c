//! The HTTP front: request ids, metrics, the operational endpoints and
//! graceful shutdown around the s3s service.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::Body;
use s3s::service::S3Service;
use strata_core::{ClusterStatus, ControlPlane};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::metrics::{Metrics, classify};

/// Answers `/ready`: whether this node can serve S3 now.
#[async_trait::async_trait]
pub trait Readiness: Send + Sync + 'static {
    async fn ready(&self) -> Result<(), String>;
}

pub struct Front {
    pub s3: S3Service,
    /// For `/status` and the backend gauges of `/metrics`.
    pub cp: Arc<dyn ControlPlane>,
    pub metrics: Metrics,
    pub readiness: Arc<dyn Readiness>,
    /// The region requests must be signed for.
    pub region: String,
}

const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long `/status` and `/metrics` wait for the control plane's status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

impl Front {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let request_id = new_request_id();
        if let Some(resp) = self.operational(&req).await {
            return Ok(resp);
        }
        let op = classify(
            req.method(),
            req.uri().path(),
            req.uri().query(),
            req.headers().contains_key("x-amz-copy-source"),
        );
        if let Some(n) = content_length(req.headers(), "x-amz-decoded-content-length")
            .or_else(|| content_length(req.headers(), "content-length"))
        {
            self.metrics.bytes_in.inc_by(n);
        }
        let span = tracing::info_span!("s3", request_id = %request_id, op, method = %req.method());
        let started = Instant::now();
        let resp = async {
            let expect_continue = req
                .headers()
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            let empty_body = content_length(req.headers(), "content-length") == Some(0);
            let result = match crate::auth::check_signing_scope(req.headers(), req.uri(), &self.region) {
                Err(e) => e.to_http_response().map_err(|e| s3s::HttpError::new(Box::new(e))),
                Ok(()) => self.s3.call(req.map(Body::from)).await,
            };
            let mut resp = match result {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = ?e, "s3 service failed");
                    Response::builder()
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                        .body(Body::empty())
                        .expect("static response")
                }
            };
            // A client that sent `Expect: 100-continue` may still be waiting to send a
            // body we never asked for (an early answer, or an empty body, for which no
            // `100 Continue` goes out). Some clients then misread the next response on
            // the same connection, so such a connection is not reused.
            if expect_continue && (empty_body || !resp.status().is_success()) {
                resp.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            let resp = with_request_id(resp, &request_id).await;
            tracing::info!(
                status = resp.status().as_u16(),
                ms = started.elapsed().as_millis() as u64,
                "request"
            );
            resp
        }
        .instrument(span)
        .await;
        let status = resp.status();
        self.metrics.requests.with_label_values(&[op, status.as_str()]).inc();
        self.metrics
            .duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        if let Some(n) = content_length(resp.headers(), "content-length") {
            self.metrics.bytes_out.inc_by(n);
        }
        Ok(resp)
    }

    /// The control plane's status, within [`STATUS_TIMEOUT`].
    async fn status(&self) -> Result<ClusterStatus, String> {
        match tokio::time::timeout(STATUS_TIMEOUT, self.cp.status()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {STATUS_TIMEOUT:?}")),
        }
    }

    /// `/health`, `/ready`, `/status` and `/metrics` answer unsigned GETs only,
    /// so a signed request for a bucket of the same name still reaches S3.
    async fn operational(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        if req.method() != http::Method::GET || req.headers().contains_key(http::header::AUTHORIZATION) {
            return None;
        }
        if req.uri().query().is_some_and(|q| q.contains("X-Amz-")) {
            return None;
        }
        const TEXT: &str = "text/plain; version=0.0.4";
        const JSON: &str = "application/json";
        let (status, content_type, body) = match req.uri().path() {
            "/health" => (StatusCode::OK, TEXT, "ok\n".to_owned()),
            "/ready" => match self.readiness.ready().await {
                Ok(()) => (StatusCode::OK, TEXT, "ready\n".to_owned()),
                Err(e) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("not ready: {e}\n")),
            },
            "/status" => match self.status().await {
                Ok(s) => (StatusCode::OK, JSON, json(&s)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot get the status from the control plane");
                    let body = json(&serde_json::json!({ "error": format!("control plane unavailable: {e}") }));
                    (StatusCode::SERVICE_UNAVAILABLE, JSON, body)
                }
            },
            "/status/delta" => match tokio::time::timeout(STATUS_TIMEOUT, self.cp.delta_report()).await {
                Ok(Ok(buckets)) => {
                    let rows: Vec<serde_json::Value> = buckets
                        .iter()
                        .map(|b| {
                            let ratio = if b.logical_bytes == 0 {
                                1.0
                            } else {
                                b.stored_bytes as f64 / b.logical_bytes as f64
                            };
                            let decisions: serde_json::Map<String, serde_json::Value> =
                                b.decisions.iter().map(|(k, n)| (k.clone(), (*n).into())).collect();
                            serde_json::json!({
                                "bucket": b.bucket, "logical_bytes": b.logical_bytes,
                                "stored_bytes": b.stored_bytes, "ratio": ratio,
                                "decisions": decisions, "references": b.references,
                            })
                        })
                        .collect();
                    (StatusCode::OK, JSON, json(&serde_json::json!({ "buckets": rows })))
                }
                Ok(Err(e)) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    JSON,
                    json(&serde_json::json!({ "error": e.to_string() })),
                ),
                Err(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    JSON,
                    json(&serde_json::json!({ "error": "timed out" })),
                ),
            },
            "/metrics" => {
                let status = self.status().await;
                if let Err(e) = &status {
                    tracing::warn!(error = %e, "cannot get the status from the control plane; backend gauges left out");
                }
                (StatusCode::OK, TEXT, self.metrics.render(status.ok().as_ref()))
            }
            _ => return None,
        };
        let resp = Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("static response");
        Some(resp)
    }
}

fn json(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn content_length(h: &http::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

fn new_request_id() -> String {
    let n: u64 = rand::random();
    format!("{n:016X}")
}

/// Sets `x-amz-request-id` and, for S3 error documents, the `<RequestId>` element.
async fn with_request_id(resp: Response<Body>, id: &str) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let hv = HeaderValue::from_str(id).expect("hex id is a valid header");
    parts.headers.insert("x-amz-request-id", hv.clone());
    parts.headers.insert("x-amz-id-2", hv);
    let is_xml = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
    if !parts.status.is_client_error() && !parts.status.is_server_error() || !is_xml {
        return Response::from_parts(parts, body);
    }
    let bytes = match Limited::new(body, MAX_ERROR_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = match text.rfind("</Error>") {
        Some(at) if !text.contains("<RequestId>") => {
            format!("{}<RequestId>{id}</RequestId>{}", &text[..at], &text[at..])
        }
        _ => text.into_owned(),
    };
    parts.headers.insert("content-length", HeaderValue::from(text.len()));
    Response::from_parts(parts, Body::from(text))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for
/// up to `grace`.
pub async fn serve(
    listener: TcpListener,
    front: Arc<Front>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let front = front.clone();
                let svc = hyper::service::service_fn(move |req| front.clone().handle(req));
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("S3 endpoint draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}
