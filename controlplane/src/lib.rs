//! The control plane: the one owner of metadata. It answers identity,
//! placement and catalog questions for data planes, in-process or over gRPC.

mod identity;
mod placement;
mod service;
mod usage;

pub use identity::{Bootstrap, Identity};
pub use placement::{Placement, PlacementBackend};
pub use service::ControlPlaneService;
