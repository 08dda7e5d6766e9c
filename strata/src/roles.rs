//! Wires the roles a process runs, and stops them together on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use strata_backend::Backends;
use strata_controlplane::{ControlPlaneService, Identity, Sealer};
use strata_core::ControlPlane;
use strata_core::config::{Config, DatabaseTarget, Role, scrub_secrets};
use strata_proto::{ClusterAuth, GrpcControlPlane};
use strata_store::{MetaStore, PgStore, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

struct Ready {
    cp: Option<Arc<GrpcControlPlane>>,
    local: Option<Arc<dyn MetaStore>>,
    backends: Backends,
}

#[async_trait::async_trait]
impl strata_dataplane::Readiness for Ready {
    async fn ready(&self) -> Result<(), String> {
        if let Some(cp) = &self.cp {
            cp.check_ready().await.map_err(|e| format!("control plane: {e}"))?;
        }
        if let Some(store) = &self.local {
            store.list_buckets().await.map_err(|e| format!("metadata store: {e}"))?;
        }
        for b in self.backends.all() {
            b.check().await.map_err(|e| format!("backend {}: {e}", b.id()))?;
        }
        Ok(())
    }
}

fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}

async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn bind(addr: std::net::SocketAddr, what: &str, field: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for {what} on {addr}: {e}; free the port or change `{field}`"))
}

fn print_bootstrap(key: &str, secret: &str) {
    println!("========================================================================");
    println!("Strata created a development credential. It is shown only this once:");
    println!();
    println!("  AWS_ACCESS_KEY_ID={key}");
    println!("  AWS_SECRET_ACCESS_KEY={secret}");
    println!();
    println!("WARNING: this is a development setup (one unrestricted key, SQLite and");
    println!("local disk under ./strata-data). Configure credentials, backends and a");
    println!("cluster secret before production use; see README.md.");
    println!("========================================================================");
}

/// Opens the metadata store `database:` names: SQLite or PostgreSQL. Errors
/// name the field to check and never contain the password.
pub async fn open_store(config: &Config) -> Result<Arc<dyn MetaStore>, String> {
    let target = config.database_target();
    tracing::info!(store = %target, "opening the metadata store");
    match &target {
        DatabaseTarget::Sqlite { url } => match SqliteStore::connect(url).await {
            Ok(s) => Ok(Arc::new(s)),
            Err(e) => Err(format!(
                "cannot open the metadata store {target}: {e}; check `database.url` and `data_dir`"
            )),
        },
        DatabaseTarget::Postgres { url, max_connections } => match PgStore::connect(url, *max_connections).await {
            Ok(s) => Ok(Arc::new(s)),
            Err(e) => {
                let field = if config.database.url.is_some() {
                    "`database.url`"
                } else {
                    "`database.host`, `database.port`, `database.user`, `database.password` and `database.dbname`"
                };
                let probe = probe_tcp(url).await.map(|p| format!(" ({p})")).unwrap_or_default();
                Err(scrub_secrets(
                    &format!(
                        "cannot open the metadata store, {target}: {e}{probe}; is the server running and \
                         reachable? check {field}"
                    ),
                    &config.database,
                ))
            }
        },
    }
}

/// After a failed connect: the reason a plain TCP connection to the server
/// fails, if it does (the pool itself only reports a timeout). `None` for
/// Unix sockets or when TCP works (then the failure is in PostgreSQL itself).
async fn probe_tcp(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() || rest.contains("host=") {
        return None;
    }
    let has_port = hostport
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok());
    let addr = if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("TCP connect to {addr}: {e}")),
        Err(_) => Some(format!("TCP connect to {addr}: timed out")),
    }
}

pub async fn run(config: Config, role: Role) -> Result<(), String> {
    let shutdown = shutdown_signal();
    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    let auth = config.cluster.secret.as_deref().map(ClusterAuth::new);

    let mut local_store: Option<Arc<dyn MetaStore>> = None;
    let mut sealer: Option<Arc<Sealer>> = None;
    let mut local_guard: Option<Arc<strata_dataplane::Guard>> = None;
    let mut in_process: Option<Arc<dyn ControlPlane>> = None;
    if role.runs_controlplane() {
        let store = open_store(&config).await?;
        let identity = Identity::new(&config.credentials, store.clone());
        if let Some(b) = identity
            .bootstrap()
            .await
            .map_err(|e| format!("cannot create the development credential: {e}"))?
        {
            print_bootstrap(&b.access_key_id, &b.secret_access_key);
        }
        let (backends, placement) = (config.effective_backends(), config.placement.clone());
        let modes: Vec<_> = backends.iter().map(|b| (b.id().to_owned(), b.encryption())).collect();
        let loaded = Sealer::from_config(&config.encryption, &modes).map_err(|e| format!("encryption: {e}"))?;
        if let Some(id) = loaded.primary_key_id() {
            tracing::info!(primary_key = id, "encryption keys loaded");
        }
        let loaded = Arc::new(loaded);
        sealer = Some(loaded.clone());
        let service = ControlPlaneService::new(store.clone(), identity, &backends, placement)
            .with_usage_flush_secs(config.resilience.usage.flush_secs)
            .with_sealer(loaded)
            .with_delta(config.delta.clone())
            .with_purge_secret(config.cluster.secret.clone());
        // Leadership (docs/leadership.md): under PostgreSQL an elector takes the
        // lease; the service then plans under its term and its writes are fenced.
        let elector = strata_controlplane::leader::elector_for(&config, &store);
        let service = match &elector {
            Some(e) => e.lead(service),
            None => service,
        };
        if let Some(e) = elector.clone() {
            let stop = shutdown.clone();
            tasks.spawn(async move {
                e.run(wait(stop)).await;
                Ok(())
            });
        }
        let cp: Arc<dyn ControlPlane> = Arc::new(service);
        if let Some(addr) = config.control_plane.http_listen {
            let listener = bind(addr, "the control plane's HTTP", "control_plane.http_listen").await?;
            let (e, stop) = (elector.clone(), shutdown.clone());
            tracing::info!(%addr, "control plane HTTP (/health, /metrics, /leader) listening");
            tasks.spawn(async move {
                strata_controlplane::leader_http::serve(listener, e, wait(stop))
                    .await
                    .map_err(|e| format!("control plane HTTP: {e}"))
            });
        }
        // Degraded mode: a breaker around the database, cached lookups while it is down.
        let cp: Arc<dyn ControlPlane> = strata_controlplane::Degraded::wrap(cp, &config.degraded);
        if let Some(addr) = config.control_plane.listen {
            let listener = bind(addr, "gRPC", "control_plane.listen").await?;
            let auth = auth.clone().ok_or("cluster.secret is required to serve gRPC")?;
            tracing::info!(%addr, "control plane gRPC listening");
            let (cp2, stop) = (cp.clone(), shutdown.clone());
            let gate = elector.map(|e| e as Arc<dyn strata_core::LeaderGate>);
            strata_controlplane::metrics::register_rpc();
            let observe = strata_controlplane::metrics::observe_rpc;
            tasks.spawn(async move {
                strata_proto::serve_gated(listener, cp2, auth, gate, Some(observe), wait(stop))
                    .await
                    .map_err(|e| format!("gRPC server: {e}"))
            });
        }
        local_store = Some(store);
        in_process = Some(cp);
    }

    let mut opened: Option<Backends> = None;
    if role.runs_dataplane() {
        let backends = Backends::open(&config.effective_backends()).await?;
        let (cp, remote): (Arc<dyn ControlPlane>, _) = match in_process.clone() {
            Some(cp) => (cp, None),
            None => {
                // Every control plane given; calls follow the leader (docs/leadership.md).
                let urls = config.control_plane.endpoints();
                let auth = auth.clone().ok_or("cluster.secret is required")?;
                let client = Arc::new(
                    GrpcControlPlane::connect_many(&urls, auth).map_err(|e| format!("control_plane.url: {e}"))?,
                );
                (client.clone() as Arc<dyn ControlPlane>, Some(client))
            }
        };
        let readiness = Arc::new(Ready {
            cp: remote,
            local: local_store.clone(),
            backends: backends.clone(),
        });
        let failover = strata_dataplane::Failover::open(&config.resilience.failover, &config.data_dir).await?;
        let guard = Arc::new(strata_dataplane::Guard::new(
            &backends,
            &config.effective_backends(),
            &config.resilience.breaker,
        ));
        // Jobs in this process (cleanup, reaper, replication) go through the
        // same breakers and usage counters as client traffic.
        opened = Some(guard.backends());
        local_guard = Some(guard.clone());
        if let Some(r) = &config.redis {
            let sync = guard.enable_redis(r)?;
            let stop = shutdown.clone();
            tasks.spawn(async move {
                sync.run(wait(stop)).await;
                Ok(())
            });
        }
        let (g, cp2, stop) = (guard.clone(), cp.clone(), shutdown.clone());
        let flush = Duration::from_secs(config.resilience.usage.flush_secs);
        tasks.spawn(async move {
            g.run_reporter(cp2, flush, wait(stop)).await;
            Ok(())
        });
        let d = &config.delta;
        let delta = strata_dataplane::DeltaEngine::open(strata_dataplane::DeltaSettings {
            cache_dir: d
                .cache_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("delta-cache")),
            cache_bytes: d.cache_bytes,
            memory_cache_bytes: d.memory_cache_bytes,
            max_concurrency: d.max_concurrency,
            level: d.level,
            deny_media: d.deny_media,
            min_size: d.min_size,
            max_object_size: d.max_object_size,
        })
        .await?;
        let storage = strata_dataplane::Storage {
            backends,
            guard: Some(guard),
            failover,
            delta: Some(delta),
            replication: &config.replication,
        };
        let front = strata_dataplane::build_front(&config.server, cp, readiness, storage)?;
        let listener = bind(config.server.listen, "S3", "server.listen").await?;
        tracing::info!(addr = %config.server.listen, %role, "S3 endpoint listening");
        let grace = Duration::from_secs(config.server.shutdown_grace_secs);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            strata_dataplane::serve(listener, Arc::new(front), wait(stop), grace)
                .await
                .map_err(|e| format!("S3 server: {e}"))
        });
    }

    // The jobs run in `--role all`, in `--role worker` under PostgreSQL, and
    // in the control plane only under SQLite (one process owns the file).
    let postgres = matches!(config.database_target(), DatabaseTarget::Postgres { .. });
    let jobs_here = match role {
        Role::All => true,
        Role::Controlplane => !postgres,
        Role::Worker => postgres,
        Role::Dataplane => false,
    };
    if jobs_here {
        let (store, cp) = match (local_store.clone(), in_process.clone()) {
            (Some(store), Some(cp)) => (store, cp),
            _ => {
                let store = open_store(&config).await?;
                let (cp, keys) = crate::jobs_wiring::worker_control_plane(&config, store.clone())?;
                sealer = Some(keys);
                (store, cp)
            }
        };
        let backends = match opened {
            Some(b) => b,
            None => Backends::open(&config.effective_backends()).await?,
        };
        let deps = crate::jobs_wiring::JobDeps {
            store: store.clone(),
            cp,
            backends,
            sealer: sealer.clone(),
            guard: local_guard.clone(),
        };
        let runner = crate::jobs_wiring::build_runner(&config, deps);
        if let Some(addr) = config.worker.listen {
            let listener = bind(addr, "the worker's HTTP", "worker.listen").await?;
            let (names, stop) = (runner.jobs(), shutdown.clone());
            tracing::info!(%addr, jobs = names.len(), "worker HTTP listening");
            tasks.spawn(async move {
                strata_workers::http::serve(listener, store, names, wait(stop))
                    .await
                    .map_err(|e| format!("worker HTTP: {e}"))
            });
        }
        let stop = shutdown.clone();
        tasks.spawn(async move {
            runner.run(stop).await;
            Ok(())
        });
    }

    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result = Err(e);
                break;
            }
            Err(e) => {
                result = Err(format!("a task panicked: {e}"));
                break;
            }
        }
    }
    if result.is_err() {
        tasks.abort_all();
    }
    tracing::info!("strata stopped");
    result
}
