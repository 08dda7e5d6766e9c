//! The plan step: a write's condition is checked early (only to spare a
//! client that is sure to lose its upload; the commit checks it again), the
//! control plane plans the blob (an intent is recorded before any byte is
//! written) and the plan gets its sealing key: the policy's, or a new data
//! key wrapped under the customer's SSE-C key.

use std::sync::Arc;

use s3s::S3Result;
use strata_core::{BlobKey, CpError, CpResult, WriteCondition, WritePlan};
use strata_crypto::{CustomerKey, Dek};

use super::Target;
use crate::errors::from_cp;
use crate::s3::StrataS3;

/// How the blobs of one write are sealed.
#[derive(Clone, Default)]
pub(crate) enum Sealing {
    /// As the control plane's encryption policy says (the plan's key, if any).
    #[default]
    Policy,
    /// Under the customer's key (SSE-C).
    Customer(Arc<CustomerKey>),
}

impl Sealing {
    /// The S3 response fields of an SSE-C write: algorithm and key MD5.
    pub fn echo(&self) -> (Option<String>, Option<String>) {
        match self {
            Sealing::Policy => (None, None),
            Sealing::Customer(k) => (Some("AES256".into()), Some(k.key_md5().to_owned())),
        }
    }
}

impl StrataS3 {
    /// Fails fast, before any byte is written, when the condition already
    /// fails. Passing this is no promise: the commit checks again, atomically.
    pub(super) async fn precheck(&self, target: &Target<'_>, condition: &WriteCondition) -> S3Result<()> {
        if condition.is_none() {
            return Ok(());
        }
        let current = match self.cp.locate(target.bucket(), target.key()).await {
            Ok(r) => Some(r.meta.etag),
            Err(CpError::NoSuchKey) => None,
            Err(e) => return Err(from_cp(e)),
        };
        condition.check(current.as_deref()).map_err(from_cp)
    }

    /// A plan for `t` on a backend not in `exclude`, sealed as asked.
    pub(super) async fn plan_for(
        &self,
        t: &Target<'_>,
        hint: Option<u64>,
        exclude: &[String],
        sealing: &Sealing,
    ) -> CpResult<WritePlan> {
        let plan = match t {
            Target::Object { bucket, key } => self.cp.plan_write(bucket, key, hint, exclude).await?,
            Target::Part {
                bucket,
                upload_id,
                part_number,
                ..
            } => {
                self.cp
                    .plan_part(bucket, upload_id, *part_number, hint, exclude)
                    .await?
            }
        };
        self.seal_plan(plan, sealing).await
    }

    /// The first plan of a write: backends whose breaker is open are left
    /// out, unless that leaves nothing, in which case they are tried anyway
    /// (a half-open trial may succeed; failing fast is better than 507).
    pub(super) async fn first_plan(&self, t: &Target<'_>, hint: Option<u64>, sealing: &Sealing) -> CpResult<WritePlan> {
        let open = self.guard.as_ref().map(|g| g.open_backends()).unwrap_or_default();
        if open.is_empty() {
            return self.plan_for(t, hint, &[], sealing).await;
        }
        match self.plan_for(t, hint, &open, sealing).await {
            Err(CpError::NoCapacity(_)) => self.plan_for(t, hint, &[], sealing).await,
            other => other,
        }
    }

    /// Gives `plan` the customer's key when the write asks for SSE-C: a new
    /// data key, wrapped under the customer's key and recorded before any
    /// byte is written. Policy sealing keeps the plan as planned.
    async fn seal_plan(&self, mut plan: WritePlan, sealing: &Sealing) -> CpResult<WritePlan> {
        let Sealing::Customer(ck) = sealing else {
            return Ok(plan);
        };
        let dek = Dek::generate();
        let key = BlobKey {
            key_id: strata_crypto::customer_key_id(ck),
            wrapped_dek: strata_crypto::wrap_customer(ck, &dek),
            dek: dek.as_bytes().to_vec(),
            context: plan.object_id.clone(),
        };
        self.cp.record_blob_key(&plan, &key).await?;
        plan.cipher = Some(key);
        Ok(plan)
    }
}
