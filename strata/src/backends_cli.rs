//! `strata backends`: list the backends with their persisted state, start or
//! cancel a drain, and remove or purge a backend, through the control
//! plane's `Admin` service (see `crate::admin_client`); control planes pick a
//! state change up within a second or two, the worker's drain job on its
//! next cycle. A purge's byte deletion is done here, with the config's
//! backends (see `Admin::purge_backend`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strata_backend::BackendError;
use strata_core::config::Config;
use strata_core::{BackendReport, BackendStateRecord, ControlPlane, unknown_backend};

use crate::admin_client::{Access, shown, who};

#[derive(Args)]
pub struct BackendsArgs {
    /// YAML config file (for `database:`, `backends:` and `cluster.secret`).
    #[arg(long, env = "STRATA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: BackendAction,
}

#[derive(Subcommand)]
pub enum BackendAction {
    /// Every backend: state, objects and bytes the catalog holds on it.
    List,
    /// Stop new writes to a backend and move its copies elsewhere (persisted).
    Drain {
        id: String,
        /// Why (kept with the state).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Cancel a drain: the backend takes writes again.
    Undrain { id: String },
    /// State, holdings and drain progress of one backend, or of all.
    Status { id: Option<String> },
    /// Drop a backend's records from the catalog (its bytes stay on it).
    Remove {
        id: String,
        /// Also delete objects whose only copy is on the backend.
        #[arg(long)]
        force: bool,
    },
    /// Preview what deleting a backend's objects would remove; with
    /// `--confirm TOKEN` (from the preview), delete them and drop its records.
    Purge {
        id: String,
        #[arg(long)]
        confirm: Option<String>,
    },
}

pub fn main(args: BackendsArgs) -> ExitCode {
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

/// Blobs taken per `take_backend_blobs` call while purging.
const PURGE_BATCH: u32 = 256;

async fn run(config: &Config, action: BackendAction) -> Result<String, String> {
    let access = match action {
        BackendAction::List | BackendAction::Status { .. } => Access::Read,
        BackendAction::Purge { confirm: None, .. } => Access::Read,
        _ => Access::Change,
    };
    let cp = crate::admin_client::connect(config, access).await?;
    let backends = cp.list_backends().await.map_err(shown)?;
    let ids: Vec<String> = backends.iter().map(|b| b.backend_id.clone()).collect();
    match action {
        BackendAction::List => Ok(list(&backends)),
        BackendAction::Status { id } => {
            if let Some(id) = &id
                && !ids.contains(id)
            {
                return Err(shown(unknown_backend(id, &ids)));
            }
            let which = backends
                .iter()
                .filter(|b| id.as_ref().is_none_or(|i| *i == b.backend_id));
            Ok(which.map(status).collect())
        }
        BackendAction::Drain { id, reason } => {
            let h = cp.drain_backend(&id, &who(), &reason).await.map_err(shown)?;
            Ok(format!(
                "{id}: draining; new writes avoid it, the worker's drain job moves {} objects ({} bytes) off it\n",
                h.objects, h.segment_bytes
            ))
        }
        BackendAction::Undrain { id } => {
            cp.undrain_backend(&id, &who()).await.map_err(shown)?;
            Ok(format!("{id}: active; it takes writes again\n"))
        }
        BackendAction::Remove { id, force } => {
            let done = cp.remove_backend(&id, &who(), force).await.map_err(shown)?;
            Ok(format!(
                "{id}: removed; dropped {} copies, deleted {} objects, forgot {} queued blobs (bytes left on the backend)\n",
                done.copies_dropped, done.objects_deleted, done.rows_forgotten
            ))
        }
        BackendAction::Purge { id, confirm } => purge(config, cp.as_ref(), &id, confirm).await,
    }
}

/// Without a token: the preview. With one: the control plane drops the
/// backend's records, then the blobs it leaves queued are deleted from the
/// backend here.
async fn purge(config: &Config, cp: &dyn ControlPlane, id: &str, confirm: Option<String>) -> Result<String, String> {
    let Some(token) = confirm else {
        let plan = cp.purge_preview(id).await.map_err(shown)?;
        let p = plan.preview;
        return Ok(format!(
            "PREVIEW: purging backend `{id}` would delete {} blobs ({} bytes) from it and {} objects whose only copy \
             is there ({} objects hold a copy on it; the others keep their copies elsewhere).\n\
             To go ahead within 10 minutes, run:\n  strata backends purge {id} --confirm {}\n",
            p.blobs, p.bytes, p.objects, plan.objects_holding, plan.token
        ));
    };
    let backends = strata_backend::Backends::open(&config.effective_backends()).await?;
    let target = backends.get(id).cloned().ok_or_else(|| {
        format!("backend `{id}` is not in the config, so its bytes cannot be deleted; add it back to purge it")
    })?;
    let mut done = cp.purge_backend(id, &who(), &token).await.map_err(shown)?;
    loop {
        let items = cp.take_backend_blobs(id, PURGE_BATCH).await.map_err(shown)?;
        if items.is_empty() {
            break;
        }
        for it in items {
            match target.delete(&it.backend_key).await {
                Ok(()) | Err(BackendError::NotFound) => done.blobs_deleted += 1,
                Err(e) => tracing::warn!(backend = id, key = %it.backend_key, error = %e, "purge: delete failed"),
            }
        }
    }
    Ok(format!(
        "{id}: purged; deleted {} blobs from it and {} objects, dropped {} copies\n",
        done.blobs_deleted, done.objects_deleted, done.copies_dropped
    ))
}

fn list(backends: &[BackendReport]) -> String {
    let mut out = format!(
        "{:<16} {:<9} {:>9} {:>14}  since / by / reason\n",
        "backend", "state", "objects", "bytes"
    );
    for b in backends {
        let (id, s, h) = (&b.backend_id, b.state.as_ref(), &b.holdings);
        let state = s.map_or("active", |s| s.state.as_str());
        let since = s.map_or(String::new(), |s| {
            format!("{} / {} / {}", s.since_ms, s.changed_by, s.reason)
        });
        let _ = writeln!(
            out,
            "{id:<16} {state:<9} {:>9} {:>14}  {since}",
            h.objects, h.segment_bytes
        );
    }
    out
}

fn status(b: &BackendReport) -> String {
    let id = &b.backend_id;
    let s = b.state.clone().unwrap_or(BackendStateRecord {
        backend_id: id.clone(),
        ..Default::default()
    });
    let h = &b.holdings;
    let mut out = format!("backend {id}\n  state: {}\n", s.state.as_str());
    if s.since_ms > 0 {
        let _ = writeln!(
            out,
            "  since: {} ms, by {}, reason: {}",
            s.since_ms, s.changed_by, s.reason
        );
    }
    let _ = writeln!(
        out,
        "  holds: {} objects, {} segments, {} bytes; {} objects only there; {} multipart parts; {} queued blobs",
        h.objects, h.segments, h.segment_bytes, h.sole_copy_objects, h.parts, h.queued
    );
    if let Some(p) = &b.drain {
        let _ = writeln!(
            out,
            "  drain: {}, moved {} of {}; {}",
            p.state, p.done, p.total, p.detail
        );
    }
    out
}
