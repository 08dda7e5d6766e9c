//! What the reconciler asks of the catalog: the blob keys it knows on one
//! backend, in byte order, so they can be merged against the backend's own
//! listing (see `workers/src/reconcile.rs`).

use async_trait::async_trait;
use strata_core::CpResult;

use crate::Store;
use crate::metrics::timed;
use crate::rows::enqueue_cleanup;
use crate::sql::{Dialect, sql};
use crate::store::SqlBacked;

/// The strongest reason the catalog has to expect a blob on its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlobUse {
    /// A segment of an object (any copy, delta references included): a blob
    /// missing on its backend is a lost copy.
    Segment,
    /// A part of a multipart upload in progress.
    Part,
    /// Only a pending intent (a write in flight), the cleanup queue or its
    /// dead letters name it: it may legitimately be absent.
    Transient,
}

impl BlobUse {
    /// The rank the queries select (`MIN` of the sources naming a key).
    fn from_rank(rank: i64) -> BlobUse {
        match rank {
            0 => BlobUse::Segment,
            1 => BlobUse::Part,
            _ => BlobUse::Transient,
        }
    }
}

/// One blob key the catalog names on a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBlob {
    pub backend_key: String,
    pub used_as: BlobUse,
}

/// Where a blob may be named, with the rank of its [`BlobUse`]. Each source
/// is read in key order up to the page size, so a page merges at most
/// five pages of one index each.
const SOURCES: [(&str, i64); 5] = [
    ("segments", 0),
    ("parts", 1),
    ("intents", 2),
    ("cleanup_queue", 2),
    ("cleanup_dead_letter", 2),
];

/// The `known_blobs` query (`?1` backend, `?2` after, `?3` limit), in byte
/// order.
fn known_blobs_sql(d: Dialect) -> String {
    let c = d.bytewise();
    let parts: Vec<String> = SOURCES
        .iter()
        .map(|(table, rank)| {
            format!(
                "SELECT * FROM (SELECT DISTINCT backend_key{c} AS k, CAST({rank} AS BIGINT) AS r FROM {table} \
                 WHERE backend_id = ?1 AND backend_key{c} > ?2 ORDER BY 1 LIMIT ?3) AS s{rank}_{table}"
            )
        })
        .collect();
    format!(
        "SELECT k, MIN(r) FROM ({}) AS u GROUP BY k ORDER BY k{c} LIMIT ?3",
        parts.join(" UNION ALL ")
    )
}

/// Whether any catalog row names the blob (`?1` backend, `?2` key).
fn is_named_sql() -> String {
    let exists: Vec<String> = SOURCES
        .iter()
        .map(|(table, _)| format!("EXISTS (SELECT 1 FROM {table} WHERE backend_id = ?1 AND backend_key = ?2)"))
        .collect();
    format!("SELECT {}", exists.join(" OR "))
}

/// The reconciler's view of the catalog.
#[async_trait]
pub trait Reconcile: SqlBacked {
    /// Up to `limit` distinct blob keys of backend `backend_id` strictly
    /// after `after`, in byte order, that any catalog row names: a segment of
    /// any copy, a multipart part, a pending intent's planned blob, a
    /// cleanup-queue row or a dead letter; each with the strongest such use.
    /// What the reconciler merges against the backend's listing.
    async fn known_blobs(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<KnownBlob>> {
        timed("known_blobs", async {
            let mut c = self.db().conn().await?;
            let rows: Vec<(String, i64)> = sql(known_blobs_sql(c.dialect()))
                .bind(backend_id)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&mut c)
                .await?;
            Ok((rows.into_iter())
                .map(|(backend_key, rank)| KnownBlob {
                    backend_key,
                    used_as: BlobUse::from_rank(rank),
                })
                .collect())
        })
        .await
    }

    /// In one write transaction: unless a catalog row names the blob (see
    /// [`Reconcile::known_blobs`]), queues it for cleanup as `length` orphan
    /// bytes and returns `true`. The reconciler's only way to remove bytes.
    async fn enqueue_orphan(&self, backend_id: &str, backend_key: &str, length: u64) -> CpResult<bool> {
        timed("enqueue_orphan", async {
            let mut c = self.db().write().await?;
            let named: bool = sql(is_named_sql())
                .bind(backend_id)
                .bind(backend_key)
                .scalar(&mut c)
                .await?;
            if !named {
                enqueue_cleanup(&mut c, backend_id, backend_key, length).await?;
            }
            c.commit().await?;
            Ok(!named)
        })
        .await
    }
}

impl<D: 'static> Reconcile for Store<D> {}
