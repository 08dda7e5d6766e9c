//! The jobs for `strata jobs`: the background jobs' shared schedule, where
//! `cancelled` stops a job on every worker until started again, and the
//! progress rows of the resumable jobs (encrypt-existing, decrypt-existing),
//! which start, pause and cancel; a paused run resumes from its cursor.

use strata_core::{CONTROL_CANCELLED, CpError, CpResult, JobProgress, JobsReport, STARTABLE_JOBS};

use crate::{ControlPlaneService, now_ms};

pub(super) async fn list(cp: &ControlPlaneService) -> CpResult<JobsReport> {
    Ok(JobsReport {
        progress: cp.store.list_jobs().await?,
        schedules: cp.store.list_job_schedules().await?,
    })
}

/// Puts job `name` in `state` (`running`, `paused` or `cancelled`); returns
/// what the operator is told happened.
/// Sets a job's control state and logs the change (every admin mutation is logged).
pub(super) async fn control(cp: &ControlPlaneService, name: &str, state: &str) -> CpResult<String> {
    let answer = set_control(cp, name, state).await;
    match &answer {
        Ok(result) => tracing::info!(job = name, state, result = %result, "job control changed by an operator"),
        Err(error) => tracing::info!(job = name, state, %error, "job control change refused"),
    }
    answer
}

async fn set_control(cp: &ControlPlaneService, name: &str, state: &str) -> CpResult<String> {
    let store = &cp.store;
    let now = now_ms();
    // A scheduled (background) job: cancel stops it on every worker, start
    // lets it run again.
    let scheduled = store.get_job_schedule(name).await?.is_some();
    if scheduled && state != "paused" {
        let control = if state == "cancelled" { CONTROL_CANCELLED } else { "" };
        store.set_job_control(name, control, now).await?;
    }
    let existing = store.get_job(name).await?;
    let job = match (existing, state) {
        (_, "running") if !STARTABLE_JOBS.contains(&name) => {
            return if scheduled {
                Ok("started".into())
            } else {
                Err(CpError::InvalidArgument(format!(
                    "`{name}` cannot be started by hand; jobs: {}",
                    STARTABLE_JOBS.join(", ")
                )))
            };
        }
        // A paused run resumes where it stopped; anything else starts afresh.
        (Some(j), "running") if j.state == "paused" || j.state == "running" => JobProgress {
            state: state.into(),
            updated_ms: now,
            ..j
        },
        (_, "running") => JobProgress {
            name: name.to_owned(),
            state: state.into(),
            updated_ms: now,
            ..Default::default()
        },
        (Some(j), _) => JobProgress {
            state: state.into(),
            updated_ms: now,
            ..j
        },
        (None, "cancelled") if scheduled => return Ok("cancelled".into()),
        (None, _) => return Err(CpError::InvalidArgument(format!("job `{name}` has never run"))),
    };
    store.put_job(&job).await?;
    Ok(state.to_owned())
}
