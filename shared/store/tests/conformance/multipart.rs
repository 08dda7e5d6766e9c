use md5::{Digest, Md5};
use strata_core::{CpError, ListUploadsQuery, PartInfo, WriteCondition};
use strata_store::MetaStore;

use crate::support::{MIB, commit_part, keys_of, md5_hex, part, put, upload};

fn expected_etag(parts: &[&PartInfo]) -> String {
    let mut concat = Vec::new();
    for p in parts {
        concat.extend(hex::decode(&p.etag).unwrap());
    }
    format!("{}-{}", hex::encode(Md5::digest(&concat)), parts.len())
}

/// A bucket "b" with upload "u1" for key "movie" holding parts 1..=4.
async fn setup(s: &dyn MetaStore) -> Vec<PartInfo> {
    s.create_bucket("b", "admin", 1).await.unwrap();
    s.create_upload(&upload("b", "movie", "u1")).await.unwrap();
    let parts = vec![
        part("u1", 1, "one", 5 * MIB),
        part("u1", 2, "two", 6 * MIB),
        part("u1", 3, "three", 17),
        part("u1", 4, "four", 5 * MIB),
    ];
    for p in &parts {
        assert!(commit_part(s, "b", p, "u1").await.is_empty());
    }
    parts
}

pub async fn complete_happy_path(s: &dyn MetaStore) {
    let parts = setup(s).await;
    let old = put(s, "b", "movie", "old", 9).await;
    let list = [
        (1, parts[0].etag.clone()),
        (2, format!("\"{}\"", parts[1].etag.to_uppercase())),
        (4, parts[3].etag.clone()),
    ];
    let (rec, cleanup) = s
        .complete_upload("b", "u1", &list, "obj-final", 777, &WriteCondition::NONE)
        .await
        .unwrap();
    assert_eq!(rec.bucket, "b");
    assert_eq!(rec.key, "movie");
    assert_eq!(rec.object_id, "obj-final");
    assert_eq!(rec.meta.etag, expected_etag(&[&parts[0], &parts[1], &parts[3]]));
    assert!(rec.meta.etag.ends_with("-3"));
    assert_eq!(rec.meta.size, 16 * MIB);
    assert_eq!(rec.meta.parts_count, 3);
    assert_eq!(rec.meta.last_modified_unix_ms, 777);
    assert_eq!(rec.meta.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(rec.meta.cache_control.as_deref(), Some("no-cache"));
    assert_eq!(rec.meta.user_metadata.get("origin").map(String::as_str), Some("camera"));
    let segs: Vec<_> = [0, 1, 3].iter().map(|&i| parts[i].segment.clone()).collect();
    assert_eq!(rec.segments, segs);
    assert_eq!(s.get_object("b", "movie").await.unwrap(), rec);

    // The replaced object and the unused part 3 are queued.
    let mut expected = vec![
        old.segments[0].backend_key.clone(),
        parts[2].segment.backend_key.clone(),
    ];
    expected.sort();
    assert_eq!(keys_of(&cleanup), expected);
    assert_eq!(s.pending_cleanup(100).await.unwrap(), cleanup);

    assert_eq!(s.get_upload("b", "u1").await, Err(CpError::NoSuchUpload));
    assert_eq!(s.list_parts("b", "u1", 0, 10).await.unwrap_err(), CpError::NoSuchUpload);
    // A repeated completion (an SDK retry after a lost reply) answers with
    // the object it made, and changes nothing.
    let again = s.complete_upload("b", "u1", &list, "obj-again", 778, &WriteCondition::NONE);
    assert_eq!(again.await.unwrap(), (rec.clone(), Vec::new()));
    assert_eq!(s.get_object("b", "movie").await.unwrap(), rec);
    // In another bucket it is still unknown.
    s.create_bucket("c", "admin", 1).await.unwrap();
    let elsewhere = s.complete_upload("c", "u1", &list, "obj-x", 779, &WriteCondition::NONE);
    assert_eq!(elsewhere.await.unwrap_err(), CpError::NoSuchUpload);
    // The bucket is empty once the object goes: no upload rows linger. Once
    // the object it made is gone, the upload is unknown again.
    s.delete_object("b", "movie").await.unwrap();
    let gone = s.complete_upload("b", "u1", &list, "obj-again", 780, &WriteCondition::NONE);
    assert_eq!(gone.await.unwrap_err(), CpError::NoSuchUpload);
    s.delete_bucket("b").await.unwrap();
}

pub async fn complete_rejects_bad_part_lists(s: &dyn MetaStore) {
    let parts = setup(s).await;
    let e = |n: usize| parts[n - 1].etag.clone();
    let cases: Vec<(Vec<(u32, String)>, &str)> = vec![
        (vec![], "InvalidPart"),
        (vec![(2, e(2)), (1, e(1))], "InvalidPartOrder"),
        (vec![(1, e(1)), (1, e(1))], "InvalidPartOrder"),
        (vec![(1, e(1)), (5, e(1))], "InvalidPart"),
        (vec![(1, e(1)), (2, md5_hex(b"other"))], "InvalidPart"),
        (vec![(1, e(1)), (2, String::new())], "InvalidPart"),
        (vec![(3, e(3)), (4, e(4))], "EntityTooSmall"),
        (vec![(1, e(1)), (3, e(3)), (4, e(4))], "EntityTooSmall"),
    ];
    for (list, code) in cases {
        let err = s
            .complete_upload("b", "u1", &list, "obj-x", 1, &WriteCondition::NONE)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{list:?}");
    }
    assert_eq!(
        s.complete_upload("b", "nope", &[(1, e(1))], "obj-x", 1, &WriteCondition::NONE)
            .await
            .unwrap_err(),
        CpError::NoSuchUpload
    );
    s.create_bucket("other", "admin", 1).await.unwrap();
    assert_eq!(
        s.complete_upload("other", "u1", &[(1, e(1))], "obj-x", 1, &WriteCondition::NONE)
            .await
            .unwrap_err(),
        CpError::NoSuchUpload
    );
    // Nothing changed: the upload still has its four parts, no object, no cleanup.
    let (_, page) = s.list_parts("b", "u1", 0, 100).await.unwrap();
    assert_eq!(page.parts, parts);
    assert_eq!(s.get_object("b", "movie").await, Err(CpError::NoSuchKey));
    assert!(s.pending_cleanup(10).await.unwrap().is_empty());
    // A single small part is fine, as is a small last part.
    let (rec, cleanup) = s
        .complete_upload("b", "u1", &[(2, e(2)), (3, e(3))], "obj-y", 2, &WriteCondition::NONE)
        .await
        .unwrap();
    assert_eq!(rec.meta.size, 6 * MIB + 17);
    assert_eq!(keys_of(&cleanup).len(), 2);
}

pub async fn part_replacement_and_list_parts(s: &dyn MetaStore) {
    let parts = setup(s).await;
    let (info, page) = s.list_parts("b", "u1", 0, 2).await.unwrap();
    assert_eq!(info, upload("b", "movie", "u1"));
    assert_eq!(page.parts, parts[..2]);
    assert!(page.is_truncated);
    assert_eq!(page.next_part_number_marker, 2);
    let (_, page) = s.list_parts("b", "u1", 2, 2).await.unwrap();
    assert_eq!(page.parts, parts[2..]);
    assert!(!page.is_truncated);
    assert_eq!(page.next_part_number_marker, 4);
    let (_, page) = s.list_parts("b", "u1", 4, 2).await.unwrap();
    assert!(page.parts.is_empty() && !page.is_truncated);

    // Re-uploading part 2 replaces it and queues the old bytes.
    let new2 = part("u1", 2, "two-again", 7 * MIB);
    let cleanup = commit_part(s, "b", &new2, "u1").await;
    assert_eq!(keys_of(&cleanup), [parts[1].segment.backend_key.clone()]);
    let (_, page) = s.list_parts("b", "u1", 1, 1).await.unwrap();
    assert_eq!(page.parts, std::slice::from_ref(&new2));
    // The old ETag no longer completes.
    let err = s
        .complete_upload(
            "b",
            "u1",
            &[(1, parts[0].etag.clone()), (2, parts[1].etag.clone())],
            "o",
            1,
            &WriteCondition::NONE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidPart");
    let (rec, _) = s
        .complete_upload(
            "b",
            "u1",
            &[(1, parts[0].etag.clone()), (2, new2.etag.clone())],
            "o",
            1,
            &WriteCondition::NONE,
        )
        .await
        .unwrap();
    assert_eq!(rec.meta.size, 12 * MIB);
}

pub async fn abort_queues_parts(s: &dyn MetaStore) {
    let parts = setup(s).await;
    let cleanup = s.abort_upload("b", "u1").await.unwrap();
    let mut expected: Vec<String> = parts.iter().map(|p| p.segment.backend_key.clone()).collect();
    expected.sort();
    assert_eq!(keys_of(&cleanup), expected);
    assert_eq!(s.get_upload("b", "u1").await, Err(CpError::NoSuchUpload));
    assert_eq!(s.abort_upload("b", "u1").await, Err(CpError::NoSuchUpload));
    s.delete_bucket("b").await.unwrap();
}

fn uq(prefix: &str, key_marker: &str, upload_id_marker: &str, max: u32) -> ListUploadsQuery {
    ListUploadsQuery {
        bucket: "b".into(),
        prefix: prefix.into(),
        key_marker: key_marker.into(),
        upload_id_marker: upload_id_marker.into(),
        max_uploads: max,
    }
}

pub async fn list_uploads_ordering_and_markers(s: &dyn MetaStore) {
    assert_eq!(s.list_uploads(&uq("", "", "", 10)).await, Err(CpError::NoSuchBucket));
    s.create_bucket("b", "admin", 1).await.unwrap();
    s.create_bucket("c", "admin", 1).await.unwrap();
    s.create_upload(&upload("c", "a", "elsewhere")).await.unwrap();
    let all = [
        ("a", "u2"),
        ("a", "u3"),
        ("a/x", "u1"),
        ("a_x", "u0"),
        ("b", "u4"),
        ("b", "u9"),
    ];
    for (key, id) in [all[4], all[0], all[3], all[5], all[2], all[1]] {
        s.create_upload(&upload("b", key, id)).await.unwrap();
    }
    let ids = |p: strata_core::ListUploadsPage| -> Vec<(String, String)> {
        p.uploads.into_iter().map(|u| (u.key, u.upload_id)).collect()
    };
    let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(k, u)| (k.to_string(), u.to_string())).collect()
    };
    let page = s.list_uploads(&uq("", "", "", 100)).await.unwrap();
    assert!(!page.is_truncated);
    assert_eq!(page.uploads[0], upload("b", "a", "u2"));
    assert_eq!(ids(page), owned(&all));

    let page = s.list_uploads(&uq("", "", "", 2)).await.unwrap();
    assert!(page.is_truncated);
    assert_eq!(ids(page), owned(&all[..2]));
    let page = s.list_uploads(&uq("", "a", "u2", 2)).await.unwrap();
    assert!(page.is_truncated);
    assert_eq!(ids(page), owned(&all[1..3]));
    let page = s.list_uploads(&uq("", "a", "", 100)).await.unwrap();
    assert_eq!(ids(page), owned(&all[2..]));
    let page = s.list_uploads(&uq("", "b", "u4", 100)).await.unwrap();
    assert_eq!(ids(page), owned(&all[5..]));
    let page = s.list_uploads(&uq("", "b", "u9", 100)).await.unwrap();
    assert!(page.uploads.is_empty() && !page.is_truncated);
    let page = s.list_uploads(&uq("a", "", "", 100)).await.unwrap();
    assert_eq!(ids(page), owned(&all[..4]));
    let page = s.list_uploads(&uq("a_", "", "", 100)).await.unwrap();
    assert_eq!(ids(page), owned(&all[3..4]));
    let page = s.list_uploads(&uq("a", "", "", 4)).await.unwrap();
    assert!(!page.is_truncated);
    let page = s.list_uploads(&uq("", "", "", 0)).await.unwrap();
    assert!(page.uploads.is_empty() && !page.is_truncated);
}

pub async fn missing_upload_and_bucket_errors(s: &dyn MetaStore) {
    assert_eq!(
        s.create_upload(&upload("nope", "k", "u1")).await,
        Err(CpError::NoSuchBucket)
    );
    s.create_bucket("b", "admin", 1).await.unwrap();
    s.create_bucket("c", "admin", 1).await.unwrap();
    assert_eq!(s.get_upload("b", "u1").await, Err(CpError::NoSuchUpload));
    let p = part("u1", 1, "one", 1);
    assert_eq!(s.commit_part("i", "b", "u1", &p).await, Err(CpError::NoSuchUpload));
    s.create_upload(&upload("b", "k", "u1")).await.unwrap();
    assert_eq!(s.get_upload("b", "u1").await.unwrap(), upload("b", "k", "u1"));
    assert_eq!(s.get_upload("c", "u1").await, Err(CpError::NoSuchUpload));
    assert_eq!(s.commit_part("i", "c", "u1", &p).await, Err(CpError::NoSuchUpload));
    assert_eq!(s.list_parts("c", "u1", 0, 10).await.unwrap_err(), CpError::NoSuchUpload);
    assert_eq!(s.abort_upload("c", "u1").await, Err(CpError::NoSuchUpload));
    // A part whose intent was reaped is refused and leaves nothing behind.
    assert!(matches!(
        s.commit_part("i", "b", "u1", &p).await,
        Err(CpError::Unavailable(_))
    ));
    let (_, page) = s.list_parts("b", "u1", 0, 10).await.unwrap();
    assert!(page.parts.is_empty());
}

/// CompleteMultipartUpload's If-None-Match and If-Match are checked in its
/// transaction; a failed condition leaves the upload to retry or abort.
pub async fn complete_checks_its_condition(s: &dyn MetaStore) {
    let parts = setup(s).await;
    let list = [(1, parts[0].etag.clone()), (3, parts[2].etag.clone())];
    let old = put(s, "b", "movie", "old", 9).await;
    let create_only = WriteCondition {
        if_match: None,
        if_none_match: true,
    };
    let refused = s.complete_upload("b", "u1", &list, "obj-1", 1, &create_only);
    assert_eq!(refused.await.unwrap_err(), CpError::PreconditionFailed);
    let wrong = WriteCondition {
        if_match: Some("\"0123\"".into()),
        if_none_match: false,
    };
    let refused = s.complete_upload("b", "u1", &list, "obj-1", 1, &wrong);
    assert_eq!(refused.await.unwrap_err(), CpError::PreconditionFailed);
    assert_eq!(s.get_object("b", "movie").await.unwrap(), old, "nothing changed");
    assert_eq!(s.list_parts("b", "u1", 0, 10).await.unwrap().1.parts.len(), 4);

    let right = WriteCondition {
        if_match: Some(format!("\"{}\"", old.meta.etag)),
        if_none_match: false,
    };
    let (rec, _) = s.complete_upload("b", "u1", &list, "obj-1", 1, &right).await.unwrap();
    assert_eq!(s.get_object("b", "movie").await.unwrap(), rec);
}
