//! The reconciler's queries: the blobs the catalog names on a backend, and
//! queueing an orphan found on one.

use strata_core::CpResult;

use super::rows::enqueue_cleanup;
use super::{PgStore, db};
use crate::reconcile::{is_named_sql, known_blobs_sql};
use crate::{BlobUse, KnownBlob};

impl PgStore {
    pub(super) async fn known_blobs_impl(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<KnownBlob>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(&known_blobs_sql(true))
            .bind(backend_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok((rows.into_iter())
            .map(|(backend_key, rank)| KnownBlob {
                backend_key,
                used_as: BlobUse::from_rank(rank),
            })
            .collect())
    }

    pub(super) async fn enqueue_orphan_impl(&self, backend_id: &str, backend_key: &str, length: u64) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let (named,): (bool,) = sqlx::query_as(&is_named_sql(true))
            .bind(backend_id)
            .bind(backend_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if !named {
            enqueue_cleanup(&mut tx, backend_id, backend_key, length).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(!named)
    }
}
