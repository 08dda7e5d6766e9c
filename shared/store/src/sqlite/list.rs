//! Object listing: the batch query; the scan itself is `crate::listing`.

use sqlx::SqliteConnection;
use strata_core::{CpResult, ListPage, ListQuery};

pub(super) use crate::listing::prefix_successor;
use crate::listing::{Lower, Row, Scan};

use super::rows::require_bucket;
use super::{SqliteStore, db};

/// One batch of (key, size, etag, last_modified_ms) in `[lower, upper)`.
async fn fetch_batch(
    conn: &mut SqliteConnection,
    bucket: &str,
    lower: &Lower,
    upper: Option<&str>,
    limit: u32,
) -> CpResult<Vec<Row>> {
    let (op, bound) = match lower {
        Lower::After(k) => (">", k),
        Lower::From(k) => (">=", k),
    };
    let upper_clause = if upper.is_some() { " AND key < ?" } else { "" };
    let sql = format!(
        "SELECT key, size, etag, last_modified_ms FROM objects \
         WHERE bucket = ? AND key {op} ?{upper_clause} ORDER BY key LIMIT ?"
    );
    let mut q = sqlx::query_as(&sql).bind(bucket).bind(bound.as_str());
    if let Some(upper) = upper {
        q = q.bind(upper);
    }
    q.bind(i64::from(limit)).fetch_all(conn).await.map_err(db)
}

impl SqliteStore {
    pub(super) async fn list_objects_impl(&self, query: &ListQuery) -> CpResult<ListPage> {
        let mut tx = self.read_tx().await?;
        require_bucket(&mut tx, &query.bucket).await?;
        let mut scan = Scan::new(query);
        while let Some((lower, upper, limit)) = scan.next_batch() {
            let rows = fetch_batch(&mut tx, &query.bucket, lower, upper, limit).await?;
            scan.feed(rows)?;
        }
        let page = scan.finish();
        tx.commit().await.map_err(db)?;
        Ok(page)
    }
}
