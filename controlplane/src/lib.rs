//! The control plane: the one owner of metadata. It answers identity,
//! placement and catalog questions for data planes, in-process or over gRPC.

mod identity;
mod service;

pub use identity::{Bootstrap, Identity};
pub use service::ControlPlaneService;
