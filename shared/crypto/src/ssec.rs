//! SSE-C: customer-provided keys from the `x-amz-server-side-encryption-customer-*` request headers.
//!
//! A blob written with SSE-C is sealed like any other, under a random DEK; the DEK is wrapped under the
//! customer's key ([`wrap_customer`]) and only the key's MD5 is recorded ([`customer_key_id`]), never the key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use zeroize::Zeroize;

use crate::CryptoError;
use crate::keys::{Dek, unwrap_with, wrap_with};

/// The only SSE-C algorithm S3 accepts.
pub const SSE_C_ALGORITHM: &str = "AES256";

const SSE_C_AAD: &[u8] = b"strata-dek-v1:sse-c";

/// A customer-provided key (SSE-C) that passed the header checks. `Debug` shows the key MD5 only; the key bytes
/// are zeroed on drop.
#[derive(Clone)]
pub struct CustomerKey {
    key: [u8; 32],
    key_md5: String,
}

impl CustomerKey {
    /// Base64 of the MD5 of the raw key, as S3 returns it in `x-amz-server-side-encryption-customer-key-MD5`.
    pub fn key_md5(&self) -> &str {
        &self.key_md5
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerKey")
            .field("key", &"<redacted>")
            .field("key_md5", &self.key_md5)
            .finish()
    }
}

impl Drop for CustomerKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Why the SSE-C headers of a request were rejected. Each variant's doc names the S3 error to answer with.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SseCError {
    /// Some but not all of the three SSE-C headers were given (e.g. the algorithm without the key or its MD5).
    /// S3: `InvalidArgument` (400), "Requests specifying Server Side Encryption with Customer provided keys must
    /// provide an appropriate secret key."
    #[error(
        "Requests specifying Server Side Encryption with Customer provided keys must provide the algorithm, \
         the key and the key MD5."
    )]
    MissingKey,
    /// The algorithm is not `AES256`. S3: `InvalidEncryptionAlgorithmError` (400), "The encryption request you
    /// specified is not valid. The valid value is AES256."
    #[error("The encryption request you specified is not valid. The valid value is AES256.")]
    BadAlgorithm,
    /// The key is not the base64 of exactly 32 bytes. S3: `InvalidArgument` (400), "The secret key was invalid
    /// for the specified algorithm."
    #[error("The secret key was invalid for the specified algorithm.")]
    BadKey,
    /// The key MD5 header is not the base64 MD5 of the key. S3: `InvalidArgument` (400), "The calculated MD5
    /// hash of the key did not match the hash that was provided."
    #[error("The calculated MD5 hash of the key did not match the hash that was provided.")]
    Md5Mismatch,
}

/// Parses the three SSE-C headers (`x-amz-server-side-encryption-customer-algorithm`, `-key`, `-key-MD5`).
///
/// All three absent: `Ok(None)`. Checked in this order: an algorithm other than `AES256` ([`SseCError::BadAlgorithm`]),
/// any header missing ([`SseCError::MissingKey`]), a key that is not base64 of 32 bytes ([`SseCError::BadKey`]),
/// an MD5 that is not the base64 MD5 of the key ([`SseCError::Md5Mismatch`]). Surrounding whitespace is ignored.
pub fn customer_key(
    algorithm: Option<&str>,
    key_b64: Option<&str>,
    key_md5_b64: Option<&str>,
) -> Result<Option<CustomerKey>, SseCError> {
    if algorithm.is_none() && key_b64.is_none() && key_md5_b64.is_none() {
        return Ok(None);
    }
    if algorithm.is_some_and(|a| a.trim() != SSE_C_ALGORITHM) {
        return Err(SseCError::BadAlgorithm);
    }
    let (Some(_), Some(key_b64), Some(md5_b64)) = (algorithm, key_b64, key_md5_b64) else {
        return Err(SseCError::MissingKey);
    };
    let mut raw = STANDARD.decode(key_b64.trim()).map_err(|_| SseCError::BadKey)?;
    let key = <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| SseCError::BadKey);
    raw.zeroize();
    let key = key?;
    let digest = Md5::digest(key);
    let given = STANDARD.decode(md5_b64.trim()).map_err(|_| SseCError::Md5Mismatch)?;
    if given.as_slice() != digest.as_slice() {
        return Err(SseCError::Md5Mismatch);
    }
    Ok(Some(CustomerKey {
        key,
        key_md5: STANDARD.encode(digest),
    }))
}

/// The key id recorded for a blob sealed under a customer key: `sse-c:` + the key MD5 (base64).
pub fn customer_key_id(k: &CustomerKey) -> String {
    format!("sse-c:{}", k.key_md5)
}

/// Wraps `dek` under a customer key: as [`wrap`](crate::wrap), with associated data `strata-dek-v1:sse-c`.
pub fn wrap_customer(k: &CustomerKey, dek: &Dek) -> Vec<u8> {
    wrap_with(&k.key, SSE_C_AAD, dek)
}

/// Unwraps a DEK wrapped by [`wrap_customer`]. A different customer key gives [`CryptoError::Wrap`].
pub fn unwrap_customer(k: &CustomerKey, wrapped: &[u8]) -> Result<Dek, CryptoError> {
    unwrap_with(&k.key, SSE_C_AAD, wrapped).ok_or_else(|| {
        CryptoError::Wrap(
            "the customer-provided key (SSE-C) is not the key the object was written with, or its wrapped \
             data-encryption key is corrupted"
                .to_owned(),
        )
    })
}
