//! [`Identity`]: access keys and their scope, which the data plane asks for
//! to check a request's SigV4 signature. Served by the control plane's
//! `Identity` gRPC service (`proto/strata/controlplane/v1/identity.proto`).

use async_trait::async_trait;

use crate::{CpResult, Credential};

/// Who may call the S3 API, and on which buckets.
#[async_trait]
pub trait Identity: Send + Sync + 'static {
    /// Resolves an access key; `None` when it does not exist.
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<Credential>>;
}
