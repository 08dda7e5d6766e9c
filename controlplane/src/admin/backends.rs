//! The backends' lifecycle for `strata backends`: list them with their
//! state and holdings, start or cancel a drain. Control planes pick a state
//! change up within `STATES_TTL`, the worker's drain job on its next cycle.

use strata_core::{
    BackendHoldings, BackendReport, BackendState, BackendStateRecord, CpError, CpResult, JobProgress,
    drain_progress_name, unknown_backend,
};
use strata_store::MetaStore;

use crate::{ControlPlaneService, now_ms};

/// The configured backend ids (configuration order), then those only the
/// store knows.
pub(super) async fn ids(cp: &ControlPlaneService) -> CpResult<Vec<String>> {
    let mut ids: Vec<String> = cp.placement.backends().iter().map(|b| b.id.clone()).collect();
    for s in cp.store.backend_states().await? {
        if !ids.contains(&s.backend_id) {
            ids.push(s.backend_id);
        }
    }
    Ok(ids)
}

/// `Ok` when `id` is a backend the config or the store knows.
pub(super) async fn known(cp: &ControlPlaneService, id: &str) -> CpResult<()> {
    let ids = ids(cp).await?;
    if ids.iter().any(|i| i == id) {
        Ok(())
    } else {
        Err(unknown_backend(id, &ids))
    }
}

/// The persisted state of `id` (active when it has no row).
async fn state_of(store: &dyn MetaStore, id: &str) -> CpResult<BackendStateRecord> {
    let states = store.backend_states().await?;
    Ok(states
        .into_iter()
        .find(|s| s.backend_id == id)
        .unwrap_or(BackendStateRecord {
            backend_id: id.to_owned(),
            ..Default::default()
        }))
}

pub(super) async fn list(cp: &ControlPlaneService) -> CpResult<Vec<BackendReport>> {
    let states = cp.store.backend_states().await?;
    let mut out = Vec::new();
    for id in ids(cp).await? {
        out.push(BackendReport {
            state: states.iter().find(|s| s.backend_id == id).cloned(),
            holdings: cp.store.backend_holdings(&id).await?,
            drain: cp.store.get_job(&drain_progress_name(&id)).await?,
            backend_id: id,
        });
    }
    Ok(out)
}

pub(super) async fn drain(cp: &ControlPlaneService, id: &str, by: &str, reason: &str) -> CpResult<BackendHoldings> {
    known(cp, id).await?;
    let now = now_ms();
    let rec = BackendStateRecord {
        backend_id: id.to_owned(),
        state: BackendState::Draining,
        since_ms: now,
        changed_by: by.to_owned(),
        reason: reason.to_owned(),
    };
    let allowed = [BackendState::Active, BackendState::Drained];
    if !cp.store.set_backend_state(&rec, &allowed).await? {
        let cur = state_of(&*cp.store, id).await?;
        return Err(CpError::InvalidArgument(format!(
            "backend `{id}` is {}; only an active or drained backend can be drained",
            cur.state.as_str()
        )));
    }
    let progress = JobProgress {
        name: drain_progress_name(id),
        state: "running".into(),
        updated_ms: now,
        detail: "waiting for the worker".into(),
        ..Default::default()
    };
    cp.store.put_job(&progress).await?;
    tracing::info!(backend = %id, by, "drain started");
    cp.store.backend_holdings(id).await
}

pub(super) async fn undrain(cp: &ControlPlaneService, id: &str, by: &str) -> CpResult<()> {
    known(cp, id).await?;
    let now = now_ms();
    let rec = BackendStateRecord {
        backend_id: id.to_owned(),
        state: BackendState::Active,
        since_ms: now,
        changed_by: by.to_owned(),
        reason: "undrained".into(),
    };
    let allowed = [BackendState::Draining, BackendState::Drained];
    if !cp.store.set_backend_state(&rec, &allowed).await? {
        let cur = state_of(&*cp.store, id).await?;
        return Err(CpError::InvalidArgument(format!(
            "backend `{id}` is {}, not draining or drained",
            cur.state.as_str()
        )));
    }
    if let Some(mut p) = cp.store.get_job(&drain_progress_name(id)).await?
        && p.state == "running"
    {
        p.state = "cancelled".into();
        p.updated_ms = now;
        cp.store.put_job(&p).await?;
    }
    tracing::info!(backend = %id, by, "drain cancelled");
    Ok(())
}
