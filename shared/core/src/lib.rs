//! Domain types shared by every Strata role: names, records, errors, configuration
//! and the [`ControlPlane`] trait through which the data plane reaches metadata.

pub mod blobtags;
mod condition;
pub mod config;
mod controlplane;
mod error;
pub mod metrics;
mod names;
mod records;

pub use condition::{Commit, WriteCondition};
pub use controlplane::ControlPlane;
pub use error::{CpError, CpResult};
pub use names::{BackendId, BucketName, NameError, ObjectId, ObjectKey};
pub use records::*;
