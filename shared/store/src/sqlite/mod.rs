//! [`MetaStore`] on SQLite through sqlx. Writes run in `BEGIN IMMEDIATE`
//! transactions so that concurrent writers queue on the busy timeout instead of
//! failing on a lock upgrade; reads run in deferred transactions, which see one
//! consistent snapshot under WAL.

mod buckets;
mod complete;
mod copies;
mod jobs;
mod list;
mod monthly;
mod multipart;
mod objects;
mod rows;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};
use strata_core::{
    BucketInfo, CleanupItem, CpError, CpResult, ListPage, ListPartsPage, ListQuery, ListUploadsPage, ListUploadsQuery,
    ObjectRecord, PartInfo, Segment, UploadInfo, WritePlan,
};

use crate::{BackendUsage, CleanupClaim, MetaStore, StaleIntent, StoredCredential};

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
        })
    }

    /// Starts a write transaction holding the database write lock. Writers of
    /// this process queue on an async mutex first: SQLite's own busy handler
    /// sleeps in steps of up to 100 ms, which under contention costs far more
    /// than the transactions themselves.
    async fn write_tx(&self) -> CpResult<WriteTx> {
        let guard = self.writer.clone().lock_owned().await;
        let tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        Ok(WriteTx { tx, _guard: guard })
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

#[async_trait]
impl MetaStore for SqliteStore {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<StoredCredential>> {
        self.get_credential_impl(access_key_id).await
    }

    async fn insert_credential(&self, cred: &StoredCredential) -> CpResult<()> {
        self.insert_credential_impl(cred).await
    }

    async fn count_credentials(&self) -> CpResult<u64> {
        self.count_credentials_impl().await
    }

    async fn create_bucket(&self, name: &str, owner: &str, now_ms: i64) -> CpResult<()> {
        self.create_bucket_impl(name, owner, now_ms).await
    }

    async fn delete_bucket(&self, name: &str) -> CpResult<()> {
        self.delete_bucket_impl(name).await
    }

    async fn get_bucket(&self, name: &str) -> CpResult<BucketInfo> {
        self.get_bucket_impl(name).await
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        self.list_buckets_impl().await
    }

    async fn insert_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
    ) -> CpResult<()> {
        self.insert_intent_impl(plan, bucket, key, size_hint, now_ms).await
    }

    async fn reserve_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
        quota: Option<u64>,
    ) -> CpResult<bool> {
        self.reserve_intent_impl(plan, bucket, key, size_hint, now_ms, quota)
            .await
    }

    async fn delete_intent(&self, intent_id: &str) -> CpResult<()> {
        self.delete_intent_impl(intent_id).await
    }

    async fn commit_object(&self, intent_id: &str, record: &ObjectRecord) -> CpResult<Vec<CleanupItem>> {
        self.commit_object_impl(intent_id, record).await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        self.get_object_impl(bucket, key).await
    }

    async fn list_objects(&self, query: &ListQuery) -> CpResult<ListPage> {
        self.list_objects_impl(query).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        self.delete_object_impl(bucket, key).await
    }

    async fn ack_cleanup(&self, ids: &[i64]) -> CpResult<()> {
        self.ack_cleanup_impl(ids).await
    }

    async fn pending_cleanup(&self, limit: u32) -> CpResult<Vec<CleanupItem>> {
        self.pending_cleanup_impl(limit).await
    }

    async fn claim_cleanup(&self, now_ms: i64, lease_ms: i64, limit: u32) -> CpResult<Vec<CleanupClaim>> {
        self.claim_cleanup_impl(now_ms, lease_ms, limit).await
    }

    async fn fail_cleanup(&self, id: i64, error: &str, now_ms: i64, max_attempts: u32) -> CpResult<bool> {
        self.fail_cleanup_impl(id, error, now_ms, max_attempts).await
    }

    async fn dead_letter_count(&self) -> CpResult<u64> {
        self.dead_letter_count_impl().await
    }

    async fn stale_intents(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<StaleIntent>> {
        self.stale_intents_impl(older_than_ms, limit).await
    }

    async fn create_upload(&self, upload: &UploadInfo) -> CpResult<()> {
        self.create_upload_impl(upload).await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
        let mut tx = self.read_tx().await?;
        let upload = multipart::load_upload(&mut tx, bucket, upload_id).await?;
        tx.commit().await.map_err(db)?;
        Ok(upload)
    }

    async fn commit_part(
        &self,
        intent_id: &str,
        bucket: &str,
        upload_id: &str,
        part: &PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        self.commit_part_impl(intent_id, bucket, upload_id, part).await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        self.list_parts_impl(bucket, upload_id, marker, max_parts).await
    }

    async fn list_uploads(&self, query: &ListUploadsQuery) -> CpResult<ListUploadsPage> {
        self.list_uploads_impl(query).await
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        self.complete_upload_impl(bucket, upload_id, parts, object_id, now_ms)
            .await
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        self.abort_upload_impl(bucket, upload_id).await
    }

    async fn add_copy(
        &self,
        intent_id: &str,
        bucket: &str,
        key: &str,
        object_id: &str,
        segments: &[Segment],
    ) -> CpResult<bool> {
        self.add_copy_impl(intent_id, bucket, key, object_id, segments).await
    }

    async fn under_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        self.under_replicated_impl(factor, after, limit).await
    }

    async fn promote_intent(&self, intent_id: &str, record: &ObjectRecord, written_after_ms: i64) -> CpResult<bool> {
        self.promote_intent_impl(intent_id, record, written_after_ms).await
    }

    async fn backend_usage(&self) -> CpResult<Vec<BackendUsage>> {
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT backend_id, SUM(bytes_used), SUM(orphan_bytes), SUM(reserved_bytes), SUM(objects) \
             FROM backend_usage GROUP BY backend_id ORDER BY backend_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // Shards may be negative; the sums cannot be, short of a bug: clamp rather than fail placement.
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(|(backend_id, used, orphan, reserved, objects)| BackendUsage {
                backend_id,
                bytes_used: u(used),
                orphan_bytes: u(orphan),
                reserved_bytes: u(reserved),
                objects: u(objects),
            })
            .collect())
    }

    async fn add_monthly_usage(&self, month: &str, traffic: &[strata_core::BackendTraffic]) -> CpResult<()> {
        monthly::add(self.write_tx().await?, month, traffic).await
    }

    async fn monthly_usage(&self, month: &str) -> CpResult<Vec<strata_core::MonthlyUsage>> {
        monthly::get(&self.pool, month).await
    }
}
