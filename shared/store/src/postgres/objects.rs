//! Intents, single objects and the cleanup queue.

use sqlx::PgConnection;
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, Segment, WriteCondition, WritePlan};

use super::rows::{
    META_COLUMNS, MetaRow, bind_meta, enqueue_unreferenced, insert_copy, insert_segments, load_segments,
    meta_placeholders, require_bucket, to_i64,
};
use super::{PgStore, advisory_lock, db, lock_key};

#[derive(sqlx::FromRow)]
struct ObjectRow {
    object_id: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

/// The current object at (bucket, key), if any.
pub(super) async fn load_object(conn: &mut PgConnection, bucket: &str, key: &str) -> CpResult<Option<ObjectRecord>> {
    let sql = format!("SELECT object_id, {META_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2");
    let row: Option<ObjectRow> = sqlx::query_as(&sql)
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let (segments, copies) = load_segments(conn, &row.object_id).await?;
    Ok(Some(ObjectRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        object_id: row.object_id,
        meta: row.meta.into_meta()?,
        segments,
        copies,
    }))
}

/// Removes the object at (bucket, key), if any, and queues those of its
/// segments that `keep` does not reuse.
pub(super) async fn remove_object(
    conn: &mut PgConnection,
    bucket: &str,
    key: &str,
    keep: &[Segment],
) -> CpResult<Vec<CleanupItem>> {
    let Some(old) = load_object(&mut *conn, bucket, key).await? else {
        return Ok(Vec::new());
    };
    let all: Vec<Segment> = (old.segments.iter())
        .chain(old.copies.iter().flatten())
        .cloned()
        .collect();
    let items = enqueue_unreferenced(&mut *conn, &all, keep).await?;
    // Segments go with the row (ON DELETE CASCADE); delete them explicitly anyway.
    sqlx::query("DELETE FROM segments WHERE object_id = $1")
        .bind(&old.object_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2")
        .bind(bucket)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(items)
}

/// Writes `record` as the object at its (bucket, key); the slot must be free.
pub(super) async fn insert_object(conn: &mut PgConnection, record: &ObjectRecord) -> CpResult<()> {
    let sql = format!(
        "INSERT INTO objects (bucket, key, object_id, {META_COLUMNS}) \
         VALUES ($1, $2, $3, {})",
        meta_placeholders(4)
    );
    let q = sqlx::query(&sql)
        .bind(&record.bucket)
        .bind(&record.key)
        .bind(&record.object_id);
    bind_meta(q, &record.meta)?.execute(&mut *conn).await.map_err(db)?;
    insert_segments(&mut *conn, &record.object_id, &record.segments).await?;
    for copy in &record.copies {
        insert_copy(&mut *conn, &record.object_id, copy).await?;
    }
    Ok(())
}

/// Fails unless `condition` holds of the current object at (bucket, key).
/// Called inside the commit's write transaction, after the key is locked, so
/// no other writer of the key can commit between the check and the swap.
pub(super) async fn check_condition(
    conn: &mut PgConnection,
    bucket: &str,
    key: &str,
    condition: &WriteCondition,
) -> CpResult<()> {
    if condition.is_none() {
        return Ok(());
    }
    let current: Option<(String,)> = sqlx::query_as("SELECT etag FROM objects WHERE bucket = $1 AND key = $2")
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    condition.check(current.as_ref().map(|(e,)| e.as_str()))
}

/// Deletes an intent; returns whether it existed.
pub(super) async fn delete_intent_row(conn: &mut PgConnection, intent_id: &str) -> CpResult<bool> {
    let done = sqlx::query("DELETE FROM intents WHERE intent_id = $1")
        .bind(intent_id)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

/// Removes the intent a commit redeems. A missing intent means the reaper
/// judged the write abandoned and may have deleted its bytes, so the commit
/// must not make them current; the client retries the whole request.
pub(super) async fn redeem_intent(conn: &mut PgConnection, intent_id: &str) -> CpResult<()> {
    if !delete_intent_row(conn, intent_id).await? {
        return Err(CpError::Unavailable(
            "the write took too long and its plan expired before the commit; retry the request".into(),
        ));
    }
    Ok(())
}

impl PgStore {
    pub(super) async fn insert_intent_impl(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
    ) -> CpResult<()> {
        sqlx::query(
            "INSERT INTO intents (intent_id, object_id, backend_id, backend_key, bucket, key, \
             created_ms, size_hint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&plan.intent_id)
        .bind(&plan.object_id)
        .bind(&plan.backend_id)
        .bind(&plan.backend_key)
        .bind(bucket)
        .bind(key)
        .bind(now_ms)
        .bind(to_i64(size_hint.unwrap_or(0))?)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(super) async fn reserve_intent_impl(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
        quota: Option<u64>,
    ) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        require_bucket(&mut tx, bucket).await?;
        if let Some(quota) = quota {
            // Reservations against one backend queue on this lock until the
            // holder commits; the sum below is a fresh statement, so it sees
            // every reservation committed before.
            advisory_lock(&mut tx, "reserve", &plan.backend_id).await?;
            let (filled,): (Option<i64>,) = sqlx::query_as(
                "SELECT SUM(bytes_used + orphan_bytes + reserved_bytes)::BIGINT FROM usage_delta \
                 WHERE backend_id = $1",
            )
            .bind(&plan.backend_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            let filled = u64::try_from(filled.unwrap_or(0)).unwrap_or(0);
            if filled.saturating_add(size_hint.unwrap_or(1)) > quota {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO intents (intent_id, object_id, backend_id, backend_key, bucket, key, \
             created_ms, size_hint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&plan.intent_id)
        .bind(&plan.object_id)
        .bind(&plan.backend_id)
        .bind(&plan.backend_key)
        .bind(bucket)
        .bind(key)
        .bind(now_ms)
        .bind(to_i64(size_hint.unwrap_or(0))?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(super) async fn delete_intent_impl(&self, intent_id: &str) -> CpResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        delete_intent_row(&mut conn, intent_id).await.map(|_| ())
    }

    pub(super) async fn commit_object_impl(
        &self,
        intent_id: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        self.commit_replicated_impl(&[intent_id.to_owned()], record, condition)
            .await
    }

    pub(super) async fn get_object_impl(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        let mut tx = self.read_tx().await?;
        require_bucket(&mut tx, bucket).await?;
        let record = load_object(&mut tx, bucket, key).await?;
        tx.commit().await.map_err(db)?;
        record.ok_or(CpError::NoSuchKey)
    }

    pub(super) async fn delete_object_impl(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        let mut tx = self.write_tx().await?;
        require_bucket(&mut tx, bucket).await?;
        lock_key(&mut tx, bucket, key).await?;
        let items = remove_object(&mut tx, bucket, key, &[]).await?;
        tx.commit().await.map_err(db)?;
        Ok(items)
    }

    pub(super) async fn ack_cleanup_impl(&self, ids: &[i64]) -> CpResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM cleanup_queue WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(super) async fn pending_cleanup_impl(&self, limit: u32) -> CpResult<Vec<CleanupItem>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, backend_id, backend_key FROM cleanup_queue ORDER BY id LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, backend_id, backend_key)| CleanupItem {
                id,
                backend_id,
                backend_key,
            })
            .collect())
    }
}
