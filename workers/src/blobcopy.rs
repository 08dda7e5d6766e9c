//! Writing a new blob from the verified plaintext of an existing copy of an
//! object: shared by replication, repair and the encrypt/decrypt rewrites.

use std::io;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};
use strata_backend::sealed::{get_blob, get_raw, is_integrity_error, put_blob};
use strata_backend::{Backend, BackendError, Backends, ByteStream};
use strata_core::blobtags::{self, BlobFacts, BlobRole, Tags};
use strata_core::{BlobKey, ControlPlane, ObjectMeta, ObjectRecord, Segment, WritePlan};

/// Copy `index` of `rec` (0 = primary, else `copies[index - 1]`).
pub(crate) fn copy_of(rec: &ObjectRecord, index: usize) -> Option<&[Segment]> {
    match index {
        0 => Some(&rec.segments),
        i => rec.copies.get(i - 1).map(Vec::as_slice),
    }
}

/// Every copy of `rec`, primary first.
pub(crate) fn all_copies(rec: &ObjectRecord) -> impl Iterator<Item = &[Segment]> {
    std::iter::once(rec.segments.as_slice()).chain(rec.copies.iter().map(Vec::as_slice))
}

/// Whether any segment of a copy is sealed under a customer key (SSE-C).
pub(crate) fn is_customer_copy(segments: &[Segment]) -> bool {
    segments
        .iter()
        .any(|s| s.cipher.as_ref().is_some_and(BlobKey::is_customer))
}

/// Whether any segment of a copy is encoded (compressed, or a delta): the
/// jobs here move plaintext and do not decode, so they leave such copies
/// alone (replication, repair, rewrite and scrubbing skip them).
pub(crate) fn is_encoded_copy(segments: &[Segment]) -> bool {
    segments.iter().any(|s| s.encoding.is_some())
}

/// The tags of a blob written for `rec` under `plan`: a sealed blob tells its
/// backend nothing about the object, a plaintext blob carries the full facts.
pub(crate) fn tags_for(rec: &ObjectRecord, plan: &WritePlan) -> Tags {
    if plan.cipher.is_some() {
        return blobtags::encode(&BlobFacts {
            bucket: String::new(),
            key: String::new(),
            object_id: rec.object_id.clone(),
            role: BlobRole::Object,
            meta: ObjectMeta::default(),
            codec: "aes256-gcm".into(),
        });
    }
    blobtags::encode(&BlobFacts {
        bucket: rec.bucket.clone(),
        key: rec.key.clone(),
        object_id: rec.object_id.clone(),
        role: BlobRole::Object,
        meta: rec.meta.clone(),
        codec: "none".into(),
    })
}

fn io_err(e: BackendError) -> io::Error {
    match e {
        BackendError::Body(e) | BackendError::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// The plaintext of copy `segments`, every segment read in full (so that
/// recorded digests are verified), in order.
fn plaintext(backends: &Backends, segments: &[Segment]) -> Result<ByteStream, String> {
    let opened = (segments.iter())
        .map(|s| {
            backends
                .get(&s.backend_id)
                .cloned()
                .map(|b| (b, s.clone()))
                .ok_or_else(|| format!("backend {} is not configured", s.backend_id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let s = stream::iter(opened)
        .then(|(b, seg)| async move { get_blob(b.as_ref(), &seg, 0, seg.length).await.map_err(io_err) })
        .try_flatten();
    Ok(Box::pin(sync_wrapper::SyncStream::new(s)))
}

/// Passes `inner` through while hashing it and counting its bytes.
fn hashing(inner: ByteStream, state: Arc<Mutex<(Sha256, u64)>>) -> ByteStream {
    let s = inner.inspect_ok(move |b| {
        let mut st = state.lock().expect("hash state");
        st.0.update(b);
        st.1 += b.len() as u64;
    });
    Box::pin(sync_wrapper::SyncStream::new(s))
}

/// What a full verified read of one segment found.
pub(crate) enum ReadCheck {
    /// The whole plaintext read, with its SHA-256 (hex).
    Ok { sha256: String },
    /// The bytes are not what was written (digest or authentication failure).
    Corrupt(String),
    /// The read failed for another reason (transfer, missing key, missing blob).
    Failed(String),
}

/// Reads segment `seg` in full from `backend`: a recorded digest and the
/// seal are verified on the way.
pub(crate) async fn read_full(backend: &dyn Backend, seg: &Segment) -> ReadCheck {
    let mut body = match get_blob(backend, seg, 0, seg.length).await {
        Ok(b) => b,
        Err(BackendError::Body(e) | BackendError::Io(e)) if is_integrity_error(&e) => {
            return ReadCheck::Corrupt(e.to_string());
        }
        Err(e) => return ReadCheck::Failed(e.to_string()),
    };
    let (mut hash, mut bytes) = (Sha256::new(), 0u64);
    while let Some(item) = body.next().await {
        match item {
            Ok(b) => {
                hash.update(&b);
                bytes += b.len() as u64;
            }
            Err(e) if is_integrity_error(&e) => return ReadCheck::Corrupt(e.to_string()),
            Err(e) => return ReadCheck::Failed(e.to_string()),
        }
    }
    if bytes != seg.length {
        // A short blob whose digest is unknown: the bytes are not what was written.
        return ReadCheck::Corrupt(format!("read {bytes} of {} bytes", seg.length));
    }
    ReadCheck::Ok {
        sha256: hex::encode(hash.finalize()),
    }
}

/// Streams the plaintext of copy `from_copy` of `rec` (a record from
/// `locate`, with keys and digests attached) into one new blob under `plan`,
/// sealed when `plan.cipher` is set, and returns the new segment (plaintext
/// length, SHA-256 and the stored form of its key). On failure the partial
/// blob is deleted and the plan's intent aborted.
pub async fn write_copy(
    cp: &dyn ControlPlane,
    backends: &Backends,
    rec: &ObjectRecord,
    from_copy: usize,
    plan: &WritePlan,
) -> Result<Segment, String> {
    let result = write_copy_inner(backends, rec, from_copy, plan).await;
    if result.is_err() {
        discard(cp, backends, plan).await;
    }
    result
}

async fn write_copy_inner(
    backends: &Backends,
    rec: &ObjectRecord,
    from_copy: usize,
    plan: &WritePlan,
) -> Result<Segment, String> {
    let source = copy_of(rec, from_copy).ok_or_else(|| format!("object {} has no copy {from_copy}", rec.object_id))?;
    if is_customer_copy(source) {
        return Err(format!(
            "copy {from_copy} of {} is sealed under a customer key",
            rec.object_id
        ));
    }
    let target =
        (backends.get(&plan.backend_id)).ok_or_else(|| format!("backend {} is not configured", plan.backend_id))?;
    let state = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let body = hashing(plaintext(backends, source)?, state.clone());
    let tags = tags_for(rec, plan);
    let stored = put_blob(target.as_ref(), &plan.backend_key, &tags, body, plan.cipher.as_ref())
        .await
        .map_err(|e| format!("copy {} to {}: {e}", rec.object_id, plan.backend_id))?;
    let (hash, plain) = {
        let mut st = state.lock().expect("hash state");
        (std::mem::take(&mut st.0), st.1)
    };
    let size = rec.meta.size;
    let want = match plan.cipher {
        Some(_) => strata_crypto::sealed_len(size),
        None => size,
    };
    if plain != size || stored != want {
        return Err(format!(
            "copy of {} read {plain} of {size} bytes and stored {stored} of {want}",
            rec.object_id
        ));
    }
    Ok(Segment {
        backend_id: plan.backend_id.clone(),
        backend_key: plan.backend_key.clone(),
        length: size,
        sha256: Some(hex::encode(hash.finalize())),
        cipher: plan.cipher.as_ref().map(BlobKey::stored),
        ..Default::default()
    })
}

/// Copies a single-segment copy sealed under a customer key as it is stored
/// (the worker cannot open it) to a new blob under `plan`, after recording
/// the source's key for the new blob. On failure the partial blob is deleted
/// and the intent aborted.
pub async fn copy_raw(
    cp: &dyn ControlPlane,
    backends: &Backends,
    rec: &ObjectRecord,
    source: &Segment,
    plan: &WritePlan,
) -> Result<Segment, String> {
    let result = copy_raw_inner(cp, backends, rec, source, plan).await;
    if result.is_err() {
        discard(cp, backends, plan).await;
    }
    result
}

async fn copy_raw_inner(
    cp: &dyn ControlPlane,
    backends: &Backends,
    rec: &ObjectRecord,
    source: &Segment,
    plan: &WritePlan,
) -> Result<Segment, String> {
    let key = source.cipher.as_ref().ok_or("the source is not sealed")?.stored();
    let from =
        (backends.get(&source.backend_id)).ok_or_else(|| format!("backend {} is not configured", source.backend_id))?;
    let target =
        (backends.get(&plan.backend_id)).ok_or_else(|| format!("backend {} is not configured", plan.backend_id))?;
    cp.record_blob_key(plan, &key)
        .await
        .map_err(|e| format!("record the key of the copy: {e}"))?;
    let body = get_raw(from.as_ref(), source)
        .await
        .map_err(|e| format!("read {}: {e}", source.backend_key))?;
    let sealed_plan = WritePlan {
        cipher: Some(key.clone()),
        ..plan.clone()
    };
    let tags = tags_for(rec, &sealed_plan);
    let want = strata_crypto::sealed_len(source.length);
    let stored = (target.put(&plan.backend_key, &tags, body).await)
        .map_err(|e| format!("copy {} to {}: {e}", rec.object_id, plan.backend_id))?;
    if stored != want {
        return Err(format!("raw copy of {} stored {stored} of {want} bytes", rec.object_id));
    }
    Ok(Segment {
        backend_id: plan.backend_id.clone(),
        backend_key: plan.backend_key.clone(),
        length: source.length,
        sha256: source.sha256.clone(),
        cipher: Some(key),
        ..Default::default()
    })
}

/// Records the plaintext digest of a newly written segment in the `blobs`
/// table (its key, if any, was recorded when it was planned).
pub(crate) async fn record_digest(
    store: &dyn strata_store::MetaStore,
    seg: &Segment,
    now_ms: i64,
) -> Result<(), String> {
    let Some(sha256) = seg.sha256.clone() else {
        return Ok(());
    };
    let row = strata_store::BlobRecord {
        backend_id: seg.backend_id.clone(),
        backend_key: seg.backend_key.clone(),
        sha256: Some(sha256),
        ..Default::default()
    };
    (store.put_blobs(&[row], now_ms).await).map_err(|e| format!("record the digest of {}: {e}", seg.backend_key))
}

/// Deletes the (possibly partial) blob of `plan` and aborts its intent.
pub(crate) async fn discard(cp: &dyn ControlPlane, backends: &Backends, plan: &WritePlan) {
    if let Some(target) = backends.get(&plan.backend_id) {
        let _ = target.delete(&plan.backend_key).await;
    }
    let _ = cp.abort_write(&plan.intent_id).await;
}
