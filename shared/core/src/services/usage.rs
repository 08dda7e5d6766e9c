//! [`Usage`]: the data planes' traffic counters (requests, egress and
//! ingress per backend), reported in batches. Served by the control plane's
//! `Usage` gRPC service (`proto/strata/controlplane/v1/usage.proto`).

use async_trait::async_trait;

use crate::{CpResult, MonthlyUsage, UsageReport};

/// Where data planes report the traffic they sent to each backend, and
/// learn which monthly limits are used up.
#[async_trait]
pub trait Usage: Send + Sync + 'static {
    /// Adds a data plane's traffic to this month's usage counters and
    /// returns every configured backend's monthly usage and exhausted limits.
    async fn report_usage(&self, report: UsageReport) -> CpResult<Vec<MonthlyUsage>>;
}
