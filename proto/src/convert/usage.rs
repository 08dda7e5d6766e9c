//! Conversions of the `Usage` service's traffic reports.

use strata_core as core;

use crate::pb;

fn breaker_to_pb(b: core::BreakerState) -> pb::BreakerState {
    match b {
        core::BreakerState::Closed => pb::BreakerState::Closed,
        core::BreakerState::Open => pb::BreakerState::Open,
        core::BreakerState::HalfOpen => pb::BreakerState::HalfOpen,
    }
}

fn breaker_from_pb(b: pb::BreakerState) -> core::BreakerState {
    match b {
        pb::BreakerState::Closed => core::BreakerState::Closed,
        pb::BreakerState::Open => core::BreakerState::Open,
        pb::BreakerState::HalfOpen => core::BreakerState::HalfOpen,
    }
}

pub(crate) fn report_to_pb(r: core::UsageReport) -> pb::UsageReport {
    pb::UsageReport {
        reporter: r.reporter,
        backends: (r.backends.into_iter())
            .map(|t| pb::BackendTraffic {
                backend_id: t.backend_id,
                requests: t.requests,
                egress_bytes: t.egress_bytes,
                ingress_bytes: t.ingress_bytes,
                breaker: breaker_to_pb(t.breaker) as i32,
            })
            .collect(),
    }
}

pub(crate) fn report_from_pb(r: pb::UsageReport) -> core::UsageReport {
    core::UsageReport {
        reporter: r.reporter,
        backends: (r.backends.into_iter())
            .map(|t| core::BackendTraffic {
                breaker: breaker_from_pb(t.breaker()),
                backend_id: t.backend_id,
                requests: t.requests,
                egress_bytes: t.egress_bytes,
                ingress_bytes: t.ingress_bytes,
            })
            .collect(),
    }
}
