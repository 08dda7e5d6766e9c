//! Test fixtures: an in-memory SQLite store, a local-disk backend `disk-1` in
//! a temp dir, and a clock the tests move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use strata_backend::Backends;
use strata_core::config::{BackendConfig, BackendLimits};
use strata_core::{ObjectId, ObjectMeta, ObjectRecord, Segment, WritePlan};
use strata_store::{MetaStore, SqliteStore};

use crate::Clock;

pub const T0: i64 = 1_700_000_000_000;

pub struct Kit {
    pub store: Arc<dyn MetaStore>,
    pub backends: Backends,
    pub clock: Clock,
    pub now: Arc<AtomicI64>,
    pub _dir: tempfile::TempDir,
}

impl Kit {
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Stores `data` on `disk-1` under a fresh key and returns the key.
    pub async fn put_bytes(&self, data: &'static [u8]) -> String {
        self.put_tagged(data, &Default::default()).await
    }

    /// Stores `data` with blob tags on `disk-1` under a fresh key.
    pub async fn put_tagged(&self, data: &'static [u8], tags: &strata_backend::BlobMeta) -> String {
        let key = ObjectId::random().to_string();
        let body = Box::pin(futures::stream::iter([Ok(Bytes::from_static(data))]));
        let disk = self.backends.get("disk-1").unwrap();
        disk.put(&key, tags, body).await.unwrap();
        key
    }

    /// Whether `key` exists on `disk-1`.
    pub async fn exists(&self, key: &str) -> bool {
        self.backends.get("disk-1").unwrap().head(key).await.is_ok()
    }

    /// Commits then deletes an object of one segment at (`backend_id`,
    /// `backend_key`), which queues that segment for cleanup.
    pub async fn queue_cleanup(&self, backend_id: &str, backend_key: &str, length: u64) {
        let s = &self.store;
        let _ = s.create_bucket("b", "admin", 1).await;
        let tag = ObjectId::random().to_string();
        let plan = WritePlan {
            intent_id: format!("intent-{tag}"),
            object_id: format!("obj-{tag}"),
            backend_id: backend_id.into(),
            backend_key: backend_key.into(),
            ..Default::default()
        };
        s.insert_intent(&plan, "b", &tag, None, self.now()).await.unwrap();
        let record = ObjectRecord {
            bucket: "b".into(),
            key: tag.clone(),
            object_id: plan.object_id.clone(),
            meta: ObjectMeta {
                size: length,
                etag: "e".into(),
                ..ObjectMeta::default()
            },
            segments: vec![Segment {
                backend_id: backend_id.into(),
                backend_key: backend_key.into(),
                length,
                ..Default::default()
            }],
            copies: Vec::new(),
        };
        s.commit_object(&plan.intent_id, &record).await.unwrap();
        assert_eq!(s.delete_object("b", &tag).await.unwrap().len(), 1);
    }

    /// Orphan bytes the catalog counts for `backend_id`.
    pub async fn orphan_bytes(&self, backend_id: &str) -> u64 {
        self.store
            .backend_usage()
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.backend_id == backend_id)
            .map_or(0, |u| u.orphan_bytes)
    }
}

pub async fn kit() -> Kit {
    let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::open(&[BackendConfig::Local {
        encryption: None,
        id: "disk-1".into(),
        path: dir.path().join("disk-1"),
        limits: BackendLimits::default(),
    }])
    .await
    .unwrap();
    let now = Arc::new(AtomicI64::new(T0));
    let n = now.clone();
    Kit {
        store,
        backends,
        clock: Arc::new(move || n.load(Ordering::SeqCst)),
        now,
        _dir: dir,
    }
}
