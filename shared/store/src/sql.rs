//! The dialect layer: every statement is written once, with `?` (or `?N`)
//! placeholders, and runs on SQLite as written or on PostgreSQL with the
//! placeholders numbered `$N`. Rows decode through sqlx's own drivers (no
//! `Any` driver), so each database keeps its native types and statement
//! cache. What the two databases spell differently comes from [`Dialect`];
//! see docs/decisions.md.

use std::borrow::Cow;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};
use strata_core::{CpError, CpResult};
use tokio::sync::OwnedMutexGuard;

/// Which database a statement runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A row lock such as `FOR UPDATE` on PostgreSQL; nothing on SQLite,
    /// whose write transactions hold the whole database.
    pub(crate) fn lock(self, clause: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => clause,
        }
    }

    /// Orders text in UTF-8 byte order (SQLite's BINARY collation already does).
    pub(crate) fn bytewise(self) -> &'static str {
        self.lock(" COLLATE \"C\"")
    }

    /// The larger of two values.
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "MAX",
            Dialect::Postgres => "GREATEST",
        }
    }

    /// `IN` one list placeholder (bound with [`Sql::bind_list`]).
    pub(crate) fn in_list(self) -> &'static str {
        match self {
            Dialect::Sqlite => "IN (SELECT value FROM json_each(?))",
            Dialect::Postgres => "= ANY(?)",
        }
    }

    /// The table the usage triggers maintain (`migrations/0002_usage.sql`,
    /// `migrations_pg/0001_initial.sql`): shards on SQLite, appended deltas on
    /// PostgreSQL; both sum per backend.
    pub(crate) fn usage_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => "backend_usage",
            Dialect::Postgres => "usage_delta",
        }
    }
}

/// A row type both drivers decode: tuples and `#[derive(sqlx::FromRow)]` structs.
pub(crate) trait Record: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Record for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// A connection of either database: in a transaction, or in autocommit
/// mode (each statement commits by itself).
pub(crate) enum Conn {
    /// A transaction, and for writes this process's writer slot (released after the commit).
    SqliteTx(Transaction<'static, Sqlite>, Option<OwnedMutexGuard<()>>),
    Sqlite(PoolConnection<Sqlite>),
    PgTx(Transaction<'static, Postgres>),
    Pg(PoolConnection<Postgres>),
}

enum Target<'c> {
    Sqlite(&'c mut SqliteConnection),
    Pg(&'c mut PgConnection),
}

impl Conn {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::SqliteTx(..) | Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::PgTx(_) | Conn::Pg(_) => Dialect::Postgres,
        }
    }

    fn target(&mut self) -> Target<'_> {
        match self {
            Conn::SqliteTx(tx, _) => Target::Sqlite(tx),
            Conn::Sqlite(c) => Target::Sqlite(c),
            Conn::PgTx(tx) => Target::Pg(tx),
            Conn::Pg(c) => Target::Pg(c),
        }
    }

    /// Commits the transaction (nothing to do in autocommit mode).
    pub(crate) async fn commit(self) -> CpResult<()> {
        match self {
            Conn::SqliteTx(tx, _writer) => tx.commit().await.map_err(db),
            Conn::PgTx(tx) => tx.commit().await.map_err(db),
            Conn::Sqlite(_) | Conn::Pg(_) => Ok(()),
        }
    }
}

/// One value bound to a placeholder.
pub(crate) enum Arg<'q> {
    Int(Option<i64>),
    Int32(Option<i32>),
    Bool(bool),
    Text(Option<Cow<'q, str>>),
    Bytes(Option<&'q [u8]>),
    Texts(&'q [String]),
    Ints(&'q [i64]),
}

macro_rules! arg_from {
    ($($t:ty => $v:ident($f:expr)),* $(,)?) => {
        $(impl<'q> From<$t> for Arg<'q> {
            fn from(x: $t) -> Arg<'q> {
                Arg::$v($f(x))
            }
        })*
    };
}

arg_from! {
    i64 => Int(Some),
    Option<i64> => Int(|x| x),
    i32 => Int32(Some),
    bool => Bool(|x| x),
    &'q str => Text(|x| Some(Cow::Borrowed(x))),
    &'q String => Text(|x: &'q String| Some(Cow::Borrowed(x.as_str()))),
    String => Text(|x| Some(Cow::Owned(x))),
    Option<&'q str> => Text(|x: Option<&'q str>| x.map(Cow::Borrowed)),
    Option<String> => Text(|x: Option<String>| x.map(Cow::Owned)),
    &'q Option<String> => Text(|x: &'q Option<String>| x.as_deref().map(Cow::Borrowed)),
    &'q [u8] => Bytes(Some),
    Option<&'q [u8]> => Bytes(|x| x),
}

/// A statement and its arguments, run with [`Sql::execute`] or a fetch.
pub(crate) struct Sql<'q> {
    text: Cow<'q, str>,
    args: Vec<Arg<'q>>,
}

/// A statement with `?` placeholders (`?N` to reuse argument N).
pub(crate) fn sql<'q>(text: impl Into<Cow<'q, str>>) -> Sql<'q> {
    Sql {
        text: text.into(),
        args: Vec::new(),
    }
}

impl<'q> Sql<'q> {
    pub(crate) fn bind(mut self, v: impl Into<Arg<'q>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Binds a list for a [`Dialect::in_list`] placeholder.
    pub(crate) fn bind_list(mut self, v: &'q [String]) -> Self {
        self.args.push(Arg::Texts(v));
        self
    }

    /// Binds a list of integers for a [`Dialect::in_list`] placeholder.
    pub(crate) fn bind_ints(mut self, v: &'q [i64]) -> Self {
        self.args.push(Arg::Ints(v));
        self
    }

    /// Runs the statement; returns the number of rows it changed.
    pub(crate) async fn execute(self, c: &mut Conn) -> CpResult<u64> {
        run!(self, c, query_with, execute, |r| r.rows_affected())
    }

    pub(crate) async fn fetch_all<T: Record>(self, c: &mut Conn) -> CpResult<Vec<T>> {
        run!(self, c, query_as_with, fetch_all, |rows| rows)
    }

    pub(crate) async fn fetch_optional<T: Record>(self, c: &mut Conn) -> CpResult<Option<T>> {
        run!(self, c, query_as_with, fetch_optional, |row| row)
    }

    pub(crate) async fn fetch_one<T: Record>(self, c: &mut Conn) -> CpResult<T> {
        self.fetch_optional(c)
            .await?
            .ok_or_else(|| CpError::Internal("metadata store: a statement returned no row".into()))
    }

    /// The first column of the one row the statement returns.
    pub(crate) async fn scalar<T>(self, c: &mut Conn) -> CpResult<T>
    where
        (T,): Record,
    {
        Ok(self.fetch_one::<(T,)>(c).await?.0)
    }

    fn sqlite_args(&self) -> CpResult<SqliteArguments<'q>> {
        // SQLite has no arrays: a list goes as JSON text, for `json_each`.
        add_args!(SqliteArguments::default(), self.args, |v| to_json(
            serde_json::to_string(v)
        )?)
    }

    fn pg_args(&self) -> CpResult<PgArguments> {
        add_args!(PgArguments::default(), self.args, |v| *v)
    }
}

/// Runs statement `$q` on connection `$c` through sqlx's `$make` (a query
/// function) and `$run` (an executor method), numbering the placeholders on
/// PostgreSQL; `$done` maps either driver's result.
macro_rules! run {
    ($q:ident, $c:expr, $make:ident, $run:ident, $done:expr) => {
        match $c.target() {
            Target::Sqlite(conn) => {
                let args = $q.sqlite_args()?;
                sqlx::$make(&$q.text, args).$run(conn).await.map($done)
            }
            Target::Pg(conn) => {
                let text = numbered(&$q.text);
                sqlx::$make(&text, $q.pg_args()?).$run(conn).await.map($done)
            }
        }
        .map_err(db)
    };
}
use run;

/// The driver arguments `$out` with each of `$args` added; `$list` encodes
/// a list argument `$v`.
macro_rules! add_args {
    ($out:expr, $args:expr, |$v:ident| $list:expr) => {{
        let mut out = $out;
        for arg in &$args {
            let added = match arg {
                Arg::Int(v) => out.add(*v),
                Arg::Int32(v) => out.add(*v),
                Arg::Bool(v) => out.add(*v),
                Arg::Text(v) => out.add(v.clone()),
                Arg::Bytes(v) => out.add(*v),
                Arg::Texts($v) => out.add($list),
                Arg::Ints($v) => out.add($list),
            };
            added.map_err(encode)?;
        }
        Ok(out)
    }};
}
use add_args;

fn to_json(v: serde_json::Result<String>) -> CpResult<String> {
    v.map_err(|e| CpError::Internal(format!("encode a list argument: {e}")))
}

fn encode(e: sqlx::error::BoxDynError) -> CpError {
    CpError::Internal(format!("metadata store: cannot bind an argument: {e}"))
}

/// `text` with its `?` placeholders numbered for PostgreSQL: `?N` becomes
/// `$N`, a bare `?` the next number. Quoted strings and names are left alone.
fn numbered(text: &str) -> Cow<'_, str> {
    if !text.contains('?') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut next = 0;
    let mut quote = None;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), _) => {
                if ch == q {
                    quote = None;
                }
                out.push(ch);
            }
            (None, '\'' | '"') => {
                quote = Some(ch);
                out.push(ch);
            }
            (None, '?') => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    next += 1;
                    out.push_str(&next.to_string());
                }
            }
            (None, _) => out.push(ch),
        }
    }
    Cow::Owned(out)
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
            // PostgreSQL: 40001 serialization_failure, 40P01 deadlock_detected, 08* connection, 57P0* shutdown.
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

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
        assert_eq!(
            numbered("SELECT '?' FROM t WHERE a = ? AND b = ? LIMIT ?"),
            "SELECT '?' FROM t WHERE a = $1 AND b = $2 LIMIT $3"
        );
        assert_eq!(numbered("VALUES (?1, ?2, ?1) -- \"?\""), "VALUES ($1, $2, $1) -- \"?\"");
    }
}
