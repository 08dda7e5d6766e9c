//! The stateless S3 data plane. It never opens the database: identity,
//! placement and catalog questions go to the control plane through the
//! [`strata_core::ControlPlane`] trait, and bytes stream straight between
//! clients and backends.

mod auth;
mod checksum;
mod delta;
mod errors;
mod guard;
mod host;
mod http;
mod metrics;
mod pipeline;
mod s3;
mod spool;

use std::sync::Arc;

use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::S3ServiceBuilder;
use strata_backend::Backends;
use strata_core::ControlPlane;
use strata_core::config::ServerConfig;

pub use crate::delta::{DeltaEngine, DeltaSettings};
pub use crate::guard::Guard;
pub use crate::http::{Front, Readiness, serve};
pub use crate::metrics::Metrics;
pub use crate::s3::StrataS3;
pub use crate::spool::Failover;

/// Builds the S3 front for one data plane.
#[allow(clippy::too_many_arguments)]
pub fn build_front(
    cfg: &ServerConfig,
    cp: Arc<dyn ControlPlane>,
    backends: Backends,
    readiness: Arc<dyn Readiness>,
    failover: Option<Failover>,
    guard: Option<Arc<Guard>>,
    delta: Option<Arc<DeltaEngine>>,
    replication: &strata_core::config::ReplicationConfig,
) -> Result<Front, String> {
    let keyring = Arc::new(auth::Keyring::new(cp.clone()));
    let mut b = S3ServiceBuilder::new(
        StrataS3::new(cp.clone(), backends, cfg.region.clone())
            .with_failover(failover.map(Arc::new))
            .with_guard(guard)
            .with_delta(delta)
            .with_write_quorum(replication),
    );
    b.set_auth(auth::Auth(keyring.clone()));
    b.set_access(auth::Access { keyring });
    if let Some(domain) = &cfg.domain {
        b.set_host(host::Domain::new(domain));
    }
    let mut s3cfg = S3Config::default();
    s3cfg.presigned_url_max_skew_time_secs = cfg.clock_skew_secs;
    b.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3cfg))));
    Ok(Front {
        s3: b.build(),
        cp,
        metrics: Metrics::new(),
        readiness,
        region: cfg.region.clone(),
    })
}
