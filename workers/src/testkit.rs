//! Test fixtures: an in-memory SQLite store, a local-disk backend `disk-1` in
//! a temp dir, and a clock the tests move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use strata_backend::Backends;
use strata_core::config::{BackendConfig, BackendLimits};
use strata_core::{Commit, ObjectId, ObjectMeta, ObjectRecord, Segment, WriteCondition, WritePlan};
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
        s.commit_object(&plan.intent_id, &record, &WriteCondition::NONE)
            .await
            .unwrap();
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

/// An in-process control plane over an in-memory store and local disks
/// `disk-1`.. `disk-n`, with an encryption policy.
pub struct CpKit {
    pub store: Arc<dyn MetaStore>,
    pub backends: Backends,
    pub configs: Vec<BackendConfig>,
    pub cp: Arc<dyn strata_core::ControlPlane>,
    pub sealer: Arc<strata_controlplane::Sealer>,
    pub dir: tempfile::TempDir,
}

pub fn key_config(id: &str, byte: u8) -> strata_core::config::KeyConfig {
    let b64 = match byte {
        1 => "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        _ => "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
    };
    strata_core::config::KeyConfig {
        id: id.into(),
        base64: Some(b64.into()),
        file: None,
    }
}

/// An encryption config: `sealed` sets the default mode, primary `k1`.
pub fn enc(sealed: bool) -> strata_core::config::EncryptionConfig {
    strata_core::config::EncryptionConfig {
        mode: if sealed {
            strata_core::config::EncryptionMode::Aes256Gcm
        } else {
            strata_core::config::EncryptionMode::None
        },
        primary_key: Some(key_config("k1", 1)),
        rewrap_batch: 500,
        ..Default::default()
    }
}

pub async fn cp_kit(disks: usize, enc: &strata_core::config::EncryptionConfig) -> CpKit {
    let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let configs: Vec<BackendConfig> = (1..=disks)
        .map(|i| BackendConfig::Local {
            encryption: None,
            id: format!("disk-{i}"),
            path: dir.path().join(format!("disk-{i}")),
            limits: BackendLimits::default(),
        })
        .collect();
    let backends = Backends::open(&configs).await.unwrap();
    let mut kit = CpKit {
        cp: Arc::new(strata_controlplane::ControlPlaneService::new(
            store.clone(),
            strata_controlplane::Identity::new(&[], store.clone()),
            &configs,
            Default::default(),
        )),
        sealer: Arc::new(strata_controlplane::Sealer::disabled()),
        store,
        backends,
        configs,
        dir,
    };
    kit.with_policy(enc);
    kit.store.create_bucket("b", "admin", 1).await.unwrap();
    kit
}

impl CpKit {
    /// Swaps in a control plane with another encryption policy (same store and disks).
    pub fn with_policy(&mut self, enc: &strata_core::config::EncryptionConfig) {
        let modes: Vec<_> = self.configs.iter().map(|c| (c.id().to_owned(), None)).collect();
        self.sealer = Arc::new(strata_controlplane::Sealer::from_config(enc, &modes).unwrap());
        self.cp = Arc::new(self.service());
    }

    /// A control plane over the kit's store and disks, with its encryption policy.
    fn service(&self) -> strata_controlplane::ControlPlaneService {
        strata_controlplane::ControlPlaneService::new(
            self.store.clone(),
            strata_controlplane::Identity::new(&[], self.store.clone()),
            &self.configs,
            Default::default(),
        )
        .with_sealer(self.sealer.clone())
    }

    /// The kit's control plane with delta compression configured as `delta`.
    pub fn with_delta(&self, delta: strata_core::config::DeltaConfig) -> Arc<dyn strata_core::ControlPlane> {
        Arc::new(self.service().with_delta(delta))
    }

    /// Writes `data` as (b, `key`) on the first backend not in `exclude`,
    /// with or without its digest.
    pub async fn put(&self, key: &str, data: &[u8], exclude: &[&str], digest: bool) -> strata_core::WritePlan {
        use sha2::Digest;
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        let size = data.len() as u64;
        let plan = self.cp.plan_write("b", key, Some(size), &exclude).await.unwrap();
        let body = Box::pin(futures::stream::iter([Ok(Bytes::copy_from_slice(data))]));
        let backend = self.backends.get(&plan.backend_id).unwrap();
        strata_backend::sealed::put_blob(
            backend.as_ref(),
            &plan.backend_key,
            &Default::default(),
            body,
            plan.cipher.as_ref(),
        )
        .await
        .unwrap();
        let seg = Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length: size,
            sha256: digest.then(|| hex::encode(sha2::Sha256::digest(data))),
            cipher: plan.cipher.as_ref().map(strata_core::BlobKey::stored),
            ..Default::default()
        };
        let meta = ObjectMeta {
            size,
            etag: "e".into(),
            ..ObjectMeta::default()
        };
        self.cp
            .commit_write(&plan, Commit::new("b", key, meta, vec![seg]))
            .await
            .unwrap();
        plan
    }

    /// The file of blob `key` on disk `backend`.
    pub fn file(&self, backend: &str, key: &str) -> std::path::PathBuf {
        self.dir
            .path()
            .join(backend)
            .join("objects")
            .join(&key[0..2])
            .join(&key[2..4])
            .join(key)
    }

    /// Flips one byte of a stored blob.
    pub fn flip(&self, backend: &str, key: &str, at: usize) {
        let path = self.file(backend, key);
        let mut raw = std::fs::read(&path).unwrap();
        raw[at] ^= 0x55;
        std::fs::write(&path, raw).unwrap();
    }

    /// The object's plaintext, read from copy `copy` through `locate`.
    pub async fn read(&self, key: &str, copy: usize) -> Result<Vec<u8>, String> {
        use futures::StreamExt;
        let rec = self.cp.locate("b", key).await.map_err(|e| e.to_string())?;
        let segs = if copy == 0 {
            rec.segments.clone()
        } else {
            rec.copies[copy - 1].clone()
        };
        let mut out = Vec::new();
        for seg in segs {
            let backend = self.backends.get(&seg.backend_id).unwrap();
            let mut s = strata_backend::sealed::get_blob(backend.as_ref(), &seg, 0, seg.length)
                .await
                .map_err(|e| e.to_string())?;
            while let Some(item) = s.next().await {
                out.extend_from_slice(&item.map_err(|e| e.to_string())?);
            }
        }
        Ok(out)
    }
}
