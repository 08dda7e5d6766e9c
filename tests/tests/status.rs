//! `GET /status` (JSON) and the backend gauges of `GET /metrics`, against a
//! real `strata` process, in one process and split over gRPC.
//!
//! Needs the binary: `cargo build -p strata` (or `STRATA_BIN=/path/to/strata`).

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use strata_tests::Strata;

const OBJECT: usize = 10_000;
const QUOTA_1: u64 = 1_000_000;
const QUOTA_2: u64 = 2_000_000;

fn client(s: &Strata) -> Client {
    s.client()
}

fn status(s: &Strata) -> Value {
    let (code, body) = s.get("/status");
    assert_eq!(code, 200, "GET /status: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /status is not JSON ({e}): {body}"))
}

#[tokio::test]
async fn status_and_metrics_show_backend_usage() {
    let s = Strata::start_all_with(|dir| {
        format!(
            "backends:\n  \
             - {{type: local, id: disk-1, path: \"{}\", limits: {{quota_bytes: {QUOTA_1}, max_object_size: 500000}}}}\n  \
             - {{type: local, id: disk-2, path: \"{}\", limits: {{quota_bytes: {QUOTA_2}}}}}\n\
             placement:\n  routing_strategy: pack\n",
            dir.join("disk-1").display(),
            dir.join("disk-2").display()
        )
    });

    let before = status(&s);
    assert_eq!(before["backends"][0]["bytes_used"], 0);
    assert_eq!(before["backends"][1]["backend_id"], "disk-2");

    let c = client(&s);
    c.create_bucket().bucket("stats").send().await.expect("create_bucket");
    for i in 0..3 {
        c.put_object()
            .bucket("stats")
            .key(format!("obj-{i}"))
            .body(ByteStream::from(vec![i as u8; OBJECT]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {i}: {e:?}"));
    }

    let st = status(&s);
    let backends = st["backends"].as_array().expect("backends array");
    assert_eq!(backends.len(), 2, "{st}");
    let (d1, d2) = (&backends[0], &backends[1]);
    assert_eq!(d1["backend_id"], "disk-1");
    assert_eq!(d1["kind"], "local");
    assert_eq!(d1["bytes_used"], 30_000);
    assert_eq!(d1["objects"], 3);
    assert_eq!(d1["orphan_bytes"], 0);
    assert_eq!(d1["reserved_bytes"], 0);
    assert_eq!(d1["quota_bytes"], QUOTA_1);
    assert_eq!(d1["max_object_size"], 500_000);
    assert_eq!(d1["eligible_for_writes"], true);
    assert_eq!(d2["backend_id"], "disk-2");
    assert_eq!(d2["bytes_used"], 0);
    assert_eq!(d2["objects"], 0);
    assert_eq!(d2["quota_bytes"], QUOTA_2);
    assert_eq!(d2["max_object_size"], Value::Null);
    assert_eq!(st["cleanup_dead_letters"], 0);

    let (code, metrics) = s.get("/metrics");
    assert_eq!(code, 200);
    for line in [
        "strata_backend_bytes_used{backend=\"disk-1\"} 30000".to_owned(),
        "strata_backend_bytes_used{backend=\"disk-2\"} 0".to_owned(),
        "strata_backend_objects{backend=\"disk-1\"} 3".to_owned(),
        format!("strata_backend_quota_bytes{{backend=\"disk-1\"}} {QUOTA_1}"),
        format!("strata_backend_quota_bytes{{backend=\"disk-2\"}} {QUOTA_2}"),
        "strata_cleanup_dead_letters 0".to_owned(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in /metrics:\n{metrics}"
        );
    }
    assert!(metrics.contains("strata_s3_requests_total"), "{metrics}");
}

#[tokio::test]
async fn status_is_served_over_grpc_in_split_mode() {
    let s = Strata::start_split();
    let st = status(&s);
    let backends = st["backends"].as_array().expect("backends array");
    assert_eq!(backends.len(), 1, "{st}");
    assert_eq!(backends[0]["backend_id"], "local");
    assert_eq!(backends[0]["kind"], "local");
    assert_eq!(backends[0]["quota_bytes"], Value::Null);
    assert_eq!(backends[0]["eligible_for_writes"], true);

    let (code, metrics) = s.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "strata_backend_bytes_used{backend=\"local\"} 0"),
        "{metrics}"
    );
}
