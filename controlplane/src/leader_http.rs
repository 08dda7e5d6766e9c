//! The control plane's small HTTP endpoint (`control_plane.http_listen`):
//! `/health`, `/metrics` (Prometheus text of the process-wide registry:
//! `strata_cp_rpc_seconds`, `strata_cp_is_leader`, ...; see [`crate::metrics`]) and `/leader` (whether this
//! process leads, its term and the leader's URL, as JSON).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::leader::Elector;

/// Serves until `shutdown` resolves. `elector` is `None` under SQLite, where
/// this process always leads with term 1.
pub async fn serve(
    listener: TcpListener,
    elector: Option<Arc<Elector>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/leader", get(leader))
        .with_state(elector);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn metrics() -> impl IntoResponse {
    let body = strata_core::metrics::render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn leader(State(elector): State<Option<Arc<Elector>>>) -> impl IntoResponse {
    let v = match elector {
        Some(e) => serde_json::json!({
            "is_leader": e.is_leader(),
            "term": e.term(),
            "leader_url": e.leader_url(),
            "holder": e.holder(),
        }),
        None => serde_json::json!({ "is_leader": true, "term": 1, "leader_url": null, "holder": "sqlite" }),
    };
    ([(header::CONTENT_TYPE, "application/json")], format!("{v}\n"))
}
