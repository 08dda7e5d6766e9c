//! The commit step: a placed object (with the further copies of a quorum
//! write) becomes current in one control-plane transaction under its
//! condition, or a placed part joins its upload. When the commit fails every
//! plan is aborted (its bytes and its intent), so a writer that lost a
//! conditional race leaves nothing behind.

use std::collections::BTreeMap;

use s3s::S3Result;
use strata_core::{CleanupItem, Commit, CpError, PartInfo, WritePlan};

use super::quorum::outcome;
use super::{Placed, Target, WriteRequest};
use crate::errors::from_cp;
use crate::s3::StrataS3;

impl StrataS3 {
    /// Commits a placed write; returns the bytes it made obsolete.
    pub(super) async fn commit(&self, req: WriteRequest<'_>, placed: Placed) -> S3Result<Vec<CleanupItem>> {
        let Placed {
            plan,
            digests,
            segment,
            copies,
        } = placed;
        let checksums: BTreeMap<String, String> = (digests.checksum.iter())
            .map(|(algo, v)| (algo.name().to_owned(), v.clone()))
            .collect();
        match req.target {
            Target::Object { bucket, key } => {
                let meta = strata_core::ObjectMeta {
                    checksums,
                    ..req.meta_of(&digests)
                };
                let commit = Commit {
                    copies,
                    condition: req.condition,
                    ..Commit::new(bucket, key, meta, vec![segment])
                };
                self.commit_object(&plan, commit).await
            }
            Target::Part {
                bucket,
                upload_id,
                part_number,
                ..
            } => {
                let part = PartInfo {
                    part_number,
                    etag: digests.md5_hex,
                    size: digests.size,
                    last_modified_unix_ms: 0,
                    segment,
                    checksums,
                };
                match self.cp.commit_part(&plan, bucket, upload_id, part).await {
                    Ok(obsolete) => Ok(obsolete),
                    Err(e) => {
                        self.abort(&plan).await;
                        Err(from_cp(e))
                    }
                }
            }
        }
    }

    /// Commits an object with its further copies (none for a single-copy
    /// write) in one transaction, under the commit's condition.
    async fn commit_object(&self, plan: &WritePlan, commit: Commit) -> S3Result<Vec<CleanupItem>> {
        let quorum = !commit.copies.is_empty();
        let others: Vec<WritePlan> = commit.copies.iter().map(|(p, _)| p.clone()).collect();
        let (bucket, key) = (commit.bucket.clone(), commit.key.clone());
        match self.cp.commit_write(plan, commit).await {
            Ok(obsolete) => {
                if quorum {
                    outcome("acknowledged");
                    tracing::debug!(bucket, key, copies = others.len() + 1, "quorum write committed");
                }
                Ok(obsolete)
            }
            Err(e) => {
                if quorum {
                    outcome("commit_failed");
                }
                if e == CpError::PreconditionFailed || e == CpError::NoSuchKey {
                    tracing::debug!(
                        bucket,
                        key,
                        "a conditional write lost: its precondition failed at the commit"
                    );
                }
                self.abort_all(std::iter::once(plan).chain(&others)).await;
                Err(from_cp(e))
            }
        }
    }
}
