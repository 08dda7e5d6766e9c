//! The worker role's HTTP endpoint: `/health`, `/ready` (the store answers),
//! `/metrics` (Prometheus text of the process-wide registry) and
//! `/status/jobs` (every job's cluster-wide status from the shared schedule),
//! plus `POST /status/jobs/{name}/cancel` and `/start` for operators.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use strata_store::{CONTROL_CANCELLED, JobSchedule, MetaStore};
use tokio::net::TcpListener;

#[derive(Clone)]
struct Ctx {
    store: Arc<dyn MetaStore>,
    /// The jobs this worker runs, with their periods (shown even before
    /// their first cycle).
    jobs: Arc<Vec<(&'static str, Duration)>>,
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn MetaStore>,
    jobs: Vec<(&'static str, Duration)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ctx = Ctx {
        store,
        jobs: Arc::new(jobs),
    };
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/status/jobs", get(list_jobs))
        .route("/status/jobs/{name}/cancel", post(cancel))
        .route("/status/jobs/{name}/start", post(start))
        .with_state(ctx);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut body = serde_json::to_string_pretty(v).unwrap_or_default();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn ready(State(ctx): State<Ctx>) -> Response {
    match ctx.store.list_job_schedules().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("metadata store: {e}\n")).into_response(),
    }
}

async fn metrics() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        strata_core::metrics::render(),
    )
        .into_response()
}

/// One job as `/status/jobs` shows it (`period`: of this worker's runner).
pub fn job_json(j: &JobSchedule, period: Option<Duration>) -> serde_json::Value {
    let state = if j.control == CONTROL_CANCELLED && j.state != "running" {
        CONTROL_CANCELLED
    } else {
        j.state.as_str()
    };
    serde_json::json!({
        "name": j.name,
        "state": state,
        "holder": j.holder,
        "runs": j.runs,
        "errors": j.errors,
        "consecutive_failures": j.consecutive_failures,
        "last_success": j.last_success_ms,
        "last_error": j.last_error,
        "last_run": j.last_run_ms,
        "next_run": j.next_run_ms,
        "control": j.control,
        "period_ms": period.map(|p| p.as_millis()),
    })
}

async fn list_jobs(State(ctx): State<Ctx>) -> Response {
    match ctx.store.list_job_schedules().await {
        Ok(rows) => {
            let period = |name: &str| ctx.jobs.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
            let mut list: Vec<serde_json::Value> = rows.iter().map(|r| job_json(r, period(&r.name))).collect();
            for (name, p) in ctx.jobs.iter().filter(|(n, _)| !rows.iter().any(|r| r.name == *n)) {
                let never = JobSchedule {
                    name: (*name).into(),
                    state: "idle".into(),
                    ..Default::default()
                };
                list.push(job_json(&never, Some(*p)));
            }
            json(StatusCode::OK, &serde_json::Value::Array(list))
        }
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "error": format!("metadata store: {e}") }),
        ),
    }
}

async fn control(ctx: &Ctx, name: &str, value: &str) -> Response {
    let now = crate::system_clock()();
    match ctx.store.set_job_control(name, value, now).await {
        Ok(true) => {
            tracing::info!(job = name, control = value, "job control set over HTTP");
            let state = if value.is_empty() { "started" } else { value };
            json(StatusCode::OK, &serde_json::json!({ "name": name, "state": state }))
        }
        Ok(false) => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("job `{name}` has never run; see GET /status/jobs") }),
        ),
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "error": format!("metadata store: {e}") }),
        ),
    }
}

async fn cancel(State(ctx): State<Ctx>, Path(name): Path<String>) -> Response {
    control(&ctx, &name, CONTROL_CANCELLED).await
}

async fn start(State(ctx): State<Ctx>, Path(name): Path<String>) -> Response {
    control(&ctx, &name, "").await
}
