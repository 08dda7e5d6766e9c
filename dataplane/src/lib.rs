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
mod write;

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

/// How one data plane stores and reads bytes: its backends and what stands
/// between them and the S3 front.
pub struct Storage<'a> {
    pub backends: Backends,
    /// Breakers and usage counters; `None` reads without health ordering.
    pub guard: Option<Arc<Guard>>,
    /// Write failover (spooling and re-planning); `None` when disabled.
    pub failover: Option<Failover>,
    /// Delta compression; `None` when off.
    pub delta: Option<Arc<DeltaEngine>>,
    /// The write quorum (`replication.write_quorum`, per bucket).
    pub replication: &'a strata_core::config::ReplicationConfig,
}

/// Builds the S3 front for one data plane.
pub fn build_front(
    cfg: &ServerConfig,
    cp: Arc<dyn ControlPlane>,
    readiness: Arc<dyn Readiness>,
    storage: Storage<'_>,
) -> Result<Front, String> {
    let keyring = Arc::new(auth::Keyring::new(cp.clone()));
    let mut b = S3ServiceBuilder::new(
        StrataS3::new(cp.clone(), storage.backends, cfg.region.clone())
            .with_failover(storage.failover.map(Arc::new))
            .with_guard(storage.guard)
            .with_delta(storage.delta)
            .with_write_quorum(storage.replication),
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
