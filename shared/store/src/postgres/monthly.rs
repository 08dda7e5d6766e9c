//! Monthly traffic counters per backend (see `migrations_pg/0001_initial.sql`).

use sqlx::PgPool;
use strata_core::{BackendTraffic, CpResult, MonthlyUsage};

use super::db;

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Adds each backend's traffic to `month` in one transaction.
pub(super) async fn add(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    month: &str,
    traffic: &[BackendTraffic],
) -> CpResult<()> {
    // One shard per call and backends in id order: two concurrent reports lock
    // their rows in the same order, so they may wait but never deadlock.
    let shard = i32::from(uuid::Uuid::new_v4().as_bytes()[0] % 16);
    let mut sorted: Vec<&BackendTraffic> = traffic.iter().collect();
    sorted.sort_by(|a, b| a.backend_id.cmp(&b.backend_id));
    for t in sorted {
        if t.requests == 0 && t.egress_bytes == 0 && t.ingress_bytes == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO monthly_usage (backend_id, month, shard, requests, egress_bytes, ingress_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (backend_id, month, shard) DO UPDATE SET \
             requests = monthly_usage.requests + excluded.requests, \
             egress_bytes = monthly_usage.egress_bytes + excluded.egress_bytes, \
             ingress_bytes = monthly_usage.ingress_bytes + excluded.ingress_bytes",
        )
        .bind(&t.backend_id)
        .bind(month)
        .bind(shard)
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
pub(super) async fn get(pool: &PgPool, month: &str) -> CpResult<Vec<MonthlyUsage>> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT backend_id, SUM(requests)::BIGINT, SUM(egress_bytes)::BIGINT, SUM(ingress_bytes)::BIGINT \
         FROM monthly_usage WHERE month = $1 GROUP BY backend_id ORDER BY backend_id",
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
