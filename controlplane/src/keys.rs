//! Encryption at rest, as the control plane runs it: it alone holds the
//! master keys. A plan for a blob that must be sealed gets a fresh data key,
//! whose wrapped form is recorded before any byte is written; `locate`
//! unwraps the data keys of an object's blobs for the data plane. Blob
//! digests and keys live in the store's `blobs` table, keyed by blob.

use std::collections::HashMap;
use std::sync::Arc;

use strata_core::config::{EncryptionConfig, EncryptionMode};
use strata_core::{BlobKey, CpError, CpResult, EncryptionStatus, ObjectRecord, Segment, WritePlan};
use strata_crypto::{Dek, Keyring, Kms};
use strata_store::{BlobRecord, MetaStore};

/// The encryption policy and the key service.
pub struct Sealer {
    config: EncryptionConfig,
    /// Each backend's own `encryption:` setting.
    backend_modes: HashMap<String, Option<EncryptionMode>>,
    kms: Option<Arc<dyn Kms>>,
}

impl Sealer {
    /// No encryption and no keys (blobs already sealed cannot be opened).
    pub fn disabled() -> Sealer {
        Sealer {
            config: EncryptionConfig::default(),
            backend_modes: HashMap::new(),
            kms: None,
        }
    }

    /// Loads the configured master keys. Errors name the key and say how to
    /// fix it.
    pub fn from_config(
        config: &EncryptionConfig,
        backends: &[(String, Option<EncryptionMode>)],
    ) -> Result<Sealer, String> {
        let kms: Option<Arc<dyn Kms>> = match &config.primary_key {
            None => None,
            Some(primary) => {
                let load = |k: &strata_core::config::KeyConfig| {
                    let source = match (&k.base64, &k.file) {
                        (Some(b), _) => strata_crypto::KeySource::Base64(b.clone()),
                        (None, Some(f)) => strata_crypto::KeySource::File(f.clone()),
                        (None, None) => return Err(format!("encryption key `{}` has no base64 and no file", k.id)),
                    };
                    strata_crypto::load_key(&k.id, &source).map_err(|e| e.to_string())
                };
                let previous = config.previous_keys.iter().map(load).collect::<Result<Vec<_>, _>>()?;
                let ring = Keyring::new(load(primary)?, previous).map_err(|e| e.to_string())?;
                Some(Arc::new(ring))
            }
        };
        Ok(Sealer {
            config: config.clone(),
            backend_modes: backends.iter().cloned().collect(),
            kms,
        })
    }

    /// Whether a new blob of `bucket` on `backend_id` is sealed. The hidden
    /// `.refs.<bucket>` of delta references is sealed as `<bucket>`.
    pub fn seals(&self, bucket: &str, backend_id: &str) -> bool {
        let bucket = strata_store::user_bucket_of(bucket).unwrap_or(bucket);
        let backend = self.backend_modes.get(backend_id).copied().flatten();
        self.config.mode_for(bucket, backend) == EncryptionMode::Aes256Gcm
    }

    /// The id of the key new data keys are wrapped under.
    pub fn primary_key_id(&self) -> Option<&str> {
        self.kms.as_deref().map(|k| k.primary_key_id())
    }

    pub fn kms(&self) -> Option<&Arc<dyn Kms>> {
        self.kms.as_ref()
    }

    /// Gives `plan` a fresh data key when its blob must be sealed, recording
    /// the wrapped key first.
    pub async fn seal_plan(
        &self,
        store: &dyn MetaStore,
        bucket: &str,
        plan: &mut WritePlan,
        now_ms: i64,
    ) -> CpResult<()> {
        if !self.seals(bucket, &plan.backend_id) {
            return Ok(());
        }
        let kms = self.kms.as_ref().ok_or_else(|| {
            CpError::Internal("encryption is on but no primary_key is loaded; set encryption.primary_key".into())
        })?;
        let dek = Dek::generate();
        let (key_id, wrapped) = kms
            .wrap(&dek)
            .await
            .map_err(|e| CpError::Internal(format!("wrap a data key: {e}")))?;
        let key = BlobKey {
            key_id,
            wrapped_dek: wrapped,
            dek: dek.as_bytes().to_vec(),
            context: plan.object_id.clone(),
        };
        record_key(store, &plan.backend_id, &plan.backend_key, &key, now_ms).await?;
        plan.cipher = Some(key);
        Ok(())
    }

    /// Fills in the digest, key and encoding of every blob of `rec`,
    /// unwrapping master-key data keys (customer keys stay wrapped for the
    /// data plane).
    pub async fn attach(&self, store: &dyn MetaStore, rec: &mut ObjectRecord) -> CpResult<()> {
        let segments = rec.segments.iter_mut().chain(rec.copies.iter_mut().flatten());
        attach_segments(self, store, segments.collect()).await
    }

    /// The plaintext data key of a stored blob key.
    pub async fn unwrap(&self, key_id: &str, wrapped: &[u8]) -> CpResult<Vec<u8>> {
        let Some(kms) = self.kms.as_ref().filter(|k| k.has_key(key_id)) else {
            tracing::error!(key_id, "a blob is sealed under a key that is not configured");
            return Err(CpError::KeyUnavailable(format!(
                "encryption key `{key_id}` is not configured; add it to encryption.previous_keys"
            )));
        };
        let dek = kms
            .unwrap(key_id, wrapped)
            .await
            .map_err(|e| CpError::Internal(format!("unwrap a data key under `{key_id}`: {e}")))?;
        Ok(dek.as_bytes().to_vec())
    }
}

/// Keys in use and corrupt blobs, for `GET /status`.
pub async fn status(sealer: &Sealer, store: &dyn MetaStore) -> CpResult<EncryptionStatus> {
    let counts = store.blob_key_counts().await?;
    // Bounded: a signal that repair is pending, not an inventory. A corrupt
    // blob that a repair already replaced belongs to no object any more.
    let mut corrupt = 0;
    for b in store.corrupt_blobs(1000).await? {
        if store.blob_owner(&b.backend_id, &b.backend_key).await?.is_some() {
            corrupt += 1;
        }
    }
    Ok(EncryptionStatus {
        primary_key_id: sealer.primary_key_id().unwrap_or_default().to_owned(),
        blobs_by_key: counts,
        corrupt_blobs: corrupt,
    })
}

/// Records a blob's key (stored form only) before its bytes are written.
pub async fn record_key(
    store: &dyn MetaStore,
    backend_id: &str,
    backend_key: &str,
    key: &BlobKey,
    now_ms: i64,
) -> CpResult<()> {
    let row = BlobRecord {
        backend_id: backend_id.to_owned(),
        backend_key: backend_key.to_owned(),
        key_id: Some(key.key_id.clone()),
        wrapped_dek: Some(key.wrapped_dek.clone()),
        context: Some(key.context.clone()),
        ..Default::default()
    };
    store.put_blobs(&[row], now_ms).await
}

/// Records the plaintext digests the data plane computed for `segments`.
pub async fn record_digests(store: &dyn MetaStore, segments: &[Segment], now_ms: i64) -> CpResult<()> {
    let rows: Vec<BlobRecord> = segments
        .iter()
        .filter(|s| s.sha256.is_some())
        .map(|s| BlobRecord {
            backend_id: s.backend_id.clone(),
            backend_key: s.backend_key.clone(),
            sha256: s.sha256.clone(),
            ..Default::default()
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    store.put_blobs(&rows, now_ms).await
}

async fn attach_segments(sealer: &Sealer, store: &dyn MetaStore, segments: Vec<&mut Segment>) -> CpResult<()> {
    let keys: Vec<(String, String)> = segments
        .iter()
        .map(|s| (s.backend_id.clone(), s.backend_key.clone()))
        .collect();
    let rows = store.get_blobs(&keys).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let by_blob: HashMap<(&str, &str), &BlobRecord> = rows
        .iter()
        .map(|r| ((r.backend_id.as_str(), r.backend_key.as_str()), r))
        .collect();
    for seg in segments {
        let Some(row) = by_blob.get(&(seg.backend_id.as_str(), seg.backend_key.as_str())) else {
            continue;
        };
        seg.sha256 = row.sha256.clone();
        seg.encoding = encoding_of(row, seg.length);
        if let (Some(key_id), Some(wrapped)) = (&row.key_id, &row.wrapped_dek) {
            let mut key = BlobKey {
                key_id: key_id.clone(),
                wrapped_dek: wrapped.clone(),
                dek: Vec::new(),
                context: row.context.clone().unwrap_or_default(),
            };
            if !key.is_customer() {
                key.dek = sealer.unwrap(key_id, wrapped).await?;
            }
            seg.cipher = Some(key);
        }
    }
    Ok(())
}

/// A blob's encoding as its facts record it (`None`: plain).
fn encoding_of(row: &BlobRecord, length: u64) -> Option<strata_core::Encoding> {
    let encoded_len = row.encoded_len.unwrap_or(length);
    match row.codec.as_deref()? {
        "zstd" => Some(strata_core::Encoding::Zstd { encoded_len }),
        "delta" => Some(strata_core::Encoding::Delta {
            encoded_len,
            ref_id: row.ref_id.clone().unwrap_or_default(),
        }),
        other => {
            tracing::warn!(codec = other, blob = %row.backend_key, "unknown blob codec");
            None
        }
    }
}
