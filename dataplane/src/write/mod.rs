//! The write path. PutObject, CopyObject, UploadPart and UploadPartCopy each
//! build one [`WriteRequest`] (what is written where, under which condition
//! and sealing, and its bytes) and hand it to [`StrataS3::write`], which runs
//! the same stages for all of them:
//!
//! 1. **plan** (`plan.rs`): the early condition check, a plan from the control
//!    plane (backends with an open breaker left out) and the sealing key;
//! 2. **stream and place** (`body.rs`, then one [`Placement`]): the body is
//!    verified against what it declared while it is stored as one copy with
//!    failover (`single.rs`), N copies at once (`quorum.rs`) or delta-encoded
//!    (`delta.rs`, `delta_store.rs`);
//! 3. **commit** (`commit.rs`): the object (under its condition) or the part
//!    becomes visible in one control-plane transaction, or every plan is
//!    aborted (`blob.rs`) and nothing does;
//! 4. **clean up** (`cleanup.rs`): bytes the commit made obsolete are deleted
//!    after the response.
//!
//! CompleteMultipartUpload writes no bytes: it is a commit of the parts, and
//! shares only the clean-up. `s3/` parses requests and renders responses.

mod blob;
mod body;
mod cleanup;
mod commit;
mod delta;
mod delta_store;
mod plan;
mod quorum;
mod single;

use std::sync::Arc;

use s3s::S3Result;
use strata_core::blobtags::BlobRole;
use strata_core::{ObjectMeta, Segment, WriteCondition, WritePlan};

use crate::delta::DeltaEngine;
use crate::errors::from_cp;
use crate::pipeline::Digests;
use crate::s3::StrataS3;

pub(crate) use body::Body;
pub(crate) use cleanup::Cleaner;
pub(crate) use plan::Sealing;
pub(crate) use quorum::WriteQuorum;

/// One write, as every stage sees it.
pub(crate) struct WriteRequest<'a> {
    /// The object or the upload part written.
    pub target: Target<'a>,
    /// The new object's headers and user metadata (empty for a part); its
    /// size, ETag and checksum are filled in from the body at the commit.
    pub meta: ObjectMeta,
    /// `If-Match` / `If-None-Match`: checked before planning, and again
    /// atomically by the control plane at the commit.
    pub condition: WriteCondition,
    /// How the blobs are sealed: by the bucket's policy or under an SSE-C key.
    pub sealing: Sealing,
    /// The bytes, with what they are checked against.
    pub body: Body<'a>,
}

/// What a write creates: an object version or one part of an upload.
pub(crate) enum Target<'a> {
    Object {
        bucket: &'a str,
        key: &'a str,
    },
    Part {
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        part_number: u32,
    },
}

impl<'a> Target<'a> {
    /// An object version.
    pub fn object(bucket: &'a str, key: &'a str) -> Target<'a> {
        Target::Object { bucket, key }
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        match self {
            Target::Object { bucket, .. } | Target::Part { bucket, .. } => bucket,
        }
    }

    /// The object key (of the upload, for a part).
    pub fn key(&self) -> &str {
        match self {
            Target::Object { key, .. } | Target::Part { key, .. } => key,
        }
    }

    /// The blob role recorded in the blob's tags.
    pub fn role(&self) -> BlobRole {
        match self {
            Target::Object { .. } => BlobRole::Object,
            Target::Part {
                upload_id, part_number, ..
            } => BlobRole::Part {
                upload_id: (*upload_id).to_owned(),
                part_number: *part_number,
            },
        }
    }
}

/// What a committed write tells the client.
pub(crate) struct Written {
    /// The verified digests of the body (ETag, checksum).
    pub digests: Digests,
    /// Sealed at rest under a Strata master key (the bucket's policy).
    pub at_rest: bool,
}

/// What the place step stored: the first plan and its segment, the body's
/// digests, and the further copies of a quorum write (none otherwise).
struct Placed {
    plan: WritePlan,
    digests: Digests,
    segment: Segment,
    copies: quorum::Copies,
}

/// The place step: how the bytes of a planned write reach the backends.
enum Placement {
    /// One copy, moved to another backend when its backend fails.
    Single,
    /// `n` copies on distinct backends before the acknowledgement.
    Quorum(usize),
    /// Delta-encoded against its deltaspace's reference (one copy; the
    /// replication job copies it later).
    Delta(Arc<DeltaEngine>),
}

impl Placement {
    async fn place(self, s3: &StrataS3, req: &mut WriteRequest<'_>, plan: WritePlan) -> S3Result<Placed> {
        match self {
            Placement::Single => s3.place_single(req, plan).await,
            Placement::Quorum(n) => s3.place_quorum(req, plan, n).await,
            Placement::Delta(engine) => s3.place_delta(&engine, req, plan).await,
        }
    }
}

impl StrataS3 {
    /// Runs one write through plan, stream and place, commit and clean up.
    /// On any failure every plan made is aborted and nothing becomes visible.
    pub(crate) async fn write(&self, mut req: WriteRequest<'_>) -> S3Result<Written> {
        self.precheck(&req.target, &req.condition).await?;
        let hint = req.body.size_hint();
        let plan = (self.first_plan(&req.target, hint, &req.sealing).await).map_err(from_cp)?;
        let placed = self.placement(&req, &plan).place(self, &mut req, plan).await?;
        let written = Written {
            digests: placed.digests.clone(),
            at_rest: placed.plan.cipher.as_ref().is_some_and(|c| !c.is_customer()),
        };
        let obsolete = self.commit(req, placed).await?;
        self.cleanup(obsolete);
        Ok(written)
    }

    /// Which strategy places a write planned as `plan`. Parts are single
    /// copies (the replication job copies them); objects are delta-encoded
    /// when the plan asks for it (a copy under a customer key never is), else
    /// written to the bucket's quorum of backends.
    fn placement(&self, req: &WriteRequest<'_>, plan: &WritePlan) -> Placement {
        let Target::Object { bucket, .. } = req.target else {
            return Placement::Single;
        };
        let sealed_copy = matches!(req.body, Body::Copy { .. }) && matches!(req.sealing, Sealing::Customer(_));
        match &self.delta {
            Some(engine) if plan.delta.is_some() && !sealed_copy => Placement::Delta(engine.clone()),
            _ => match self.write_quorum.for_bucket(bucket) as usize {
                n if n > 1 => Placement::Quorum(n),
                _ => Placement::Single,
            },
        }
    }
}

impl<'a> WriteRequest<'a> {
    /// A part of a multipart upload: no metadata of its own, no condition.
    pub fn part(target: Target<'a>, sealing: Sealing, body: Body<'a>) -> WriteRequest<'a> {
        WriteRequest {
            target,
            meta: ObjectMeta::default(),
            condition: WriteCondition::NONE,
            sealing,
            body,
        }
    }

    /// The object facts known before any byte is sent (a declared length, a
    /// Content-MD5, a copied object's ETag), recorded in the blob's tags.
    fn known_meta(&self) -> ObjectMeta {
        let mut m = self.meta.clone();
        match &self.body {
            Body::Client { expect, .. } => {
                m.size = expect.length.unwrap_or(m.size);
                if let Some(md5) = expect.md5 {
                    m.etag = hex::encode(md5);
                }
            }
            Body::Copy { src, start, end } => {
                m.size = end - start;
                if let Target::Object { .. } = self.target {
                    m.etag = src.meta.etag.clone();
                }
            }
        }
        m
    }

    /// The object's metadata with the facts of its verified body.
    fn meta_of(&self, digests: &Digests) -> ObjectMeta {
        let mut m = self.meta.clone();
        m.size = digests.size;
        m.etag = digests.md5_hex.clone();
        m
    }
}
