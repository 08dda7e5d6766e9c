//! Delta compression as the control plane runs it: deltaspace policy,
//! references and their reference counts, per-object decisions and the
//! report (see docs/delta.md).
//!
//! A reference is an ordinary object of the hidden bucket `.refs.<bucket>`
//! under `<space>/<ref_id>`, whose object id is the ref id; its blob holds
//! the zstd-compressed bytes. A delta's blob records the reference it
//! decodes against in `blobs.ref_id`, which keeps the reference alive
//! (`MetaStore::unreferenced_refs`, freed by the workers' `DeltaGcJob`).

use std::sync::LazyLock;

use strata_core::config::DeltaConfig;
use strata_core::{
    CpError, CpResult, DeltaBucketReport, DeltaDecision, DeltaPlan, DeltaRef, Encoding, ObjectMeta, ObjectRecord,
    Segment, WriteCondition, WritePlan,
};
use strata_store::{
    BlobRecord, DeltaDecisionRecord, DeltaRefRecord, MetaStore, REF_CURRENT, ReselectPolicy, refs_bucket,
};

use crate::metrics::{DELTA_BYTES_SAVED as BYTES_SAVED, DELTA_DECISIONS as DECISIONS};

/// Registers the metrics (idempotent).
pub fn register_metrics() {
    LazyLock::force(&DECISIONS);
    LazyLock::force(&BYTES_SAVED);
}

/// The user bucket of deltaspace `space` (`bucket/...`).
fn bucket_of_space(space: &str) -> CpResult<&str> {
    match space.split_once('/') {
        Some((bucket, _)) if !bucket.is_empty() => Ok(bucket),
        _ => Err(CpError::InvalidArgument(format!(
            "deltaspace {space:?} must start with its bucket and `/`"
        ))),
    }
}

/// The key of reference `ref_id` of `space` in the hidden bucket.
pub(crate) fn ref_key(space: &str, ref_id: &str) -> String {
    format!("{space}/{ref_id}")
}

/// What `plan_write` attaches for (bucket, key): `None` when the policy
/// does not allow delta compression. Hands out the deltaspace's current
/// reference (touching it) unless the space is due a new one.
pub(crate) async fn plan_for(
    store: &dyn MetaStore,
    config: &DeltaConfig,
    bucket: &str,
    key: &str,
    size_hint: Option<u64>,
    now_ms: i64,
) -> CpResult<Option<DeltaPlan>> {
    if bucket.starts_with('.') {
        return Ok(None);
    }
    let Ok(space) = config.policy(bucket, key, size_hint) else {
        return Ok(None);
    };
    let mut reference = None;
    if let Some(ds) = store.get_deltaspace(&space).await?
        && !ds.want_new_ref
        && let Some(id) = ds.current_ref_id
        && let Some(r) = store.get_delta_ref(&id).await?
    {
        store.touch_delta_ref(&id, now_ms).await?;
        reference = Some(DeltaRef {
            ref_id: r.ref_id,
            size: r.size,
            sha256: r.sha256,
        });
    }
    Ok(Some(DeltaPlan {
        space,
        reference,
        max_delta_permille: config.max_delta_permille(),
    }))
}

/// The hidden bucket and key of a new reference of `space` (checks that
/// `space` belongs to `bucket`), creating the hidden bucket when missing.
pub(crate) async fn prepare_reference(
    store: &dyn MetaStore,
    bucket: &str,
    space: &str,
    now_ms: i64,
) -> CpResult<String> {
    if bucket.starts_with('.') || bucket_of_space(space)? != bucket {
        return Err(CpError::InvalidArgument(format!(
            "deltaspace {space:?} does not belong to bucket {bucket:?}"
        )));
    }
    store.get_bucket(bucket).await?;
    let hidden = refs_bucket(bucket);
    match store.create_bucket(&hidden, "strata", now_ms).await {
        Ok(()) | Err(CpError::BucketAlreadyOwnedByYou) => Ok(hidden),
        Err(e) => Err(e),
    }
}

/// Commits a written reference (see `ControlPlane::commit_reference`):
/// its blob facts, its object, then makes it the space's current one.
pub(crate) async fn commit_reference(
    store: &dyn MetaStore,
    plan: &WritePlan,
    space: &str,
    sha256: &str,
    mut segment: Segment,
    now_ms: i64,
) -> CpResult<DeltaRef> {
    let bucket = bucket_of_space(space)?.to_owned();
    // zstd-compressed, or stored as it is when that was not smaller
    // (incompressible content).
    let (codec, encoded_len) = match segment.encoding.clone() {
        Some(Encoding::Zstd { encoded_len }) => (Some("zstd".to_owned()), Some(encoded_len)),
        None => (None, None),
        Some(Encoding::Delta { .. }) => {
            return Err(CpError::InvalidArgument("a reference is never itself a delta".into()));
        }
    };
    if segment.backend_id != plan.backend_id || segment.backend_key != plan.backend_key {
        return Err(CpError::InvalidArgument(
            "the reference's segment is not its plan's blob".into(),
        ));
    }
    segment.sha256 = Some(sha256.to_owned());
    let facts = BlobRecord {
        backend_id: segment.backend_id.clone(),
        backend_key: segment.backend_key.clone(),
        sha256: Some(sha256.to_owned()),
        codec,
        encoded_len,
        ..Default::default()
    };
    store.put_blobs(&[facts], now_ms).await?;
    let ref_id = plan.object_id.clone();
    let record = ObjectRecord {
        bucket: refs_bucket(&bucket),
        key: ref_key(space, &ref_id),
        object_id: ref_id.clone(),
        meta: ObjectMeta {
            size: segment.length,
            etag: sha256.chars().take(32).collect(),
            last_modified_unix_ms: now_ms,
            ..ObjectMeta::default()
        },
        segments: vec![segment],
        copies: Vec::new(),
    };
    store
        .commit_object(&plan.intent_id, &record, &WriteCondition::NONE)
        .await?;
    let r = DeltaRefRecord {
        ref_id: ref_id.clone(),
        bucket,
        space: space.to_owned(),
        ref_bucket: record.bucket.clone(),
        ref_key: record.key.clone(),
        size: record.meta.size,
        sha256: sha256.to_owned(),
        state: REF_CURRENT.into(),
        last_used_ms: now_ms,
        created_ms: now_ms,
    };
    if let Some(old) = store.set_current_ref(&r).await? {
        tracing::info!(space, old, new = %ref_id, "deltaspace reference replaced");
    }
    Ok(DeltaRef {
        ref_id,
        size: r.size,
        sha256: r.sha256,
    })
}

/// The reference's object with its blob facts (see `Sealer::attach`).
pub(crate) async fn locate_reference(store: &dyn MetaStore, ref_id: &str) -> CpResult<ObjectRecord> {
    let r = store.get_delta_ref(ref_id).await?.ok_or(CpError::NoSuchKey)?;
    store.get_object(&r.ref_bucket, &r.ref_key).await
}

/// Records the encoding facts of `segments` that carry one, so that the
/// reference liveness queries see them once the object is committed.
pub(crate) async fn record_encodings(store: &dyn MetaStore, segments: &[Segment], now_ms: i64) -> CpResult<()> {
    let rows: Vec<BlobRecord> = segments
        .iter()
        .filter_map(|s| {
            let (codec, encoded_len, ref_id) = match s.encoding.as_ref()? {
                Encoding::Zstd { encoded_len } => ("zstd", *encoded_len, None),
                Encoding::Delta { encoded_len, ref_id } => ("delta", *encoded_len, Some(ref_id.clone())),
            };
            Some(BlobRecord {
                backend_id: s.backend_id.clone(),
                backend_key: s.backend_key.clone(),
                codec: Some(codec.into()),
                encoded_len: Some(encoded_len),
                ref_id,
                ..Default::default()
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    store.put_blobs(&rows, now_ms).await
}

/// Records a write's decision (see `ControlPlane::record_delta`). Without
/// `plan.delta` (the policy did not allow delta compression) only the
/// metric counts it: the object then counts as stored whole.
pub(crate) async fn record_decision(
    store: &dyn MetaStore,
    config: &DeltaConfig,
    plan: &WritePlan,
    decision: DeltaDecision,
    now_ms: i64,
) -> CpResult<()> {
    if !matches!(decision.decision.as_str(), "reference" | "delta" | "passthrough") {
        return Err(CpError::InvalidArgument(format!(
            "delta decision must be reference, delta or passthrough, not {:?}",
            decision.decision
        )));
    }
    DECISIONS.with_label_values(&[decision.decision.as_str()]).inc();
    let Some(dp) = &plan.delta else {
        return Ok(());
    };
    let record = DeltaDecisionRecord {
        object_id: plan.object_id.clone(),
        bucket: bucket_of_space(&dp.space)?.to_owned(),
        decision: decision.decision,
        reason: decision.reason,
        ref_id: decision.ref_id,
        logical_bytes: decision.logical_bytes,
        stored_bytes: decision.stored_bytes,
        created_ms: now_ms,
    };
    let policy = ReselectPolicy {
        window: config.reselect_window,
        threshold_permille: config.reselect_permille(),
    };
    if store.record_delta_decision(&record, Some(&dp.space), policy).await? {
        tracing::debug!(space = %dp.space, "deltaspace due a new reference");
    }
    Ok(())
}

/// The report, refreshing `strata_delta_bytes_saved`.
pub(crate) async fn report(store: &dyn MetaStore) -> CpResult<Vec<DeltaBucketReport>> {
    let report = store.delta_report().await?;
    for r in &report {
        let saved = i128::from(r.logical_bytes) - i128::from(r.stored_bytes);
        let saved = i64::try_from(saved).unwrap_or(if saved < 0 { i64::MIN } else { i64::MAX });
        BYTES_SAVED.with_label_values(&[r.bucket.as_str()]).set(saved);
    }
    Ok(report)
}
