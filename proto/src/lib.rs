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

/// Generated wire types, nested as their packages (`strata.controlplane.v1`,
/// `strata.admin.v1`) so that references across packages resolve.
pub mod wire {
    pub mod strata {
        pub mod controlplane {
            pub mod v1 {
                tonic::include_proto!("strata.controlplane.v1");
            }
        }
        pub mod admin {
            pub mod v1 {
                tonic::include_proto!("strata.admin.v1");
            }
        }
    }
}

/// The `Admin` service and its messages.
pub use wire::strata::admin::v1 as admin_pb;
/// The `Catalog`, `Identity` and `Usage` services and the shared messages.
pub use wire::strata::controlplane::v1 as pb;

/// Encoded descriptors of the control-plane protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/strata_descriptor.bin"));

pub use auth::{AuthError, AuthInterceptor, Claims, ClusterAuth, ISSUER, TOKEN_RENEW_AFTER, TOKEN_TTL};
pub use client::GrpcControlPlane;
pub use error::ERROR_HEADER;
pub use router::{MAX_MESSAGE_SIZE, router, router_gated, serve, serve_gated};
pub use server::{GrpcServer, LEADER_HEADER, not_leader};
pub use timing::RpcObserver;
