//! Monthly traffic counters per backend (see `migrations/0004_monthly_usage.sql`).

use sqlx::SqlitePool;
use strata_core::{BackendTraffic, CpResult, MonthlyUsage};

use super::db;

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Adds each backend's traffic to `month` in one transaction.
pub(super) async fn add(mut tx: super::WriteTx, month: &str, traffic: &[BackendTraffic]) -> CpResult<()> {
    for t in traffic {
        if t.requests == 0 && t.egress_bytes == 0 && t.ingress_bytes == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO monthly_usage (backend_id, month, shard, requests, egress_bytes, ingress_bytes) \
             VALUES (?, ?, abs(random() % 16), ?, ?, ?) \
             ON CONFLICT (backend_id, month, shard) DO UPDATE SET \
             requests = requests + excluded.requests, \
             egress_bytes = egress_bytes + excluded.egress_bytes, \
             ingress_bytes = ingress_bytes + excluded.ingress_bytes",
        )
        .bind(&t.backend_id)
        .bind(month)
        .bind(int(t.requests))
        .bind(int(t.egress_bytes))
        .bind(int(t.ingress_bytes))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// The totals of `month`, one entry per backend with traffic, sorted by id.
/// The exhausted flags are left false: the store does not know the limits.
pub(super) async fn get(pool: &SqlitePool, month: &str) -> CpResult<Vec<MonthlyUsage>> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT backend_id, SUM(requests), SUM(egress_bytes), SUM(ingress_bytes) \
         FROM monthly_usage WHERE month = ? GROUP BY backend_id ORDER BY backend_id",
    )
    .bind(month)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|(backend_id, requests, egress, ingress)| MonthlyUsage {
            backend_id,
            month: month.to_owned(),
            requests: u(requests),
            egress_bytes: u(egress),
            ingress_bytes: u(ingress),
            ..MonthlyUsage::default()
        })
        .collect())
}
