use strata_core::CpError;
use strata_store::{MetaStore, StoredCredential};

use crate::support::{put, upload};

pub async fn credentials_round_trip(s: &dyn MetaStore) {
    assert_eq!(s.count_credentials().await.unwrap(), 0);
    assert!(s.get_credential("AKIA1").await.unwrap().is_none());
    let c1 = StoredCredential {
        access_key_id: "AKIA1".into(),
        secret_access_key: "secret/1+x".into(),
        unrestricted: true,
    };
    let c2 = StoredCredential {
        access_key_id: "AKIA2".into(),
        secret_access_key: "s2".into(),
        unrestricted: false,
    };
    s.insert_credential(&c1).await.unwrap();
    s.insert_credential(&c2).await.unwrap();
    assert_eq!(s.count_credentials().await.unwrap(), 2);
    assert!(s.get_credential("AKIA1").await.unwrap() == Some(c1.clone()));
    assert!(s.get_credential("AKIA2").await.unwrap() == Some(c2));
    assert!(s.get_credential("akia1").await.unwrap().is_none());
    assert!(s.insert_credential(&c1).await.is_err());
    assert_eq!(s.count_credentials().await.unwrap(), 2);
}

pub async fn bucket_lifecycle(s: &dyn MetaStore) {
    assert!(s.list_buckets().await.unwrap().is_empty());
    assert_eq!(s.get_bucket("photos").await, Err(CpError::NoSuchBucket));
    s.create_bucket("photos", "admin", 100).await.unwrap();
    s.create_bucket("archive", "admin", 200).await.unwrap();
    s.create_bucket("zeta", "admin", 300).await.unwrap();
    assert_eq!(
        s.create_bucket("photos", "other", 999).await,
        Err(CpError::BucketAlreadyOwnedByYou)
    );
    let b = s.get_bucket("photos").await.unwrap();
    assert_eq!((b.name.as_str(), b.created_unix_ms), ("photos", 100));
    let names: Vec<String> = s.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["archive", "photos", "zeta"]);

    s.delete_bucket("photos").await.unwrap();
    assert_eq!(s.get_bucket("photos").await, Err(CpError::NoSuchBucket));
    assert_eq!(s.delete_bucket("photos").await, Err(CpError::NoSuchBucket));
    assert_eq!(s.list_buckets().await.unwrap().len(), 2);
    // The name can be reused.
    s.create_bucket("photos", "admin", 400).await.unwrap();
    assert_eq!(s.get_bucket("photos").await.unwrap().created_unix_ms, 400);
}

pub async fn delete_bucket_refuses_objects_and_uploads(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "t1", 3).await;
    assert_eq!(s.delete_bucket("b").await, Err(CpError::BucketNotEmpty));
    s.delete_object("b", "k").await.unwrap();

    s.create_upload(&upload("b", "big", "u1")).await.unwrap();
    assert_eq!(s.delete_bucket("b").await, Err(CpError::BucketNotEmpty));
    s.abort_upload("b", "u1").await.unwrap();

    s.delete_bucket("b").await.unwrap();
    assert_eq!(s.get_bucket("b").await, Err(CpError::NoSuchBucket));
}
