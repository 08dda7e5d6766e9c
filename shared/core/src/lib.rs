//! Domain types shared by every Strata role: names, records, errors, configuration
//! and the [`ControlPlane`] trait through which the data plane reaches metadata.

pub mod blobtags;
pub mod config;
mod controlplane;
mod error;
pub mod metrics;
mod names;
mod records;

pub use controlplane::ControlPlane;
pub use error::{CpError, CpResult};
pub use names::{BackendId, BucketName, NameError, ObjectId, ObjectKey};
pub use records::*;
