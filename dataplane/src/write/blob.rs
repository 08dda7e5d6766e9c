//! The blob a plan names: the catalog facts stored with it (its tags, which
//! let the reaper resolve an intent a crash left behind), the segment it
//! becomes in the object record, and its removal when the write fails.

use strata_core::blobtags::{self, BlobFacts, Tags};
use strata_core::{Encoding, ObjectMeta, Segment, WritePlan};

use super::Target;
use crate::pipeline::Digests;
use crate::s3::StrataS3;

/// The catalog facts stored with a blob; `meta` carries the size and ETag
/// known when the bytes are sent.
pub(super) fn tags(plan: &WritePlan, target: &Target<'_>, meta: &ObjectMeta) -> Tags {
    if plan.cipher.is_some() {
        // A sealed blob tells its backend nothing about the object: no
        // bucket, key, headers, metadata, size or ETag. (The reaper drops
        // such blobs rather than promoting them.)
        return blobtags::encode(&BlobFacts {
            bucket: String::new(),
            key: String::new(),
            object_id: plan.object_id.clone(),
            role: target.role(),
            meta: ObjectMeta::default(),
            codec: "aes256-gcm".into(),
        });
    }
    blobtags::encode(&BlobFacts {
        bucket: target.bucket().to_owned(),
        key: target.key().to_owned(),
        object_id: plan.object_id.clone(),
        role: target.role(),
        meta: meta.clone(),
        codec: "none".into(),
    })
}

/// Tags of an encoded blob or a reference: they say so (`codec`), so that
/// the reaper never mistakes one for an object's bytes.
pub(super) fn coded_tags(
    plan: &WritePlan,
    target: &Target<'_>,
    meta: &ObjectMeta,
    encoding: Option<&Encoding>,
    codec: Option<&str>,
) -> Tags {
    let mut tags = tags(plan, target, meta);
    if plan.cipher.is_none() {
        let codec = codec.unwrap_or(match encoding {
            None => "none",
            Some(Encoding::Zstd { .. }) => "zstd",
            Some(Encoding::Delta { .. }) => "delta",
        });
        tags.insert("codec".into(), codec.into());
    }
    tags
}

/// The segment a write under `plan` produced: its plaintext length and
/// SHA-256, and the stored form of its key.
pub(super) fn segment(plan: &WritePlan, d: &Digests) -> Segment {
    Segment {
        backend_id: plan.backend_id.clone(),
        backend_key: plan.backend_key.clone(),
        length: d.size,
        sha256: Some(d.sha256_hex.clone()),
        cipher: plan.cipher.as_ref().map(strata_core::BlobKey::stored),
        ..Default::default()
    }
}

impl StrataS3 {
    /// Drops an intent after a failed write. If the bytes landed, the reaper
    /// (or the cleanup path) removes them; the catalog never points at them.
    pub(super) async fn abort(&self, plan: &WritePlan) {
        if let Some(b) = self.backends.get(&plan.backend_id)
            && let Err(e) = b.delete(&plan.backend_key).await
        {
            tracing::warn!(error = %e, key = %plan.backend_key, "could not remove bytes of an aborted write");
            return; // keep the intent so the reaper can resolve it
        }
        if let Err(e) = self.cp.abort_write(&plan.intent_id).await {
            tracing::warn!(error = %e, "could not drop the intent of an aborted write");
        }
    }

    /// Aborts every plan at once: each deletes from another backend, and one
    /// slow backend must not delay the others.
    pub(super) async fn abort_all<'p>(&self, plans: impl IntoIterator<Item = &'p WritePlan>) {
        futures::future::join_all(plans.into_iter().map(|p| self.abort(p))).await;
    }
}
