//! The metadata store: the persistence API of the control plane. Only the
//! control plane and the background jobs it runs (`strata-workers`) link this
//! crate; data planes never open the database.

mod backend_state;
mod blobs;
mod catalog;
mod cleanup;
mod delta;
mod job_schedule;
mod lease;
mod listing;
mod metrics;
mod multipart;
mod multipart_rules;
mod objects;
mod postgres;
mod reconcile;
mod replace;
mod replication;
mod rows;
mod sql;
mod sqlite;
mod store;
mod usage;

use strata_core::CleanupItem;

pub use backend_state::{BackendHoldings, BackendState, BackendStateRecord, Placement};
pub use blobs::{BlobRecord, BlobState, Blobs, JobProgress};
pub use catalog::{Catalog, Identity};
pub use cleanup::Cleanup;
pub use delta::{
    Delta, DeltaDecisionRecord, DeltaRefRecord, DeltaSpaceRecord, REF_CURRENT, REF_RETIRED, ReselectPolicy,
    refs_bucket, user_bucket_of,
};
pub use job_schedule::{CONTROL_CANCELLED, Granted, JobLock, JobSchedule, Jobs};
pub use lease::{Leadership, Lease, WriteFence};
pub use multipart::Multipart;
pub use objects::Objects;
pub use reconcile::{BlobUse, KnownBlob, Reconcile};
pub use replace::Rewrite;
pub use replication::Replication;
pub use store::{PgDb, PgStore, SqliteDb, SqliteStore, Store};
pub use usage::Usage;

/// A stored access key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub unrestricted: bool,
}

/// What one backend holds, according to the catalog. Sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendUsage {
    pub backend_id: String,
    /// Bytes of current objects' segments and of uploaded multipart parts.
    pub bytes_used: u64,
    /// Bytes queued for deletion (in the cleanup queue) but not yet acknowledged
    /// as deleted: still on the backend.
    pub orphan_bytes: u64,
    /// Size hints of pending write intents: bytes being written right now.
    pub reserved_bytes: u64,
    /// Blobs (segments and parts) counted in `bytes_used`.
    pub objects: u64,
}

/// A cleanup-queue row claimed by [`Cleanup::claim_cleanup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupClaim {
    pub item: CleanupItem,
    /// Failed deletion attempts so far.
    pub attempts: u32,
}

/// A pending write intent older than the age asked of [`Cleanup::stale_intents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleIntent {
    pub intent_id: String,
    pub backend_id: String,
    pub backend_key: String,
    pub created_ms: i64,
    /// The object id the plan was made for.
    pub object_id: String,
    pub bucket: String,
    pub key: String,
}

/// Declares `MetaStore` as every role at once, with its blanket impl, and
/// the prelude that brings the roles into scope.
macro_rules! meta_store {
    ($(#[$doc:meta])* $($role:ident),+ $(,)?) => {
        $(#[$doc])*
        pub trait MetaStore: $($role +)+ {}

        impl<T: $($role +)+ ?Sized> MetaStore for T {}

        /// The role traits, for calling store methods on a concrete store.
        pub mod prelude {
            pub use crate::{MetaStore, $($role),+};
        }
    };
}

meta_store! {
    /// Persistence for buckets, objects, intents, multipart state, the cleanup
    /// queue, jobs and generated credentials: every role trait at once. Every
    /// method is one transaction (or one statement). Callers hold a
    /// `&dyn MetaStore` or an `Arc<dyn MetaStore>` and call any role's methods
    /// on it; on a concrete store, bring the roles into scope with
    /// `use strata_store::prelude::*`.
    Identity, Catalog, Objects, Multipart, Cleanup, Replication, Rewrite, Placement, Usage, Blobs, Jobs, Delta,
    Reconcile, Leadership,
}
