//! The gRPC edge between the Strata planes: wire types, their conversion to
//! core records, a server adapting any [`strata_core::ControlPlane`], a client
//! implementing it, and the cluster-token authentication between them.

mod auth;
mod client;
mod convert;
mod error;
mod follow;
mod router;
mod server;
pub mod timing;

/// Generated wire types. Internal to this crate's API except for the server.
pub mod pb {
    tonic::include_proto!("strata.controlplane.v1");
}

/// Encoded descriptors of the control-plane protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/strata_descriptor.bin"));

pub use auth::{AuthError, AuthInterceptor, Claims, ClusterAuth, ISSUER, TOKEN_RENEW_AFTER, TOKEN_TTL};
pub use client::GrpcControlPlane;
pub use error::ERROR_HEADER;
pub use router::{MAX_MESSAGE_SIZE, router, router_gated, serve, serve_gated};
pub use server::{GrpcServer, LEADER_HEADER, LeaderGate, not_leader};
pub use timing::RpcObserver;
