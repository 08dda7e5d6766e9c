//! Building the SDK client for one S3 backend: HTTP(S) connector, credentials,
//! timeouts, retries, checksum policy and the optional header stripping.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    RuntimeComponents, SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::error::BoxError;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use strata_core::config::CredentialSource;

/// The subset of an S3 backend's configuration the client needs.
pub(super) struct ClientSettings<'a> {
    pub endpoint: &'a str,
    pub region: &'a str,
    pub force_path_style: bool,
    pub credential_source: CredentialSource,
    pub access_key_id: Option<&'a str>,
    pub secret_access_key: Option<&'a str>,
    pub disable_checksum: bool,
    pub strip_sdk_headers: bool,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_attempts: u32,
}

/// One hyper client with rustls (ring) that speaks both https and plain http.
/// Trusted roots are the system's, loaded once on first use.
fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Builds the client. Makes no request; credentials from the default chain are
/// resolved lazily, on the first request.
pub(super) async fn build(s: &ClientSettings<'_>) -> Result<Client, String> {
    let http = http_client();
    let region = Region::new(s.region.to_owned());
    let credentials = match s.credential_source {
        CredentialSource::Static => {
            let (Some(ak), Some(sk)) = (s.access_key_id, s.secret_access_key) else {
                return Err("`credential_source: static` needs both access_key_id and secret_access_key".into());
            };
            SharedCredentialsProvider::new(Credentials::new(ak, sk, None, None, "strata-config"))
        }
        CredentialSource::DefaultChain => {
            let shared = aws_config::defaults(BehaviorVersion::latest())
                .http_client(http.clone())
                .region(region.clone())
                .load()
                .await;
            shared
                .credentials_provider()
                .ok_or("the AWS default credential chain is not available")?
        }
    };
    let (req_checksum, resp_checksum) = if s.disable_checksum {
        (
            RequestChecksumCalculation::WhenRequired,
            ResponseChecksumValidation::WhenRequired,
        )
    } else {
        (
            RequestChecksumCalculation::WhenSupported,
            ResponseChecksumValidation::WhenSupported,
        )
    };
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(s.endpoint.trim_end_matches('/'))
        .region(region)
        .force_path_style(s.force_path_style)
        .credentials_provider(credentials)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(s.connect_timeout)
                .read_timeout(s.read_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts))
        .request_checksum_calculation(req_checksum)
        .response_checksum_validation(resp_checksum);
    if s.strip_sdk_headers {
        conf = conf.interceptor(StripSdkHeaders);
    }
    Ok(Client::from_conf(conf.build()))
}

/// Headers only the AWS SDKs send, which some services (GCS) refuse or sign differently.
pub const SDK_ONLY_HEADERS: [&str; 3] = [
    "x-amz-sdk-checksum-algorithm",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
];

/// Removes [`SDK_ONLY_HEADERS`]: once before signing (so the signature never covers
/// them), and again before transmitting, for those the SDK adds after signing.
#[derive(Debug)]
struct StripSdkHeaders;

impl StripSdkHeaders {
    fn strip(ctx: &mut BeforeTransmitInterceptorContextMut<'_>) {
        let headers = ctx.request_mut().headers_mut();
        for h in SDK_ONLY_HEADERS {
            headers.remove(h);
        }
    }
}

impl Intercept for StripSdkHeaders {
    fn name(&self) -> &'static str {
        "StripSdkHeaders"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Self::strip(ctx);
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Self::strip(ctx);
        Ok(())
    }
}
