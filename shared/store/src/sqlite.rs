//! SQLite: opening the database (pragmas, the one writer connection) and
//! the leader lease, on this process's clock: one process opens a database
//! file, so a job's lock is always granted. Writes run in `BEGIN IMMEDIATE`
//! transactions so that concurrent writers queue on the busy timeout instead
//! of failing on a lock upgrade; reads run in deferred transactions, which see
//! one consistent snapshot under WAL.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use strata_core::{CpError, CpResult};

use crate::lease::{Leadership, Lease, WriteFence};
use crate::sql::{now_ms, sql};
use crate::store::Pools;
use crate::{Granted, JobLock, MetaStore, SqliteStore};

/// Connections kept for a database file.
const FILE_POOL_SIZE: u32 = 8;

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
        let open = |e: sqlx::Error| CpError::Unavailable(format!("cannot open metadata database: {e}"));
        // An in-memory database lives as long as its connection: keep exactly
        // one, forever. All writes go through one connection: they are
        // serialised anyway, and its page cache stays valid because no other
        // connection writes.
        let one_forever = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(Duration::from_secs(30))
        };
        let write = one_forever().connect_with(options.clone()).await.map_err(open)?;
        sqlx::migrate!("./migrations")
            .run(&write)
            .await
            .map_err(|e| CpError::Internal(format!("metadata migration failed: {e}")))?;
        let read = if in_memory {
            // One in-memory database per connection: reads must share the writer's.
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(FILE_POOL_SIZE)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(open)?
        };
        Ok(SqliteStore::new(Pools::Sqlite {
            read,
            write,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        }))
    }
}

fn create_parent_dir(file: &std::path::Path) -> CpResult<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| CpError::Unavailable(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

type LeaseRow = (String, String, i64, i64);

const SELECT_LEASE: &str = "SELECT holder, url, term, expires_ms FROM cp_lease WHERE id = 1";

/// The lease on this process's clock; the write lock (`BEGIN IMMEDIATE`)
/// serializes claimants and fenced writers. Lease transactions skip the
/// fence: the lease itself must stay reachable by a deposed holder.
#[async_trait]
impl Leadership for SqliteStore {
    async fn acquire_lease(&self, holder: &str, url: &str, ttl_ms: i64) -> CpResult<Lease> {
        crate::metrics::timed("acquire_lease", async {
            let mut c = self.db.begin_write().await?;
            let now = now_ms();
            let row: Option<LeaseRow> = sql(SELECT_LEASE).fetch_optional(&mut c).await?;
            let term = match row {
                None => 1,
                Some((h, _, term, expires)) if h == holder && expires > now => term,
                Some((_, _, term, expires)) if expires <= now => term + 1,
                Some((holder, url, term, expires)) => {
                    c.commit().await?;
                    return Ok(Lease {
                        holder,
                        url,
                        term,
                        remaining_ms: expires - now,
                    });
                }
            };
            sql(
                "INSERT INTO cp_lease (id, holder, url, term, expires_ms) VALUES (1, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, url = excluded.url, \
                 term = excluded.term, expires_ms = excluded.expires_ms",
            )
            .bind(holder)
            .bind(url)
            .bind(term)
            .bind(now + ttl_ms)
            .execute(&mut c)
            .await?;
            c.commit().await?;
            Ok(Lease {
                holder: holder.to_owned(),
                url: url.to_owned(),
                term,
                remaining_ms: ttl_ms,
            })
        })
        .await
    }

    async fn renew_lease(&self, holder: &str, term: i64, ttl_ms: i64) -> CpResult<bool> {
        crate::metrics::timed("renew_lease", async {
            let now = now_ms();
            let done = set_expiry(&mut self.db.write_conn().await?, now + ttl_ms, holder, term, now).await?;
            Ok(done == 1)
        })
        .await
    }

    async fn release_lease(&self, holder: &str, term: i64) -> CpResult<()> {
        crate::metrics::timed("release_lease", async {
            let now = now_ms();
            set_expiry(&mut self.db.write_conn().await?, now, holder, term, now).await?;
            Ok(())
        })
        .await
    }

    async fn get_lease(&self) -> CpResult<Option<Lease>> {
        crate::metrics::timed("get_lease", async {
            let row: Option<LeaseRow> = sql(SELECT_LEASE).fetch_optional(&mut self.db.conn().await?).await?;
            let now = now_ms();
            Ok(row.map(|(holder, url, term, expires)| Lease {
                holder,
                url,
                term,
                remaining_ms: expires - now,
            }))
        })
        .await
    }

    fn fenced(&self, fence: WriteFence) -> Option<Arc<dyn MetaStore>> {
        Some(Arc::new(self.with_fence(fence)))
    }

    async fn try_job_lock(&self, _name: &str) -> CpResult<Option<Box<dyn JobLock>>> {
        Ok(Some(Box::new(Granted)))
    }
}

/// Sets the lease's expiry (one statement on the writer connection) if
/// `holder` holds it at `term` and it has not expired at `now`; returns the
/// rows changed.
async fn set_expiry(c: &mut crate::sql::Conn, expires_ms: i64, holder: &str, term: i64, now: i64) -> CpResult<u64> {
    sql("UPDATE cp_lease SET expires_ms = ? WHERE id = 1 AND holder = ? AND term = ? AND expires_ms > ?")
        .bind(expires_ms)
        .bind(holder)
        .bind(term)
        .bind(now)
        .execute(c)
        .await
}
