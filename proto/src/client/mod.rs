//! `strata_core::ControlPlane` over gRPC, for `--role dataplane`, the
//! workers and the CLIs: [`GrpcControlPlane`] implements the four service
//! traits, `Catalog` in `catalog.rs`, `Admin` in `admin.rs`, `Identity` and
//! `Usage` here, all following the leader (`crate::follow`).

use async_trait::async_trait;
use strata_core::{Catalog as _, CpError, CpResult, Credential, MonthlyUsage, UsageReport};

use crate::auth::{ClusterAuth, TokenSource};
use crate::convert as cv;
use crate::follow::Endpoints;
use crate::pb;
use crate::pb::identity_client::IdentityClient;
use crate::pb::usage_client::UsageClient;

/// The JWT subject the data plane presents.
const SUBJECT: &str = "dataplane";

/// The control plane reached over gRPC: one or several control-plane
/// processes, of which the client follows the leader (see `crate::follow`).
/// Cheap to clone; all clones share the connections and one cached token.
#[derive(Clone)]
pub struct GrpcControlPlane {
    endpoints: std::sync::Arc<Endpoints>,
    token: TokenSource,
}

impl std::fmt::Debug for GrpcControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcControlPlane")
    }
}

impl GrpcControlPlane {
    /// A client for `url` (e.g. `http://10.0.0.5:9100`), or for several
    /// control planes separated by commas, that connects on first use and
    /// reconnects as needed. Must be called within a Tokio runtime.
    pub fn connect_lazy(url: &str, auth: ClusterAuth) -> Result<Self, String> {
        let urls: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        Self::connect_many(&urls, auth)
    }

    /// A client for every control plane in `urls`; calls go to the leader.
    pub fn connect_many(urls: &[String], auth: ClusterAuth) -> Result<Self, String> {
        Self::connect_as(urls, auth, SUBJECT)
    }

    /// [`Self::connect_many`], presenting `subject` in its tokens (the CLIs
    /// say who they are, for the control plane's logs).
    pub fn connect_as(urls: &[String], auth: ClusterAuth, subject: &str) -> Result<Self, String> {
        Ok(GrpcControlPlane {
            endpoints: std::sync::Arc::new(Endpoints::new(urls)?),
            token: TokenSource::new(auth, subject),
        })
    }

    /// For the data plane's `/ready`: succeeds when the control plane answers
    /// an authenticated call (so a wrong cluster secret shows up here too).
    pub async fn check_ready(&self) -> Result<(), CpError> {
        self.list_buckets().await.map(|_| ())
    }
}

/// Runs one call on the leader with the current token and maps its status
/// to `CpError`: `call!(self, CatalogClient.plan_write(msg))`. `read` marks
/// read-only calls, which may be sent again after any transport failure;
/// other calls are sent again only when they certainly did not execute.
macro_rules! call {
    (@ro) => {
        false
    };
    (@ro read) => {
        true
    };
    ($self:ident, $client:ident . $method:ident ( $msg:expr ) $(, $ro:ident)?) => {{
        let msg = $msg;
        $self
            .endpoints
            .run(&$self.token, call!(@ro $($ro)?), |channel, token| {
                let req = token.request(msg.clone());
                let mut c = $client::new(channel).max_decoding_message_size($crate::router::MAX_MESSAGE_SIZE);
                async move { c.$method(req).await }
            })
            .await
    }};
}

mod admin;
mod catalog;

#[async_trait]
impl strata_core::Identity for GrpcControlPlane {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<Credential>> {
        let access_key_id = access_key_id.to_string();
        let r = call!(
            self,
            IdentityClient.get_credential(pb::GetCredentialRequest { access_key_id }),
            read
        )?;
        Ok(cv::credential_from_pb(r))
    }
}

#[async_trait]
impl strata_core::Usage for GrpcControlPlane {
    async fn report_usage(&self, report: UsageReport) -> CpResult<Vec<MonthlyUsage>> {
        let r = call!(self, UsageClient.report_usage(cv::report_to_pb(report)))?;
        Ok(r.backends.into_iter().map(cv::monthly_from_pb).collect())
    }
}
