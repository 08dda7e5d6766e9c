"""Write failover: a PUT or UploadPart whose backend is down moves to the next
eligible backend, replaying the body from a bounded spool file. Three s3s-fs
backends with pack routing, so fs0 is always the first choice; the bytes are
checked on the backends themselves."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import Strata, boto3_client, client_error, force_trailer_checksums, http_get, unique_bucket
from multi import S3sFs

KiB, MiB = 1 << 10, 1 << 20


class Deployment:
    def __init__(self, tmp: Path, failover_yaml: str):
        self.spool = tmp / "spool"
        self.fs = [S3sFs(tmp / f"fs{i}") for i in range(3)]
        for f in self.fs:
            f.start()
        backends = "\n".join(f.yaml(f"fs{i}") for i, f in enumerate(self.fs))
        extra = ("placement: {routing_strategy: pack}\n"
                 f"resilience: {{failover: {{spool_dir: '{self.spool}', {failover_yaml}}}}}\n")
        self.strata = Strata("all", tmp / "strata", backends_yaml=backends, extra_yaml=extra).start()
        self.s3 = boto3_client(self.strata.endpoint)
        self.bucket = unique_bucket("fo")
        self.s3.create_bucket(Bucket=self.bucket)

    def metric(self, name: str) -> float:
        status, _, body = http_get(f"{self.strata.endpoint}/metrics")
        assert status == 200
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))

    def spool_files(self) -> list[str]:
        return sorted(p.name for p in self.spool.iterdir()) if self.spool.exists() else []

    def close(self) -> None:
        try:
            self.strata.stop_and_check()
        finally:
            for f in self.fs:
                f.stop()


@pytest.fixture
def deploy(tmp_path):
    made: list[Deployment] = []

    def make(failover_yaml: str = "enabled: true") -> Deployment:
        d = Deployment(tmp_path, failover_yaml)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def sizes_on(fs: S3sFs) -> list[int]:
    return sorted(fs.objects().values())


def test_put_fails_over_to_the_next_backend(deploy):
    d = deploy()
    d.fs[0].kill()
    trailer = boto3_client(d.strata.endpoint)
    force_trailer_checksums(trailer)
    bodies = {"1k": os.urandom(KiB), "1m": os.urandom(MiB), "10m": os.urandom(10 * MiB)}
    for name, data in bodies.items():
        for client, suffix in ((d.s3, ""), (trailer, "-chunked")):
            r = client.put_object(Bucket=d.bucket, Key=name + suffix, Body=data)
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
            assert r["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    for name, data in bodies.items():
        for suffix in ("", "-chunked"):
            got = d.s3.get_object(Bucket=d.bucket, Key=name + suffix)["Body"].read()
            assert got == data, name + suffix
    # CopyObject fails over too, re-reading its source.
    d.s3.copy_object(Bucket=d.bucket, Key="1m-copy", CopySource={"Bucket": d.bucket, "Key": "1m"})
    assert d.s3.get_object(Bucket=d.bucket, Key="1m-copy")["Body"].read() == bodies["1m"]
    expected = sorted([len(b) for b in bodies.values() for _ in range(2)] + [MiB])
    assert sizes_on(d.fs[1]) == expected
    assert d.fs[2].objects() == {}
    # Once fs0's breaker opens, placement may skip it without a failover.
    assert d.metric("strata_write_failovers_total") > 0
    assert d.spool_files() == []
    d.fs[0].start()
    assert d.fs[0].objects() == {}


def test_upload_part_fails_over(deploy):
    d = deploy()
    up = d.s3.create_multipart_upload(Bucket=d.bucket, Key="mp")["UploadId"]
    p1, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB + 7), os.urandom(3 * KiB)
    e1 = d.s3.upload_part(Bucket=d.bucket, Key="mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    assert sizes_on(d.fs[0]) == [len(p1)]
    d.fs[0].kill()
    e2 = d.s3.upload_part(Bucket=d.bucket, Key="mp", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    assert sizes_on(d.fs[1]) == [len(p2)]
    # UploadPartCopy fails over as well (its source landed on fs1 too).
    d.s3.put_object(Bucket=d.bucket, Key="src", Body=p3)
    e3 = d.s3.upload_part_copy(Bucket=d.bucket, Key="mp", UploadId=up, PartNumber=3,
                               CopySource={"Bucket": d.bucket, "Key": "src"})["CopyPartResult"]["ETag"]
    assert sizes_on(d.fs[1]) == sorted([len(p2), len(p3), len(p3)])
    d.s3.complete_multipart_upload(Bucket=d.bucket, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]})
    d.fs[0].start()
    assert d.s3.get_object(Bucket=d.bucket, Key="mp")["Body"].read() == p1 + p2 + p3
    assert d.metric("strata_write_failovers_total") > 0


def test_no_failover_when_disabled(deploy):
    d = deploy("enabled: false")
    d.fs[0].kill()
    with pytest.raises(ClientError) as e:
        d.s3.put_object(Bucket=d.bucket, Key="k", Body=os.urandom(64 * KiB))
    status, code = client_error(e)
    assert status >= 500 and code in ("InternalError", "ServiceUnavailable", "SlowDown"), (status, code)
    with pytest.raises(ClientError) as e:
        d.s3.head_object(Bucket=d.bucket, Key="k")
    assert client_error(e)[0] == 404
    assert d.fs[1].objects() == {} and d.fs[2].objects() == {}
    assert d.spool_files() == []


def test_bad_digest_stores_nothing(deploy):
    d = deploy()
    data = os.urandom(256 * KiB)
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as e:
        d.s3.put_object(Bucket=d.bucket, Key="bad", Body=data, ContentMD5=wrong)
    assert client_error(e) == (400, "BadDigest")
    for f in d.fs:
        assert f.objects() == {}
    assert d.spool_files() == []
    assert d.metric("strata_write_failovers_total") == 0
    with pytest.raises(ClientError) as e:
        d.s3.head_object(Bucket=d.bucket, Key="bad")
    assert client_error(e)[0] == 404


def test_body_above_the_spool_limit_does_not_fail_over(deploy):
    d = deploy(f"max_spool_bytes: {MiB}")
    d.fs[0].kill()
    with pytest.raises(ClientError) as e:
        d.s3.put_object(Bucket=d.bucket, Key="big", Body=os.urandom(2 * MiB))
    assert client_error(e)[0] >= 500
    assert d.spool_files() == []
    assert d.fs[1].objects() == {} and d.fs[2].objects() == {}
    assert d.metric("strata_write_failovers_total") == 0
    # A body within the limit still fails over.
    small = os.urandom(MiB)
    d.s3.put_object(Bucket=d.bucket, Key="small", Body=small)
    assert d.s3.get_object(Bucket=d.bucket, Key="small")["Body"].read() == small
    assert d.spool_files() == []


def test_every_backend_down_is_a_server_error_not_507(deploy):
    d = deploy("max_attempts: 5")
    for f in d.fs:
        f.kill()
    with pytest.raises(ClientError) as e:
        d.s3.put_object(Bucket=d.bucket, Key="k", Body=os.urandom(10 * KiB))
    status, code = client_error(e)
    assert 500 <= status < 507 and code != "InsufficientStorage", (status, code)
    assert d.spool_files() == []
    for f in d.fs:
        f.start()
    with pytest.raises(ClientError) as e:
        d.s3.head_object(Bucket=d.bucket, Key="k")
    assert client_error(e)[0] == 404
    for f in d.fs:
        assert f.objects() == {}
