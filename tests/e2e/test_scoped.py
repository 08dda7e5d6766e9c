"""A credential scoped to one bucket (AKSCOPED01 -> scoped-a) cannot reach anything else."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

import s3raw
from harness import SCOPED, SCOPED_BUCKET, client_error, unique_bucket

DENIED = (403, "AccessDenied")


@pytest.fixture(scope="module")
def world(server, s3):
    """The scoped bucket (created by the admin) and a foreign bucket with an object and an upload."""
    try:
        s3.create_bucket(Bucket=SCOPED_BUCKET)
    except ClientError as e:  # already created by an earlier test of this module's server
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    foreign = unique_bucket("foreign")
    s3.create_bucket(Bucket=foreign)
    s3.put_object(Bucket=foreign, Key="secret.txt", Body=b"top secret")
    uid = s3.create_multipart_upload(Bucket=foreign, Key="foreign-upload")["UploadId"]
    return {"own": SCOPED_BUCKET, "foreign": foreign, "upload": uid}


def denied(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return client_error(e)


def test_scoped_can_use_own_bucket(scoped_s3, world):
    own = world["own"]
    scoped_s3.put_object(Bucket=own, Key="mine.txt", Body=b"mine")
    assert scoped_s3.get_object(Bucket=own, Key="mine.txt")["Body"].read() == b"mine"
    assert scoped_s3.head_object(Bucket=own, Key="mine.txt")["ContentLength"] == 4
    assert "mine.txt" in [o["Key"] for o in scoped_s3.list_objects_v2(Bucket=own).get("Contents", [])]
    assert scoped_s3.head_bucket(Bucket=own)["ResponseMetadata"]["HTTPStatusCode"] == 200
    scoped_s3.copy_object(Bucket=own, Key="mine-copy.txt", CopySource={"Bucket": own, "Key": "mine.txt"})
    uid = scoped_s3.create_multipart_upload(Bucket=own, Key="mine-mp")["UploadId"]
    e1 = scoped_s3.upload_part(Bucket=own, Key="mine-mp", UploadId=uid, PartNumber=1, Body=b"part")["ETag"]
    scoped_s3.complete_multipart_upload(Bucket=own, Key="mine-mp", UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert scoped_s3.get_object(Bucket=own, Key="mine-mp")["Body"].read() == b"part"
    r = scoped_s3.delete_objects(Bucket=own, Delete={"Objects": [{"Key": "mine-copy.txt"}, {"Key": "mine-mp"}]})
    assert not r.get("Errors")
    scoped_s3.delete_object(Bucket=own, Key="mine.txt")


def test_scoped_list_buckets_shows_only_its_bucket(s3, scoped_s3, world):
    names = [b["Name"] for b in scoped_s3.list_buckets()["Buckets"]]
    assert names == [world["own"]]
    assert world["foreign"] in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_scoped_cannot_create_buckets(s3, scoped_s3, world):
    name = unique_bucket("scoped-new")
    assert denied(scoped_s3.create_bucket, Bucket=name) == DENIED
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_scoped_cannot_read_foreign_bucket(scoped_s3, world):
    f = world["foreign"]
    assert denied(scoped_s3.list_objects_v2, Bucket=f) == DENIED
    assert denied(scoped_s3.list_objects, Bucket=f) == DENIED
    assert denied(scoped_s3.get_object, Bucket=f, Key="secret.txt") == DENIED
    assert denied(scoped_s3.head_object, Bucket=f, Key="secret.txt")[0] == 403
    assert denied(scoped_s3.head_bucket, Bucket=f)[0] == 403
    assert denied(scoped_s3.get_bucket_location, Bucket=f) == DENIED
    assert denied(scoped_s3.list_multipart_uploads, Bucket=f) == DENIED
    # a key that does not exist is still AccessDenied (no existence oracle)
    assert denied(scoped_s3.get_object, Bucket=f, Key="no-such-key") == DENIED


def test_scoped_nonexistent_bucket_is_denied(scoped_s3):
    assert denied(scoped_s3.list_objects_v2, Bucket=unique_bucket("ghost")) == DENIED


def test_scoped_cannot_write_foreign_bucket(s3, scoped_s3, world):
    f = world["foreign"]
    assert denied(scoped_s3.put_object, Bucket=f, Key="planted.txt", Body=b"x") == DENIED
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=f, Key="planted.txt")
    assert client_error(e)[0] == 404

    assert denied(scoped_s3.delete_object, Bucket=f, Key="secret.txt") == DENIED
    try:
        r = scoped_s3.delete_objects(Bucket=f, Delete={"Objects": [{"Key": "secret.txt"}]})
        # S3 may answer 200 with per-key errors; then every key must be AccessDenied
        assert not r.get("Deleted"), r
        assert [e["Code"] for e in r.get("Errors", [])] == ["AccessDenied"], r
    except ClientError as e:
        assert (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]) == DENIED
    assert denied(scoped_s3.delete_bucket, Bucket=f) == DENIED
    assert s3.get_object(Bucket=f, Key="secret.txt")["Body"].read() == b"top secret"


def test_scoped_cannot_use_foreign_multipart(s3, scoped_s3, world):
    f, uid = world["foreign"], world["upload"]
    assert denied(scoped_s3.create_multipart_upload, Bucket=f, Key="mp") == DENIED
    assert denied(scoped_s3.upload_part, Bucket=f, Key="foreign-upload", UploadId=uid, PartNumber=1,
                  Body=b"intruder") == DENIED
    assert denied(scoped_s3.list_parts, Bucket=f, Key="foreign-upload", UploadId=uid) == DENIED
    assert denied(scoped_s3.complete_multipart_upload, Bucket=f, Key="foreign-upload", UploadId=uid,
                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0"'}]}) == DENIED
    assert denied(scoped_s3.abort_multipart_upload, Bucket=f, Key="foreign-upload", UploadId=uid) == DENIED
    # the admin's upload is intact and has no parts from the intruder
    assert s3.list_parts(Bucket=f, Key="foreign-upload", UploadId=uid).get("Parts", []) == []
    assert uid in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=f).get("Uploads", [])]


def test_scoped_foreign_upload_id_in_own_bucket(s3, scoped_s3, world):
    """An upload id from a foreign bucket must not be usable by addressing it through the own bucket."""
    own, uid = world["own"], world["upload"]
    code = denied(scoped_s3.upload_part, Bucket=own, Key="foreign-upload", UploadId=uid, PartNumber=1,
                  Body=b"intruder")
    assert code in (DENIED, (404, "NoSuchUpload"))
    assert s3.list_parts(Bucket=world["foreign"], Key="foreign-upload", UploadId=uid).get("Parts", []) == []


def test_scoped_copy_with_foreign_source_or_destination(s3, scoped_s3, world):
    own, f = world["own"], world["foreign"]
    assert denied(scoped_s3.copy_object, Bucket=own, Key="stolen",
                  CopySource={"Bucket": f, "Key": "secret.txt"}) == DENIED
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=own, Key="stolen")
    assert client_error(e)[0] == 404

    scoped_s3.put_object(Bucket=own, Key="src", Body=b"own data")
    assert denied(scoped_s3.copy_object, Bucket=f, Key="pushed",
                  CopySource={"Bucket": own, "Key": "src"}) == DENIED
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=f, Key="pushed")
    assert client_error(e)[0] == 404

    uid = scoped_s3.create_multipart_upload(Bucket=own, Key="upc")["UploadId"]
    assert denied(scoped_s3.upload_part_copy, Bucket=own, Key="upc", UploadId=uid, PartNumber=1,
                  CopySource={"Bucket": f, "Key": "secret.txt"}) == DENIED
    assert scoped_s3.list_parts(Bucket=own, Key="upc", UploadId=uid).get("Parts", []) == []
    scoped_s3.abort_multipart_upload(Bucket=own, Key="upc", UploadId=uid)


def test_scoped_presigned_url_for_foreign_bucket(server, world):
    url = s3raw.presign(server.hostport, "GET", s3raw.key_path(world["foreign"], "secret.txt"), creds=SCOPED)
    r = s3raw.get_url(url)
    s3raw.assert_s3_error(r, 403, "AccessDenied")
