//! The version-1 sealed-blob layout: header, chunk geometry, nonces, associated data and range spans.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::keys::Dek;

/// Plaintext bytes per chunk (64 KiB). The last chunk of a blob may be shorter; an empty blob has one empty chunk.
pub const CHUNK: u64 = 64 * 1024;
/// Length of the blob header.
pub const HEADER_LEN: u64 = 16;
/// Length of the AES-GCM tag that follows each chunk's ciphertext.
pub const TAG_LEN: u64 = 16;

/// The version-1 header: `STRATA`, version 1, algorithm 1 (AES-256-GCM), chunk size log2 16, 7 reserved zeros.
pub const HEADER: [u8; HEADER_LEN as usize] = *b"STRATA\x01\x01\x10\0\0\0\0\0\0\0";

/// Number of chunks of a blob of `plain_len` plaintext bytes: `max(1, ceil(plain_len / CHUNK))`.
pub fn chunk_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK).max(1)
}

/// Length of the sealed blob for `plain_len` plaintext bytes: header + plaintext + one tag per chunk.
/// Saturates at `u64::MAX` instead of overflowing.
pub fn sealed_len(plain_len: u64) -> u64 {
    HEADER_LEN
        .saturating_add(plain_len)
        .saturating_add(TAG_LEN.saturating_mul(chunk_count(plain_len)))
}

/// Plaintext length of chunk `i` of a blob of `plain_len` bytes (0 for an index past the end).
pub(crate) fn chunk_plain_len(plain_len: u64, i: u64) -> u64 {
    plain_len.saturating_sub(i.saturating_mul(CHUNK)).min(CHUNK)
}

/// Offset in the sealed blob at which chunk `i` starts.
pub(crate) fn chunk_cipher_offset(i: u64) -> u64 {
    HEADER_LEN.saturating_add(i.saturating_mul(CHUNK + TAG_LEN))
}

/// Which ciphertext bytes the plaintext range `[start, end)` of a blob needs, and how to trim the result.
///
/// Fetch the sealed bytes `[cipher_start, cipher_end)`, pass them to [`open`](crate::open), and it yields
/// plaintext `[start, end)`: chunks `first_chunk..=last_chunk` are decrypted, `skip` bytes are dropped from the
/// first and `take` bytes are emitted in all. When `first_chunk` is 0, `cipher_start` is 0: the header is
/// fetched too and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First chunk to decrypt.
    pub first_chunk: u64,
    /// Last chunk to decrypt (inclusive). Smaller than `first_chunk` for a span that decrypts nothing.
    pub last_chunk: u64,
    /// First sealed-blob byte to fetch.
    pub cipher_start: u64,
    /// One past the last sealed-blob byte to fetch.
    pub cipher_end: u64,
    /// Plaintext bytes to drop from the first decrypted chunk.
    pub skip: u64,
    /// Plaintext bytes to emit in all (`end - start`).
    pub take: u64,
}

impl Span {
    /// Number of sealed bytes to fetch.
    pub fn cipher_len(&self) -> u64 {
        self.cipher_end - self.cipher_start
    }

    /// Whether the header is part of the fetched bytes (and so is checked).
    pub fn includes_header(&self) -> bool {
        self.first_chunk == 0 && self.first_chunk <= self.last_chunk
    }
}

/// The ciphertext span for plaintext `[start, end)` of a blob of `plain_len` bytes.
///
/// Out-of-range arguments are clamped (`end` to `plain_len`, `start` to `end`) rather than rejected.
/// An empty range (`start == end`) of a non-empty blob gives a span that fetches and yields nothing
/// (`cipher_start == cipher_end == 0`, `first_chunk == 1 > last_chunk == 0`, `take == 0`); [`open`](crate::open)
/// then expects an empty ciphertext stream. An empty blob is the exception: its only range, `[0, 0)`, is a full
/// read and spans the header and the one empty chunk, so that reading it still authenticates it.
pub fn span(plain_len: u64, start: u64, end: u64) -> Span {
    let end = end.min(plain_len);
    let start = start.min(end);
    if start == end && plain_len > 0 {
        return Span {
            first_chunk: 1,
            last_chunk: 0,
            cipher_start: 0,
            cipher_end: 0,
            skip: 0,
            take: 0,
        };
    }
    let first_chunk = start / CHUNK;
    let last_chunk = if end == 0 { 0 } else { (end - 1) / CHUNK };
    let cipher_start = if first_chunk == 0 {
        0
    } else {
        chunk_cipher_offset(first_chunk)
    };
    let cipher_end = chunk_cipher_offset(last_chunk)
        .saturating_add(chunk_plain_len(plain_len, last_chunk))
        .saturating_add(TAG_LEN);
    Span {
        first_chunk,
        last_chunk,
        cipher_start,
        cipher_end,
        skip: start - first_chunk * CHUNK,
        take: end - start,
    }
}

/// Per-blob cipher state: the AES-256-GCM key schedule and the associated-data prefix
/// (header || u32-BE context length || context). Chunks go through ring's AES-GCM
/// (AES-NI/VAES and carry-less multiply in assembly, several GB/s per core); key
/// wrapping keeps RustCrypto's `aes-gcm`. Both are standard AES-256-GCM.
pub(crate) struct ChunkCipher {
    aead: LessSafeKey,
    aad: Vec<u8>,
    prefix_len: usize,
}

impl ChunkCipher {
    pub(crate) fn new(dek: &Dek, context: &str) -> Self {
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek.as_bytes()).expect("a 32-byte AES-256 key"));
        // A context longer than u32::MAX cannot be encoded; clamp its length field (the bytes still follow),
        // which only matters for absurd inputs and still binds them.
        let ctx_len = u32::try_from(context.len()).unwrap_or(u32::MAX);
        let mut aad = Vec::with_capacity(HEADER.len() + 4 + context.len() + 9);
        aad.extend_from_slice(&HEADER);
        aad.extend_from_slice(&ctx_len.to_be_bytes());
        aad.extend_from_slice(context.as_bytes());
        let prefix_len = aad.len();
        Self { aead, aad, prefix_len }
    }

    fn nonce_and_aad(&mut self, index: u64, last: bool) -> [u8; 12] {
        self.aad.truncate(self.prefix_len);
        self.aad.extend_from_slice(&index.to_be_bytes());
        self.aad.push(u8::from(last));
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&index.to_be_bytes());
        nonce
    }

    /// Encrypts chunk `index` in place and returns its tag.
    pub(crate) fn seal_chunk(&mut self, index: u64, last: bool, buf: &mut [u8]) -> [u8; TAG_LEN as usize] {
        let nonce = Nonce::assume_unique_for_key(self.nonce_and_aad(index, last));
        let mut out = [0; TAG_LEN as usize];
        // Only a chunk over 64 GiB can fail, which `seal` never builds.
        if let Ok(tag) = self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::from(&self.aad[..]), buf)
        {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }

    /// Verifies and decrypts chunk `index` in place.
    pub(crate) fn open_chunk(
        &mut self,
        index: u64,
        last: bool,
        buf: &mut [u8],
        tag: [u8; TAG_LEN as usize],
    ) -> Result<(), crate::CryptoError> {
        let nonce = Nonce::assume_unique_for_key(self.nonce_and_aad(index, last));
        self.aead
            .open_in_place_separate_tag(nonce, Aad::from(&self.aad[..]), Tag::from(tag), buf, 0..)
            .map(|_| ())
            .map_err(|_| crate::CryptoError::Auth { chunk: index })
    }
}
