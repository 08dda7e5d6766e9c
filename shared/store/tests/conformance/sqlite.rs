//! SQLite-specific behaviour: files, persistence, concurrency.

use std::path::PathBuf;

use strata_core::CpError;
use strata_store::prelude::*;
use strata_store::{MetaStore, SqliteStore};

use crate::support::{claims_are_exclusive, put};

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("strata-store-test-{}", uuid::Uuid::new_v4()))
}

#[tokio::test]
async fn file_store_creates_parent_and_persists() {
    let dir = temp_dir();
    let file = dir.join("nested/deeper/meta.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    {
        let s = SqliteStore::connect(&url).await.unwrap();
        s.create_bucket("b", "admin", 5).await.unwrap();
        put(&s, "b", "k", "t1", 3).await;
    }
    assert!(file.exists());
    // Reopening runs the migrations again (a no-op) and sees the data.
    let s = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(s.get_bucket("b").await.unwrap().created_unix_ms, 5);
    assert_eq!(s.get_object("b", "k").await.unwrap().meta.size, 3);
    // Without a mode the file is created too.
    let other = dir.join("plain.db");
    let s2 = SqliteStore::connect(&format!("sqlite://{}", other.display()))
        .await
        .unwrap();
    assert!(s2.list_buckets().await.unwrap().is_empty());
    drop((s, s2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn memory_stores_are_separate() {
    let a = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let b = SqliteStore::connect("sqlite::memory:").await.unwrap();
    a.create_bucket("x", "admin", 1).await.unwrap();
    assert_eq!(b.get_bucket("x").await, Err(CpError::NoSuchBucket));
    // Concurrent use of the single connection is serialised, not lost.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { put(&a, "x", &format!("k{i}"), &format!("t{i}"), 1).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.list_objects(&list_all("x")).await.unwrap().objects.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_a_file() {
    let dir = temp_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("meta.db").display());
    let s = SqliteStore::connect(&url).await.unwrap();
    crate::support::concurrent_writers(std::sync::Arc::new(s.clone())).await;
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cleanup_claims_on_a_file_are_exclusive() {
    let dir = temp_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("meta.db").display());
    let s = SqliteStore::connect(&url).await.unwrap();
    claims_are_exclusive(std::sync::Arc::new(s.clone())).await;
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bad_urls_are_errors() {
    assert!(SqliteStore::connect("postgres://nope").await.is_err());
    assert!(SqliteStore::connect("sqlite:///tmp/x.db?mode=bogus").await.is_err());
}

fn list_all(bucket: &str) -> strata_core::ListQuery {
    strata_core::ListQuery {
        bucket: bucket.into(),
        max_keys: 1000,
        ..Default::default()
    }
}

#[allow(dead_code)]
fn assert_store_is_object_safe(s: SqliteStore) -> Box<dyn MetaStore> {
    Box::new(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_on_a_file_never_overshoot() {
    let dir = temp_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("meta.db").display());
    let s = SqliteStore::connect(&url).await.unwrap();
    crate::reserve::concurrent_reservations_never_overshoot(std::sync::Arc::new(s)).await;
}
