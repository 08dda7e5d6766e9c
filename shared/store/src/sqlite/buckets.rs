//! Credentials and buckets.

use strata_core::{BucketInfo, CpError, CpResult};

use super::rows::require_bucket;
use super::{SqliteStore, db, now_ms};
use crate::StoredCredential;

impl SqliteStore {
    pub(super) async fn get_credential_impl(&self, access_key_id: &str) -> CpResult<Option<StoredCredential>> {
        let row: Option<(String, String, bool)> =
            sqlx::query_as("SELECT access_key_id, secret, unrestricted FROM credentials WHERE access_key_id = ?")
                .bind(access_key_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(
            row.map(|(access_key_id, secret_access_key, unrestricted)| StoredCredential {
                access_key_id,
                secret_access_key,
                unrestricted,
            }),
        )
    }

    pub(super) async fn insert_credential_impl(&self, cred: &StoredCredential) -> CpResult<()> {
        let result = sqlx::query(
            "INSERT INTO credentials (access_key_id, secret, unrestricted, created_ms) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(&cred.access_key_id)
        .bind(&cred.secret_access_key)
        .bind(cred.unrestricted)
        .bind(now_ms())
        .execute(&self.write_pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(CpError::InvalidArgument(format!(
                "access key {} already exists",
                cred.access_key_id
            ))),
            Err(e) => Err(db(e)),
        }
    }

    pub(super) async fn count_credentials_impl(&self) -> CpResult<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM credentials")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(n.max(0) as u64)
    }

    pub(super) async fn create_bucket_impl(&self, name: &str, owner: &str, now_ms: i64) -> CpResult<()> {
        let done = sqlx::query(
            "INSERT INTO buckets (name, owner, created_ms) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(owner)
        .bind(now_ms)
        .execute(&self.write_pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(CpError::BucketAlreadyOwnedByYou);
        }
        Ok(())
    }

    pub(super) async fn delete_bucket_impl(&self, name: &str) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        require_bucket(&mut tx, name).await?;
        let (busy,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1) \
                 OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if busy {
            return Err(CpError::BucketNotEmpty);
        }
        sqlx::query("DELETE FROM buckets WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn get_bucket_impl(&self, name: &str) -> CpResult<BucketInfo> {
        let row: Option<(String, i64)> = sqlx::query_as("SELECT name, created_ms FROM buckets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(name, created_unix_ms)| BucketInfo { name, created_unix_ms })
            .ok_or(CpError::NoSuchBucket)
    }

    pub(super) async fn list_buckets_impl(&self) -> CpResult<Vec<BucketInfo>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, created_ms FROM buckets WHERE substr(name, 1, 1) <> '.' ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(name, created_unix_ms)| BucketInfo { name, created_unix_ms })
            .collect())
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}
