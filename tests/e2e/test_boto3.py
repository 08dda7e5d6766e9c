"""boto3 against Strata, with boto3's default checksum behaviour."""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import os
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from harness import (
    ADMIN,
    boto3_client,
    checksum_b64,
    client_error,
    force_trailer_checksums,
    md5_hex,
    multipart_etag,
    unique_bucket,
)

MiB = 1 << 20


def body_of(resp) -> bytes:
    return resp["Body"].read()


def list_all_keys(s3, bucket, **kw) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# ---------------------------------------------------------------------------
# buckets
# ---------------------------------------------------------------------------

def test_bucket_lifecycle(s3):
    name = unique_bucket("life")
    r = s3.create_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    loc = s3.get_bucket_location(Bucket=name)
    assert loc.get("LocationConstraint") in (None, "", "us-east-1")

    s3.put_object(Bucket=name, Key="x", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert client_error(e) == (409, "BucketNotEmpty")
    assert s3.get_object(Bucket=name, Key="x")["Body"].read() == b"x"

    s3.delete_object(Bucket=name, Key="x")
    r = s3.delete_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert client_error(e)[0] == 404
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_missing_bucket_and_key_errors(s3, bucket):
    missing = unique_bucket("nope")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=missing, Key="k")
    assert client_error(e) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=missing)
    assert client_error(e) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=missing)
    assert client_error(e) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert client_error(e) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert client_error(e)[0] == 404
    # Deleting a missing key is a success in S3.
    assert s3.delete_object(Bucket=bucket, Key="missing")["ResponseMetadata"]["HTTPStatusCode"] == 204


# ---------------------------------------------------------------------------
# objects: metadata and headers
# ---------------------------------------------------------------------------

def test_put_get_head_metadata_and_headers(s3, bucket):
    body = gzip.compress(b"hello strata " * 100)
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    meta = {"color": "blue", "multi-word": "Mixed Case Value"}
    put = s3.put_object(
        Bucket=bucket, Key="doc.txt", Body=body, Metadata=meta,
        ContentType="text/x-strata; charset=utf-8",
        ContentEncoding="gzip",
        ContentDisposition='attachment; filename="report.txt"',
        CacheControl="max-age=60, private",
        ContentLanguage="en-GB",
        Expires=expires,
    )
    assert put["ETag"] == f'"{md5_hex(body)}"'

    for resp in (s3.get_object(Bucket=bucket, Key="doc.txt"), s3.head_object(Bucket=bucket, Key="doc.txt")):
        h = resp["ResponseMetadata"]["HTTPHeaders"]
        assert resp["ContentLength"] == len(body)
        assert resp["ETag"] == put["ETag"]
        assert resp["ContentType"] == "text/x-strata; charset=utf-8"
        assert resp["ContentEncoding"] == "gzip"
        assert resp["ContentDisposition"] == 'attachment; filename="report.txt"'
        assert resp["CacheControl"] == "max-age=60, private"
        assert resp["ContentLanguage"] == "en-GB"
        assert email.utils.parsedate_to_datetime(h["expires"]) == expires
        assert resp["Metadata"] == meta
        assert isinstance(resp["LastModified"], dt.datetime)
        assert h.get("x-amz-request-id")
    assert body_of(s3.get_object(Bucket=bucket, Key="doc.txt")) == body


def test_default_content_type_and_overwrite(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"a": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!")
    r = s3.get_object(Bucket=bucket, Key="k")
    assert body_of(r) == b"second!"
    assert r["Metadata"] == {}  # an overwrite replaces metadata
    # S3 always returns a Content-Type (binary/octet-stream when none was given)
    assert r.get("ContentType"), r["ResponseMetadata"]["HTTPHeaders"]


@pytest.mark.parametrize("size", [0, 1, 1000, 5 * MiB + 7])
def test_single_put_etag_is_md5(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{md5_hex(data)}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == size
    assert body_of(got) == data


def test_empty_file_put_then_nonempty_put_on_same_connection(server, bucket, tmp_path):
    """boto3/awscli send `Expect: 100-continue` for file bodies, also for empty files. If the server
    answers a 0-byte PUT with a final response without sending `100 Continue` first, botocore
    keeps a stale status line on the pooled connection and the *next* PUT on it stalls until the
    read timeout (boto/botocore#3755). `aws s3 sync` of a tree with an empty file hits this."""
    s3 = boto3_client(server.endpoint, ADMIN, max_pool_connections=1, read_timeout=10)
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.write_bytes(b"")
    full.write_bytes(b"not empty" * 100)
    for i in range(2):
        with open(empty, "rb") as f:
            s3.put_object(Bucket=bucket, Key=f"empty-{i}", Body=f)
        t = time.monotonic()
        with open(full, "rb") as f:
            s3.put_object(Bucket=bucket, Key=f"full-{i}", Body=f)
        took = time.monotonic() - t
        assert took < 5, f"PUT after an empty-file PUT stalled {took:.1f}s (no 100 Continue for 0-byte body?)"
    assert body_of(s3.get_object(Bucket=bucket, Key="full-1")) == b"not empty" * 100
    assert body_of(s3.get_object(Bucket=bucket, Key="empty-1")) == b""


# ---------------------------------------------------------------------------
# ranges and conditionals
# ---------------------------------------------------------------------------

def test_range_reads(s3, bucket):
    data = bytes(range(256)) * 4 + b"tail-end!!"  # 1034 bytes
    n = len(data)
    s3.put_object(Bucket=bucket, Key="r", Body=data)

    cases = {
        "bytes=0-9": (0, 9),
        "bytes=10-10": (10, 10),
        "bytes=-10": (n - 10, n - 1),
        f"bytes={n - 7}-": (n - 7, n - 1),
        "bytes=1000-999999": (1000, n - 1),
        f"bytes=-{n + 50}": (0, n - 1),
    }
    for rng, (a, b) in cases.items():
        r = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert r["ContentRange"] == f"bytes {a}-{b}/{n}", rng
        assert r["ContentLength"] == b - a + 1, rng
        assert body_of(r) == data[a:b + 1], rng

    for rng in (f"bytes={n}-", f"bytes={n + 100}-{n + 200}"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert client_error(e) == (416, "InvalidRange"), rng


def test_conditional_requests(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    head = s3.head_object(Bucket=bucket, Key="c")
    etag, lm = head["ETag"], head["LastModified"]
    before, after = lm - dt.timedelta(days=1), lm + dt.timedelta(seconds=1)
    # S3 ignores If-Modified-Since dates in the future, so let `after` become the past.
    wait = (after - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if wait > -0.5:
        time.sleep(wait + 0.6)

    assert body_of(s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)) == b"conditional"
    assert body_of(s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"0123456789abcdef0123456789abcdef"')) \
        == b"conditional"
    assert body_of(s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=before)) == b"conditional"
    assert body_of(s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=after)) == b"conditional"

    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert client_error(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert client_error(e)[0] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=after)
    assert client_error(e)[0] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=before)
    assert client_error(e) == (412, "PreconditionFailed")

    # HEAD honours the same conditions.
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert client_error(e)[0] == 412
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert client_error(e)[0] == 304

    # S3's documented precedence: If-Match true + If-Unmodified-Since false -> 200;
    # If-None-Match false + If-Modified-Since true -> 304.
    assert body_of(s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=before)) \
        == b"conditional"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag, IfModifiedSince=before)
    assert client_error(e)[0] == 304


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"override me", ContentType="text/plain")
    r = s3.get_object(
        Bucket=bucket, Key="o",
        ResponseContentType="application/x-override",
        ResponseContentDisposition='attachment; filename="o.bin"',
        ResponseCacheControl="no-store",
        ResponseContentEncoding="identity",
        ResponseContentLanguage="fr",
    )
    assert body_of(r) == b"override me"
    assert r["ContentType"] == "application/x-override"
    assert r["ContentDisposition"] == 'attachment; filename="o.bin"'
    assert r["CacheControl"] == "no-store"
    assert r["ContentEncoding"] == "identity"
    assert r["ContentLanguage"] == "fr"
    # The stored object is unchanged.
    assert s3.head_object(Bucket=bucket, Key="o")["ContentType"] == "text/plain"


# ---------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------

LIST_KEYS = ["a/1", "a/2", "a/b/3", "a/b/4", "b/5", "c", "d/6", "e"]


@pytest.fixture
def listing_bucket(s3, bucket):
    for k in LIST_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_list_v2_prefix_delimiter(s3, listing_bucket):
    b = listing_bucket
    r = s3.list_objects_v2(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == LIST_KEYS
    assert r["KeyCount"] == len(LIST_KEYS)
    assert r["IsTruncated"] is False
    sizes = {o["Key"]: o["Size"] for o in r["Contents"]}
    assert sizes == {k: len(k) for k in LIST_KEYS}
    assert all(o["ETag"] == f'"{md5_hex(o["Key"].encode())}"' for o in r["Contents"])

    r = s3.list_objects_v2(Bucket=b, Prefix="a/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2", "a/b/3", "a/b/4"]

    r = s3.list_objects_v2(Bucket=b, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"]
    assert r["KeyCount"] == 3

    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [o["Key"] for o in r.get("Contents", [])] == ["c", "e"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/", "d/"]

    r = s3.list_objects_v2(Bucket=b, Prefix="zzz")
    assert r.get("Contents", []) == [] and r["KeyCount"] == 0

    r = s3.list_objects_v2(Bucket=b, StartAfter="b/5")
    assert [o["Key"] for o in r["Contents"]] == ["c", "d/6", "e"]


def test_list_v2_paging(s3, listing_bucket):
    b = listing_bucket
    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, MaxKeys=3, **kw)
        pages += 1
        page = [o["Key"] for o in r.get("Contents", [])]
        assert len(page) <= 3 and r["KeyCount"] == len(page)
        seen += page
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
        assert token
        assert pages < 10
    assert seen == LIST_KEYS
    assert pages == 3

    # Delimiter + MaxKeys: common prefixes count towards MaxKeys and are not repeated across pages.
    entries, token = [], None
    for _ in range(10):
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, Delimiter="/", MaxKeys=2, **kw)
        page = [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        assert 0 < len(page) <= 2
        entries += page
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert sorted(entries) == ["a/", "b/", "c", "d/", "e"]
    assert len(entries) == len(set(entries))

    # StartAfter combined with paging
    r = s3.list_objects_v2(Bucket=b, StartAfter="a/b/3", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == ["a/b/4", "b/5"]
    r2 = s3.list_objects_v2(Bucket=b, StartAfter="a/b/3", MaxKeys=2, ContinuationToken=r["NextContinuationToken"])
    assert [o["Key"] for o in r2["Contents"]] == ["c", "d/6"]


def test_list_v1_marker_paging(s3, listing_bucket):
    b = listing_bucket
    r = s3.list_objects(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == LIST_KEYS
    r = s3.list_objects(Bucket=b, Marker="a/b/4")
    assert [o["Key"] for o in r["Contents"]] == ["b/5", "c", "d/6", "e"]
    r = s3.list_objects(Bucket=b, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"]

    seen, marker = [], ""
    for _ in range(10):
        r = s3.list_objects(Bucket=b, MaxKeys=3, Marker=marker)
        page = [o["Key"] for o in r.get("Contents", [])]
        seen += page
        if not r["IsTruncated"]:
            break
        marker = r.get("NextMarker") or page[-1]
    assert seen == LIST_KEYS

    # With a delimiter S3 returns NextMarker when truncated.
    r = s3.list_objects(Bucket=b, Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"] is True
    assert r.get("NextMarker") in ("a/", "b/")


def test_list_encoding_type_url(s3, bucket):
    keys = ["sp ace/ü+1", "plain", "pct%/x"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    # Passing EncodingType explicitly makes botocore return the raw (encoded) values.
    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    assert r.get("EncodingType") == "url"
    raw = [o["Key"] for o in r["Contents"]]
    for k in raw:
        assert " " not in k and all(ord(ch) < 128 for ch in k), raw
    assert sorted(urllib.parse.unquote_plus(k) for k in raw) == sorted(keys)
    r = s3.list_objects(Bucket=bucket, EncodingType="url", Prefix="sp ace/", Delimiter="/")
    assert urllib.parse.unquote_plus(r["Prefix"]) == "sp ace/"
    assert [urllib.parse.unquote_plus(o["Key"]) for o in r["Contents"]] == ["sp ace/ü+1"]


# ---------------------------------------------------------------------------
# copy
# ---------------------------------------------------------------------------

def test_copy_across_buckets_metadata_directive(s3, bucket):
    dst = unique_bucket("copy-dst")
    s3.create_bucket(Bucket=dst)
    data = os.urandom(70_000)
    s3.put_object(Bucket=bucket, Key="src/ü k+ey", Body=data, Metadata={"m1": "v1", "shared": "orig"},
                  ContentType="application/x-src", CacheControl="max-age=5")
    src = {"Bucket": bucket, "Key": "src/ü k+ey"}

    c = s3.copy_object(Bucket=dst, Key="copied", CopySource=src)
    assert c["CopyObjectResult"]["ETag"] == f'"{md5_hex(data)}"'
    h = s3.head_object(Bucket=dst, Key="copied")
    assert h["Metadata"] == {"m1": "v1", "shared": "orig"}
    assert h["ContentType"] == "application/x-src"
    assert h["CacheControl"] == "max-age=5"
    assert body_of(s3.get_object(Bucket=dst, Key="copied")) == data

    s3.copy_object(Bucket=dst, Key="replaced", CopySource=src, MetadataDirective="REPLACE",
                   Metadata={"m2": "v2", "shared": "new"}, ContentType="application/x-new")
    h = s3.head_object(Bucket=dst, Key="replaced")
    assert h["Metadata"] == {"m2": "v2", "shared": "new"}
    assert h["ContentType"] == "application/x-new"
    assert body_of(s3.get_object(Bucket=dst, Key="replaced")) == data

    # The source is untouched.
    h = s3.head_object(Bucket=bucket, Key="src/ü k+ey")
    assert h["Metadata"] == {"m1": "v1", "shared": "orig"}

    # In-place metadata update via REPLACE.
    s3.copy_object(Bucket=bucket, Key="src/ü k+ey", CopySource=src, MetadataDirective="REPLACE",
                   Metadata={"only": "this"})
    h = s3.head_object(Bucket=bucket, Key="src/ü k+ey")
    assert h["Metadata"] == {"only": "this"}
    assert body_of(s3.get_object(Bucket=bucket, Key="src/ü k+ey")) == data


def test_copy_onto_itself_without_changes_is_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"self")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert client_error(e) == (400, "InvalidRequest")


def test_copy_missing_source(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"})
    assert client_error(e) == (404, "NoSuchKey")


# ---------------------------------------------------------------------------
# multipart
# ---------------------------------------------------------------------------

def test_multipart_full_cycle(s3, bucket):
    copy_src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="copy-source", Body=copy_src)
    p1 = os.urandom(5 * MiB)
    p2 = copy_src[MiB:6 * MiB]  # via UploadPartCopy with a range
    p3 = os.urandom(100_000)
    key = "mp/obj"

    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-mp",
                                    Metadata={"mp": "yes"})
    uid = up["UploadId"]
    assert uid

    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert (key, uid) in [(u["Key"], u["UploadId"]) for u in uploads]

    # A part may be re-uploaded; the last upload wins.
    s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=os.urandom(5 * MiB))
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    assert e1 == f'"{md5_hex(p1)}"'
    c2 = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "copy-source"},
                             CopySourceRange=f"bytes={MiB}-{6 * MiB - 1}")
    e2 = c2["CopyPartResult"]["ETag"]
    assert e2 == f'"{md5_hex(p2)}"'
    e3 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=3, Body=p3)["ETag"]

    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(p1), e1), (2, len(p2), e2), (3, len(p3), e3)]

    # list_parts paging
    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in lp["Parts"]] == [1, 2] and lp["IsTruncated"] is True
    lp2 = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, PartNumberMarker=lp["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in lp2["Parts"]] == [3]

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                                   {"PartNumber": 3, "ETag": e3}]})
    assert done["ETag"] == multipart_etag([p1, p2, p3])

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ETag"] == done["ETag"]
    assert got["ContentLength"] == len(p1) + len(p2) + len(p3)
    assert got["ContentType"] == "application/x-mp"
    assert got["Metadata"] == {"mp": "yes"}
    assert hashlib.sha256(body_of(got)).hexdigest() == hashlib.sha256(p1 + p2 + p3).hexdigest()
    r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")
    assert body_of(r) == (p1 + p2)[5 * MiB - 3:5 * MiB + 3]

    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uid not in [u["UploadId"] for u in uploads]


def test_multipart_abort(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=1, Body=b"x" * 1000)
    r = s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="ab", UploadId=uid)
    assert client_error(e) == (404, "NoSuchUpload")
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=2, Body=b"y")
    assert client_error(e) == (404, "NoSuchUpload")
    assert uid not in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="ab")
    assert client_error(e)[0] == 404


def test_multipart_single_small_part(s3, bucket):
    # The last (here: only) part may be smaller than 5 MiB.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="one")["UploadId"]
    e = s3.upload_part(Bucket=bucket, Key="one", UploadId=uid, PartNumber=1, Body=b"tiny")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="one", UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert done["ETag"] == multipart_etag([b"tiny"])
    assert body_of(s3.get_object(Bucket=bucket, Key="one")) == b"tiny"


# ---------------------------------------------------------------------------
# delete_objects
# ---------------------------------------------------------------------------

def test_delete_objects_verbose_and_quiet(s3, bucket):
    for k in ("v1", "v2", "v3", "q1", "q2", "keep"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "v1"}, {"Key": "v2"}, {"Key": "v3"},
                                                              {"Key": "never-existed"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["never-existed", "v1", "v2", "v3"]
    assert not r.get("Errors")

    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}], "Quiet": True})
    assert not r.get("Deleted")
    assert not r.get("Errors")

    assert list_all_keys(s3, bucket) == ["keep"]


# ---------------------------------------------------------------------------
# flexible checksums
# ---------------------------------------------------------------------------

ALGORITHMS = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]


@pytest.fixture(scope="module")
def trailer_s3(server):
    c = boto3_client(server.endpoint, ADMIN)
    force_trailer_checksums(c)
    return c


@pytest.mark.parametrize("transport", ["header", "trailer"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_with_checksum_algorithm(s3, trailer_s3, bucket, algorithm, transport):
    """transport=header: what boto3 sends over plain http (x-amz-checksum-* header, signed payload).
    transport=trailer: what boto3 sends over https (aws-chunked body, STREAMING-UNSIGNED-PAYLOAD-TRAILER,
    checksum in the trailer)."""
    client = s3 if transport == "header" else trailer_s3
    data = os.urandom(300_001)
    key = f"ck/{algorithm}/{transport}"
    expected = checksum_b64(algorithm, data)
    put = client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=algorithm)
    assert put["ETag"] == f'"{md5_hex(data)}"'
    assert put.get(f"Checksum{algorithm}") == expected, put["ResponseMetadata"]["HTTPHeaders"]

    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["ContentLength"] == len(data)
    assert body_of(got) == data  # botocore also validates a returned checksum header while reading
    if f"Checksum{algorithm}" in got:
        assert got[f"Checksum{algorithm}"] == expected


@pytest.mark.parametrize("transport", ["header", "trailer"])
def test_default_checksum_multipart_parts(s3, trailer_s3, bucket, transport):
    client = s3 if transport == "header" else trailer_s3
    p1, p2 = os.urandom(5 * MiB), os.urandom(12345)
    uid = client.create_multipart_upload(Bucket=bucket, Key="mpck")["UploadId"]
    e1 = client.upload_part(Bucket=bucket, Key="mpck", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = client.upload_part(Bucket=bucket, Key="mpck", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    assert (e1, e2) == (f'"{md5_hex(p1)}"', f'"{md5_hex(p2)}"')
    client.complete_multipart_upload(Bucket=bucket, Key="mpck", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert body_of(s3.get_object(Bucket=bucket, Key="mpck")) == p1 + p2


# ---------------------------------------------------------------------------
# odd keys
# ---------------------------------------------------------------------------

ODD_KEYS = ["../a", "a//b", "/lead", "with space", "ünï/cødé", "100%", "a+b",
            "a/./b", "q?x=1&y", "hash#frag", "tilde~", "semi;colon", "emoji-🙂", "trailing/", "x" * 1024]


def test_odd_keys_round_trip_and_sort_order(s3, bucket):
    for k in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in ODD_KEYS:
        assert body_of(s3.get_object(Bucket=bucket, Key=k)) == k.encode(), k
        assert s3.head_object(Bucket=bucket, Key=k)["ContentLength"] == len(k.encode()), k

    expected = sorted(ODD_KEYS, key=lambda k: k.encode("utf-8"))
    assert list_all_keys(s3, bucket) == expected
    v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert v1 == expected
    assert list_all_keys(s3, bucket, PaginationConfig={"PageSize": 4}) == expected
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="a")["Contents"]] == \
        [k for k in expected if k.startswith("a")]

    # copy with an odd source key
    s3.copy_object(Bucket=bucket, Key="copy of ünï 100%", CopySource={"Bucket": bucket, "Key": "ünï/cødé"})
    assert body_of(s3.get_object(Bucket=bucket, Key="copy of ünï 100%")) == "ünï/cødé".encode()

    for k in ODD_KEYS + ["copy of ünï 100%"]:
        s3.delete_object(Bucket=bucket, Key=k)
    assert list_all_keys(s3, bucket) == []


# ---------------------------------------------------------------------------
# restart durability
# ---------------------------------------------------------------------------

def test_multipart_survives_restart(fresh_server):
    srv = fresh_server
    s3 = boto3_client(srv.endpoint)
    b = unique_bucket("restart")
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="plain", Body=b"still here")
    p1, p2 = os.urandom(5 * MiB), os.urandom(777_777)
    uid = s3.create_multipart_upload(Bucket=b, Key="big", Metadata={"k": "v"})["UploadId"]
    e1 = s3.upload_part(Bucket=b, Key="big", UploadId=uid, PartNumber=1, Body=p1)["ETag"]

    srv.restart()
    s3 = boto3_client(srv.endpoint)

    assert body_of(s3.get_object(Bucket=b, Key="plain")) == b"still here"
    assert uid in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])]
    parts = s3.list_parts(Bucket=b, Key="big", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, e1, len(p1))]
    e2 = s3.upload_part(Bucket=b, Key="big", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    done = s3.complete_multipart_upload(Bucket=b, Key="big", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert done["ETag"] == multipart_etag([p1, p2])
    got = s3.get_object(Bucket=b, Key="big")
    assert got["Metadata"] == {"k": "v"}
    assert body_of(got) == p1 + p2

    # and the completed object survives another restart
    srv.restart()
    s3 = boto3_client(srv.endpoint)
    assert hashlib.sha256(body_of(s3.get_object(Bucket=b, Key="big"))).digest() == hashlib.sha256(p1 + p2).digest()
