//! The control plane: the one owner of metadata. It answers identity,
//! placement and catalog questions for data planes, in-process or over gRPC.

mod admin;
mod degraded;
mod delta;
mod identity;
pub mod keys;
pub mod leader;
pub mod leader_http;
pub mod metrics;
mod placement;
mod service;
mod usage;

pub use degraded::Degraded;
pub use identity::{Bootstrap, Identity};
pub use keys::Sealer;
pub use placement::{Placement, PlacementBackend};
pub use service::{ControlPlaneService, now_ms};
