//! The gRPC server as a whole: the token-protected control-plane services
//! (`Catalog`, `Identity`, `Usage`, `Admin`), each behind the same token
//! check, leader gate and timing, plus health and reflection, which need no
//! token.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use strata_core::ControlPlane as CoreControlPlane;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::Router;

use crate::admin_pb::admin_server::AdminServer;
use crate::auth::{AuthInterceptor, ClusterAuth};
use crate::pb::catalog_server::CatalogServer;
use crate::pb::identity_server::IdentityServer;
use crate::pb::usage_server::UsageServer;
use strata_core::LeaderGate;

use crate::server::{GateInterceptor, GrpcServer};
use crate::timing::{RpcObserver, Timed};

/// Largest message either side accepts (a completed 10 000-part upload fits easily).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// The full gRPC router: the token-protected control-plane services, plus
/// `grpc.health.v1.Health` (reporting SERVING for each of them and `""`) and
/// reflection v1, both open.
pub async fn router(cp: Arc<dyn CoreControlPlane>, auth: ClusterAuth) -> Router {
    router_gated(cp, auth, None, None).await
}

/// [`router`], with every control-plane call refused with a "not leader"
/// status while `gate` says this process does not lead (docs/leadership.md),
/// and every control-plane call (refused ones included) reported to
/// `observe` (see [`crate::timing`]).
pub async fn router_gated(
    cp: Arc<dyn CoreControlPlane>,
    auth: ClusterAuth,
    gate: Option<Arc<dyn LeaderGate>>,
    observe: Option<RpcObserver>,
) -> Router {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    for name in [CATALOG, IDENTITY, USAGE, ADMIN] {
        health_reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let server = GrpcServer::new(cp);
    let guard = Guard {
        gate: GateInterceptor(gate),
        auth: auth.interceptor(),
        observe: observe.unwrap_or(|_, _, _| {}),
    };
    let catalog = CatalogServer::new(server.clone()).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let identity = IdentityServer::new(server.clone()).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let usage = UsageServer::new(server.clone()).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let admin = AdminServer::new(server).max_decoding_message_size(MAX_MESSAGE_SIZE);
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .add_service(health)
        .add_service(reflection)
        .add_service(guard.wrap(catalog))
        .add_service(guard.wrap(identity))
        .add_service(guard.wrap(usage))
        .add_service(guard.wrap(admin))
}

use tonic::server::NamedService;

const CATALOG: &str = <CatalogServer<GrpcServer> as NamedService>::NAME;
const IDENTITY: &str = <IdentityServer<GrpcServer> as NamedService>::NAME;
const USAGE: &str = <UsageServer<GrpcServer> as NamedService>::NAME;
const ADMIN: &str = <AdminServer<GrpcServer> as NamedService>::NAME;

/// What every control-plane service sits behind: the token is checked
/// first, then leadership; the timer sees both.
struct Guard {
    gate: GateInterceptor,
    auth: AuthInterceptor,
    observe: RpcObserver,
}

type Guarded<S> = Timed<InterceptedService<InterceptedService<S, GateInterceptor>, AuthInterceptor>>;

impl Guard {
    fn wrap<S>(&self, service: S) -> Guarded<S> {
        let gated = InterceptedService::new(service, self.gate.clone());
        Timed::new(InterceptedService::new(gated, self.auth.clone()), self.observe)
    }
}

/// Serves [`router`] on `listener` until `shutdown` completes, then drains
/// in-flight calls.
pub async fn serve(
    listener: TcpListener,
    cp: Arc<dyn CoreControlPlane>,
    auth: ClusterAuth,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    serve_gated(listener, cp, auth, None, None, shutdown).await
}

/// [`serve`] behind a [`LeaderGate`] and an [`RpcObserver`] (see [`router_gated`]).
pub async fn serve_gated(
    listener: TcpListener,
    cp: Arc<dyn CoreControlPlane>,
    auth: ClusterAuth,
    gate: Option<Arc<dyn LeaderGate>>,
    observe: Option<RpcObserver>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    router_gated(cp, auth, gate, observe)
        .await
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
