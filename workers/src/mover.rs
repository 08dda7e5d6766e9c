//! Moving one copy of an object to another backend by compare-and-set, for
//! the drain and rebalance jobs.

use strata_backend::Backends;
use strata_backend::sealed::{get_raw, stored_len};
use strata_core::{ControlPlane, CpError, ObjectRecord, Segment, WritePlan};
use strata_store::MetaStore;

use crate::blobcopy::{
    all_copies, copy_of, discard, is_customer_copy, is_encoded_copy, record_digest, tags_for, write_copy,
};

/// What became of one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// A new copy on another backend replaced it; its old blob is queued.
    Swapped,
    /// No backend had room, and it was dropped because another copy exists.
    Dropped,
    /// No backend had room (and it is the last copy, or dropping was not asked for).
    NoRoom,
    /// The object was replaced or deleted meanwhile, or this copy cannot be
    /// moved by a worker (a multi-segment encoded or customer-sealed copy).
    Skipped,
}

/// Moves copy `index` of `rec` (a record from `locate`, with keys and
/// digests) to a backend the control plane chooses, excluding every backend
/// that holds a copy and those in `avoid`. A plain copy is re-written from
/// its verified plaintext (sealed as the policy says); an encoded or
/// customer-sealed single segment is copied as stored with its blob facts.
/// `replace_copy` swaps the new blob in only if the object and the copy are
/// unchanged, queueing the old blob for cleanup (or the new one when it lost).
/// With `drop_if_no_room`, a copy no backend has room for is dropped when
/// the object has another copy (never the last).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn move_copy(
    store: &dyn MetaStore,
    cp: &dyn ControlPlane,
    backends: &Backends,
    rec: &ObjectRecord,
    index: usize,
    avoid: &[String],
    drop_if_no_room: bool,
    now_ms: i64,
) -> Result<Moved, String> {
    let Some(copy) = copy_of(rec, index).map(<[Segment]>::to_vec) else {
        return Ok(Moved::Skipped);
    };
    let plain = !is_encoded_copy(&copy) && !is_customer_copy(&copy);
    if copy.is_empty() || (!plain && copy.len() != 1) {
        tracing::debug!(object = %rec.object_id, copy = index, "a multi-segment encoded or SSE-C copy is not moved");
        return Ok(Moved::Skipped);
    }
    // Backends holding another copy stay out (two copies on one backend are
    // no redundancy); those holding only other segments of this copy do
    // not: the copy is rewritten as one blob, so a multipart copy spread
    // over every backend can still move.
    let mut exclude: Vec<String> = (all_copies(rec).enumerate())
        .filter(|(i, _)| *i != index)
        .flat_map(|(_, c)| c.iter().map(|s| s.backend_id.clone()))
        .collect();
    exclude.extend(avoid.iter().cloned());
    exclude.sort();
    exclude.dedup();
    let plan = match cp
        .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &exclude)
        .await
    {
        Ok(p) => p,
        Err(CpError::NoCapacity(why)) => {
            if drop_if_no_room && !rec.copies.is_empty() {
                let copy_no = u32::try_from(index).map_err(|_| "copy index out of range".to_owned())?;
                let dropped = (store
                    .drop_copy(&rec.bucket, &rec.key, &rec.object_id, copy_no, &copy)
                    .await)
                    .map_err(|e| format!("drop copy {index} of {}: {e}", rec.object_id))?;
                tracing::info!(object = %rec.object_id, copy = index, %why, dropped = dropped.is_some(),
                    "no backend has room for the copy; dropped it (another copy exists)");
                return Ok(if dropped.is_some() {
                    Moved::Dropped
                } else {
                    Moved::Skipped
                });
            }
            tracing::debug!(object = %rec.object_id, %why, "no backend has room to move a copy to");
            return Ok(Moved::NoRoom);
        }
        Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(Moved::Skipped),
        Err(e) => return Err(format!("plan a move: {e}")),
    };
    let (new, plan) = if plain {
        match write_copy(cp, backends, rec, index, &plan).await {
            Ok(seg) => (seg, plan),
            Err(e) => {
                // The copy being moved may be unreadable: try another plain one.
                let other = (0..=rec.copies.len()).find(|&i| {
                    i != index
                        && copy_of(rec, i).is_some_and(|c| !c.is_empty() && !is_encoded_copy(c) && !is_customer_copy(c))
                });
                let Some(other) = other else { return Err(e) };
                let retry = (cp
                    .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &exclude)
                    .await)
                    .map_err(|e2| format!("{e}; plan again: {e2}"))?;
                let seg = (write_copy(cp, backends, rec, other, &retry).await)
                    .map_err(|e2| format!("{e}; from copy {other}: {e2}"))?;
                (seg, retry)
            }
        }
    } else {
        match raw_copy(store, backends, rec, &copy[0], &plan).await {
            Ok(Some(seg)) => (seg, plan),
            Ok(None) => {
                discard(cp, backends, &plan).await;
                return Ok(Moved::Skipped);
            }
            Err(e) => {
                discard(cp, backends, &plan).await;
                return Err(e);
            }
        }
    };
    finish(store, cp, backends, rec, index, &copy, new, &plan, now_ms).await
}

/// Records the new blob's digest and swaps it in for copy `index`.
#[allow(clippy::too_many_arguments)]
async fn finish(
    store: &dyn MetaStore,
    cp: &dyn ControlPlane,
    backends: &Backends,
    rec: &ObjectRecord,
    index: usize,
    old: &[Segment],
    new: Segment,
    plan: &WritePlan,
    now_ms: i64,
) -> Result<Moved, String> {
    if let Err(e) = record_digest(store, &new, now_ms).await {
        discard(cp, backends, plan).await;
        return Err(e);
    }
    let copy_no = u32::try_from(index).map_err(|_| "copy index out of range".to_owned())?;
    let to = new.backend_id.clone();
    let swapped = store
        .replace_copy(
            &rec.bucket,
            &rec.key,
            &rec.object_id,
            copy_no,
            old,
            &[new],
            Some(&plan.intent_id),
            now_ms,
        )
        .await
        .map_err(|e| format!("swap in the moved copy of {}: {e}", rec.object_id))?;
    let from: Vec<&str> = old.iter().map(|s| s.backend_id.as_str()).collect();
    tracing::info!(
        bucket = %rec.bucket, key = %rec.key, object = %rec.object_id, copy = index, from = ?from, %to,
        bytes = rec.meta.size, swapped = swapped.is_some(), "moved a copy",
    );
    Ok(if swapped.is_some() {
        Moved::Swapped
    } else {
        Moved::Skipped
    })
}

/// Copies one encoded or customer-sealed segment as stored to `plan`'s
/// blob and records the source's blob facts (digest, key, codec, reference)
/// for it. `None` when the target would be sealed under a new key but the
/// source is plaintext (its stored bytes cannot serve as that blob).
pub(crate) async fn raw_copy(
    store: &dyn MetaStore,
    backends: &Backends,
    rec: &ObjectRecord,
    seg: &Segment,
    plan: &WritePlan,
) -> Result<Option<Segment>, String> {
    if plan.cipher.is_some() && seg.cipher.is_none() {
        tracing::warn!(object = %rec.object_id, to = %plan.backend_id,
            "an encoded plaintext blob cannot move to a backend that seals new blobs; left in place");
        return Ok(None);
    }
    let from =
        (backends.get(&seg.backend_id)).ok_or_else(|| format!("backend {} is not configured", seg.backend_id))?;
    let target =
        (backends.get(&plan.backend_id)).ok_or_else(|| format!("backend {} is not configured", plan.backend_id))?;
    let facts = (store
        .get_blobs(&[(seg.backend_id.clone(), seg.backend_key.clone())])
        .await)
        .map_err(|e| format!("read the facts of {}: {e}", seg.backend_key))?;
    let body = get_raw(from.as_ref(), seg)
        .await
        .map_err(|e| format!("read {}: {e}", seg.backend_key))?;
    let tags = tags_for(
        rec,
        &WritePlan {
            cipher: seg.cipher.clone(),
            ..plan.clone()
        },
    );
    let stored = (target.put(&plan.backend_key, &tags, body).await)
        .map_err(|e| format!("copy {} to {}: {e}", rec.object_id, plan.backend_id))?;
    let want = stored_len(seg);
    if stored != want {
        return Err(format!("raw copy of {} stored {stored} of {want} bytes", rec.object_id));
    }
    if let Some(mut row) = facts.into_iter().next() {
        row.backend_id = plan.backend_id.clone();
        row.backend_key = plan.backend_key.clone();
        (store.put_blobs(&[row], 0).await).map_err(|e| format!("record the facts of the copy: {e}"))?;
    }
    Ok(Some(Segment {
        backend_id: plan.backend_id.clone(),
        backend_key: plan.backend_key.clone(),
        ..seg.clone()
    }))
}
