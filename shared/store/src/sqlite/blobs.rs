//! Per-blob integrity and encryption facts (the `blobs` table).

use strata_core::CpResult;

use super::{SqliteStore, db};
use crate::blobs::{BLOB_COLUMNS, BlobRow, blob_from_row};
use crate::{BlobRecord, BlobState};

impl SqliteStore {
    pub(super) async fn put_blobs_impl(&self, blobs: &[BlobRecord], now_ms: i64) -> CpResult<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for b in blobs {
            sqlx::query(
                "INSERT INTO blobs (backend_id, backend_key, sha256, key_id, wrapped_dek, context, state, \
                 checked_ms, created_ms, codec, encoded_len, ref_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (backend_id, backend_key) DO UPDATE SET \
                 sha256 = COALESCE(excluded.sha256, blobs.sha256), \
                 key_id = COALESCE(excluded.key_id, blobs.key_id), \
                 wrapped_dek = COALESCE(excluded.wrapped_dek, blobs.wrapped_dek), \
                 context = COALESCE(excluded.context, blobs.context), \
                 codec = COALESCE(excluded.codec, blobs.codec), \
                 encoded_len = COALESCE(excluded.encoded_len, blobs.encoded_len), \
                 ref_id = COALESCE(excluded.ref_id, blobs.ref_id)",
            )
            .bind(&b.backend_id)
            .bind(&b.backend_key)
            .bind(b.sha256.as_deref())
            .bind(b.key_id.as_deref())
            .bind(b.wrapped_dek.as_deref())
            .bind(b.context.as_deref())
            .bind(b.state.as_str())
            .bind(b.checked_ms)
            .bind(now_ms)
            .bind(b.codec.as_deref())
            .bind(b.encoded_len.map(crate::blobs::counter).transpose()?)
            .bind(b.ref_id.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    pub(super) async fn get_blobs_impl(&self, keys: &[(String, String)]) -> CpResult<Vec<BlobRecord>> {
        let sql = format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE backend_id = ? AND backend_key = ?");
        let mut tx = self.read_tx().await?;
        let mut out = Vec::with_capacity(keys.len());
        for (backend_id, backend_key) in keys {
            let row: Option<BlobRow> = sqlx::query_as(&sql)
                .bind(backend_id)
                .bind(backend_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(row) = row {
                out.push(blob_from_row(row)?);
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    pub(super) async fn mark_blob_impl(
        &self,
        backend_id: &str,
        backend_key: &str,
        state: BlobState,
        checked_ms: i64,
    ) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE blobs SET state = ?, checked_ms = ? WHERE backend_id = ? AND backend_key = ?")
            .bind(state.as_str())
            .bind(checked_ms)
            .bind(backend_id)
            .bind(backend_key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn blob_key_counts_impl(&self) -> CpResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT COALESCE(key_id, ''), COUNT(*) FROM blobs GROUP BY COALESCE(key_id, '')")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        let mut out: Vec<(String, u64)> = (rows.into_iter())
            .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
            .collect();
        out.sort();
        Ok(out)
    }

    pub(super) async fn blobs_not_under_impl(&self, key_id: &str, limit: u32) -> CpResult<Vec<BlobRecord>> {
        let sql = format!(
            "SELECT {BLOB_COLUMNS} FROM blobs WHERE key_id IS NOT NULL AND substr(key_id, 1, 6) <> 'sse-c:' \
             AND key_id <> ? ORDER BY backend_id, backend_key LIMIT ?"
        );
        let rows: Vec<BlobRow> = sqlx::query_as(&sql)
            .bind(key_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(blob_from_row).collect()
    }

    pub(super) async fn rewrap_blob_impl(
        &self,
        backend_id: &str,
        backend_key: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped: &[u8],
    ) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE blobs SET key_id = ?, wrapped_dek = ? WHERE backend_id = ? AND backend_key = ? AND key_id = ?",
        )
        .bind(new_key_id)
        .bind(wrapped)
        .bind(backend_id)
        .bind(backend_key)
        .bind(old_key_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn prune_blobs_impl(&self, older_than_ms: i64, limit: u32) -> CpResult<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "DELETE FROM blobs WHERE (backend_id, backend_key) IN ( \
               SELECT b.backend_id, b.backend_key FROM blobs b WHERE b.created_ms < ? \
               AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.backend_id = b.backend_id AND s.backend_key = b.backend_key) \
               AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.backend_id = b.backend_id AND p.backend_key = b.backend_key) \
               AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.backend_id = b.backend_id AND i.backend_key = b.backend_key) \
               ORDER BY b.created_ms LIMIT ?)",
        )
        .bind(older_than_ms)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }

    pub(super) async fn corrupt_blobs_impl(&self, limit: u32) -> CpResult<Vec<BlobRecord>> {
        let sql = format!(
            "SELECT {BLOB_COLUMNS} FROM blobs WHERE state = 'corrupt' ORDER BY backend_id, backend_key LIMIT ?"
        );
        let rows: Vec<BlobRow> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(blob_from_row).collect()
    }

    pub(super) async fn blob_owner_impl(
        &self,
        backend_id: &str,
        backend_key: &str,
    ) -> CpResult<Option<(String, String)>> {
        sqlx::query_as(
            "SELECT o.bucket, o.key FROM segments s JOIN objects o ON o.object_id = s.object_id \
             WHERE s.backend_id = ? AND s.backend_key = ? ORDER BY o.bucket, o.key LIMIT 1",
        )
        .bind(backend_id)
        .bind(backend_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    pub(super) async fn count_objects_impl(&self) -> CpResult<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM objects")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
