//! Delta compression as the control plane runs it: deltaspace policy,
//! references and their reference counts, per-object decisions and the report.
//! (Being built; see docs/delta.md.)

use strata_core::{CpError, CpResult};

pub(crate) fn not_yet<T>() -> CpResult<T> {
    Err(CpError::Internal("delta compression is not available yet".into()))
}
