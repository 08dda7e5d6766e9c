//! [`MetaStore`] on SQLite through sqlx. Writes run in `BEGIN IMMEDIATE`
//! transactions so that concurrent writers queue on the busy timeout instead of
//! failing on a lock upgrade; reads run in deferred transactions, which see one
//! consistent snapshot under WAL.

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

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};
use strata_core::{CpError, CpResult};

/// Connections kept for a database file.
const FILE_POOL_SIZE: u32 = 8;

/// The SQLite metadata store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection that writes (see `connect`).
    write_pool: SqlitePool,
    /// Serialises this process's write transactions (see `write_tx`).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Set on a fenced store: every write transaction checks the leader
    /// lease still carries this term (see `lease::check_fence`).
    fence: Option<crate::WriteFence>,
}

/// A write transaction and this process's writer slot, released together.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl SqliteStore {
    /// Opens (creating when needed) the database at `url`, e.g.
    /// `sqlite:///var/lib/strata/meta.db?mode=rwc` or `sqlite::memory:`, and
    /// applies the embedded migrations.
    pub async fn connect(url: &str) -> CpResult<SqliteStore> {
        if !url.starts_with("sqlite:") {
            return Err(CpError::InvalidArgument(
                "the metadata database url must start with sqlite:".into(),
            ));
        }
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(|e| CpError::InvalidArgument(format!("bad database url: {e}")))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Reads through the page cache's mapping instead of a pread per page.
            .pragma("mmap_size", "268435456");
        if !url.contains("mode=") {
            options = options.create_if_missing(true);
        }
        if !in_memory {
            create_parent_dir(options.get_filename())?;
        }
        // An in-memory database lives as long as its connection: keep exactly one, forever.
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(FILE_POOL_SIZE)
        };
        let open = |e: sqlx::Error| CpError::Unavailable(format!("cannot open metadata database: {e}"));
        // All writes go through one connection: they are serialised anyway,
        // and its page cache stays valid because no other connection writes.
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(open)?;
        sqlx::migrate!("./migrations")
            .run(&write_pool)
            .await
            .map_err(|e| CpError::Internal(format!("metadata migration failed: {e}")))?;
        let pool = if in_memory {
            // One in-memory database per connection: reads must share the writer's.
            write_pool.clone()
        } else {
            pool_options
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(open)?
        };
        Ok(SqliteStore {
            pool,
            write_pool,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            fence: None,
        })
    }

    /// Starts a write transaction holding the database write lock. Writers of
    /// this process queue on an async mutex first: SQLite's own busy handler
    /// sleeps in steps of up to 100 ms, which under contention costs far more
    /// than the transactions themselves.
    async fn write_tx(&self) -> CpResult<WriteTx> {
        let guard = self.writer.clone().lock_owned().await;
        let tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let mut tx = WriteTx { tx, _guard: guard };
        if let Some(fence) = &self.fence {
            lease::check_fence(&mut tx, fence.term()).await?;
        }
        Ok(tx)
    }

    /// A store on the same database whose write transactions are fenced by
    /// `fence` (docs/leadership.md).
    pub fn with_fence(&self, fence: crate::WriteFence) -> SqliteStore {
        SqliteStore {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Starts a read transaction (one snapshot for several statements).
    async fn read_tx(&self) -> CpResult<Transaction<'static, Sqlite>> {
        self.pool.begin().await.map_err(db)
    }
}

fn create_parent_dir(file: &std::path::Path) -> CpResult<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| CpError::Unavailable(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// Maps a database error to `Internal`, logging the detail.
pub(crate) fn db(e: sqlx::Error) -> CpError {
    tracing::error!(error = %e, "metadata store error");
    CpError::Internal(format!("metadata store: {e}"))
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
