//! Usage counters: bytes per backend for placement, kept by the triggers of
//! the rows that hold bytes (`migrations/0002_usage.sql`,
//! `migrations_pg/0001_initial.sql`), and the data planes' monthly traffic
//! (`migrations/0004_monthly_usage.sql`).

use async_trait::async_trait;
use strata_core::{BackendTraffic, CpResult, MonthlyUsage};

use crate::metrics::timed;
use crate::rows::count;
use crate::sql::{Dialect, sql};
use crate::store::Db;
use crate::store::SqlBacked;
use crate::{BackendUsage, Store};

/// PostgreSQL folds its usage delta rows into one row per backend once there
/// are more than this many: cheap enough to do inline, rare enough not to matter.
const FOLD_THRESHOLD: i64 = 256;

/// What each backend holds and serves.
#[async_trait]
pub trait Usage: SqlBacked {
    /// Usage of every backend the catalog has ever recorded bytes for, sorted
    /// by id. Kept exact in the same transactions that add or remove segments,
    /// parts, cleanup rows and intents (see `migrations/0002_usage.sql`).
    async fn backend_usage(&self) -> CpResult<Vec<BackendUsage>> {
        timed("backend_usage", async {
            let mut c = self.db().conn().await?;
            let text = format!(
                "SELECT backend_id, CAST(SUM(bytes_used) AS BIGINT), CAST(SUM(orphan_bytes) AS BIGINT), \
                 CAST(SUM(reserved_bytes) AS BIGINT), CAST(SUM(objects) AS BIGINT), COUNT(*) \
                 FROM {} GROUP BY backend_id ORDER BY backend_id",
                c.dialect().usage_table()
            );
            let rows: Vec<(String, i64, i64, i64, i64, i64)> = sql(text).fetch_all(&mut c).await?;
            drop(c);
            let rows_seen: i64 = rows.iter().map(|r| r.5).sum();
            if self.db().dialect() == Dialect::Postgres && rows_seen > FOLD_THRESHOLD {
                fold_usage(self.db()).await?;
            }
            // Shards may be negative; the sums cannot be, short of a bug: clamp rather than fail placement.
            Ok(rows
                .into_iter()
                .map(|(backend_id, used, orphan, reserved, objects, _)| BackendUsage {
                    backend_id,
                    bytes_used: count(used),
                    orphan_bytes: count(orphan),
                    reserved_bytes: count(reserved),
                    objects: count(objects),
                })
                .collect())
        })
        .await
    }

    /// Adds data-plane traffic to the counters of `month` (`YYYY-MM`, UTC).
    /// Each call is one transaction; concurrent calls land on different shards.
    async fn add_monthly_usage(&self, month: &str, traffic: &[BackendTraffic]) -> CpResult<()> {
        timed("add_monthly_usage", async {
            // One shard per call and backends in id order: two concurrent reports
            // lock their rows in the same order, so they may wait but never deadlock.
            let shard = i32::from(uuid::Uuid::new_v4().as_bytes()[0] % 16);
            let mut sorted: Vec<&BackendTraffic> = traffic.iter().collect();
            sorted.sort_by(|a, b| a.backend_id.cmp(&b.backend_id));
            let mut c = self.db().write().await?;
            for t in sorted {
                if t.requests == 0 && t.egress_bytes == 0 && t.ingress_bytes == 0 {
                    continue;
                }
                sql(
                    "INSERT INTO monthly_usage (backend_id, month, shard, requests, egress_bytes, ingress_bytes) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (backend_id, month, shard) DO UPDATE SET \
                     requests = monthly_usage.requests + excluded.requests, \
                     egress_bytes = monthly_usage.egress_bytes + excluded.egress_bytes, \
                     ingress_bytes = monthly_usage.ingress_bytes + excluded.ingress_bytes",
                )
                .bind(&t.backend_id)
                .bind(month)
                .bind(shard)
                .bind(saturating(t.requests))
                .bind(saturating(t.egress_bytes))
                .bind(saturating(t.ingress_bytes))
                .execute(&mut c)
                .await?;
            }
            c.commit().await
        })
        .await
    }

    /// Traffic totals of `month` for every backend that had any, sorted by id.
    /// The `*_exhausted` flags are false: limits are the control plane's business.
    async fn monthly_usage(&self, month: &str) -> CpResult<Vec<MonthlyUsage>> {
        timed("monthly_usage", async {
            let rows: Vec<(String, i64, i64, i64)> = sql(
                "SELECT backend_id, CAST(SUM(requests) AS BIGINT), CAST(SUM(egress_bytes) AS BIGINT), \
                 CAST(SUM(ingress_bytes) AS BIGINT) FROM monthly_usage WHERE month = ? \
                 GROUP BY backend_id ORDER BY backend_id",
            )
            .bind(month)
            .fetch_all(&mut self.db().conn().await?)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(backend_id, requests, egress, ingress)| MonthlyUsage {
                    backend_id,
                    month: month.to_owned(),
                    requests: count(requests),
                    egress_bytes: count(egress),
                    ingress_bytes: count(ingress),
                    ..MonthlyUsage::default()
                })
                .collect())
        })
        .await
    }
}

impl<D: 'static> Usage for Store<D> {}

/// PostgreSQL: replaces all usage delta rows by their per-backend sums, in
/// one statement: totals are the same before and after, for every reader.
/// Skipped when another session is folding right now.
async fn fold_usage(db: &Db) -> CpResult<()> {
    let mut c = db.write().await?;
    let got: bool = sql("SELECT pg_try_advisory_xact_lock(hashtextextended('usage_fold', 0))")
        .scalar(&mut c)
        .await?;
    if got {
        sql("WITH gone AS (DELETE FROM usage_delta RETURNING *) \
                 INSERT INTO usage_delta (backend_id, bytes_used, orphan_bytes, reserved_bytes, objects) \
                 SELECT backend_id, SUM(bytes_used), SUM(orphan_bytes), SUM(reserved_bytes), SUM(objects) \
                 FROM gone GROUP BY backend_id")
        .execute(&mut c)
        .await?;
    }
    c.commit().await
}

fn saturating(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
