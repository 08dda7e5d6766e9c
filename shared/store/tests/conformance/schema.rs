//! One schema history: both databases end with the same tables, columns and
//! indexes, and migrations from `ALIGNED_FROM` on carry the same number and
//! name in both directories (see docs/postgres.md, "Migrations").

use std::collections::BTreeSet;

use sqlx::Connection;
use strata_store::SqliteStore;

use crate::pg_cluster;

/// The first migration version that both directories share.
const ALIGNED_FROM: u64 = 14;

/// Where the schemas differ on purpose (docs/postgres.md, "Schema
/// differences from SQLite"): the usage counters (sharded rows on SQLite,
/// appended deltas on PostgreSQL), the lease's expiry (this process's clock on
/// SQLite, the database clock on PostgreSQL), PostgreSQL's extra index for
/// due cleanup rows and its byte-order (`COLLATE "C"`) indexes for the
/// reconciler, which SQLite's BINARY collation makes unnecessary.
const ONLY_SQLITE: &[&str] = &[
    "table backend_usage",
    "column backend_usage.backend_id text",
    "column backend_usage.bytes_used int",
    "column backend_usage.objects int",
    "column backend_usage.orphan_bytes int",
    "column backend_usage.reserved_bytes int",
    "column backend_usage.shard int",
    "column cp_lease.expires_ms int",
];
const ONLY_PG: &[&str] = &[
    "table usage_delta",
    "column usage_delta.backend_id text",
    "column usage_delta.bytes_used int",
    "column usage_delta.id int",
    "column usage_delta.objects int",
    "column usage_delta.orphan_bytes int",
    "column usage_delta.reserved_bytes int",
    "column cp_lease.expires_at time",
    "index cleanup_queue.cleanup_due",
    "index usage_delta.usage_delta_by_backend",
    "index segments.segments_by_blob_c",
    "index parts.parts_by_blob_c",
    "index intents.intents_by_blob_c",
    "index cleanup_queue.cleanup_queue_by_blob_c",
    "index cleanup_dead_letter.cleanup_dead_letter_by_blob_c",
];

/// A column type in one of a few families both databases share.
fn family(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") || t == "boolean" || t.contains("serial") {
        "int"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes"
    } else if t.contains("time") {
        "time"
    } else {
        "other"
    }
}

fn migrations(dir: &str) -> Vec<(u64, String)> {
    let path = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(u64, String)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|name| {
            let (version, rest) = name.split_once('_').expect("NNNN_name.sql");
            (version.parse().expect("a numbered migration"), rest.to_owned())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn migrations_share_numbers_and_names_from_the_aligned_version_on() {
    let lite = migrations("migrations");
    let pg = migrations("migrations_pg");
    let newer = |all: &[(u64, String)]| -> Vec<(u64, String)> {
        all.iter().filter(|(v, _)| *v >= ALIGNED_FROM).cloned().collect()
    };
    assert_eq!(newer(&lite), newer(&pg), "migrations from {ALIGNED_FROM} on differ");
    // Neither history may add an unaligned migration below the aligned range.
    assert!(lite.iter().all(|(v, _)| *v <= 13 || *v >= ALIGNED_FROM));
    assert!(pg.iter().all(|(v, _)| *v <= 10 || *v >= ALIGNED_FROM));
}

async fn sqlite_schema() -> BTreeSet<String> {
    let file = std::env::temp_dir().join(format!("strata-schema-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", file.display());
    drop(SqliteStore::connect(&url).await.expect("open the SQLite store"));
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = BTreeSet::new();
    for (table,) in tables {
        let columns: Vec<(String, String)> = sqlx::query_as("SELECT name, type FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for (column, declared) in columns {
            out.insert(format!("column {table}.{column} {}", family(&declared)));
        }
        out.insert(format!("table {table}"));
    }
    // Indexes a migration created (not those SQLite makes for keys).
    let indexes: Vec<(String, String)> =
        sqlx::query_as("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    out.extend(indexes.into_iter().map(|(t, i)| format!("index {t}.{i}")));
    drop(conn);
    let _ = std::fs::remove_file(&file);
    out
}

async fn pg_schema(url: &str) -> BTreeSet<String> {
    drop(
        strata_store::PgStore::connect(url, 1)
            .await
            .expect("open the PostgreSQL store"),
    );
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = BTreeSet::new();
    for (table, column, declared) in columns {
        out.insert(format!("table {table}"));
        out.insert(format!("column {table}.{column} {}", family(&declared)));
    }
    // Indexes a migration created (not those backing a key constraint).
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT tablename::text, indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND tablename <> '_sqlx_migrations' \
         AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    out.extend(indexes.into_iter().map(|(t, i)| format!("index {t}.{i}")));
    out
}

#[tokio::test]
async fn both_databases_end_with_the_same_schema() {
    if pg_cluster::skipped() {
        return;
    }
    let lite = sqlite_schema().await;
    let pg = pg_schema(&pg_cluster::fresh_database().await).await;
    let expected = |list: &[&str]| -> BTreeSet<String> { list.iter().map(|s| s.to_string()).collect() };
    let only_lite: BTreeSet<String> = lite.difference(&pg).cloned().collect();
    let only_pg: BTreeSet<String> = pg.difference(&lite).cloned().collect();
    assert_eq!(only_lite, expected(ONLY_SQLITE), "only in SQLite");
    assert_eq!(only_pg, expected(ONLY_PG), "only in PostgreSQL");
}
