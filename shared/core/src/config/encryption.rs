//! The `encryption:` section: which blobs are sealed at rest, and the master
//! keys that wrap their data keys. The control plane is the only role that
//! loads the keys; data planes receive per-blob data keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Whether a blob's bytes are sealed on their backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EncryptionMode {
    /// Plaintext on the backend.
    #[default]
    #[serde(rename = "none")]
    None,
    /// Chunked AES-256-GCM under a per-blob data key (see `docs/encryption-format.md`).
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
}

/// ```yaml
/// encryption:
///   mode: aes256-gcm            # default for every bucket and backend
///   buckets: { public-assets: none }
///   primary_key: { id: k2, base64: "${STRATA_MASTER_KEY}" }
///   previous_keys:
///     - { id: k1, file: /etc/strata/k1.key }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Default for blobs whose bucket and backend set nothing. Default `none`.
    #[serde(default)]
    pub mode: EncryptionMode,
    /// Per-bucket mode; it wins over the backend's `encryption:` and over `mode`.
    #[serde(default)]
    pub buckets: BTreeMap<String, EncryptionMode>,
    /// The key that wraps every new data key. Required when any mode is
    /// `aes256-gcm`, and to read blobs already sealed.
    #[serde(default)]
    pub primary_key: Option<KeyConfig>,
    /// Older keys, kept to unwrap data keys sealed before a rotation. Remove
    /// one once the re-wrap job reports no blob under it.
    #[serde(default)]
    pub previous_keys: Vec<KeyConfig>,
    /// Blobs per batch of the re-wrap job, which moves every data key under
    /// the primary key. Default 500.
    #[serde(default = "default_rewrap_batch")]
    pub rewrap_batch: u32,
}

fn default_rewrap_batch() -> u32 {
    500
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("empty encryption config deserializes")
    }
}

/// One master key: an id plus exactly one source of 32 key bytes.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Stable id recorded with every data key it wraps, e.g. `k2026-11`.
    pub id: String,
    /// The key as base64 of 32 bytes; prefer `${ENV_VAR}` over a literal.
    #[serde(default)]
    pub base64: Option<String>,
    /// A file holding exactly 32 raw key bytes.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyConfig")
            .field("id", &self.id)
            .field("base64", &self.base64.as_ref().map(|_| "<redacted>"))
            .field("file", &self.file)
            .finish()
    }
}

impl EncryptionConfig {
    /// The mode of a new blob of `bucket` on a backend whose own setting is
    /// `backend`: the bucket's setting, else the backend's, else `mode`.
    pub fn mode_for(&self, bucket: &str, backend: Option<EncryptionMode>) -> EncryptionMode {
        self.buckets.get(bucket).copied().or(backend).unwrap_or(self.mode)
    }

    /// Every configured key, primary first.
    pub fn keys(&self) -> impl Iterator<Item = &KeyConfig> {
        self.primary_key.iter().chain(&self.previous_keys)
    }

    pub(super) fn validate(
        &self,
        backend_modes: &[(String, Option<EncryptionMode>)],
        err: &mut impl FnMut(&str, String),
    ) {
        let wanted = self.mode == EncryptionMode::Aes256Gcm
            || self.buckets.values().any(|m| *m == EncryptionMode::Aes256Gcm)
            || backend_modes.iter().any(|(_, m)| *m == Some(EncryptionMode::Aes256Gcm));
        if wanted && self.primary_key.is_none() {
            err(
                "encryption.primary_key",
                "is required when a mode is `aes256-gcm`; set `{ id: k1, base64: \"${STRATA_MASTER_KEY}\" }` \
                 (make a key with `openssl rand -base64 32`)"
                    .into(),
            );
        }
        if self.primary_key.is_none() && !self.previous_keys.is_empty() {
            err(
                "encryption.previous_keys",
                "need a primary_key; promote the newest key to `primary_key`".into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        let fields = self
            .primary_key
            .iter()
            .map(|k| ("encryption.primary_key".to_owned(), k))
            .chain(
                self.previous_keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (format!("encryption.previous_keys[{i}]"), k)),
            );
        for (field, k) in fields {
            if k.id.is_empty() || k.id.starts_with(crate::SSE_C_KEY_PREFIX) || k.id.len() > 64 {
                err(
                    &format!("{field}.id"),
                    format!(
                        "`{}` is not a usable key id; use 1-64 characters not starting with `sse-c:`, e.g. `k1`",
                        k.id
                    ),
                );
            } else if !seen.insert(k.id.as_str()) {
                err(
                    &format!("{field}.id"),
                    format!("`{}` is used by two keys; key ids must be unique", k.id),
                );
            }
            match (&k.base64, &k.file) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => err(&field, "needs exactly one of `base64` and `file`".into()),
            }
        }
        if self.rewrap_batch == 0 {
            err("encryption.rewrap_batch", "must be at least 1; 500 is usual".into());
        }
    }
}
