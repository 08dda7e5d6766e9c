//! `strata jobs`: list every background job's cluster-wide status (from the
//! shared schedule the workers write), cancel or start any of them, and
//! start, pause or cancel the resumable jobs (encrypt-existing,
//! decrypt-existing; re-wrap and scrub report their progress here too).
//! It goes through the control plane's `Admin` service (see
//! `crate::admin_client`), which writes the job's row; the worker that owns
//! the job picks the change up on its next cycle, and a run that was
//! interrupted resumes from its saved cursor.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strata_core::{CONTROL_CANCELLED, JobProgress, JobSchedule};

use crate::admin_client::{Access, shown};

#[derive(Args)]
pub struct JobsArgs {
    /// YAML config file (for the `database:` section and `data_dir`).
    #[arg(long, env = "STRATA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: JobAction,
}

#[derive(Subcommand)]
pub enum JobAction {
    /// Show every job's state, schedule and progress.
    List,
    /// Start a job, or resume a paused one from where it stopped.
    Start { name: String },
    /// Stop a running job after the object in hand; `start` resumes it.
    Pause { name: String },
    /// Stop a job: a background job stops on every worker (a running cycle
    /// is interrupted) until `start`; a resumable job's next `start` begins a
    /// new run.
    Cancel { name: String },
}

pub fn main(args: JobsArgs) -> ExitCode {
    let config = match crate::cli::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&config, args.action)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &strata_core::config::Config, action: JobAction) -> Result<String, String> {
    let access = match action {
        JobAction::List => Access::Read,
        _ => Access::Change,
    };
    let cp = crate::admin_client::connect(config, access).await?;
    let (name, outcome) = match action {
        JobAction::List => {
            let jobs = cp.list_jobs().await.map_err(shown)?;
            let now = strata_controlplane::now_ms();
            return Ok(format!(
                "{}\n{}",
                schedule_table(&jobs.schedules, now),
                table(&jobs.progress)
            ));
        }
        JobAction::Start { name } => (name.clone(), cp.start_job(&name).await),
        JobAction::Pause { name } => (name.clone(), cp.pause_job(&name).await),
        JobAction::Cancel { name } => (name.clone(), cp.cancel_job(&name).await),
    };
    Ok(format!("{name}: {}\n", outcome.map_err(shown)?))
}

/// The background jobs' cluster-wide status, from the shared schedule.
fn schedule_table(jobs: &[JobSchedule], now: i64) -> String {
    let ago = |ms: Option<i64>| ms.map_or("-".to_owned(), |t| format!("{}s ago", (now - t).max(0) / 1000));
    let mut out = format!(
        "{:<18} {:<10} {:>7} {:>7} {:>6} {:>14} {:>9}  {:<24} last error\n",
        "background job", "state", "runs", "errors", "fails", "last success", "next in", "holder"
    );
    for j in jobs {
        let state = if j.control == CONTROL_CANCELLED {
            CONTROL_CANCELLED
        } else {
            &j.state
        };
        let next = if j.next_run_ms == i64::MAX {
            "-".to_owned()
        } else {
            format!("{}s", (j.next_run_ms - now).max(0) / 1000)
        };
        out.push_str(&format!(
            "{:<18} {:<10} {:>7} {:>7} {:>6} {:>14} {:>9}  {:<24} {}\n",
            j.name,
            state,
            j.runs,
            j.errors,
            j.consecutive_failures,
            ago(j.last_success_ms),
            next,
            j.holder,
            j.last_error.as_deref().unwrap_or("")
        ));
    }
    out
}

fn table(jobs: &[JobProgress]) -> String {
    let mut out = format!(
        "{:<18} {:<10} {:>10} {:>10} {:>8}  detail\n",
        "job", "state", "done", "total", "errors"
    );
    for j in jobs {
        out.push_str(&format!(
            "{:<18} {:<10} {:>10} {:>10} {:>8}  {}\n",
            j.name, j.state, j.done, j.total, j.errors, j.detail
        ));
    }
    out
}
