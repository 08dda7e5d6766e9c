//! Backend removal and purge: dropping a backend's records from the catalog
//! after a preview bound to an HMAC-SHA256 confirmation token that expires
//! (purge), or after checking that no object loses its last copy (remove).
//!
//! The control plane does the catalog part; deleting a purged backend's
//! bytes is the caller's (the CLI's), which takes the backend's queued blobs
//! with `Admin::take_backend_blobs`. The control plane could reach the
//! backends itself, but a local-disk backend's directory is on the data
//! plane's host, not necessarily on the leader's, and a purge may run far
//! longer than a gRPC call should; the catalog part is short and fenced.

use sha2::{Digest, Sha256};
use strata_core::{
    BackendState, BackendStateRecord, CleanupItem, CpError, CpResult, ObjectRecord, PurgePlan, PurgePreview, Removal,
    Segment,
};
use strata_store::MetaStore;

use crate::{ControlPlaneService, now_ms};

/// How long a purge token is valid.
pub const TOKEN_TTL_MS: i64 = 10 * 60 * 1000;

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
fn purge_token(secret: &str, backend: &str, p: &PurgePreview, now_ms: i64) -> String {
    let expires = now_ms + TOKEN_TTL_MS;
    format!("{backend}:{expires}:{}", mac(secret, backend, p, expires))
}

/// Checks `token` against a purge of `backend` whose preview is now `p`.
fn verify_purge_token(secret: &str, backend: &str, p: &PurgePreview, token: &str, now_ms: i64) -> Result<(), String> {
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

/// Up to `limit` objects whose every copy touches `backend`, as `bucket/key`.
async fn sole_copy_examples(store: &dyn MetaStore, backend: &str, limit: usize) -> CpResult<Vec<String>> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.objects_on_backend(backend, &after, 256).await?;
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

/// Every complete copy of an object: the first, then the further ones.
fn all_copies(rec: &ObjectRecord) -> impl Iterator<Item = &[Segment]> {
    std::iter::once(rec.segments.as_slice()).chain(rec.copies.iter().map(Vec::as_slice))
}

fn touches(copy: &[Segment], backend: &str) -> bool {
    copy.iter().any(|s| s.backend_id == backend)
}

fn sole_copy(r: &ObjectRecord, backend: &str) -> bool {
    all_copies(r).all(|c| touches(c, backend))
}

fn invalid(msg: String) -> CpError {
    CpError::InvalidArgument(msg)
}

fn secret(cp: &ControlPlaneService) -> CpResult<&str> {
    cp.purge_secret.as_deref().ok_or_else(|| {
        invalid(
            "purge tokens are signed with cluster.secret; set it (at least 32 characters, e.g. `openssl rand -hex 32`)"
                .to_owned(),
        )
    })
}

/// `Admin::remove_backend`.
pub(super) async fn remove(cp: &ControlPlaneService, backend: &str, by: &str, force: bool) -> CpResult<Removal> {
    let h = cp.store.backend_holdings(backend).await?;
    if h.sole_copy_objects > 0 && !force {
        let examples = sole_copy_examples(&*cp.store, backend, 10).await?;
        return Err(invalid(format!(
            "{} objects would lose their last copy if backend `{backend}` were removed (e.g. {}); drain it first \
             (`strata backends drain {backend}`), or pass --force to delete those objects",
            h.sole_copy_objects,
            examples.join(", ")
        )));
    }
    drop_records(&*cp.store, backend, false, by).await
}

/// `Admin::purge_preview`.
pub(super) async fn preview(cp: &ControlPlaneService, backend: &str) -> CpResult<PurgePlan> {
    let secret = secret(cp)?;
    let h = cp.store.backend_holdings(backend).await?;
    let preview = PurgePreview::of(&h);
    Ok(PurgePlan {
        token: purge_token(secret, backend, &preview, now_ms()),
        preview,
        objects_holding: h.objects,
    })
}

/// `Admin::purge_backend`: the catalog part of a purge.
pub(super) async fn purge(cp: &ControlPlaneService, backend: &str, by: &str, token: &str) -> CpResult<Removal> {
    let secret = secret(cp)?;
    let h = cp.store.backend_holdings(backend).await?;
    verify_purge_token(secret, backend, &PurgePreview::of(&h), token, now_ms()).map_err(invalid)?;
    if !cp.placement.backends().iter().any(|b| b.id == backend) {
        return Err(invalid(format!(
            "backend `{backend}` is not in the config, so its bytes cannot be deleted; add it back to purge it"
        )));
    }
    drop_records(&*cp.store, backend, true, by).await
}

/// `Admin::take_backend_blobs`: forgets up to `limit` queued blobs of a
/// removed backend and hands them over for deletion.
pub(super) async fn take_blobs(cp: &ControlPlaneService, backend: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
    let state = cp.store.backend_states().await?;
    if !state
        .iter()
        .any(|s| s.backend_id == backend && s.state == BackendState::Removed)
    {
        return Err(invalid(format!("backend `{backend}` is not removed; purge it first")));
    }
    cp.store.forget_backend(backend, limit.clamp(1, 1024)).await
}

/// Marks `backend` removed (placement stops using it), then drops every copy
/// it holds from the catalog: objects with another copy lose this one (by
/// compare-and-set), objects without one are deleted (the caller has the
/// operator's consent). For a purge (`keep_queued`), the backend's blobs
/// stay queued for the caller to delete; for a removal, its queued rows are
/// forgotten and its bytes left where they are.
async fn drop_records(store: &dyn MetaStore, backend: &str, keep_queued: bool, by: &str) -> CpResult<Removal> {
    let holdings = store.backend_holdings(backend).await?;
    if holdings.parts > 0 {
        return Err(invalid(format!(
            "{} parts ({} bytes) of open multipart uploads are on backend `{backend}`; complete or abort those \
             uploads (aws s3api list-multipart-uploads / abort-multipart-upload), then try again",
            holdings.parts, holdings.part_bytes
        )));
    }
    let state = BackendStateRecord {
        backend_id: backend.to_owned(),
        state: BackendState::Removed,
        since_ms: now_ms(),
        changed_by: by.to_owned(),
        reason: if keep_queued { "purged" } else { "removed" }.into(),
    };
    store.set_backend_state(&state, &[]).await?;
    let mut done = Removal::default();
    let mut after = String::new();
    loop {
        let page = store.objects_on_backend(backend, &after, 128).await?;
        let Some(last) = page.last() else { break };
        after = last.object_id.clone();
        for rec in page {
            if sole_copy(&rec, backend) {
                store.delete_object(&rec.bucket, &rec.key).await?;
                done.objects_deleted += 1;
                tracing::info!(backend, bucket = %rec.bucket, key = %rec.key, "deleted an object whose only copies were on a removed backend");
                continue;
            }
            // Highest copy first: dropping renumbers only the later copies.
            let copies: Vec<(usize, Vec<Segment>)> =
                (all_copies(&rec).enumerate()).map(|(i, c)| (i, c.to_vec())).collect();
            for (i, c) in copies.into_iter().rev().filter(|(_, c)| touches(c, backend)) {
                let copy_no = u32::try_from(i).map_err(|_| CpError::Internal("copy index out of range".into()))?;
                if store
                    .drop_copy(&rec.bucket, &rec.key, &rec.object_id, copy_no, &c)
                    .await?
                    .is_some()
                {
                    done.copies_dropped += 1;
                }
            }
        }
    }
    // What the drops queued on other backends is the reaper's; the backend's
    // own rows are forgotten (remove) or left for the caller (purge).
    if !keep_queued {
        loop {
            let rows = store.forget_backend(backend, 256).await?;
            if rows.is_empty() {
                break;
            }
            done.rows_forgotten += rows.len() as u64;
        }
    }
    tracing::info!(
        backend,
        purge = keep_queued,
        by,
        copies_dropped = done.copies_dropped,
        objects_deleted = done.objects_deleted,
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
