//! `strata backends`: list the backends with their persisted state, start or
//! cancel a drain, and remove or purge a backend. It works on the metadata
//! store named by the config's `database:` section; control planes pick a
//! state change up within a second or two, the worker's drain job on its
//! next cycle.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use strata_core::config::Config;
use strata_store::{BackendState, BackendStateRecord, JobProgress, MetaStore};
use strata_workers::{
    PurgePreview, drain_progress_name, purge_token, remove_backend, sole_copy_examples, verify_purge_token,
};

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

fn err(e: strata_core::CpError) -> String {
    format!("metadata store: {e}")
}

fn who() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// The configured backend ids, then those only the store knows.
async fn ids(config: &Config, store: &dyn MetaStore) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = config.effective_backends().iter().map(|b| b.id().to_owned()).collect();
    for s in store.backend_states().await.map_err(err)? {
        if !ids.contains(&s.backend_id) {
            ids.push(s.backend_id);
        }
    }
    Ok(ids)
}

fn known(ids: &[String], id: &str) -> Result<(), String> {
    if ids.iter().any(|i| i == id) {
        Ok(())
    } else {
        Err(format!("no backend `{id}`; backends: {}", ids.join(", ")))
    }
}

async fn state_of(store: &dyn MetaStore, id: &str) -> Result<BackendStateRecord, String> {
    let states = store.backend_states().await.map_err(err)?;
    Ok(states
        .into_iter()
        .find(|s| s.backend_id == id)
        .unwrap_or(BackendStateRecord {
            backend_id: id.to_owned(),
            ..Default::default()
        }))
}

async fn run(config: &Config, action: BackendAction) -> Result<String, String> {
    let store: Arc<dyn MetaStore> = crate::roles::open_store(config).await?;
    let now = strata_controlplane::now_ms();
    let ids = ids(config, store.as_ref()).await?;
    match action {
        BackendAction::List => list(store.as_ref(), &ids).await,
        BackendAction::Status { id } => {
            let which = match id {
                Some(id) => {
                    known(&ids, &id)?;
                    vec![id]
                }
                None => ids,
            };
            let mut out = String::new();
            for id in which {
                out.push_str(&status(store.as_ref(), &id).await?);
            }
            Ok(out)
        }
        BackendAction::Drain { id, reason } => {
            known(&ids, &id)?;
            let rec = BackendStateRecord {
                backend_id: id.clone(),
                state: BackendState::Draining,
                since_ms: now,
                changed_by: who(),
                reason,
            };
            if !(store
                .set_backend_state(&rec, &[BackendState::Active, BackendState::Drained])
                .await)
                .map_err(err)?
            {
                let cur = state_of(store.as_ref(), &id).await?;
                return Err(format!(
                    "backend `{id}` is {}; only an active or drained backend can be drained",
                    cur.state.as_str()
                ));
            }
            let progress = JobProgress {
                name: drain_progress_name(&id),
                state: "running".into(),
                updated_ms: now,
                detail: "waiting for the worker".into(),
                ..Default::default()
            };
            store.put_job(&progress).await.map_err(err)?;
            let h = store.backend_holdings(&id).await.map_err(err)?;
            tracing::info!(backend = %id, by = %rec.changed_by, "drain started");
            Ok(format!(
                "{id}: draining; new writes avoid it, the worker's drain job moves {} objects ({} bytes) off it\n",
                h.objects, h.segment_bytes
            ))
        }
        BackendAction::Undrain { id } => {
            known(&ids, &id)?;
            let rec = BackendStateRecord {
                backend_id: id.clone(),
                state: BackendState::Active,
                since_ms: now,
                changed_by: who(),
                reason: "undrained".into(),
            };
            if !(store
                .set_backend_state(&rec, &[BackendState::Draining, BackendState::Drained])
                .await)
                .map_err(err)?
            {
                let cur = state_of(store.as_ref(), &id).await?;
                return Err(format!(
                    "backend `{id}` is {}, not draining or drained",
                    cur.state.as_str()
                ));
            }
            if let Some(mut p) = store.get_job(&drain_progress_name(&id)).await.map_err(err)?
                && p.state == "running"
            {
                p.state = "cancelled".into();
                p.updated_ms = now;
                store.put_job(&p).await.map_err(err)?;
            }
            Ok(format!("{id}: active; it takes writes again\n"))
        }
        BackendAction::Remove { id, force } => {
            known(&ids, &id)?;
            let h = store.backend_holdings(&id).await.map_err(err)?;
            if h.sole_copy_objects > 0 && !force {
                let examples = sole_copy_examples(store.as_ref(), &id, 10).await?;
                return Err(format!(
                    "{} objects would lose their last copy if backend `{id}` were removed (e.g. {}); drain it first \
                     (`strata backends drain {id}`), or pass --force to delete those objects",
                    h.sole_copy_objects,
                    examples.join(", ")
                ));
            }
            let done = remove_backend(&store, &id, None, &who(), now).await?;
            Ok(format!(
                "{id}: removed; dropped {} copies, deleted {} objects, forgot {} queued blobs (bytes left on the backend)\n",
                done.copies_dropped, done.objects_deleted, done.rows_forgotten
            ))
        }
        BackendAction::Purge { id, confirm } => purge(config, &store, &ids, &id, confirm, now).await,
    }
}

async fn purge(
    config: &Config,
    store: &Arc<dyn MetaStore>,
    ids: &[String],
    id: &str,
    confirm: Option<String>,
    now: i64,
) -> Result<String, String> {
    known(ids, id)?;
    let secret = (config.cluster.secret.as_deref()).ok_or_else(|| {
        "purge tokens are signed with cluster.secret; set it (at least 32 characters, e.g. `openssl rand -hex 32`)"
            .to_owned()
    })?;
    let h = store.backend_holdings(id).await.map_err(err)?;
    let preview = PurgePreview::of(&h);
    let Some(token) = confirm else {
        let token = purge_token(secret, id, &preview, now);
        return Ok(format!(
            "PREVIEW: purging backend `{id}` would delete {} blobs ({} bytes) from it and {} objects whose only copy \
             is there ({} objects hold a copy on it; the others keep their copies elsewhere).\n\
             To go ahead within 10 minutes, run:\n  strata backends purge {id} --confirm {token}\n",
            preview.blobs, preview.bytes, preview.objects, h.objects
        ));
    };
    verify_purge_token(secret, id, &preview, &token, now)?;
    let backends = strata_backend::Backends::open(&config.effective_backends()).await?;
    let done = remove_backend(store, id, Some(&backends), &who(), now).await?;
    Ok(format!(
        "{id}: purged; deleted {} blobs from it and {} objects, dropped {} copies\n",
        done.blobs_deleted, done.objects_deleted, done.copies_dropped
    ))
}

async fn list(store: &dyn MetaStore, ids: &[String]) -> Result<String, String> {
    let states = store.backend_states().await.map_err(err)?;
    let mut out = format!(
        "{:<16} {:<9} {:>9} {:>14}  since / by / reason\n",
        "backend", "state", "objects", "bytes"
    );
    for id in ids {
        let s = states.iter().find(|s| s.backend_id == *id);
        let h = store.backend_holdings(id).await.map_err(err)?;
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
    Ok(out)
}

async fn status(store: &dyn MetaStore, id: &str) -> Result<String, String> {
    let s = state_of(store, id).await?;
    let h = store.backend_holdings(id).await.map_err(err)?;
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
    if let Some(p) = store.get_job(&drain_progress_name(id)).await.map_err(err)? {
        let _ = writeln!(
            out,
            "  drain: {}, moved {} of {}; {}",
            p.state, p.done, p.total, p.detail
        );
    }
    Ok(out)
}
