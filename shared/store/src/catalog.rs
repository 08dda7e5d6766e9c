//! Credentials, buckets and object listing.

use async_trait::async_trait;
use strata_core::{BucketInfo, CpError, CpResult, ListPage, ListQuery};

use crate::listing::{Lower, Row, Scan};
use crate::metrics::timed;
use crate::rows::{count, require_bucket};
use crate::sql::{Conn, now_ms, sql};
use crate::store::SqlBacked;
use crate::{Store, StoredCredential};

/// Generated access keys.
#[async_trait]
pub trait Identity: SqlBacked {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<StoredCredential>> {
        timed("get_credential", async {
            let row: Option<(String, String, bool)> =
                sql("SELECT access_key_id, secret, unrestricted FROM credentials WHERE access_key_id = ?")
                    .bind(access_key_id)
                    .fetch_optional(&mut self.db().conn().await?)
                    .await?;
            Ok(
                row.map(|(access_key_id, secret_access_key, unrestricted)| StoredCredential {
                    access_key_id,
                    secret_access_key,
                    unrestricted,
                }),
            )
        })
        .await
    }

    /// `InvalidArgument` when the access key exists.
    async fn insert_credential(&self, cred: &StoredCredential) -> CpResult<()> {
        timed("insert_credential", async {
            let done = sql(
                "INSERT INTO credentials (access_key_id, secret, unrestricted, created_ms) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (access_key_id) DO NOTHING",
            )
            .bind(&cred.access_key_id)
            .bind(&cred.secret_access_key)
            .bind(cred.unrestricted)
            .bind(now_ms())
            .execute(&mut self.db().write_conn().await?)
            .await?;
            if done == 0 {
                return Err(CpError::InvalidArgument(format!(
                    "access key {} already exists",
                    cred.access_key_id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn count_credentials(&self) -> CpResult<u64> {
        timed("count_credentials", async {
            let n: i64 = sql("SELECT COUNT(*) FROM credentials")
                .scalar(&mut self.db().conn().await?)
                .await?;
            Ok(count(n))
        })
        .await
    }
}

/// Buckets and the listing of their objects.
#[async_trait]
pub trait Catalog: SqlBacked {
    /// Fails with `BucketAlreadyOwnedByYou` when it exists.
    async fn create_bucket(&self, name: &str, owner: &str, now_ms: i64) -> CpResult<()> {
        timed("create_bucket", async {
            let done =
                sql("INSERT INTO buckets (name, owner, created_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(owner)
                    .bind(now_ms)
                    .execute(&mut self.db().write_conn().await?)
                    .await?;
            if done == 0 {
                return Err(CpError::BucketAlreadyOwnedByYou);
            }
            Ok(())
        })
        .await
    }

    /// Fails with `NoSuchBucket`, or `BucketNotEmpty` when it holds objects or uploads.
    async fn delete_bucket(&self, name: &str) -> CpResult<()> {
        timed("delete_bucket", async {
            let mut c = self.db().write().await?;
            // FOR UPDATE waits for writers holding the row's key-share lock
            // (`rows::WRITER`); the emptiness check below then sees what they committed.
            require_bucket(&mut c, name, " FOR UPDATE").await?;
            let busy: bool = sql("SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1) \
                     OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)")
            .bind(name)
            .scalar(&mut c)
            .await?;
            if busy {
                return Err(CpError::BucketNotEmpty);
            }
            sql("DELETE FROM buckets WHERE name = ?")
                .bind(name)
                .execute(&mut c)
                .await?;
            c.commit().await
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> CpResult<BucketInfo> {
        timed("get_bucket", async {
            let row: Option<(String, i64)> = sql("SELECT name, created_ms FROM buckets WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut self.db().conn().await?)
                .await?;
            row.map(|(name, created_unix_ms)| BucketInfo { name, created_unix_ms })
                .ok_or(CpError::NoSuchBucket)
        })
        .await
    }

    /// Sorted by name. Internal buckets (names starting with `.`, such as
    /// the `.refs.<bucket>` of delta references) are left out.
    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        timed("list_buckets", async {
            let rows: Vec<(String, i64)> =
                sql("SELECT name, created_ms FROM buckets WHERE substr(name, 1, 1) <> '.' ORDER BY name")
                    .fetch_all(&mut self.db().conn().await?)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(name, created_unix_ms)| BucketInfo { name, created_unix_ms })
                .collect())
        })
        .await
    }

    /// Lists in UTF-8 byte order with prefix, delimiter grouping, `after` and
    /// `max_keys` (counting objects plus common prefixes). `NoSuchBucket` when absent.
    async fn list_objects(&self, query: &ListQuery) -> CpResult<ListPage> {
        timed("list_objects", async {
            let mut c = self.db().read().await?;
            require_bucket(&mut c, &query.bucket, "").await?;
            let mut scan = Scan::new(query);
            while let Some((lower, upper, limit)) = scan.next_batch() {
                let rows = fetch_batch(&mut c, &query.bucket, lower, upper, limit).await?;
                scan.feed(rows)?;
            }
            let page = scan.finish();
            c.commit().await?;
            Ok(page)
        })
        .await
    }

    /// The number of current objects in all buckets.
    async fn count_objects(&self) -> CpResult<u64> {
        timed("count_objects", async {
            let n: i64 = sql("SELECT COUNT(*) FROM objects")
                .scalar(&mut self.db().conn().await?)
                .await?;
            Ok(count(n))
        })
        .await
    }
}

impl<D: 'static> Identity for Store<D> {}

impl<D: 'static> Catalog for Store<D> {}

/// One batch of (key, size, etag, last_modified_ms) in `[lower, upper)`.
async fn fetch_batch(c: &mut Conn, bucket: &str, lower: &Lower, upper: Option<&str>, limit: u32) -> CpResult<Vec<Row>> {
    let (op, bound) = match lower {
        Lower::After(k) => (">", k),
        Lower::From(k) => (">=", k),
    };
    let upper_clause = if upper.is_some() { " AND key < ?" } else { "" };
    let text = format!(
        "SELECT key, size, etag, last_modified_ms FROM objects \
         WHERE bucket = ? AND key {op} ?{upper_clause} ORDER BY key LIMIT ?"
    );
    let mut q = sql(text).bind(bucket).bind(bound.as_str());
    if let Some(upper) = upper {
        q = q.bind(upper);
    }
    q.bind(i64::from(limit)).fetch_all(c).await
}
