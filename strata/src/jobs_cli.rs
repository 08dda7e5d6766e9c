//! `strata jobs`: start, pause, cancel and list the resumable jobs
//! (encrypt-existing, decrypt-existing; re-wrap and scrub report here too).
//! It writes the job's row in the metadata store; the worker that owns the
//! job picks the change up on its next cycle, and a run that was interrupted
//! resumes from its saved cursor.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strata_store::JobProgress;

/// Jobs an operator may start.
pub const STARTABLE: [&str; 2] = ["encrypt-existing", "decrypt-existing"];

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
    /// Show every job's state and progress.
    List,
    /// Start a job, or resume a paused one from where it stopped.
    Start { name: String },
    /// Stop a running job after the object in hand; `start` resumes it.
    Pause { name: String },
    /// Stop a job for good; a later `start` begins a new run.
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
    let store = crate::roles::open_store(config).await?;
    let now = strata_controlplane::now_ms();
    let err = |e: strata_core::CpError| format!("metadata store: {e}");
    let startable = |name: &str| {
        if STARTABLE.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "`{name}` cannot be started by hand; jobs: {}",
                STARTABLE.join(", ")
            ))
        }
    };
    let (name, state) = match action {
        JobAction::List => return Ok(table(&store.list_jobs().await.map_err(err)?)),
        JobAction::Start { name } => {
            startable(&name)?;
            (name, "running")
        }
        JobAction::Pause { name } => (name, "paused"),
        JobAction::Cancel { name } => (name, "cancelled"),
    };
    let existing = store.get_job(&name).await.map_err(err)?;
    let job = match (existing, state) {
        // A paused run resumes where it stopped; anything else starts afresh.
        (Some(j), "running") if j.state == "paused" || j.state == "running" => JobProgress {
            state: state.into(),
            updated_ms: now,
            ..j
        },
        (_, "running") => JobProgress {
            name: name.clone(),
            state: state.into(),
            updated_ms: now,
            ..Default::default()
        },
        (Some(j), _) => JobProgress {
            state: state.into(),
            updated_ms: now,
            ..j
        },
        (None, _) => return Err(format!("job `{name}` has never run")),
    };
    store.put_job(&job).await.map_err(err)?;
    Ok(format!("{name}: {state}\n"))
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
