//! The store handle: the pools of one database and the leader's write fence.
//! [`SqliteStore`] and [`PgStore`] are the two kinds of one [`Store`]; the
//! role traits are implemented once for both, except where the databases
//! truly differ (connection setup, leases and job locks).

use std::marker::PhantomData;
use std::sync::Arc;

use sqlx::{PgPool, SqlitePool};
use strata_core::CpResult;

use crate::WriteFence;
use strata_core::ObjectRecord;

use crate::sql::{Conn, Dialect, Sql, db};

/// The metadata store on one database. `D` names the database
/// ([`SqliteDb`] or [`PgDb`]), which decides how it is opened.
pub struct Store<D> {
    pub(crate) db: Db,
    database: PhantomData<fn() -> D>,
}

/// SQLite, opened by one process (see `sqlite.rs`).
#[derive(Debug)]
pub enum SqliteDb {}

/// PostgreSQL, shared by every process of a cluster (see `postgres/`).
#[derive(Debug)]
pub enum PgDb {}

/// The metadata store on SQLite.
pub type SqliteStore = Store<SqliteDb>;
/// The metadata store on PostgreSQL.
pub type PgStore = Store<PgDb>;

impl<D> Clone for Store<D> {
    fn clone(&self) -> Self {
        Store {
            db: self.db.clone(),
            database: PhantomData,
        }
    }
}

impl<D> std::fmt::Debug for Store<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("db", &self.db).finish()
    }
}

impl<D> Store<D> {
    pub(crate) fn new(pools: Pools) -> Self {
        Store {
            db: Db { pools, fence: None },
            database: PhantomData,
        }
    }

    /// A store on the same database whose write transactions are fenced by
    /// `fence` (docs/leadership.md).
    pub fn with_fence(&self, fence: WriteFence) -> Self {
        let mut s = self.clone();
        s.db.fence = Some(fence);
        s
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Pools {
    Sqlite {
        read: SqlitePool,
        /// The one connection that writes (see `sqlite.rs`).
        write: SqlitePool,
        /// Serialises this process's write transactions (see [`Db::begin_write`]).
        writer: Arc<tokio::sync::Mutex<()>>,
    },
    Pg(PgPool),
}

/// What the role traits' provided methods run on: every role but
/// [`crate::Leadership`] is written once, in its trait, for both databases.
pub trait SqlBacked: Send + Sync + 'static {
    #[doc(hidden)]
    fn db(&self) -> &Db;
}

impl<D: 'static> SqlBacked for Store<D> {
    fn db(&self) -> &Db {
        &self.db
    }
}

/// The pools and the fence; hands out connections.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pools: Pools,
    /// Set on a fenced store: every write transaction checks the leader
    /// lease still carries this term (see `lease::check_fence`).
    fence: Option<WriteFence>,
}

impl Db {
    pub(crate) fn dialect(&self) -> Dialect {
        match self.pools {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Pg(_) => Dialect::Postgres,
        }
    }

    /// A read transaction: one snapshot for several statements (a deferred
    /// transaction under WAL; REPEATABLE READ READ ONLY on PostgreSQL, which
    /// never fails on serialization).
    pub(crate) async fn read(&self) -> CpResult<Conn> {
        match &self.pools {
            Pools::Sqlite { read, .. } => Ok(Conn::SqliteTx(read.begin().await.map_err(db)?, None)),
            Pools::Pg(pool) => {
                let tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(db)?;
                Ok(Conn::PgTx(tx))
            }
        }
    }

    /// A connection for statements that read alone.
    pub(crate) async fn conn(&self) -> CpResult<Conn> {
        match &self.pools {
            Pools::Sqlite { read, .. } => Ok(Conn::Sqlite(read.acquire().await.map_err(db)?)),
            Pools::Pg(pool) => Ok(Conn::Pg(pool.acquire().await.map_err(db)?)),
        }
    }

    /// A connection for a write that is one statement, outside the fence.
    pub(crate) async fn write_conn(&self) -> CpResult<Conn> {
        match &self.pools {
            Pools::Sqlite { write, .. } => Ok(Conn::Sqlite(write.acquire().await.map_err(db)?)),
            Pools::Pg(pool) => Ok(Conn::Pg(pool.acquire().await.map_err(db)?)),
        }
    }

    /// A write transaction, fenced when the store is.
    pub(crate) async fn write(&self) -> CpResult<Conn> {
        let mut c = self.begin_write().await?;
        if let Some(fence) = &self.fence {
            crate::lease::check_fence(&mut c, fence.term()).await?;
        }
        Ok(c)
    }

    /// A write transaction without the fence check. On SQLite it holds the
    /// database write lock (`BEGIN IMMEDIATE`), and writers of this process
    /// queue on an async mutex first: SQLite's own busy handler sleeps in
    /// steps of up to 100 ms, which under contention costs far more than the
    /// transactions themselves. On PostgreSQL it runs at READ COMMITTED and
    /// takes explicit locks where SQLite relies on its single writer.
    pub(crate) async fn begin_write(&self) -> CpResult<Conn> {
        match &self.pools {
            Pools::Sqlite { write, writer, .. } => {
                let guard = writer.clone().lock_owned().await;
                let tx = write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
                Ok(Conn::SqliteTx(tx, Some(guard)))
            }
            Pools::Pg(pool) => Ok(Conn::PgTx(pool.begin().await.map_err(db)?)),
        }
    }

    /// Runs one statement in a write transaction (fenced when the store is);
    /// returns the rows it changed.
    pub(crate) async fn write_one(&self, q: Sql<'_>) -> CpResult<u64> {
        let mut c = self.write().await?;
        let done = q.execute(&mut c).await?;
        c.commit().await?;
        Ok(done)
    }

    /// The full records of the (bucket, key) rows `listing` returns, in its
    /// order, loaded in one snapshot.
    pub(crate) async fn load_listed(&self, listing: Sql<'_>) -> CpResult<Vec<ObjectRecord>> {
        let mut c = self.read().await?;
        let out = crate::rows::load_listed(&mut c, listing).await?;
        c.commit().await?;
        Ok(out)
    }
}
