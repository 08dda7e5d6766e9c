//! Recompresses delta-compression references at a high zstd level with a
//! long window, off the write path.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use strata_backend::Backends;
use strata_backend::sealed::{get_encoded, put_blob};
use strata_core::blobtags::{self, BlobFacts, BlobRole};
use strata_core::{BlobKey, ControlPlane, Encoding, ObjectMeta, ObjectRecord, Segment, WritePlan};
use strata_store::{BlobRecord, DeltaRefRecord, MetaStore};
use tokio::io::AsyncWriteExt;

use crate::blobcopy::discard;
use crate::{Clock, Job, Outcome, system_clock};

use crate::metrics::{
    DELTA_COMPACT_SAVED as SAVED, DELTA_COMPACTED_DELTAS as COMPACTED_DELTAS, DELTA_COMPACTED_REFS as COMPACTED,
};

/// Recompresses deltaspace references (written at a fast zstd level on the
/// PUT path) at `level` with long distance matching and a `2^window_log`
/// window, one reference per cycle, oldest first
/// (`MetaStore::refs_to_compact`).
///
/// Per reference: its hidden object is located (`locate_reference`: the
/// blob's key unwrapped), its blob read, opened and decompressed to a
/// scratch file while hashing (a SHA-256 other than the recorded one is an
/// error and the reference is left alone), recompressed to another scratch
/// file, and, when that is at least 1% smaller than the current encoded
/// form, written as a new blob on the same backend (sealed as the bucket's
/// policy says), its facts recorded, and swapped in with `replace_copy`,
/// which queues the old blob for the cleanup job. The reference is then
/// marked compacted at `level` (also when recompression did not pay), so it
/// is not looked at again. Decoded bytes, and so every delta against the
/// reference, are unchanged.
pub struct DeltaCompactJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    /// Where the decoded and recompressed scratch files go.
    pub scratch_dir: PathBuf,
    /// zstd level (default 19).
    pub level: i32,
    /// zstd window log (default 27, the most `decompress_stream` accepts).
    pub window_log: u32,
    /// Pause between cycles when nothing is left.
    pub period: Duration,
    /// References larger than this are left as written (a level-19 pass
    /// runs at a few MB/s and holds ~150 MiB while it runs). Default 256 MiB.
    pub max_bytes: u64,
    pub clock: Clock,
    /// References that failed in this process: skipped until a restart.
    failed: Mutex<HashSet<String>>,
}

/// What became of one reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compacted {
    /// Replaced by a blob of this many fewer encoded bytes.
    Saved(u64),
    /// Left as it is (recompression did not pay, or nothing to do).
    Kept,
}

impl DeltaCompactJob {
    pub fn new(
        store: Arc<dyn MetaStore>,
        cp: Arc<dyn ControlPlane>,
        backends: Backends,
        scratch_dir: PathBuf,
        level: i32,
        period: Duration,
    ) -> DeltaCompactJob {
        DeltaCompactJob {
            store,
            cp,
            backends,
            scratch_dir,
            level,
            window_log: 27,
            period,
            max_bytes: 256 << 20,
            clock: system_clock(),
            failed: Mutex::new(HashSet::new()),
        }
    }

    async fn compact(&self, r: &DeltaRefRecord) -> Result<Compacted, String> {
        let rec = match self.cp.locate_reference(&r.ref_id).await {
            Ok(rec) => rec,
            // Freed meanwhile: its row is gone too, or about to be.
            Err(strata_core::CpError::NoSuchKey) => return Ok(Compacted::Kept),
            Err(e) => return Err(format!("locate reference {}: {e}", r.ref_id)),
        };
        let [seg] = rec.segments.as_slice() else {
            return Err(format!(
                "reference {} has {} segments, not 1",
                r.ref_id,
                rec.segments.len()
            ));
        };
        let Some(Encoding::Zstd { encoded_len }) = seg.encoding else {
            return Ok(Compacted::Kept);
        };
        if seg.length > self.max_bytes {
            tracing::debug!(job = "delta-compact", ref_id = %r.ref_id, size = seg.length, "reference too large to recompress");
            return Ok(Compacted::Kept);
        }
        if seg.cipher.as_ref().is_some_and(BlobKey::is_customer) {
            return Ok(Compacted::Kept);
        }
        tokio::fs::create_dir_all(&self.scratch_dir)
            .await
            .map_err(|e| format!("create {}: {e}", self.scratch_dir.display()))?;
        let tag = strata_core::ObjectId::random().to_string();
        let plain = self.scratch_dir.join(format!("compact-{tag}.ref"));
        let packed = self.scratch_dir.join(format!("compact-{tag}.zst"));
        let result = self.compact_files(r, &rec, seg, encoded_len, &plain, &packed).await;
        let _ = tokio::fs::remove_file(&plain).await;
        let _ = tokio::fs::remove_file(&packed).await;
        result
    }

    async fn compact_files(
        &self,
        r: &DeltaRefRecord,
        rec: &ObjectRecord,
        seg: &Segment,
        encoded_len: u64,
        plain: &Path,
        packed: &Path,
    ) -> Result<Compacted, String> {
        let t0 = Instant::now();
        let want_sha = seg.sha256.as_deref().unwrap_or(&r.sha256);
        let (len, sha) = self.decode_reference(&r.ref_id, seg, want_sha, plain).await?;
        let new_len = strata_delta::compress_file_long(plain, packed, self.level, self.window_log)
            .await
            .map_err(|e| format!("recompress reference {}: {e}", r.ref_id))?;
        let secs = t0.elapsed().as_secs_f64();
        if new_len.saturating_mul(100) > encoded_len.saturating_mul(99) {
            tracing::info!(job = "delta-compact", ref_id = %r.ref_id, size = len, encoded_len, new_len, secs, "recompressing a delta reference would not pay");
            return Ok(Compacted::Kept);
        }
        // Same backend, sealed as the bucket's policy says.
        let exclude: Vec<String> = (self.backends.all().iter())
            .map(|b| b.id().to_owned())
            .filter(|id| *id != seg.backend_id)
            .collect();
        let plan = (self.cp)
            .plan_write(&rec.bucket, &rec.key, Some(len), &exclude)
            .await
            .map_err(|e| format!("plan the recompressed reference {}: {e}", r.ref_id))?;
        let replaced = self.swap(r, rec, seg, &plan, &sha, len, new_len, packed).await;
        match replaced {
            Ok(true) => {
                let saved = encoded_len - new_len;
                tracing::info!(job = "delta-compact", ref_id = %r.ref_id, size = len, encoded_len, new_len, secs = t0.elapsed().as_secs_f64(), "delta reference recompressed");
                Ok(Compacted::Saved(saved))
            }
            // The reference changed or went meanwhile: replace_copy queued our blob.
            Ok(false) => Ok(Compacted::Kept),
            Err(e) => {
                discard(&*self.cp, &self.backends, &plan).await;
                Err(e)
            }
        }
    }

    /// Uploads the recompressed reference under `plan`, records its facts and
    /// swaps it in; returns whether the swap won.
    #[allow(clippy::too_many_arguments)]
    async fn swap(
        &self,
        r: &DeltaRefRecord,
        rec: &ObjectRecord,
        seg: &Segment,
        plan: &WritePlan,
        sha: &str,
        len: u64,
        new_len: u64,
        packed: &Path,
    ) -> Result<bool, String> {
        if plan.backend_id != seg.backend_id {
            return Err(format!("planned on {} instead of {}", plan.backend_id, seg.backend_id));
        }
        let target = (self.backends.get(&plan.backend_id))
            .cloned()
            .ok_or_else(|| format!("backend {} is not configured", plan.backend_id))?;
        let file = tokio::fs::File::open(packed)
            .await
            .map_err(|e| format!("open {}: {e}", packed.display()))?;
        let body = file_stream(file);
        let stored = put_blob(
            target.as_ref(),
            &plan.backend_key,
            &tags(rec, plan),
            body,
            plan.cipher.as_ref(),
        )
        .await
        .map_err(|e| format!("upload the recompressed reference {}: {e}", r.ref_id))?;
        let want = match plan.cipher {
            Some(_) => strata_crypto::sealed_len(new_len),
            None => new_len,
        };
        if stored != want {
            return Err(format!("stored {stored} of {want} bytes"));
        }
        let now = (self.clock)();
        let facts = BlobRecord {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            sha256: Some(sha.to_owned()),
            codec: Some("zstd".into()),
            encoded_len: Some(new_len),
            ..Default::default()
        };
        (self.store.put_blobs(&[facts], now).await).map_err(|e| format!("record the facts of the new blob: {e}"))?;
        let new_seg = Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length: len,
            sha256: Some(sha.to_owned()),
            cipher: plan.cipher.as_ref().map(BlobKey::stored),
            encoding: Some(Encoding::Zstd { encoded_len: new_len }),
        };
        let done = (self.store)
            .replace_copy(
                &rec.bucket,
                &rec.key,
                &rec.object_id,
                0,
                std::slice::from_ref(seg),
                &[new_seg],
                Some(&plan.intent_id),
                now,
            )
            .await
            .map_err(|e| format!("swap in the recompressed reference {}: {e}", r.ref_id))?;
        Ok(done.is_some())
    }

    /// Decodes a reference's blob (`seg`, zstd-compressed or stored as it
    /// is) to `plain` while hashing; an error unless it is `seg.length`
    /// bytes with SHA-256 `want_sha`. Returns the length and SHA-256.
    async fn decode_reference(
        &self,
        ref_id: &str,
        seg: &Segment,
        want_sha: &str,
        plain: &Path,
    ) -> Result<(u64, String), String> {
        let backend = self.backend(&seg.backend_id)?;
        let raw = get_encoded(backend.as_ref(), seg, 0, u64::MAX)
            .await
            .map_err(|e| format!("read reference {ref_id}: {e}"))?;
        let decoded = match seg.encoding {
            Some(Encoding::Zstd { .. }) => strata_delta::decompress_stream(raw),
            None => raw,
            Some(Encoding::Delta { .. }) => return Err(format!("reference {ref_id} is itself a delta")),
        };
        let (len, sha) = to_file(decoded, plain)
            .await
            .map_err(|e| format!("decode reference {ref_id}: {e}"))?;
        if sha != want_sha || len != seg.length {
            return Err(format!(
                "reference {ref_id} decodes to {len} bytes with SHA-256 {sha}, not {} bytes with {want_sha}",
                seg.length
            ));
        }
        Ok((len, sha))
    }

    fn backend(&self, id: &str) -> Result<Arc<dyn strata_backend::Backend>, String> {
        (self.backends.get(id))
            .cloned()
            .ok_or_else(|| format!("backend {id} is not configured"))
    }

    /// Plans a blob for `rec` on `backend_id` (every other configured
    /// backend excluded), sealed as the bucket's policy says. A delta plan
    /// that comes with it is of no use here.
    async fn plan_on(&self, rec: &ObjectRecord, backend_id: &str, size: u64) -> Result<WritePlan, String> {
        let exclude: Vec<String> = (self.backends.all().iter())
            .map(|b| b.id().to_owned())
            .filter(|id| *id != backend_id)
            .collect();
        (self.cp)
            .plan_write(&rec.bucket, &rec.key, Some(size), &exclude)
            .await
            .map_err(|e| format!("plan a blob for {}/{}: {e}", rec.bucket, rec.key))
    }

    /// Re-encodes delta object `object_id` (at `bucket`/`key`) against its
    /// reference at `level` and swaps the result in when at least 1%
    /// smaller. Returns what became of it and, when replaced, its new
    /// encoded length (for the decision's `stored_bytes`).
    async fn compact_delta(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
    ) -> Result<(Compacted, Option<u64>), String> {
        let rec = match self.cp.locate(bucket, key).await {
            Ok(rec) => rec,
            Err(strata_core::CpError::NoSuchKey | strata_core::CpError::NoSuchBucket) => {
                return Ok((Compacted::Kept, None));
            }
            Err(e) => return Err(format!("locate {bucket}/{key}: {e}")),
        };
        if rec.object_id != object_id {
            // Replaced meanwhile: the new object has a decision of its own.
            return Ok((Compacted::Kept, None));
        }
        let [seg] = rec.segments.as_slice() else {
            return Ok((Compacted::Kept, None));
        };
        let Some(Encoding::Delta { encoded_len, ref_id }) = &seg.encoding else {
            return Ok((Compacted::Kept, None));
        };
        if seg.cipher.as_ref().is_some_and(BlobKey::is_customer) {
            return Ok((Compacted::Kept, None));
        }
        if seg.length > self.max_bytes {
            tracing::debug!(
                job = "delta-compact",
                bucket,
                key,
                size = seg.length,
                "delta object too large to re-encode"
            );
            return Ok((Compacted::Kept, None));
        }
        let Some(sha) = seg.sha256.clone() else {
            // Nothing to check the decoded bytes against.
            return Ok((Compacted::Kept, None));
        };
        tokio::fs::create_dir_all(&self.scratch_dir)
            .await
            .map_err(|e| format!("create {}: {e}", self.scratch_dir.display()))?;
        let tag = strata_core::ObjectId::random().to_string();
        let files = DeltaScratch {
            reference: self.scratch_dir.join(format!("compact-{tag}.ref")),
            container: self.scratch_dir.join(format!("compact-{tag}.old")),
            decoded: self.scratch_dir.join(format!("compact-{tag}.obj")),
            encoded: self.scratch_dir.join(format!("compact-{tag}.new")),
        };
        let result = self
            .compact_delta_files(&rec, seg, *encoded_len, ref_id, &sha, &files)
            .await;
        for p in [&files.reference, &files.container, &files.decoded, &files.encoded] {
            let _ = tokio::fs::remove_file(p).await;
        }
        result
    }

    async fn compact_delta_files(
        &self,
        rec: &ObjectRecord,
        seg: &Segment,
        encoded_len: u64,
        ref_id: &str,
        sha: &str,
        files: &DeltaScratch,
    ) -> Result<(Compacted, Option<u64>), String> {
        let t0 = Instant::now();
        let what = format!("{}/{}", rec.bucket, rec.key);
        // The reference, decoded and checked.
        let rrec = (self.cp.locate_reference(ref_id).await).map_err(|e| format!("locate reference {ref_id}: {e}"))?;
        let [rseg] = rrec.segments.as_slice() else {
            return Err(format!(
                "reference {ref_id} has {} segments, not 1",
                rrec.segments.len()
            ));
        };
        let want_ref_sha = match &rseg.sha256 {
            Some(s) => s.clone(),
            None => {
                (self.store.get_delta_ref(ref_id).await)
                    .map_err(|e| format!("get reference {ref_id}: {e}"))?
                    .ok_or_else(|| format!("reference {ref_id} is gone"))?
                    .sha256
            }
        };
        self.decode_reference(ref_id, rseg, &want_ref_sha, &files.reference)
            .await?;
        // The object's container, downloaded (opened when sealed).
        let backend = self.backend(&seg.backend_id)?;
        let raw = get_encoded(backend.as_ref(), seg, 0, encoded_len)
            .await
            .map_err(|e| format!("read the delta of {what}: {e}"))?;
        let (got, _) = to_file(raw, &files.container)
            .await
            .map_err(|e| format!("read the delta of {what}: {e}"))?;
        if got != encoded_len {
            return Err(format!("the delta of {what} is {got} bytes, not {encoded_len}"));
        }
        // Decoded in full and checked.
        let src = Arc::new(
            strata_delta::FileSource::open(&files.container)
                .await
                .map_err(|e| format!("open {}: {e}", files.container.display()))?,
        );
        let decoded = strata_delta::decode_range(src, files.reference.clone(), 0, seg.length)
            .await
            .map_err(|e| format!("decode {what}: {e}"))?;
        let (len, got_sha) = to_file(decoded, &files.decoded)
            .await
            .map_err(|e| format!("decode {what}: {e}"))?;
        if len != seg.length || got_sha != sha {
            return Err(format!(
                "{what} decodes to {len} bytes with SHA-256 {got_sha}, not {} bytes with {sha}",
                seg.length
            ));
        }
        // Re-encoded at the job's level.
        let params = strata_delta::DeltaParams {
            level: self.level,
            ..Default::default()
        };
        let stats = strata_delta::encode_file(&files.decoded, &files.reference, &files.encoded, &params)
            .await
            .map_err(|e| format!("re-encode {what}: {e}"))?;
        let new_len = stats.encoded_len;
        let secs = t0.elapsed().as_secs_f64();
        if new_len.saturating_mul(100) > encoded_len.saturating_mul(99) {
            tracing::info!(job = "delta-compact", bucket = %rec.bucket, key = %rec.key, size = len, encoded_len, new_len, secs, "re-encoding a delta would not pay");
            return Ok((Compacted::Kept, None));
        }
        // The new container must decode to the same bytes before it replaces the old.
        let src = Arc::new(
            strata_delta::FileSource::open(&files.encoded)
                .await
                .map_err(|e| format!("open {}: {e}", files.encoded.display()))?,
        );
        let check = strata_delta::decode_range(src, files.reference.clone(), 0, seg.length)
            .await
            .map_err(|e| format!("decode the re-encoded {what}: {e}"))?;
        let (clen, csha) = hash_stream(check)
            .await
            .map_err(|e| format!("decode the re-encoded {what}: {e}"))?;
        if clen != len || csha != sha {
            return Err(format!("the re-encoded {what} decodes to other bytes"));
        }
        let plan = self.plan_on(rec, &seg.backend_id, new_len).await?;
        let encoding = Encoding::Delta {
            encoded_len: new_len,
            ref_id: ref_id.to_owned(),
        };
        let facts = BlobRecord {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            sha256: Some(sha.to_owned()),
            codec: Some("delta".into()),
            encoded_len: Some(new_len),
            ref_id: Some(ref_id.to_owned()),
            ..Default::default()
        };
        let tags = delta_tags(rec, &plan);
        let replaced = self
            .upload_and_swap(rec, seg, &plan, &tags, facts, encoding, new_len, &files.encoded)
            .await;
        match replaced {
            Ok(true) => {
                tracing::info!(job = "delta-compact", bucket = %rec.bucket, key = %rec.key, size = len, encoded_len, new_len, secs = t0.elapsed().as_secs_f64(), "delta re-encoded");
                Ok((Compacted::Saved(encoded_len - new_len), Some(new_len)))
            }
            // The object changed or went meanwhile: replace_copy queued our blob.
            Ok(false) => Ok((Compacted::Kept, None)),
            Err(e) => {
                discard(&*self.cp, &self.backends, &plan).await;
                Err(e)
            }
        }
    }

    /// Uploads `file` (`new_len` encoded bytes) under `plan` with `tags`,
    /// records `facts`, and swaps a segment like `seg` but at the plan's
    /// blob with `encoding` in for `seg` (copy 0 of `rec`); returns whether
    /// the swap won.
    #[allow(clippy::too_many_arguments)]
    async fn upload_and_swap(
        &self,
        rec: &ObjectRecord,
        seg: &Segment,
        plan: &WritePlan,
        tags: &strata_core::blobtags::Tags,
        facts: BlobRecord,
        encoding: Encoding,
        new_len: u64,
        file: &Path,
    ) -> Result<bool, String> {
        if plan.backend_id != seg.backend_id {
            return Err(format!("planned on {} instead of {}", plan.backend_id, seg.backend_id));
        }
        let target = self.backend(&plan.backend_id)?;
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("open {}: {e}", file.display()))?;
        let stored = put_blob(
            target.as_ref(),
            &plan.backend_key,
            tags,
            file_stream(f),
            plan.cipher.as_ref(),
        )
        .await
        .map_err(|e| format!("upload the new blob of {}/{}: {e}", rec.bucket, rec.key))?;
        let want = match plan.cipher {
            Some(_) => strata_crypto::sealed_len(new_len),
            None => new_len,
        };
        if stored != want {
            return Err(format!("stored {stored} of {want} bytes"));
        }
        let now = (self.clock)();
        (self.store.put_blobs(&[facts], now).await).map_err(|e| format!("record the facts of the new blob: {e}"))?;
        let new_seg = Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length: seg.length,
            sha256: seg.sha256.clone(),
            cipher: plan.cipher.as_ref().map(BlobKey::stored),
            encoding: Some(encoding),
        };
        let done = (self.store)
            .replace_copy(
                &rec.bucket,
                &rec.key,
                &rec.object_id,
                0,
                std::slice::from_ref(seg),
                &[new_seg],
                Some(&plan.intent_id),
                now,
            )
            .await
            .map_err(|e| format!("swap in the new blob of {}/{}: {e}", rec.bucket, rec.key))?;
        Ok(done.is_some())
    }
}

/// Scratch files of one delta's re-encoding.
struct DeltaScratch {
    reference: PathBuf,
    container: PathBuf,
    decoded: PathBuf,
    encoded: PathBuf,
}

/// Writes a stream to `path` while hashing it; returns its length and hex SHA-256.
async fn to_file(mut s: strata_backend::ByteStream, path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = tokio::fs::File::create(path).await?;
    let (mut hash, mut len) = (Sha256::new(), 0u64);
    while let Some(b) = s.next().await {
        let b = b?;
        hash.update(&b);
        len += b.len() as u64;
        f.write_all(&b).await?;
    }
    f.flush().await?;
    Ok((len, hex::encode(hash.finalize())))
}

/// The length and hex SHA-256 of a stream.
async fn hash_stream(mut s: strata_backend::ByteStream) -> std::io::Result<(u64, String)> {
    let (mut hash, mut len) = (Sha256::new(), 0u64);
    while let Some(b) = s.next().await {
        let b = b?;
        hash.update(&b);
        len += b.len() as u64;
    }
    Ok((len, hex::encode(hash.finalize())))
}

/// Tags of a re-encoded delta blob, like the PUT path's: a sealed blob says
/// nothing about its object; a plaintext one names its bucket, key and
/// metadata, with `codec=delta`.
fn delta_tags(rec: &ObjectRecord, plan: &WritePlan) -> strata_core::blobtags::Tags {
    let mut tags = crate::blobcopy::tags_for(rec, plan);
    if plan.cipher.is_none() {
        tags.insert("codec".into(), "delta".into());
    }
    tags
}

/// Streams a file in 1 MiB chunks.
fn file_stream(file: tokio::fs::File) -> strata_backend::ByteStream {
    use tokio::io::AsyncReadExt;
    let s = futures::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), f)))
    })
    .into_stream();
    Box::pin(sync_wrapper::SyncStream::new(s))
}

/// Tags of the new blob: a sealed blob says nothing about its object; a
/// plaintext one names the user bucket and deltaspace, like the PUT path's.
fn tags(rec: &ObjectRecord, plan: &WritePlan) -> strata_core::blobtags::Tags {
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
    let bucket = strata_store::user_bucket_of(&rec.bucket).unwrap_or(&rec.bucket);
    let space = rec.key.rsplit_once('/').map_or("", |(s, _)| s);
    let mut tags = blobtags::encode(&BlobFacts {
        bucket: bucket.to_owned(),
        key: space.to_owned(),
        object_id: rec.object_id.clone(),
        role: BlobRole::Object,
        meta: ObjectMeta::default(),
        codec: "none".into(),
    });
    tags.insert("codec".into(), "reference".into());
    tags
}

#[async_trait]
impl Job for DeltaCompactJob {
    fn name(&self) -> &'static str {
        "delta-compact"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let skipped = self.failed.lock().expect("failed set").len();
        let limit = u32::try_from(skipped + 2).unwrap_or(u32::MAX);
        let refs = (self.store.refs_to_compact(self.level, limit).await)
            .map_err(|e| format!("list delta references to compact: {e}"))?;
        let todo: Vec<&DeltaRefRecord> = {
            let failed = self.failed.lock().expect("failed set");
            refs.iter().filter(|r| !failed.contains(&r.ref_id)).collect()
        };
        let Some(r) = todo.first() else {
            // References first, then the deltas of current objects.
            return self.run_delta(limit).await;
        };
        match self.compact(r).await {
            Ok(Compacted::Saved(saved)) => {
                COMPACTED.inc();
                SAVED.inc_by(saved);
            }
            Ok(Compacted::Kept) => {}
            Err(e) => {
                // Left unmarked and skipped until a restart, so that one bad
                // reference does not hold the others up.
                self.failed.lock().expect("failed set").insert(r.ref_id.clone());
                tracing::warn!(job = "delta-compact", ref_id = %r.ref_id, error = %e, "could not recompress a delta reference");
                return Err(e);
            }
        }
        (self.store.mark_ref_compacted(&r.ref_id, self.level).await)
            .map_err(|e| format!("mark delta reference {} compacted: {e}", r.ref_id))?;
        if todo.len() > 1 {
            return Ok(Outcome::Busy);
        }
        let deltas = (self.store.deltas_to_compact(self.level, limit).await)
            .map_err(|e| format!("list deltas to compact: {e}"))?;
        let failed = self.failed.lock().expect("failed set");
        let more = deltas.iter().any(|(_, _, id)| !failed.contains(&delta_tag(id)));
        Ok(if more { Outcome::Busy } else { Outcome::Idle })
    }
}

/// The key of a delta object in the job's set of failures (apart from
/// reference ids).
fn delta_tag(object_id: &str) -> String {
    format!("object:{object_id}")
}

impl DeltaCompactJob {
    /// One delta object of the oldest not yet re-encoded at `level`.
    async fn run_delta(&self, limit: u32) -> Result<Outcome, String> {
        let deltas = (self.store.deltas_to_compact(self.level, limit).await)
            .map_err(|e| format!("list deltas to compact: {e}"))?;
        let todo: Vec<&(String, String, String)> = {
            let failed = self.failed.lock().expect("failed set");
            deltas
                .iter()
                .filter(|(_, _, id)| !failed.contains(&delta_tag(id)))
                .collect()
        };
        let Some((bucket, key, object_id)) = todo.first() else {
            return Ok(Outcome::Idle);
        };
        let stored = match self.compact_delta(bucket, key, object_id).await {
            Ok((Compacted::Saved(saved), stored)) => {
                COMPACTED_DELTAS.inc();
                SAVED.inc_by(saved);
                stored
            }
            Ok((Compacted::Kept, _)) => None,
            Err(e) => {
                self.failed.lock().expect("failed set").insert(delta_tag(object_id));
                tracing::warn!(job = "delta-compact", %bucket, %key, %object_id, error = %e, "could not re-encode a delta");
                return Err(e);
            }
        };
        (self.store.mark_delta_compacted(object_id, self.level, stored).await)
            .map_err(|e| format!("mark delta {object_id} compacted: {e}"))?;
        Ok(if todo.len() > 1 { Outcome::Busy } else { Outcome::Idle })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::StreamExt;
    use sha2::{Digest, Sha256};
    use strata_core::config::DeltaConfig;
    use strata_core::{Commit, ControlPlane, Encoding, Segment};

    use super::DeltaCompactJob;
    use crate::testkit::{cp_kit, enc};
    use crate::{Job, Outcome};

    /// 12 MiB of pseudo-random text repeated twice: the copy is further
    /// away than level 6's window, within the long window.
    fn data() -> Vec<u8> {
        let mut x = 1u64;
        let half: Vec<u8> = (0..12 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijklmnop"[(x % 16) as usize]
            })
            .collect();
        [half.clone(), half].concat()
    }

    async fn decode(kit: &crate::testkit::CpKit, seg: &Segment) -> Vec<u8> {
        let b = kit.backends.get(&seg.backend_id).unwrap();
        let raw = strata_backend::sealed::get_encoded(b.as_ref(), seg, 0, u64::MAX)
            .await
            .unwrap();
        let mut s = strata_delta::decompress_stream(raw);
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_reference_is_recompressed_smaller_on_its_backend_and_decodes_the_same() {
        let kit = cp_kit(2, &enc(true)).await;
        let cp: Arc<dyn ControlPlane> = kit.with_delta(DeltaConfig {
            enabled: true,
            min_size: 0,
            ..DeltaConfig::default()
        });
        let scratch = kit.dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let job = DeltaCompactJob::new(
            kit.store.clone(),
            cp.clone(),
            kit.backends.clone(),
            scratch.clone(),
            19,
            Duration::from_secs(60),
        );
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);

        // A reference written as the PUT path does: zstd level 6, sealed.
        let data = data();
        let sha = hex::encode(Sha256::digest(&data));
        let (ip, zp) = (scratch.join("in"), scratch.join("in.zst"));
        std::fs::write(&ip, &data).unwrap();
        let encoded_len = strata_delta::compress_file(&ip, &zp, 6).await.unwrap();
        let size = data.len() as u64;
        let pr = cp.plan_reference("b", "b/x/", Some(size)).await.unwrap();
        assert!(pr.cipher.is_some());
        let backend = kit.backends.get(&pr.backend_id).unwrap();
        let body = Box::pin(futures::stream::iter([Ok(Bytes::from(std::fs::read(&zp).unwrap()))]));
        strata_backend::sealed::put_blob(
            backend.as_ref(),
            &pr.backend_key,
            &Default::default(),
            body,
            pr.cipher.as_ref(),
        )
        .await
        .unwrap();
        std::fs::remove_dir_all(&scratch).unwrap();
        let seg = Segment {
            backend_id: pr.backend_id.clone(),
            backend_key: pr.backend_key.clone(),
            length: size,
            cipher: pr.cipher.as_ref().map(strata_core::BlobKey::stored),
            encoding: Some(Encoding::Zstd { encoded_len }),
            ..Default::default()
        };
        let dref = cp.commit_reference(&pr, "b/x/", &sha, seg).await.unwrap();

        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        let rec = cp.locate_reference(&dref.ref_id).await.unwrap();
        let new = rec.segments[0].clone();
        let Some(Encoding::Zstd { encoded_len: new_len }) = new.encoding else {
            panic!("{new:?}")
        };
        assert!(new_len * 10 < encoded_len * 7, "{new_len} vs {encoded_len}");
        assert_eq!(new.backend_id, pr.backend_id, "stays on its backend");
        assert_ne!(new.backend_key, pr.backend_key);
        assert!(new.cipher.is_some(), "sealed as the bucket's policy says");
        assert_eq!((new.length, new.sha256.as_deref()), (size, Some(sha.as_str())));
        assert_eq!(rec.object_id, dref.ref_id);
        let out = decode(&kit, &new).await;
        assert!(out == data);
        // The old blob is queued for cleanup, the scratch files are gone.
        let queued: Vec<String> = (kit.store.pending_cleanup(100).await.unwrap().into_iter())
            .map(|c| c.backend_key)
            .collect();
        assert!(queued.contains(&pr.backend_key), "{queued:?}");
        assert!(!queued.contains(&new.backend_key));
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
        // Marked: not looked at again.
        assert!(kit.store.refs_to_compact(19, 10).await.unwrap().is_empty());
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        let rendered = prometheus::TextEncoder::new()
            .encode_to_string(&prometheus::default_registry().gather())
            .unwrap();
        assert!(rendered.contains("strata_delta_compacted_refs_total"));
        assert!(rendered.contains("strata_delta_compact_bytes_saved_total"));
    }

    /// `n` bytes of lines of words picked pseudo-randomly from a small
    /// vocabulary, from seed `x`: compressible text that level 19 packs
    /// tighter than level 6.
    fn words(mut x: u64, n: usize) -> Vec<u8> {
        const VOCAB: [&str; 24] = [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma", "omega",
            "import", "return", "struct", "impl", "async", "await", "self", "match", "let", "mut", "fn", "pub", "use",
        ];
        let mut out = Vec::with_capacity(n + 16);
        let mut col = 0;
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(VOCAB[(x % 24) as usize].as_bytes());
            col += 1;
            out.push(if col % 9 == 0 { b'\n' } else { b' ' });
        }
        out.truncate(n);
        out
    }

    #[tokio::test]
    async fn a_delta_is_re_encoded_smaller_and_decodes_the_same() {
        use strata_core::{DeltaDecision, ObjectMeta};
        let kit = cp_kit(2, &enc(true)).await;
        let cp: Arc<dyn ControlPlane> = kit.with_delta(DeltaConfig {
            enabled: true,
            min_size: 0,
            ..DeltaConfig::default()
        });
        let work = kit.dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let scratch = kit.dir.path().join("scratch");
        let job = DeltaCompactJob::new(
            kit.store.clone(),
            cp.clone(),
            kit.backends.clone(),
            scratch.clone(),
            19,
            Duration::from_secs(60),
        );

        // The reference: 3 MiB of text, zstd level 6, sealed.
        let reference = words(1, 3 << 20);
        let ref_sha = hex::encode(Sha256::digest(&reference));
        let (rp, rz) = (work.join("ref"), work.join("ref.zst"));
        std::fs::write(&rp, &reference).unwrap();
        let ref_len = strata_delta::compress_file(&rp, &rz, 6).await.unwrap();
        let pr = cp
            .plan_reference("b", "b/x/", Some(reference.len() as u64))
            .await
            .unwrap();
        let backend = kit.backends.get(&pr.backend_id).unwrap();
        let body = Box::pin(futures::stream::iter([Ok(Bytes::from(std::fs::read(&rz).unwrap()))]));
        strata_backend::sealed::put_blob(
            backend.as_ref(),
            &pr.backend_key,
            &Default::default(),
            body,
            pr.cipher.as_ref(),
        )
        .await
        .unwrap();
        let rseg = Segment {
            backend_id: pr.backend_id.clone(),
            backend_key: pr.backend_key.clone(),
            length: reference.len() as u64,
            cipher: pr.cipher.as_ref().map(strata_core::BlobKey::stored),
            encoding: Some(Encoding::Zstd { encoded_len: ref_len }),
            ..Default::default()
        };
        let dref = cp.commit_reference(&pr, "b/x/", &ref_sha, rseg).await.unwrap();

        // The object: the reference with edits and 1 MiB of new text, a
        // level-6 delta written as the PUT path does.
        let mut data = reference.clone();
        for i in (0..data.len()).step_by(64 << 10) {
            data[i..i + 8].copy_from_slice(b"CHANGED!");
        }
        data.splice(1 << 20..1 << 20, words(99, 1 << 20));
        let sha = hex::encode(Sha256::digest(&data));
        let size = data.len() as u64;
        let (op, od) = (work.join("obj"), work.join("obj.delta"));
        std::fs::write(&op, &data).unwrap();
        let stats = strata_delta::encode_file(&op, &rp, &od, &Default::default())
            .await
            .unwrap();
        let plan = cp.plan_write("b", "x/2", Some(size), &[]).await.unwrap();
        assert!(plan.cipher.is_some());
        let backend = kit.backends.get(&plan.backend_id).unwrap();
        let body = Box::pin(futures::stream::iter([Ok(Bytes::from(std::fs::read(&od).unwrap()))]));
        strata_backend::sealed::put_blob(
            backend.as_ref(),
            &plan.backend_key,
            &Default::default(),
            body,
            plan.cipher.as_ref(),
        )
        .await
        .unwrap();
        let old = Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length: size,
            sha256: Some(sha.clone()),
            cipher: plan.cipher.as_ref().map(strata_core::BlobKey::stored),
            encoding: Some(Encoding::Delta {
                encoded_len: stats.encoded_len,
                ref_id: dref.ref_id.clone(),
            }),
        };
        let decision = DeltaDecision {
            decision: "delta".into(),
            reason: "test".into(),
            ref_id: Some(dref.ref_id.clone()),
            logical_bytes: size,
            stored_bytes: stats.encoded_len,
        };
        cp.record_delta(&plan, decision).await.unwrap();
        let meta = ObjectMeta {
            size,
            etag: "e".repeat(32),
            ..Default::default()
        };
        cp.commit_write(&plan, Commit::new("b", "x/2", meta, vec![old.clone()]))
            .await
            .unwrap();
        let stored_before = cp.delta_report().await.unwrap()[0].stored_bytes;
        assert_eq!(kit.store.deltas_to_compact(19, 10).await.unwrap().len(), 1);

        // The reference first (a delta waits: Busy), then the delta.
        assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
        assert!(kit.store.refs_to_compact(19, 10).await.unwrap().is_empty());
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);

        let rec = cp.locate("b", "x/2").await.unwrap();
        assert_eq!(rec.object_id, plan.object_id);
        let new = rec.segments[0].clone();
        let Some(Encoding::Delta {
            encoded_len: new_len,
            ref_id,
        }) = new.encoding.clone()
        else {
            panic!("{new:?}")
        };
        assert_eq!(ref_id, dref.ref_id);
        assert!(
            new_len * 100 <= stats.encoded_len * 99,
            "{new_len} vs {}",
            stats.encoded_len
        );
        assert_eq!(new.backend_id, old.backend_id, "stays on its backend");
        assert_ne!(new.backend_key, old.backend_key);
        assert!(new.cipher.is_some(), "sealed as the bucket's policy says");
        assert_eq!((new.length, new.sha256.as_deref()), (size, Some(sha.as_str())));
        // Its blob's facts keep the reference alive.
        let facts = (kit
            .store
            .get_blobs(&[(new.backend_id.clone(), new.backend_key.clone())])
            .await
            .unwrap())
        .pop()
        .unwrap();
        assert_eq!(facts.codec.as_deref(), Some("delta"));
        assert_eq!(
            (facts.encoded_len, facts.ref_id.as_deref()),
            (Some(new_len), Some(ref_id.as_str()))
        );
        // It decodes to the same bytes.
        let b = kit.backends.get(&new.backend_id).unwrap();
        let mut raw = strata_backend::sealed::get_encoded(b.as_ref(), &new, 0, u64::MAX)
            .await
            .unwrap();
        let mut container = Vec::new();
        while let Some(c) = raw.next().await {
            container.extend_from_slice(&c.unwrap());
        }
        assert_eq!(container.len() as u64, new_len);
        let src = Arc::new(strata_delta::MemSource(Bytes::from(container)));
        let mut decoded = strata_delta::decode_range(src, rp.clone(), 0, size).await.unwrap();
        let mut out = Vec::new();
        while let Some(c) = decoded.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        assert!(out == data);
        // The old blob is queued for cleanup, the scratch files are gone.
        let queued: Vec<String> = (kit.store.pending_cleanup(100).await.unwrap().into_iter())
            .map(|c| c.backend_key)
            .collect();
        assert!(queued.contains(&old.backend_key), "{queued:?}");
        assert!(!queued.contains(&new.backend_key));
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
        // Marked, and the report counts the new size.
        assert!(kit.store.deltas_to_compact(19, 10).await.unwrap().is_empty());
        let stored_after = cp.delta_report().await.unwrap()[0].stored_bytes;
        assert!(
            stored_after < stored_before - (stats.encoded_len - new_len) + 1,
            "{stored_after} vs {stored_before}"
        );
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        let rendered = prometheus::TextEncoder::new()
            .encode_to_string(&prometheus::default_registry().gather())
            .unwrap();
        assert!(rendered.contains("strata_delta_compacted_deltas_total"));
    }
}
