//! Conversions of the `Admin` service's messages ([`crate::admin_pb`]):
//! cluster status, delta report, backends, removals and jobs.

use strata_core as core;

use super::{Invalid, monthly_from_pb, monthly_to_pb};
use crate::admin_pb as apb;

pub(crate) fn delta_report_to_pb(r: core::DeltaBucketReport) -> apb::DeltaBucketReport {
    apb::DeltaBucketReport {
        bucket: r.bucket,
        logical_bytes: r.logical_bytes,
        stored_bytes: r.stored_bytes,
        decisions: r.decisions.into_iter().collect(),
        references: r.references,
    }
}

pub(crate) fn delta_report_from_pb(r: apb::DeltaBucketReport) -> core::DeltaBucketReport {
    core::DeltaBucketReport {
        bucket: r.bucket,
        logical_bytes: r.logical_bytes,
        stored_bytes: r.stored_bytes,
        decisions: r.decisions.into_iter().collect(),
        references: r.references,
    }
}

pub(crate) fn status_to_pb(s: core::ClusterStatus) -> apb::ClusterStatus {
    apb::ClusterStatus {
        backends: s
            .backends
            .into_iter()
            .map(|b| apb::BackendStatus {
                backend_id: b.backend_id,
                kind: b.kind,
                bytes_used: b.bytes_used,
                orphan_bytes: b.orphan_bytes,
                reserved_bytes: b.reserved_bytes,
                objects: b.objects,
                quota_bytes: b.quota_bytes,
                max_object_size: b.max_object_size,
                eligible_for_writes: b.eligible_for_writes,
                usage: Some(monthly_to_pb(b.usage)),
                api_request_limit: b.api_request_limit,
                egress_byte_limit: b.egress_byte_limit,
                ingress_byte_limit: b.ingress_byte_limit,
                breaker: b.breaker,
            })
            .collect(),
        cleanup_dead_letters: s.cleanup_dead_letters,
        encryption: Some(apb::EncryptionStatus {
            primary_key_id: s.encryption.primary_key_id,
            blobs_by_key: (s.encryption.blobs_by_key.into_iter())
                .map(|(key_id, blobs)| apb::KeyCount { key_id, blobs })
                .collect(),
            corrupt_blobs: s.encryption.corrupt_blobs,
        }),
        jobs: s
            .jobs
            .into_iter()
            .map(|j| apb::JobReport {
                name: j.name,
                state: j.state,
                done: j.done,
                total: j.total,
                errors: j.errors,
                detail: j.detail,
                updated_unix_ms: j.updated_unix_ms,
            })
            .collect(),
    }
}

pub(crate) fn status_from_pb(s: apb::ClusterStatus) -> core::ClusterStatus {
    core::ClusterStatus {
        backends: s
            .backends
            .into_iter()
            .map(|b| core::BackendStatus {
                backend_id: b.backend_id,
                kind: b.kind,
                bytes_used: b.bytes_used,
                orphan_bytes: b.orphan_bytes,
                reserved_bytes: b.reserved_bytes,
                objects: b.objects,
                quota_bytes: b.quota_bytes,
                max_object_size: b.max_object_size,
                eligible_for_writes: b.eligible_for_writes,
                usage: b.usage.map(monthly_from_pb).unwrap_or_default(),
                api_request_limit: b.api_request_limit,
                egress_byte_limit: b.egress_byte_limit,
                ingress_byte_limit: b.ingress_byte_limit,
                breaker: b.breaker,
            })
            .collect(),
        cleanup_dead_letters: s.cleanup_dead_letters,
        encryption: s
            .encryption
            .map(|e| core::EncryptionStatus {
                primary_key_id: e.primary_key_id,
                blobs_by_key: e.blobs_by_key.into_iter().map(|k| (k.key_id, k.blobs)).collect(),
                corrupt_blobs: e.corrupt_blobs,
            })
            .unwrap_or_default(),
        jobs: s
            .jobs
            .into_iter()
            .map(|j| core::JobReport {
                name: j.name,
                state: j.state,
                done: j.done,
                total: j.total,
                errors: j.errors,
                detail: j.detail,
                updated_unix_ms: j.updated_unix_ms,
            })
            .collect(),
    }
}

fn state_to_pb(s: core::BackendStateRecord) -> apb::BackendStateRecord {
    apb::BackendStateRecord {
        backend_id: s.backend_id,
        state: s.state.as_str().to_owned(),
        since_ms: s.since_ms,
        changed_by: s.changed_by,
        reason: s.reason,
    }
}

fn state_from_pb(s: apb::BackendStateRecord) -> Result<core::BackendStateRecord, Invalid> {
    Ok(core::BackendStateRecord {
        state: core::BackendState::parse(&s.state).map_err(|e| e.to_string())?,
        backend_id: s.backend_id,
        since_ms: s.since_ms,
        changed_by: s.changed_by,
        reason: s.reason,
    })
}

pub(crate) fn holdings_to_pb(h: core::BackendHoldings) -> apb::BackendHoldings {
    apb::BackendHoldings {
        objects: h.objects,
        segments: h.segments,
        segment_bytes: h.segment_bytes,
        sole_copy_objects: h.sole_copy_objects,
        parts: h.parts,
        part_bytes: h.part_bytes,
        queued: h.queued,
        queued_bytes: h.queued_bytes,
    }
}

pub(crate) fn holdings_from_pb(h: apb::BackendHoldings) -> core::BackendHoldings {
    core::BackendHoldings {
        objects: h.objects,
        segments: h.segments,
        segment_bytes: h.segment_bytes,
        sole_copy_objects: h.sole_copy_objects,
        parts: h.parts,
        part_bytes: h.part_bytes,
        queued: h.queued,
        queued_bytes: h.queued_bytes,
    }
}

fn progress_to_pb(p: core::JobProgress) -> apb::JobProgress {
    apb::JobProgress {
        name: p.name,
        state: p.state,
        cursor: p.cursor,
        done: p.done,
        total: p.total,
        errors: p.errors,
        detail: p.detail,
        updated_ms: p.updated_ms,
    }
}

fn progress_from_pb(p: apb::JobProgress) -> core::JobProgress {
    core::JobProgress {
        name: p.name,
        state: p.state,
        cursor: p.cursor,
        done: p.done,
        total: p.total,
        errors: p.errors,
        detail: p.detail,
        updated_ms: p.updated_ms,
    }
}

pub(crate) fn backend_report_to_pb(r: core::BackendReport) -> apb::BackendReport {
    apb::BackendReport {
        backend_id: r.backend_id,
        state: r.state.map(state_to_pb),
        holdings: Some(holdings_to_pb(r.holdings)),
        drain: r.drain.map(progress_to_pb),
    }
}

pub(crate) fn backend_report_from_pb(r: apb::BackendReport) -> Result<core::BackendReport, Invalid> {
    Ok(core::BackendReport {
        backend_id: r.backend_id,
        state: r.state.map(state_from_pb).transpose()?,
        holdings: r.holdings.map(holdings_from_pb).unwrap_or_default(),
        drain: r.drain.map(progress_from_pb),
    })
}

pub(crate) fn removal_to_pb(r: core::Removal) -> apb::Removal {
    apb::Removal {
        copies_dropped: r.copies_dropped,
        objects_deleted: r.objects_deleted,
        blobs_deleted: r.blobs_deleted,
        rows_forgotten: r.rows_forgotten,
    }
}

pub(crate) fn removal_from_pb(r: apb::Removal) -> core::Removal {
    core::Removal {
        copies_dropped: r.copies_dropped,
        objects_deleted: r.objects_deleted,
        blobs_deleted: r.blobs_deleted,
        rows_forgotten: r.rows_forgotten,
    }
}

pub(crate) fn purge_plan_to_pb(p: core::PurgePlan) -> apb::PurgePlan {
    apb::PurgePlan {
        objects: p.preview.objects,
        blobs: p.preview.blobs,
        bytes: p.preview.bytes,
        objects_holding: p.objects_holding,
        token: p.token,
    }
}

pub(crate) fn purge_plan_from_pb(p: apb::PurgePlan) -> core::PurgePlan {
    core::PurgePlan {
        preview: core::PurgePreview {
            objects: p.objects,
            blobs: p.blobs,
            bytes: p.bytes,
        },
        objects_holding: p.objects_holding,
        token: p.token,
    }
}

fn schedule_to_pb(j: core::JobSchedule) -> apb::JobSchedule {
    apb::JobSchedule {
        name: j.name,
        state: j.state,
        holder: j.holder,
        next_run_ms: j.next_run_ms,
        last_run_ms: j.last_run_ms,
        last_success_ms: j.last_success_ms,
        last_error: j.last_error,
        consecutive_failures: j.consecutive_failures,
        runs: j.runs,
        errors: j.errors,
        control: j.control,
        updated_ms: j.updated_ms,
    }
}

fn schedule_from_pb(j: apb::JobSchedule) -> core::JobSchedule {
    core::JobSchedule {
        name: j.name,
        state: j.state,
        holder: j.holder,
        next_run_ms: j.next_run_ms,
        last_run_ms: j.last_run_ms,
        last_success_ms: j.last_success_ms,
        last_error: j.last_error,
        consecutive_failures: j.consecutive_failures,
        runs: j.runs,
        errors: j.errors,
        control: j.control,
        updated_ms: j.updated_ms,
    }
}

pub(crate) fn jobs_to_pb(r: core::JobsReport) -> apb::JobsReport {
    apb::JobsReport {
        schedules: r.schedules.into_iter().map(schedule_to_pb).collect(),
        progress: r.progress.into_iter().map(progress_to_pb).collect(),
    }
}

pub(crate) fn jobs_from_pb(r: apb::JobsReport) -> core::JobsReport {
    core::JobsReport {
        schedules: r.schedules.into_iter().map(schedule_from_pb).collect(),
        progress: r.progress.into_iter().map(progress_from_pb).collect(),
    }
}
