//! Key-management services: the [`Kms`] trait and the in-process [`Keyring`].

use std::collections::HashMap;

use crate::CryptoError;
use crate::keys::{Dek, MasterKey, check_id, unwrap, wrap};

/// A key-management service that wraps and unwraps DEKs. The local implementation is [`Keyring`]; cloud KMS
/// providers implement this later.
#[async_trait::async_trait]
pub trait Kms: Send + Sync + 'static {
    /// Id of the key new DEKs are wrapped under.
    fn primary_key_id(&self) -> &str;
    /// Wraps `dek` under the primary key; returns that key's id and the wrapped bytes.
    async fn wrap(&self, dek: &Dek) -> Result<(String, Vec<u8>), CryptoError>;
    /// Unwraps a DEK wrapped under key `key_id` ([`CryptoError::UnknownKey`] if that key is not available).
    async fn unwrap(&self, key_id: &str, wrapped: &[u8]) -> Result<Dek, CryptoError>;
    /// Whether key `key_id` is available for unwrapping.
    fn has_key(&self, key_id: &str) -> bool;
}

/// Master keys held in process: one primary (wraps and unwraps) plus previous keys (unwrap only), so that
/// blobs written before a key rotation stay readable.
#[derive(Debug, Clone)]
pub struct Keyring {
    primary: String,
    keys: HashMap<String, MasterKey>,
}

impl Keyring {
    /// A keyring from its primary key and the previous keys. Two keys with the same id are an error, and so is
    /// an id that is empty or starts with `sse-c` (reserved for customer keys).
    pub fn new(primary: MasterKey, previous: Vec<MasterKey>) -> Result<Self, CryptoError> {
        let primary_id = primary.id().to_owned();
        let mut keys = HashMap::new();
        for key in std::iter::once(primary).chain(previous) {
            check_id(key.id())?;
            if keys.contains_key(key.id()) {
                return Err(CryptoError::BadKey(format!(
                    "encryption key id '{}' is configured more than once; every key needs its own id",
                    key.id()
                )));
            }
            keys.insert(key.id().to_owned(), key);
        }
        Ok(Self {
            primary: primary_id,
            keys,
        })
    }

    /// Ids of all keys, primary first, then the others sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut others: Vec<String> = self.keys.keys().filter(|id| **id != self.primary).cloned().collect();
        others.sort();
        std::iter::once(self.primary.clone()).chain(others).collect()
    }
}

#[async_trait::async_trait]
impl Kms for Keyring {
    fn primary_key_id(&self) -> &str {
        &self.primary
    }

    async fn wrap(&self, dek: &Dek) -> Result<(String, Vec<u8>), CryptoError> {
        let key = self
            .keys
            .get(&self.primary)
            .ok_or_else(|| CryptoError::UnknownKey(self.primary.clone()))?;
        Ok((self.primary.clone(), wrap(key, dek)))
    }

    async fn unwrap(&self, key_id: &str, wrapped: &[u8]) -> Result<Dek, CryptoError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        unwrap(key, wrapped)
    }

    fn has_key(&self, key_id: &str) -> bool {
        self.keys.contains_key(key_id)
    }
}
