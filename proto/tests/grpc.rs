//! The real tonic server and client over TCP, around an in-memory fake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata_core::*;
use strata_proto::{ClusterAuth, GrpcControlPlane};
use tokio::sync::oneshot;

mod fake;
use fake::{Fake, meta, sample_status};

const SECRET: &str = "test secret of at least 32 characters";

struct Running {
    addr: SocketAddr,
    fake: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let cp: Arc<dyn ControlPlane> = fake.clone();
    let task = tokio::spawn(strata_proto::serve(listener, cp, ClusterAuth::new(SECRET), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        fake,
        stop: Some(stop),
        task,
    }
}

#[tokio::test]
async fn round_trips_calls_and_errors() {
    let srv = start().await;
    let cp = GrpcControlPlane::connect_lazy(&srv.url(), ClusterAuth::new(SECRET)).unwrap();
    cp.check_ready().await.unwrap();

    cp.create_bucket("alpha", "owner").await.unwrap();
    cp.create_bucket("beta", "owner").await.unwrap();
    assert_eq!(
        cp.create_bucket("alpha", "owner").await,
        Err(CpError::BucketAlreadyOwnedByYou)
    );
    let names: Vec<_> = cp.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(cp.head_bucket("beta").await.unwrap().created_unix_ms, 1);
    assert_eq!(cp.head_bucket("gamma").await, Err(CpError::NoSuchBucket));
    assert_eq!(cp.delete_bucket("alpha").await, Err(CpError::BucketNotEmpty));

    let cred = cp.get_credential("AKID").await.unwrap().unwrap();
    assert_eq!(cred.scope, Scope::Buckets(vec!["alpha".into()]));
    assert_eq!(cp.get_credential("nope").await, Ok(None));

    let plan = cp.plan_write("alpha", "dir/a.txt", None, &[]).await.unwrap();
    assert_eq!(plan.backend_key, "k1");
    let segments = vec![
        Segment {
            backend_id: "b1".into(),
            backend_key: "k1".into(),
            length: 6,
            ..Default::default()
        },
        Segment {
            backend_id: "b2".into(),
            backend_key: "k2".into(),
            length: 5,
            ..Default::default()
        },
    ];
    let commit = Commit::new("alpha", "dir/a.txt", meta(), segments.clone());
    let obsolete = cp.commit_write(&plan, commit.clone()).await;
    assert_eq!(obsolete, Ok(vec![]));
    // The condition crosses the wire and its failure comes back as itself.
    let create_only = Commit {
        condition: WriteCondition {
            if_match: None,
            if_none_match: true,
        },
        ..commit.clone()
    };
    assert_eq!(
        cp.commit_write(&plan, create_only).await,
        Err(CpError::PreconditionFailed)
    );
    let again = cp.commit_write(&plan, commit).await;
    assert_eq!(again.unwrap()[0].backend_key, "o1");

    let rec = cp.locate("alpha", "dir/a.txt").await.unwrap();
    assert_eq!(
        rec,
        ObjectRecord {
            bucket: "alpha".into(),
            key: "dir/a.txt".into(),
            object_id: "o1".into(),
            meta: meta(),
            segments,
            copies: vec![vec![Segment {
                backend_id: "b2".into(),
                backend_key: "copy".into(),
                length: 11,
                ..Default::default()
            }]],
        }
    );
    assert_eq!(cp.locate("alpha", "missing").await, Err(CpError::NoSuchKey));

    let page = cp
        .list_objects(ListQuery {
            bucket: "alpha".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].etag, "\"abc\"");
    assert_eq!(
        (page.common_prefixes, page.is_truncated, page.next_after.as_str()),
        (vec!["dir/".to_string()], true, "dir/")
    );

    // Size hints: None and large values survive; errors keep their detail.
    assert!(cp.plan_write("alpha", "k", Some(42), &[]).await.is_ok());
    assert_eq!(
        cp.plan_write("alpha", "k", Some(u64::MAX), &[]).await,
        Err(CpError::NoCapacity("alpha: too big".into()))
    );
    assert_eq!(
        srv.fake.hints.lock().unwrap().clone(),
        [None, Some(42), Some(i64::MAX as u64)]
    );

    // Multipart.
    let up = cp.create_upload("alpha", "big", meta()).await.unwrap();
    assert_eq!(up.meta, meta());
    assert_eq!(cp.get_upload("alpha", "u1").await, Err(CpError::NoSuchUpload));
    let pplan = cp.plan_part("alpha", "u1", 3, Some(5), &[]).await.unwrap();
    assert_eq!(pplan.backend_key, "k1.3");
    let (upl, parts) = cp.list_parts("alpha", "u1", 0, 1000).await.unwrap();
    assert_eq!(upl.key, "big");
    let part = parts.parts[0].clone();
    assert_eq!(part.checksums["CRC32C"], "abc=");
    assert_eq!(
        cp.commit_part(&pplan, "alpha", "u1", PartInfo { part_number: 3, ..part })
            .await,
        Err(CpError::InvalidPart("part 3 rejected".into()))
    );
    let uploads = cp
        .list_uploads(ListUploadsQuery {
            bucket: "alpha".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(uploads.unwrap().uploads[0].upload_id, "u1");
    let out_of_order = vec![(2, "a".to_string()), (1, "b".to_string())];
    assert_eq!(
        cp.complete_upload("alpha", "u1", out_of_order, &WriteCondition::NONE)
            .await,
        Err(CpError::InvalidPartOrder)
    );
    assert_eq!(
        (cp.complete_upload("alpha", "u1", vec![(1, "a".into())], &WriteCondition::NONE)).await,
        Err(CpError::EntityTooSmall)
    );
    assert_eq!(cp.abort_upload("alpha", "u1").await.unwrap()[0].id, 3);
    cp.abort_write("i1").await.unwrap();
    cp.ack_cleanup(vec![1, 2]).await.unwrap();
    assert_eq!(cp.delete_object("alpha", "dir/a.txt").await, Ok(vec![]));
    // Optional quotas survive the wire both set (even to 0) and unset.
    assert_eq!(cp.status().await, Ok(sample_status()));
    // Exclusions and usage reports cross the wire whole.
    assert!(
        matches!(cp.plan_write("alpha", "k", None, &["b1".into(), "b2".into()]).await,
            Err(CpError::NoCapacity(m)) if m.contains("b1,b2"))
    );
    let report = UsageReport {
        reporter: "dp-1".into(),
        backends: vec![BackendTraffic {
            backend_id: "b1".into(),
            requests: 3,
            egress_bytes: 1 << 40,
            ingress_bytes: 5,
            breaker: BreakerState::HalfOpen,
        }],
    };
    let usage = cp.report_usage(report).await.unwrap();
    assert_eq!(
        (
            usage[0].month.as_str(),
            usage[0].requests,
            usage[0].egress_bytes,
            usage[0].ingress_bytes
        ),
        ("dp-1:half_open", 3, 1 << 40, 5)
    );
    assert!(usage[0].requests_exhausted && !usage[0].egress_exhausted && usage[0].ingress_exhausted);

    // The server validates before calling the core.
    let before = srv.fake.calls.load(Ordering::SeqCst);
    assert!(matches!(cp.locate("", "k").await, Err(CpError::InvalidArgument(m)) if m.contains("bucket")));
    assert!(matches!(
        cp.plan_part("alpha", "u1", 0, None, &[]).await,
        Err(CpError::InvalidArgument(_))
    ));
    assert_eq!(srv.fake.calls.load(Ordering::SeqCst), before);

    srv.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let srv = start().await;
    let cp = GrpcControlPlane::connect_lazy(&srv.url(), ClusterAuth::new("some other secret, 32 chars long")).unwrap();
    let err = cp.list_buckets().await.unwrap_err();
    assert!(
        matches!(&err, CpError::Internal(m) if m.contains("refused our cluster token")),
        "{err:?}"
    );
    assert!(cp.check_ready().await.is_err());
    assert!(cp.create_bucket("alpha", "o").await.is_err());
    assert_eq!(srv.fake.calls.load(Ordering::SeqCst), 0);
    assert!(srv.fake.buckets.lock().unwrap().is_empty());
    srv.shutdown().await;
}

async fn channel(srv: &Running) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(srv.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let srv = start().await;
    let mut health = HealthClient::new(channel(&srv).await);
    let services = [
        "strata.controlplane.v1.Catalog",
        "strata.controlplane.v1.Identity",
        "strata.controlplane.v1.Usage",
        "strata.admin.v1.Admin",
    ];
    for service in services.iter().copied().chain([""]) {
        let resp = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(resp.into_inner().status(), ServingStatus::Serving);
    }

    let mut refl = ServerReflectionClient::new(channel(&srv).await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("unexpected reflection response");
    };
    let listed: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in services {
        assert!(listed.contains(&service), "{service} missing from {listed:?}");
    }
    assert_eq!(srv.fake.calls.load(Ordering::SeqCst), 0);
    srv.shutdown().await;
}

#[tokio::test]
async fn round_trips_admin_calls_and_refusals() {
    let srv = start().await;
    let cp = GrpcControlPlane::connect_lazy(&srv.url(), ClusterAuth::new(SECRET)).unwrap();
    let h = cp.drain_backend("b1", "cli:test", "disk swap").await.unwrap();
    assert_eq!((h.objects, h.segment_bytes), (3, 300));
    // A refusal arrives with the control plane's whole explanation.
    let err = cp.drain_backend("b9", "cli:test", "why").await.unwrap_err();
    assert_eq!(err, CpError::InvalidArgument("no backend `b9`; backends: b1".into()));
    let listed = cp.list_backends().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].backend_id, "b1");
    assert_eq!(listed[0].state, None);
    assert_eq!(cp.start_job("cleanup").await.unwrap(), "started");
    assert_eq!(cp.list_jobs().await.unwrap(), JobsReport::default());
    srv.shutdown().await;
}

#[tokio::test]
async fn admin_calls_without_the_cluster_token_are_refused() {
    use strata_proto::admin_pb::{DrainBackendRequest, admin_client::AdminClient};
    let srv = start().await;
    // No token at all.
    let mut anonymous = AdminClient::new(channel(&srv).await);
    let req = DrainBackendRequest {
        backend_id: "b1".into(),
        by: "anonymous".into(),
        reason: "x".into(),
    };
    let status = anonymous.drain_backend(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    // Another cluster's token.
    let other =
        GrpcControlPlane::connect_lazy(&srv.url(), ClusterAuth::new("some other secret, 32 chars long")).unwrap();
    assert!(other.drain_backend("b1", "intruder", "x").await.is_err());
    assert!(other.start_job("cleanup").await.is_err());
    assert!(other.list_backends().await.is_err());
    assert_eq!(srv.fake.calls.load(Ordering::SeqCst), 0);
    srv.shutdown().await;
}

#[tokio::test]
async fn unreachable_control_plane_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cp = GrpcControlPlane::connect_lazy(&format!("http://{addr}"), ClusterAuth::new(SECRET)).unwrap();
    let err = cp.check_ready().await.unwrap_err();
    assert!(matches!(err, CpError::Unavailable(_)), "{err:?}");
    assert!(GrpcControlPlane::connect_lazy("not a url", ClusterAuth::new(SECRET)).is_err());
}
