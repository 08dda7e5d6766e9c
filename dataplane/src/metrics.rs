//! Prometheus metrics of the S3 front. Label values come from fixed sets.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

impl Metrics {
    pub fn new(registry: Registry) -> Metrics {
        let requests = IntCounterVec::new(
            Opts::new("strata_s3_requests_total", "S3 requests by operation and HTTP status"),
            &["op", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "strata_s3_request_duration_seconds",
                "S3 request latency until response headers",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["op"],
        )
        .expect("valid metric");
        let bytes_in = IntCounter::new("strata_s3_bytes_in_total", "Request body bytes declared by clients")
            .expect("valid metric");
        let bytes_out =
            IntCounter::new("strata_s3_bytes_out_total", "Response body bytes sent to clients").expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(bytes_in.clone()),
            Box::new(bytes_out.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            duration,
            bytes_in,
            bytes_out,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Names the S3 operation of a request from its shape, for metric labels.
pub fn classify(method: &http::Method, path: &str, query: Option<&str>, copy: bool) -> &'static str {
    let q = query.unwrap_or("");
    let has = |k: &str| q.split('&').any(|kv| kv == k || kv.starts_with(&format!("{k}=")));
    let trimmed = path.trim_start_matches('/');
    let depth = match trimmed.split_once('/') {
        _ if trimmed.is_empty() => 0,
        Some((_, k)) if !k.is_empty() => 2,
        _ => 1,
    };
    use http::Method as M;
    match (method, depth) {
        (&M::GET, 0) => "ListBuckets",
        (&M::PUT, 1) => "CreateBucket",
        (&M::HEAD, 1) => "HeadBucket",
        (&M::DELETE, 1) => "DeleteBucket",
        (&M::GET, 1) if has("location") => "GetBucketLocation",
        (&M::GET, 1) if has("uploads") => "ListMultipartUploads",
        (&M::GET, 1) if has("list-type") => "ListObjectsV2",
        (&M::GET, 1) => "ListObjects",
        (&M::POST, 1) if has("delete") => "DeleteObjects",
        (&M::PUT, 2) if has("partNumber") && copy => "UploadPartCopy",
        (&M::PUT, 2) if has("partNumber") => "UploadPart",
        (&M::PUT, 2) if copy => "CopyObject",
        (&M::PUT, 2) => "PutObject",
        (&M::GET, 2) if has("uploadId") => "ListParts",
        (&M::GET, 2) => "GetObject",
        (&M::HEAD, 2) => "HeadObject",
        (&M::POST, 2) if has("uploads") => "CreateMultipartUpload",
        (&M::POST, 2) if has("uploadId") => "CompleteMultipartUpload",
        (&M::DELETE, 2) if has("uploadId") => "AbortMultipartUpload",
        (&M::DELETE, 2) => "DeleteObject",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn classifies() {
        assert_eq!(classify(&Method::GET, "/", None, false), "ListBuckets");
        assert_eq!(
            classify(&Method::GET, "/b", Some("list-type=2"), false),
            "ListObjectsV2"
        );
        assert_eq!(
            classify(&Method::PUT, "/b/k/x", Some("partNumber=1&uploadId=u"), false),
            "UploadPart"
        );
        assert_eq!(classify(&Method::PUT, "/b/k", None, true), "CopyObject");
        assert_eq!(classify(&Method::POST, "/b", Some("delete"), false), "DeleteObjects");
        assert_eq!(classify(&Method::PATCH, "/b/k", None, false), "Other");
    }
}
