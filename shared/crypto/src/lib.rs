//! Strata's encryption-at-rest primitives.
//!
//! * [`seal`] / [`open`]: a blob is sealed as a 16-byte header followed by independently authenticated
//!   AES-256-GCM chunks of [`CHUNK`] plaintext bytes, so a byte range can be decrypted by fetching only the
//!   chunks it touches ([`span`]). The format is described in `docs/encryption-format.md`.
//! * [`Dek`]: the random per-blob data-encryption key, wrapped under a [`MasterKey`] ([`wrap`] / [`unwrap`])
//!   or a customer key ([`wrap_customer`] / [`unwrap_customer`]); [`Kms`] abstracts who holds the master keys,
//!   [`Keyring`] keeps them in process.
//! * [`load_key`]: master keys from base64 text or a 32-byte file.
//! * [`customer_key`]: parsing and checking the SSE-C request headers.

mod format;
mod keys;
mod kms;
mod open;
mod seal;
mod ssec;

use std::pin::Pin;

pub use format::{CHUNK, HEADER, HEADER_LEN, Span, TAG_LEN, chunk_count, sealed_len, span};
pub use keys::{Dek, KeySource, MasterKey, WRAPPED_LEN, load_key, unwrap, wrap};
pub use kms::{Keyring, Kms};
pub use open::open;
pub use seal::seal;
pub use ssec::{
    CustomerKey, SSE_C_ALGORITHM, SseCError, customer_key, customer_key_id, unwrap_customer, wrap_customer,
};

/// A stream of bytes, as the storage backends produce and consume it.
pub type ByteStream = Pin<Box<dyn futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Sync>>;

/// Everything that can go wrong while sealing, opening or handling keys.
///
/// Errors from [`open`] reach the caller as an [`std::io::Error`] of kind
/// [`InvalidData`](std::io::ErrorKind::InvalidData) whose inner error is a `CryptoError`
/// (`err.get_ref().and_then(|e| e.downcast_ref::<CryptoError>())`).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A chunk's tag did not verify: the ciphertext, its position, its blob, its key or the plaintext length
    /// is not what it was sealed with.
    #[error("chunk {chunk} failed authentication")]
    Auth {
        /// Index of the chunk (0-based) within the blob.
        chunk: u64,
    },
    /// The blob does not start with a version-1 Strata header.
    #[error("the sealed blob does not start with a Strata version-1 AES-256-GCM header")]
    BadHeader,
    /// The ciphertext ended before the expected number of bytes.
    #[error("the sealed blob is truncated: the ciphertext ended early")]
    Truncated,
    /// The ciphertext went on past the expected end.
    #[error("the sealed blob is too long: bytes follow the last expected chunk")]
    TooLong,
    /// A key could not be loaded or has the wrong size; the message says what to fix.
    #[error("{0}")]
    BadKey(String),
    /// A blob names a master key id that is not configured (holds the key id).
    #[error(
        "encryption key '{0}' is not configured: objects sealed under it cannot be read until it is added to \
         encryption.previous_keys"
    )]
    UnknownKey(String),
    /// A wrapped DEK could not be unwrapped (wrong key, corrupted or malformed); the message says which.
    #[error("{0}")]
    Wrap(String),
    /// The SSE-C request headers are invalid.
    #[error(transparent)]
    SseC(#[from] SseCError),
}

impl CryptoError {
    /// This error as an [`std::io::Error`] of kind [`InvalidData`](std::io::ErrorKind::InvalidData).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }

    /// The `CryptoError` inside an [`std::io::Error`] produced by [`open`], if any.
    pub fn from_io(err: &std::io::Error) -> Option<&CryptoError> {
        err.get_ref().and_then(|e| e.downcast_ref::<CryptoError>())
    }
}
