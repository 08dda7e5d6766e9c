//! Virtual-host-style addressing (`server.domain`): which bucket a Host header
//! names.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// Virtual-host addressing under one base domain: `bucket.DOMAIN` names a
/// bucket; any other host (an IP, `localhost`, the domain itself) is path style.
pub struct Domain {
    base: String,
}

impl Domain {
    pub fn new(base: &str) -> Domain {
        Domain {
            base: base.to_ascii_lowercase(),
        }
    }
}

impl S3Host for Domain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|c| c.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let lower = name.to_ascii_lowercase();
        if let Some(bucket) = lower.strip_suffix(&self.base).and_then(|h| h.strip_suffix('.'))
            && !bucket.is_empty()
        {
            return Ok(VirtualHost::new(self.base.as_str()).with_bucket(bucket.to_owned()));
        }
        Ok(VirtualHost::new(name))
    }
}
