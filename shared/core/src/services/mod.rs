//! The control plane's services, one role trait each, as the architecture
//! names them: [`Catalog`] (buckets, objects, writes), [`Identity`]
//! (credentials), [`Usage`] (traffic reports) and [`Admin`] (status,
//! backends, jobs). Each has three implementations: the control plane
//! itself (`strata_controlplane::ControlPlaneService`, in-process), the gRPC
//! client (`strata_proto::GrpcControlPlane`), and test fakes.
//!
//! [`ControlPlane`] is all four at once, for code that holds one handle to
//! the control plane (`Arc<dyn ControlPlane>`).

mod admin;
mod admin_types;
mod catalog;
mod identity;
mod leader;
mod usage;

pub use admin::Admin;
pub use admin_types::{
    BackendHoldings, BackendReport, BackendState, BackendStateRecord, CONTROL_CANCELLED, JobProgress, JobSchedule,
    JobsReport, PurgePlan, PurgePreview, Removal, STARTABLE_JOBS, drain_progress_name, unknown_backend,
};
pub use catalog::Catalog;
pub use identity::Identity;
pub use leader::LeaderGate;
pub use usage::Usage;

/// Every control-plane service at once: what the data plane, the workers
/// and the CLIs hold (`Arc<dyn ControlPlane>`). Implemented for every type
/// that implements the four role traits; implement those, not this.
pub trait ControlPlane: Catalog + Identity + Usage + Admin {}

impl<T: Catalog + Identity + Usage + Admin + ?Sized> ControlPlane for T {}
