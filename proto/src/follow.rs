//! Following the control-plane leader from a data plane (docs/leadership.md).
//!
//! The client knows a list of control-plane URLs and sends each call to the
//! one that last answered as leader. A follower answers "not leader" with
//! the leader's URL (`x-strata-leader`): the call moves there. A URL that
//! cannot be connected to: the call moves to the next one. Both mean the
//! call was never executed, so it is safe to send again. Any other failure
//! of a call that changes state is returned as it is (the call may have
//! executed: sending it again elsewhere could apply it twice); read-only
//! calls are retried on any transport failure. When no control plane leads
//! within a short budget the call fails with `CpError::Unavailable`, which
//! the S3 front answers with a retryable 503 SlowDown.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;
use strata_core::{CpError, CpResult};
use tonic::transport::{Channel, Endpoint};
use tonic::{Response, Status};

use crate::auth::TokenSource;
use crate::error::from_status;
use crate::server::LEADER_HEADER;

/// How long one call keeps looking for a leader before it gives up.
const BUDGET: Duration = Duration::from_millis(2500);
/// Pause after every URL was tried without success.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

static REDIRECTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    strata_core::metrics::counter_vec(
        "strata_cp_client_redirects_total",
        "Control-plane calls a data plane sent again elsewhere, by reason (not_leader, unreachable, read_retry)",
        &["reason"],
    )
});

/// A connection to one control plane, shared by the clients of its services
/// (`CatalogClient::new(channel)`, ...).
type Client = Channel;

/// The known control planes, and which one leads as far as we know.
pub(crate) struct Endpoints {
    clients: Mutex<Vec<(String, Client)>>,
    current: AtomicUsize,
}

fn client_for(url: &str) -> Result<Client, String> {
    if !url.starts_with("http://") {
        return Err(format!("control-plane URL must start with http://, got {url:?}"));
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("invalid control-plane URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(60)))
        // Short pings: a control plane that hangs (paused, partitioned) fails
        // its connection within seconds instead of holding calls for `timeout`.
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(3))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// Whether the call certainly never reached a control plane: the connection
/// could not be made.
fn never_sent(s: &Status) -> bool {
    if s.metadata().get(crate::ERROR_HEADER).is_some() {
        return false;
    }
    let msg = crate::error::transport_message(s).to_ascii_lowercase();
    [
        "connect error",
        "error trying to connect",
        "connection refused",
        "dns error",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

/// A status from the transport, not from a control plane.
fn transport_failure(s: &Status) -> bool {
    s.metadata().get(crate::ERROR_HEADER).is_none()
        && matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        )
}

impl Endpoints {
    pub(crate) fn new(urls: &[String]) -> Result<Endpoints, String> {
        if urls.is_empty() {
            return Err("no control-plane URL given".into());
        }
        let clients = urls
            .iter()
            .map(|u| client_for(u).map(|c| (u.clone(), c)))
            .collect::<Result<Vec<_>, _>>()?;
        LazyLock::force(&REDIRECTS);
        Ok(Endpoints {
            clients: Mutex::new(clients),
            current: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Client)>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn at(&self, i: usize) -> (String, Client) {
        let list = self.lock();
        let (u, c) = &list[i % list.len()];
        (u.clone(), c.clone())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The index of `url`, added when a follower names a leader we did not know.
    fn index_of(&self, url: &str) -> Option<usize> {
        let mut list = self.lock();
        if let Some(i) = list.iter().position(|(u, _)| u == url) {
            return Some(i);
        }
        let c = client_for(url).ok()?;
        tracing::info!(
            leader = url,
            "a follower named a control-plane leader not configured here; using it"
        );
        list.push((url.to_owned(), c));
        Some(list.len() - 1)
    }

    /// Runs one call (`send` builds and sends it on the given client),
    /// following the leader. `read_only` calls are also retried after
    /// transport failures that happened after sending.
    pub(crate) async fn run<R, F, Fut>(&self, token: &TokenSource, read_only: bool, send: F) -> CpResult<R>
    where
        F: Fn(Client, &TokenSource) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let start = Instant::now();
        let mut i = self.current.load(Ordering::Relaxed);
        let mut failed_in_row = 0;
        loop {
            let (url, client) = self.at(i);
            let status = match send(client, token).await {
                Ok(r) => {
                    self.current.store(i % self.len(), Ordering::Relaxed);
                    return Ok(r.into_inner());
                }
                Err(s) => s,
            };
            let (next, last) = if let Some(leader) = status.metadata().get(LEADER_HEADER).and_then(|v| v.to_str().ok())
            {
                REDIRECTS.with_label_values(&["not_leader"]).inc();
                let next = match self.index_of(leader) {
                    Some(j) if leader != url => j,
                    _ => i + 1,
                };
                (next, format!("{url} is not the leader (it names {leader})"))
            } else if status.metadata().get(crate::ERROR_HEADER).is_some()
                && status.code() == tonic::Code::Unavailable
                && status.message().contains("not the leader")
            {
                REDIRECTS.with_label_values(&["not_leader"]).inc();
                (i + 1, format!("{url}: {}", status.message()))
            } else if never_sent(&status) {
                REDIRECTS.with_label_values(&["unreachable"]).inc();
                (i + 1, format!("{url}: {}", crate::error::transport_message(&status)))
            } else if read_only && transport_failure(&status) {
                REDIRECTS.with_label_values(&["read_retry"]).inc();
                (i + 1, format!("{url}: {}", crate::error::transport_message(&status)))
            } else {
                return Err(from_status(&status));
            };
            tracing::debug!(from = %url, reason = %last, "control-plane call moves on");
            failed_in_row += 1;
            if start.elapsed() >= BUDGET {
                return Err(CpError::Unavailable(format!(
                    "no control-plane leader answered within {} ms; last: {last}",
                    BUDGET.as_millis()
                )));
            }
            if failed_in_row % self.len() == 0 {
                tokio::time::sleep(ROUND_PAUSE).await;
            }
            i = next;
        }
    }
}
