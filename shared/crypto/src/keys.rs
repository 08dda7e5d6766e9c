//! Keys: per-blob data-encryption keys, master keys and where they come from, and DEK wrapping.

use std::fmt;
use std::path::PathBuf;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroize;

use crate::CryptoError;

/// Length of a wrapped DEK: 12-byte nonce, 32-byte encrypted key, 16-byte tag.
pub const WRAPPED_LEN: usize = 12 + 32 + 16;

/// A data-encryption key: 32 random bytes, one per sealed blob. `Debug` never shows the bytes; they are
/// zeroed when the key is dropped.
#[derive(Clone)]
pub struct Dek([u8; 32]);

impl Dek {
    /// A fresh random key (from the thread-local CSPRNG, seeded by the operating system).
    pub fn generate() -> Dek {
        Dek(rand::random())
    }

    /// A key from its raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Dek {
        Dek(b)
    }

    /// A key from a slice, which must hold exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Dek, CryptoError> {
        <[u8; 32]>::try_from(b)
            .map(Dek)
            .map_err(|_| CryptoError::BadKey(format!("a data-encryption key must be 32 bytes, not {}", b.len())))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

impl Drop for Dek {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A master key-encryption key and its id (the id is recorded with every DEK wrapped under it).
/// `Debug` shows the id only; the key bytes are zeroed on drop.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: [u8; 32],
}

impl MasterKey {
    /// A master key from its id and raw bytes.
    pub fn new(id: impl Into<String>, key: [u8; 32]) -> Self {
        Self { id: id.into(), key }
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Where a master key's 32 bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Base64 text (standard alphabet, with padding; surrounding whitespace is ignored).
    Base64(String),
    /// A file holding exactly 32 raw bytes.
    File(PathBuf),
}

/// Loads master key `id` from `source`. Errors say what is wrong and how to make a good key.
/// The id must be acceptable to [`Keyring::new`](crate::Keyring::new) (not empty, not starting with `sse-c`).
pub fn load_key(id: &str, source: &KeySource) -> Result<MasterKey, CryptoError> {
    check_id(id)?;
    let bad = |msg: String| CryptoError::BadKey(format!("encryption key '{id}': {msg}"));
    let mut bytes = match source {
        KeySource::Base64(text) => {
            let mut raw = STANDARD.decode(text.trim()).map_err(|e| {
                bad(format!(
                    "the key is not valid base64 ({e}); it must be 32 random bytes in standard base64 \
                     (e.g. `head -c 32 /dev/urandom | base64`)"
                ))
            })?;
            if raw.len() != 32 {
                let n = raw.len();
                raw.zeroize();
                return Err(bad(format!(
                    "the base64 key decodes to {n} bytes; it must decode to exactly 32 bytes \
                     (e.g. `head -c 32 /dev/urandom | base64`)"
                )));
            }
            raw
        }
        KeySource::File(path) => {
            let p = path.display();
            let mut raw = std::fs::read(path).map_err(|e| bad(format!("cannot read file {p}: {e}")))?;
            if raw.len() != 32 {
                let n = raw.len();
                let hint = if STANDARD.decode(raw.trim_ascii()).is_ok_and(|d| d.len() == 32) {
                    " (it looks like base64 text: give the key as base64 instead, or store the decoded bytes)"
                } else {
                    ""
                };
                raw.zeroize();
                return Err(bad(format!(
                    "file {p} holds {n} bytes; it must hold exactly 32 raw bytes \
                     (e.g. `head -c 32 /dev/urandom > {p}`){hint}"
                )));
            }
            raw
        }
    };
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    bytes.zeroize();
    Ok(MasterKey::new(id, key))
}

/// Master key ids must be non-empty and must not start with `sse-c`, which names customer keys
/// (`sse-c:<md5>`) and whose associated data (`strata-dek-v1:sse-c`) SSE-C wrapping uses.
pub(crate) fn check_id(id: &str) -> Result<(), CryptoError> {
    if id.is_empty() || id.starts_with("sse-c") {
        return Err(CryptoError::BadKey(format!(
            "encryption key id '{id}' is not allowed: ids must be non-empty and must not start with 'sse-c' \
             (reserved for customer-provided keys)"
        )));
    }
    Ok(())
}

/// Wraps `dek` under the 32-byte `kek`: random 12-byte nonce || AES-256-GCM(kek, dek, aad) with its tag.
pub(crate) fn wrap_with(kek: &[u8; 32], aad: &[u8], dek: &Dek) -> Vec<u8> {
    let nonce: [u8; 12] = rand::random();
    let mut body = *dek.as_bytes();
    let aead = Aes256Gcm::new(&(*kek).into());
    let tag: [u8; 16] = match aead.encrypt_inout_detached(&nonce.into(), aad, (&mut body[..]).into()) {
        Ok(tag) => tag.into(),
        Err(_) => [0; 16], // unreachable: 32-byte messages are always accepted
    };
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    body.zeroize();
    out
}

/// Unwraps what [`wrap_with`] produced; `None` if it is malformed or does not authenticate.
pub(crate) fn unwrap_with(kek: &[u8; 32], aad: &[u8], wrapped: &[u8]) -> Option<Dek> {
    if wrapped.len() != WRAPPED_LEN {
        return None;
    }
    let nonce: [u8; 12] = wrapped[..12].try_into().ok()?;
    let mut body: [u8; 32] = wrapped[12..44].try_into().ok()?;
    let tag: [u8; 16] = wrapped[44..].try_into().ok()?;
    let aead = Aes256Gcm::new(&(*kek).into());
    let ok = aead
        .decrypt_inout_detached(&nonce.into(), aad, (&mut body[..]).into(), &tag.into())
        .is_ok();
    let dek = ok.then(|| Dek::from_bytes(body));
    body.zeroize();
    dek
}

fn master_aad(key_id: &str) -> Vec<u8> {
    [b"strata-dek-v1:".as_slice(), key_id.as_bytes()].concat()
}

/// Wraps a DEK under a master key: random 12-byte nonce || AES-256-GCM(kek, dek, aad = `strata-dek-v1:` + key id),
/// [`WRAPPED_LEN`] (60) bytes.
pub fn wrap(kek: &MasterKey, dek: &Dek) -> Vec<u8> {
    wrap_with(&kek.key, &master_aad(&kek.id), dek)
}

/// Unwraps a DEK wrapped by [`wrap`] under the same master key (same bytes and id).
pub fn unwrap(kek: &MasterKey, wrapped: &[u8]) -> Result<Dek, CryptoError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(CryptoError::Wrap(format!(
            "wrapped data-encryption key is {} bytes; expected {WRAPPED_LEN}",
            wrapped.len()
        )));
    }
    unwrap_with(&kek.key, &master_aad(&kek.id), wrapped).ok_or_else(|| {
        CryptoError::Wrap(format!(
            "cannot unwrap the data-encryption key with encryption key '{}': the key bytes differ from those it \
             was wrapped with, or the wrapped key is corrupted",
            kek.id
        ))
    })
}
