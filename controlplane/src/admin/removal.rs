//! Backend removal and purge: dropping a backend's records from the catalog,
//! and (purge) deleting its bytes too, after a preview bound to an
//! HMAC-SHA256 confirmation token that expires.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use strata_backend::{BackendError, Backends};
use strata_core::{CleanupItem, ObjectRecord};
use strata_store::{BackendHoldings, BackendState, BackendStateRecord, MetaStore};

use crate::blobcopy::all_copies;

/// How long a purge token is valid.
pub const TOKEN_TTL_MS: i64 = 10 * 60 * 1000;

/// What a purge of one backend would delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgePreview {
    /// Objects whose every copy is on the backend: they are deleted.
    pub objects: u64,
    /// Blobs deleted from the backend (segments and queued blobs).
    pub blobs: u64,
    pub bytes: u64,
}

impl PurgePreview {
    pub fn of(h: &BackendHoldings) -> PurgePreview {
        PurgePreview {
            objects: h.sole_copy_objects,
            blobs: h.segments + h.queued,
            bytes: h.segment_bytes + h.queued_bytes,
        }
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn mac(secret: &str, backend: &str, p: &PurgePreview, expires_ms: i64) -> String {
    let msg = format!(
        "strata-purge-v1\n{backend}\n{}\n{}\n{}\n{expires_ms}",
        p.objects, p.blobs, p.bytes
    );
    hex::encode(hmac_sha256(secret.as_bytes(), msg.as_bytes()))
}

/// The confirmation token of a purge of `backend` with preview `p`:
/// `<backend>:<expiry ms>:<hex HMAC-SHA256 over both and the counts>`.
pub fn purge_token(secret: &str, backend: &str, p: &PurgePreview, now_ms: i64) -> String {
    let expires = now_ms + TOKEN_TTL_MS;
    format!("{backend}:{expires}:{}", mac(secret, backend, p, expires))
}

/// Checks `token` against a purge of `backend` whose preview is now `p`.
pub fn verify_purge_token(
    secret: &str,
    backend: &str,
    p: &PurgePreview,
    token: &str,
    now_ms: i64,
) -> Result<(), String> {
    let again = format!("run `strata backends purge {backend}` again for a fresh preview and token");
    let mut it = token.rsplitn(3, ':');
    let (Some(sig), Some(expires), Some(for_backend)) = (it.next(), it.next(), it.next()) else {
        return Err(format!("the confirmation token is malformed; {again}"));
    };
    if for_backend != backend {
        return Err(format!(
            "the confirmation token is for backend `{for_backend}`, not `{backend}`; {again}"
        ));
    }
    let expires: i64 = expires
        .parse()
        .map_err(|_| format!("the confirmation token is malformed; {again}"))?;
    let want = mac(secret, backend, p, expires);
    // Compare in constant time.
    let same = want.len() == sig.len() && want.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(format!(
            "the confirmation token does not match (wrong token, another cluster secret, or the backend's contents \
             changed since the preview); {again}"
        ));
    }
    if now_ms > expires {
        return Err(format!(
            "the confirmation token expired {} s ago; {again}",
            (now_ms - expires) / 1000
        ));
    }
    Ok(())
}

/// What a removal or purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removal {
    /// Copies dropped from objects that keep another copy.
    pub copies_dropped: u64,
    /// Objects deleted because their every copy was on the backend.
    pub objects_deleted: u64,
    /// Blobs deleted from the backend (purge only).
    pub blobs_deleted: u64,
    /// Cleanup-queue rows of the backend forgotten (their bytes abandoned on remove).
    pub rows_forgotten: u64,
}

/// Up to `limit` objects whose every copy touches `backend`, as `bucket/key`.
pub async fn sole_copy_examples(store: &dyn MetaStore, backend: &str, limit: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = (store.objects_on_backend(backend, &after, 256).await).map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.object_id.clone();
        for r in page.iter().filter(|r| sole_copy(r, backend)) {
            out.push(format!("{}/{}", r.bucket, r.key));
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn touches(copy: &[strata_core::Segment], backend: &str) -> bool {
    copy.iter().any(|s| s.backend_id == backend)
}

fn sole_copy(r: &ObjectRecord, backend: &str) -> bool {
    all_copies(r).all(|c| touches(c, backend))
}

/// Marks `backend` removed (placement stops using it), then drops every copy
/// it holds from the catalog: objects with another copy lose this one (by
/// compare-and-set), objects without one are deleted (the caller has the
/// operator's consent). With `backends` (purge), every blob of the backend
/// is deleted from it, including those already queued; without (remove),
/// its queued rows are forgotten and its bytes left where they are.
pub async fn remove_backend(
    store: &Arc<dyn MetaStore>,
    backend: &str,
    purge_from: Option<&Backends>,
    who: &str,
    now_ms: i64,
) -> Result<Removal, String> {
    let err = |e: strata_core::CpError| format!("metadata store: {e}");
    let holdings = store.backend_holdings(backend).await.map_err(err)?;
    if holdings.parts > 0 {
        return Err(format!(
            "{} parts ({} bytes) of open multipart uploads are on backend `{backend}`; complete or abort those \
             uploads (aws s3api list-multipart-uploads / abort-multipart-upload), then try again",
            holdings.parts, holdings.part_bytes
        ));
    }
    let target = match purge_from {
        Some(b) => Some(b.get(backend).cloned().ok_or_else(|| {
            format!("backend `{backend}` is not in the config, so its bytes cannot be deleted; add it back to purge it")
        })?),
        None => None,
    };
    let state = BackendStateRecord {
        backend_id: backend.to_owned(),
        state: BackendState::Removed,
        since_ms: now_ms,
        changed_by: who.to_owned(),
        reason: if purge_from.is_some() { "purged" } else { "removed" }.into(),
    };
    store.set_backend_state(&state, &[]).await.map_err(err)?;
    let mut done = Removal::default();
    let delete = |items: Vec<CleanupItem>| async {
        let mut acked = Vec::new();
        for it in items.into_iter().filter(|i| i.backend_id == backend) {
            if let Some(t) = &target {
                match t.delete(&it.backend_key).await {
                    Ok(()) | Err(BackendError::NotFound) => acked.push(it.id),
                    Err(e) => tracing::warn!(backend, key = %it.backend_key, error = %e, "purge: delete failed"),
                }
            }
        }
        acked
    };
    let mut after = String::new();
    loop {
        let page = store.objects_on_backend(backend, &after, 128).await.map_err(err)?;
        let Some(last) = page.last() else { break };
        after = last.object_id.clone();
        for rec in page {
            let queued = if sole_copy(&rec, backend) {
                let items = store.delete_object(&rec.bucket, &rec.key).await.map_err(err)?;
                done.objects_deleted += 1;
                tracing::info!(backend, bucket = %rec.bucket, key = %rec.key, "deleted an object whose only copies were on a removed backend");
                items
            } else {
                let mut items = Vec::new();
                // Highest copy first: dropping renumbers only the later copies.
                let copies: Vec<(usize, Vec<strata_core::Segment>)> =
                    (all_copies(&rec).enumerate()).map(|(i, c)| (i, c.to_vec())).collect();
                for (i, c) in copies.into_iter().rev().filter(|(_, c)| touches(c, backend)) {
                    let copy_no = u32::try_from(i).map_err(|_| "copy index out of range".to_owned())?;
                    if let Some(q) = store
                        .drop_copy(&rec.bucket, &rec.key, &rec.object_id, copy_no, &c)
                        .await
                        .map_err(err)?
                    {
                        done.copies_dropped += 1;
                        items.extend(q);
                    }
                }
                items
            };
            let acked = delete(queued).await;
            done.blobs_deleted += acked.len() as u64;
            store.ack_cleanup(&acked).await.map_err(err)?;
        }
    }
    loop {
        let rows = store.forget_backend(backend, 256).await.map_err(err)?;
        if rows.is_empty() {
            break;
        }
        done.rows_forgotten += rows.len() as u64;
        done.blobs_deleted += delete(rows).await.len() as u64;
    }
    tracing::info!(
        backend,
        purge = purge_from.is_some(),
        copies_dropped = done.copies_dropped,
        objects_deleted = done.objects_deleted,
        blobs_deleted = done.blobs_deleted,
        "backend removed"
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let got = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(got),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_bind_backend_counts_and_expiry() {
        let p = PurgePreview {
            objects: 2,
            blobs: 5,
            bytes: 900,
        };
        let t = purge_token("s".repeat(32).as_str(), "disk-2", &p, 1_000);
        let secret = "s".repeat(32);
        assert!(verify_purge_token(&secret, "disk-2", &p, &t, 2_000).is_ok());
        let e = verify_purge_token(&secret, "disk-3", &p, &t, 2_000).unwrap_err();
        assert!(e.contains("is for backend `disk-2`, not `disk-3`"), "{e}");
        let changed = PurgePreview { bytes: 901, ..p };
        assert!(
            verify_purge_token(&secret, "disk-2", &changed, &t, 2_000)
                .unwrap_err()
                .contains("does not match")
        );
        assert!(verify_purge_token("x".repeat(32).as_str(), "disk-2", &p, &t, 2_000).is_err());
        let e = verify_purge_token(&secret, "disk-2", &p, &t, 1_000 + TOKEN_TTL_MS + 5_000).unwrap_err();
        assert!(e.contains("expired 5 s ago"), "{e}");
        assert!(
            verify_purge_token(&secret, "disk-2", &p, "garbage", 2_000)
                .unwrap_err()
                .contains("malformed")
        );
        let forged = format!("disk-2:{}:{}", 1_000 + TOKEN_TTL_MS * 10, "0".repeat(64));
        assert!(verify_purge_token(&secret, "disk-2", &p, &forged, 2_000).is_err());
    }
}
