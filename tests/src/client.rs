use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

use crate::{ACCESS_KEY, REGION, SECRET_KEY, Strata};

impl Strata {
    /// An aws-sdk-s3 client for this deployment's S3 endpoint, over plain http,
    /// path style, with the test credential and no retries (a failure shows at once).
    pub fn client(&self) -> Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "strata-tests"))
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(120))
                    .build(),
            )
            .build();
        Client::from_conf(conf)
    }
}
