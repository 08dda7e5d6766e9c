//! Delta compression: references, deltaspaces, decisions and the report.

use strata_core::{CpResult, DeltaBucketReport};

use super::{SqliteStore, db};
use crate::delta::{
    DeltaDecisionRecord, DeltaRefRecord, DeltaSpaceRecord, REF_COLUMNS, REF_CURRENT, REF_RETIRED, RefRow,
    ReselectPolicy, assemble_report, check_decision, format_recent, parse_recent, push_ratio, ratio_permille,
    ref_from_row,
};

/// Whether any current segment's blob decodes against reference `r.ref_id`.
const REF_IN_USE: &str = "EXISTS (SELECT 1 FROM blobs b JOIN segments s \
     ON s.backend_id = b.backend_id AND s.backend_key = b.backend_key WHERE b.ref_id = r.ref_id)";

impl SqliteStore {
    pub(super) async fn get_deltaspace_impl(&self, space: &str) -> CpResult<Option<DeltaSpaceRecord>> {
        let row: Option<(String, String, Option<String>, String, bool)> = sqlx::query_as(
            "SELECT space, bucket, current_ref_id, recent, want_new_ref FROM deltaspaces WHERE space = ?",
        )
        .bind(space)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(
            |(space, bucket, current_ref_id, recent, want_new_ref)| DeltaSpaceRecord {
                space,
                bucket,
                current_ref_id,
                recent: parse_recent(&recent),
                want_new_ref,
            },
        ))
    }

    pub(super) async fn get_delta_ref_impl(&self, ref_id: &str) -> CpResult<Option<DeltaRefRecord>> {
        let sql = format!("SELECT {REF_COLUMNS} FROM delta_refs WHERE ref_id = ?");
        let row: Option<RefRow> = sqlx::query_as(&sql)
            .bind(ref_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(ref_from_row))
    }

    pub(super) async fn set_current_ref_impl(&self, r: &DeltaRefRecord) -> CpResult<Option<String>> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO delta_refs (ref_id, bucket, space, ref_bucket, ref_key, size, sha256, state, \
             last_used_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.ref_id)
        .bind(&r.bucket)
        .bind(&r.space)
        .bind(&r.ref_bucket)
        .bind(&r.ref_key)
        .bind(crate::blobs::counter(r.size)?)
        .bind(&r.sha256)
        .bind(REF_CURRENT)
        .bind(r.last_used_ms)
        .bind(r.created_ms)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let previous: Option<(Option<String>,)> =
            sqlx::query_as("SELECT current_ref_id FROM deltaspaces WHERE space = ?")
                .bind(&r.space)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let previous = previous.and_then(|(p,)| p).filter(|p| *p != r.ref_id);
        if let Some(p) = &previous {
            sqlx::query("UPDATE delta_refs SET state = ? WHERE ref_id = ?")
                .bind(REF_RETIRED)
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        sqlx::query(
            "INSERT INTO deltaspaces (space, bucket, current_ref_id, recent, want_new_ref) VALUES (?, ?, ?, '', 0) \
             ON CONFLICT (space) DO UPDATE SET current_ref_id = excluded.current_ref_id, recent = '', want_new_ref = 0",
        )
        .bind(&r.space)
        .bind(&r.bucket)
        .bind(&r.ref_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(previous)
    }

    pub(super) async fn touch_delta_ref_impl(&self, ref_id: &str, now_ms: i64) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE delta_refs SET last_used_ms = MAX(last_used_ms, ?) WHERE ref_id = ?")
            .bind(now_ms)
            .bind(ref_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn record_delta_decision_impl(
        &self,
        d: &DeltaDecisionRecord,
        space: Option<&str>,
        policy: ReselectPolicy,
    ) -> CpResult<bool> {
        check_decision(d)?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO delta_decisions (object_id, bucket, decision, reason, ref_id, logical_bytes, \
             stored_bytes, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (object_id) DO UPDATE SET bucket = excluded.bucket, decision = excluded.decision, \
             reason = excluded.reason, ref_id = excluded.ref_id, logical_bytes = excluded.logical_bytes, \
             stored_bytes = excluded.stored_bytes, created_ms = excluded.created_ms",
        )
        .bind(&d.object_id)
        .bind(&d.bucket)
        .bind(&d.decision)
        .bind(&d.reason)
        .bind(d.ref_id.as_deref())
        .bind(crate::blobs::counter(d.logical_bytes)?)
        .bind(crate::blobs::counter(d.stored_bytes)?)
        .bind(d.created_ms)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let mut want = false;
        if let Some(space) = space {
            let row: Option<(String, bool)> =
                sqlx::query_as("SELECT recent, want_new_ref FROM deltaspaces WHERE space = ?")
                    .bind(space)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            if let Some((recent, wanted)) = row {
                want = wanted;
                if d.decision == "delta" {
                    let mut recent = parse_recent(&recent);
                    want |= push_ratio(&mut recent, ratio_permille(d), policy);
                    sqlx::query("UPDATE deltaspaces SET recent = ?, want_new_ref = ? WHERE space = ?")
                        .bind(format_recent(&recent))
                        .bind(want)
                        .bind(space)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(want)
    }

    pub(super) async fn delta_report_impl(&self) -> CpResult<Vec<DeltaBucketReport>> {
        let mut tx = self.read_tx().await?;
        let bytes: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT o.bucket, SUM(o.size), SUM(COALESCE(d.stored_bytes, o.size)) FROM objects o \
             LEFT JOIN delta_decisions d ON d.object_id = o.object_id \
             WHERE o.bucket IN (SELECT DISTINCT bucket FROM delta_decisions) GROUP BY o.bucket",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let refs: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT r.bucket, COUNT(DISTINCT r.ref_id), COALESCE(SUM(COALESCE(b.encoded_len, s.length)), 0) \
             FROM delta_refs r \
             LEFT JOIN objects o ON o.bucket = r.ref_bucket AND o.key = r.ref_key \
             LEFT JOIN segments s ON s.object_id = o.object_id AND s.seq < 100000 \
             LEFT JOIN blobs b ON b.backend_id = s.backend_id AND b.backend_key = s.backend_key \
             GROUP BY r.bucket",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let decisions: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT d.bucket, d.decision, COUNT(*) FROM delta_decisions d \
             JOIN objects o ON o.object_id = d.object_id GROUP BY d.bucket, d.decision",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(assemble_report(bytes, refs, decisions))
    }

    pub(super) async fn unreferenced_refs_impl(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<DeltaRefRecord>> {
        let sql = format!(
            "SELECT {REF_COLUMNS} FROM delta_refs r WHERE r.last_used_ms < ? AND NOT {REF_IN_USE} \
             ORDER BY r.last_used_ms, r.ref_id LIMIT ?"
        );
        let rows: Vec<RefRow> = sqlx::query_as(&sql)
            .bind(older_than_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(ref_from_row).collect())
    }

    pub(super) async fn drop_ref_impl(&self, ref_id: &str, older_than_ms: i64) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let sql = format!("DELETE FROM delta_refs AS r WHERE r.ref_id = ? AND r.last_used_ms < ? AND NOT {REF_IN_USE}");
        let done = sqlx::query(&sql)
            .bind(ref_id)
            .bind(older_than_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() > 0 {
            sqlx::query(
                "UPDATE deltaspaces SET current_ref_id = NULL, recent = '', want_new_ref = 0 WHERE current_ref_id = ?",
            )
            .bind(ref_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn refs_to_compact_impl(&self, below_level: i32, limit: u32) -> CpResult<Vec<DeltaRefRecord>> {
        let sql = format!(
            "SELECT {REF_COLUMNS} FROM delta_refs WHERE compacted_level < ? ORDER BY created_ms, ref_id LIMIT ?"
        );
        let rows: Vec<RefRow> = sqlx::query_as(&sql)
            .bind(below_level)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(ref_from_row).collect())
    }

    pub(super) async fn mark_ref_compacted_impl(&self, ref_id: &str, level: i32) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE delta_refs SET compacted_level = ? WHERE ref_id = ?")
            .bind(level)
            .bind(ref_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn deltas_to_compact_impl(
        &self,
        below_level: i32,
        limit: u32,
    ) -> CpResult<Vec<(String, String, String)>> {
        sqlx::query_as(
            "SELECT o.bucket, o.key, o.object_id FROM delta_decisions d \
             JOIN objects o ON o.object_id = d.object_id \
             WHERE d.decision = 'delta' AND d.compacted_level < ? \
             ORDER BY d.created_ms, d.object_id LIMIT ?",
        )
        .bind(below_level)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    pub(super) async fn mark_delta_compacted_impl(
        &self,
        object_id: &str,
        level: i32,
        stored_bytes: Option<u64>,
    ) -> CpResult<()> {
        let stored = stored_bytes.map(crate::blobs::counter).transpose()?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE delta_decisions SET compacted_level = ?, stored_bytes = COALESCE(?, stored_bytes) \
             WHERE object_id = ?",
        )
        .bind(level)
        .bind(stored)
        .bind(object_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}
