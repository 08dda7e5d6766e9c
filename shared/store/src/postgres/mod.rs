//! [`MetaStore`] on PostgreSQL through sqlx. Write transactions run at READ
//! COMMITTED and take explicit locks where SQLite relied on its single writer:
//! a transaction-level advisory lock per (bucket, key) for everything that
//! replaces or removes an object, `FOR UPDATE` on the upload row for multipart
//! changes, `FOR KEY SHARE` / `FOR UPDATE` on the bucket row between writers
//! and `delete_bucket`, an advisory lock per backend for quota-checked
//! reservations, and `FOR UPDATE SKIP LOCKED` for cleanup claims. Reads that
//! span several statements run in REPEATABLE READ READ ONLY transactions, which
//! see one snapshot and never fail on serialization. See docs/postgres.md.

mod backend_state;
mod blobs;
mod buckets;
mod complete;
mod copies;
mod delta;
mod health;
mod job_schedule;
mod jobs;
mod jobs_progress;
mod lease;
mod list;
mod monthly;
mod multipart;
mod objects;
mod reconcile;
mod replace;
mod rows;
mod store;
mod usage;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};
use strata_core::{CpError, CpResult};

/// The PostgreSQL metadata store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Set on the control plane's store: every write transaction checks the
    /// leader lease still carries this term (see `lease::check_fence`).
    fence: Option<crate::WriteFence>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) with a
    /// pool of at most `max_connections`, and applies the embedded migrations
    /// (`migrations_pg/`).
    pub async fn connect(url: &str, max_connections: u32) -> CpResult<PgStore> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(CpError::InvalidArgument(
                "the metadata database url must start with postgres:// or postgresql://".into(),
            ));
        }
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| CpError::InvalidArgument(format!("bad database url: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| CpError::Unavailable(format!("cannot open metadata database: {e}")))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool and applies the embedded migrations.
    pub async fn from_pool(pool: PgPool) -> CpResult<PgStore> {
        sqlx::migrate!("./migrations_pg")
            .run(&pool)
            .await
            .map_err(|e| CpError::Internal(format!("metadata migration failed: {e}")))?;
        Ok(PgStore { pool, fence: None })
    }

    /// The connection pool (for health checks and advisory locks of callers).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a read-write transaction at READ COMMITTED.
    async fn write_tx(&self) -> CpResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(fence) = &self.fence {
            lease::check_fence(&mut tx, fence.term()).await?;
        }
        Ok(tx)
    }

    /// A store on the same pool whose write transactions are fenced by
    /// `fence` (docs/leadership.md).
    pub fn with_fence(&self, fence: crate::WriteFence) -> PgStore {
        PgStore {
            pool: self.pool.clone(),
            fence: Some(fence),
        }
    }

    /// Starts a read transaction: one snapshot for several statements.
    async fn read_tx(&self) -> CpResult<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)
    }
}

/// Takes a transaction-level advisory lock named by `scope` and `name` (the
/// 64-bit hash of both); it is released at commit or rollback. A hash
/// collision only serializes two unrelated writers.
pub(crate) async fn advisory_lock(conn: &mut PgConnection, scope: &str, name: &str) -> CpResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))")
        .bind(scope)
        .bind(name)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Serializes the writers of one (bucket, key). Bucket names never hold `/`.
pub(crate) async fn lock_key(conn: &mut PgConnection, bucket: &str, key: &str) -> CpResult<()> {
    advisory_lock(conn, "object", &format!("{bucket}/{key}")).await
}

/// Maps a database error: lost connections, deadlocks and serialization
/// failures are `Unavailable` (the client may retry), the rest `Internal`.
pub(crate) fn db(e: sqlx::Error) -> CpError {
    tracing::error!(error = %e, "metadata store error");
    let retryable = match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            // 40001 serialization_failure, 40P01 deadlock_detected, 08* connection, 57P0* shutdown.
            code == "40001" || code == "40P01" || code.starts_with("08") || code.starts_with("57P0")
        }
        _ => false,
    };
    if retryable {
        CpError::Unavailable(format!("metadata store: {e}"))
    } else {
        CpError::Internal(format!("metadata store: {e}"))
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
