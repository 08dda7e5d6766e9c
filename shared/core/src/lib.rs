//! Domain types shared by every Strata role: names, records, errors, configuration
//! and the control-plane service traits ([`services`]: `Catalog`, `Identity`, `Usage`,
//! `Admin`, and `ControlPlane`, all four at once).

pub mod blobtags;
mod condition;
pub mod config;
mod error;
pub mod metrics;
mod names;
mod records;
pub mod services;

pub use condition::{Commit, WriteCondition};
pub use error::{CpError, CpResult};
pub use names::{BackendId, BucketName, NameError, ObjectId, ObjectKey};
pub use records::*;
pub use services::{
    Admin, BackendHoldings, BackendReport, BackendState, BackendStateRecord, CONTROL_CANCELLED, Catalog, ControlPlane,
    Identity, JobProgress, JobSchedule, JobsReport, LeaderGate, PurgePlan, PurgePreview, Removal, STARTABLE_JOBS,
    Usage, drain_progress_name, unknown_backend,
};
