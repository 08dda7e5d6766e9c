//! The control plane the CLIs (`strata backends`, `strata jobs`) talk to,
//! always through the `Admin` service so that there is one fenced road into
//! the catalog: over gRPC to the leader when the config names a control
//! plane (`control_plane.url`/`urls`, `advertise_url` or `listen`, plus
//! `cluster.secret`), else in-process, the same `ControlPlaneService` built
//! on the opened store (the embedded single-process SQLite default, which
//! serves no gRPC). When no process listens where the config names the
//! control plane (every process is down, e.g. after a crash or for maintenance),
//! read-only commands (`list`, `status`) read the store in-process; so do
//! changes under SQLite, whose store is a local file that only a stopped
//! process could be writing. Under PostgreSQL a change never bypasses the
//! leader: an unreachable control plane is an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_controlplane::{ControlPlaneService, Identity};
use strata_core::config::{Config, DatabaseTarget};
use strata_core::{ControlPlane, CpError};
use strata_proto::{ClusterAuth, GrpcControlPlane};

/// The JWT subject the CLIs present.
const SUBJECT: &str = "cli";

/// The control-plane URLs the config names, in order of preference.
fn urls(config: &Config) -> Vec<String> {
    let cp = &config.control_plane;
    let mut urls = cp.endpoints();
    if urls.is_empty()
        && let Some(u) = &cp.advertise_url
    {
        urls.push(u.clone());
    }
    if urls.is_empty()
        && let Some(addr) = cp.listen
    {
        urls.push(format!("http://{}", reachable(addr)));
    }
    urls
}

/// A listen address as a client reaches it: an unspecified IP is this host.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// Whether an admin command changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Change,
}

/// The control plane for an admin command run with `config`.
pub async fn connect(config: &Config, access: Access) -> Result<Arc<dyn ControlPlane>, String> {
    let urls = urls(config);
    if !urls.is_empty() {
        let sqlite = matches!(config.database_target(), DatabaseTarget::Sqlite { .. });
        if (sqlite || access == Access::Read) && !any_listening(&urls).await {
            eprintln!(
                "note: no control plane listens at {}; using the metadata store directly",
                urls.join(", ")
            );
        } else {
            let secret = config.cluster.secret.as_deref().ok_or_else(|| {
                format!(
                    "cluster.secret is required to reach the control plane at {}",
                    urls.join(", ")
                )
            })?;
            let client = GrpcControlPlane::connect_as(&urls, ClusterAuth::new(secret), SUBJECT)
                .map_err(|e| format!("control_plane: {e}"))?;
            return Ok(Arc::new(client));
        }
    }
    let store = crate::roles::open_store(config).await?;
    let identity = Identity::new(&config.credentials, store.clone());
    let service = ControlPlaneService::new(store, identity, &config.effective_backends(), config.placement.clone())
        .with_purge_secret(config.cluster.secret.clone());
    Ok(Arc::new(service))
}

/// Whether any of `urls` (`http://host:port`) accepts a TCP connection
/// within a moment: a refused connection means no process serves there.
async fn any_listening(urls: &[String]) -> bool {
    for u in urls {
        let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        let connect = tokio::net::TcpStream::connect(authority);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
            return true;
        }
    }
    false
}

/// How a CLI shows a control-plane error: a refusal as the control plane
/// explained it, anything else with where it came from.
pub fn shown(e: CpError) -> String {
    match e {
        CpError::InvalidArgument(why) => why,
        CpError::Unavailable(why) => format!("control plane unavailable: {why}"),
        e => format!("metadata store: {e}"),
    }
}

/// Who makes a change, as kept with a backend's state: `cli:<user>`.
pub fn who() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}
