//! PostgreSQL: opening the database, the leader lease on the database's
//! clock, and the jobs' advisory locks (`lease.rs`). Write transactions run
//! at READ COMMITTED and take explicit locks where SQLite relies on its single
//! writer: a transaction-level advisory lock per (bucket, key) for everything
//! that replaces or removes an object, `FOR UPDATE` on the upload row for
//! multipart changes, `FOR KEY SHARE` / `FOR UPDATE` on the bucket row between
//! writers and `delete_bucket`, an advisory lock per backend for quota-checked
//! reservations, and `FOR UPDATE SKIP LOCKED` for cleanup claims. Reads that
//! span several statements run in REPEATABLE READ READ ONLY transactions, which
//! see one snapshot and never fail on serialization. See docs/postgres.md.

mod lease;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use strata_core::{CpError, CpResult};

use crate::PgStore;
use crate::store::Pools;

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
        Ok(PgStore::new(Pools::Pg(pool)))
    }

    /// The connection pool (for health checks and advisory locks of callers).
    pub fn pool(&self) -> &PgPool {
        match &self.db.pools {
            Pools::Pg(pool) => pool,
            Pools::Sqlite { .. } => unreachable!("a PgStore holds a PostgreSQL pool"),
        }
    }
}
