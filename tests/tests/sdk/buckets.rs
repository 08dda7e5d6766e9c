//! Buckets: create, list, head, delete; DeleteObjects.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use strata_tests::Strata;

use super::{client, put, status_and_code, with_bucket};

both_modes!(create_list_head_bucket, delete_objects_batch, delete_non_empty_bucket);

async fn create_list_head_bucket(s: &Strata) {
    let c = client(s);
    for b in ["alpha", "beta-2"] {
        c.create_bucket()
            .bucket(b)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create {b}: {e:?}"));
        c.head_bucket()
            .bucket(b)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {b}: {e:?}"));
    }
    let listed = c.list_buckets().send().await.expect("list_buckets");
    let mut names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta-2"]);

    let (status, code) = status_and_code(c.create_bucket().bucket("alpha").send().await);
    assert_eq!((status, code.as_str()), (409, "BucketAlreadyOwnedByYou"));

    let err = c
        .head_bucket()
        .bucket("nope")
        .send()
        .await
        .expect_err("head of a missing bucket");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    assert!(err.into_service_error().is_not_found(), "HeadBucket NotFound");

    let (status, code) = status_and_code(c.list_objects_v2().bucket("nope").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchBucket"));
}

async fn delete_objects_batch(s: &Strata) {
    let c = with_bucket(s, "batch").await;
    for k in ["a", "b", "c/d", "e", "f"] {
        put(&c, "batch", k, k.as_bytes().to_vec()).await;
    }
    let ids = ["a", "c/d", "f", "never-existed"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().expect("key set"))
        .collect::<Vec<_>>();
    let delete = Delete::builder().set_objects(Some(ids)).build().expect("objects set");
    let out = c
        .delete_objects()
        .bucket("batch")
        .delete(delete)
        .send()
        .await
        .expect("delete_objects");
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    // S3 reports a missing key as deleted too.
    assert_eq!(deleted, ["a", "c/d", "f", "never-existed"]);
    assert!(out.errors().is_empty(), "errors: {:?}", out.errors());

    let left = c.list_objects_v2().bucket("batch").send().await.expect("list");
    let keys: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b", "e"]);

    // Quiet mode reports only errors.
    let ids = vec![ObjectIdentifier::builder().key("b").build().expect("key set")];
    let delete = Delete::builder()
        .set_objects(Some(ids))
        .quiet(true)
        .build()
        .expect("objects set");
    let out = c
        .delete_objects()
        .bucket("batch")
        .delete(delete)
        .send()
        .await
        .expect("quiet delete");
    assert!(out.deleted().is_empty() && out.errors().is_empty(), "{out:?}");
    let (status, code) = status_and_code(c.head_object().bucket("batch").key("b").send().await);
    assert_eq!(status, 404, "b deleted ({code})");
}

async fn delete_non_empty_bucket(s: &Strata) {
    let c = with_bucket(s, "full").await;
    put(&c, "full", "only", b"x".to_vec()).await;

    let (status, code) = status_and_code(c.delete_bucket().bucket("full").send().await);
    assert_eq!((status, code.as_str()), (409, "BucketNotEmpty"));
    c.head_bucket().bucket("full").send().await.expect("bucket still there");

    c.delete_object()
        .bucket("full")
        .key("only")
        .send()
        .await
        .expect("delete_object");
    c.delete_bucket()
        .bucket("full")
        .send()
        .await
        .expect("delete the now empty bucket");
    let err = c.head_bucket().bucket("full").send().await.expect_err("bucket gone");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));

    let (status, code) = status_and_code(c.delete_bucket().bucket("full").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchBucket"));
}
