//! `Admin::status`: every configured backend's usage, limits, state and
//! breaker as the data planes last reported it, plus the encryption and
//! job summaries, for `GET /status` and the metrics.

use std::collections::HashMap;

use strata_core::{BackendStatus, ClusterStatus, CpResult, JobReport};
use strata_store::BackendUsage;

use crate::ControlPlaneService;
use crate::keys;

/// The cluster's status as `cp` sees it now.
pub(super) async fn status(cp: &ControlPlaneService) -> CpResult<ClusterStatus> {
    let usage = cp.store.backend_usage().await?;
    let by_id: HashMap<&str, &BackendUsage> = usage.iter().map(|u| (u.backend_id.as_str(), u)).collect();
    let monthly = cp.month_usage().await?;
    let inactive = cp.inactive_backends().await?;
    let now = std::time::Instant::now();
    let backends = (cp.placement.backends().iter())
        .zip(&cp.kinds)
        .zip(monthly)
        .map(|((b, kind), month)| {
            let u = by_id.get(b.id.as_str()).copied().cloned().unwrap_or_default();
            let filled = u
                .bytes_used
                .saturating_add(u.orphan_bytes)
                .saturating_add(u.reserved_bytes);
            BackendStatus {
                backend_id: b.id.clone(),
                kind: (*kind).to_owned(),
                bytes_used: u.bytes_used,
                orphan_bytes: u.orphan_bytes,
                reserved_bytes: u.reserved_bytes,
                objects: u.objects,
                quota_bytes: b.limits.quota_bytes,
                max_object_size: b.limits.max_object_size,
                eligible_for_writes: b.limits.quota_bytes.is_none_or(|q| filled < q)
                    && !month.requests_exhausted
                    && !month.ingress_exhausted
                    && !inactive.iter().any(|(id, _)| *id == b.id),
                usage: month,
                api_request_limit: b.limits.api_request_limit,
                egress_byte_limit: b.limits.egress_byte_limit,
                ingress_byte_limit: b.limits.ingress_byte_limit,
                breaker: cp.breakers.state(&b.id, now).into(),
            }
        })
        .collect();
    Ok(ClusterStatus {
        backends,
        cleanup_dead_letters: cp.store.dead_letter_count().await?,
        encryption: keys::status(cp.sealer(), &*cp.store).await?,
        jobs: (cp.store.list_jobs().await?)
            .into_iter()
            .map(|j| JobReport {
                name: j.name,
                state: j.state,
                done: j.done,
                total: j.total,
                errors: j.errors,
                detail: j.detail,
                updated_unix_ms: j.updated_ms,
            })
            .collect(),
    })
}
