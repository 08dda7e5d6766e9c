"""Strata in front of three third-party S3 servers (s3s-fs): placement (pack, spread, overflow,
early rejection), catalog tags stored with every blob, replication, and config checks.

Where the bytes landed is read from each backend's own storage, not from Strata.
"""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError

from harness import ADMIN, STRATA_BIN, Strata, boto3_client, child_env, http_get, md5_hex, unique_bucket, wait_until
from multi import S3sFs

KIB = 1024
MIB = 1024 * KIB


@pytest.fixture
def fs3(tmp_path):
    backends = [S3sFs(tmp_path / f"fs{i}").start() for i in range(3)]
    yield backends
    for b in backends:
        b.stop()


def start(tmp_path, backends: list[S3sFs], *, limits: dict | None = None, extra: str = "") -> Strata:
    yaml = "\n".join(b.yaml(f"fs{i}", **(limits or {})) for i, b in enumerate(backends))
    return Strata("all", tmp_path / "strata", backends_yaml=yaml, extra_yaml=extra).start()


def counts(backends: list[S3sFs]) -> list[int]:
    return [len(b.objects()) for b in backends]


def test_pack_fills_in_order_overflows_then_rejects_early(tmp_path, fs3):
    strata = start(tmp_path, fs3, limits={"quota_bytes": 10_000}, extra="placement: {routing_strategy: pack}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("pack")
        s3.create_bucket(Bucket=bucket)
        seen = []
        for i in range(6):
            body = bytes([i]) * (4 * KIB)
            s3.put_object(Bucket=bucket, Key=f"obj-{i}", Body=body, ContentType="application/x-test",
                          Metadata={"n": str(i)})
            seen.append(counts(fs3))
        # Two 4 KiB objects fit a 10 000-byte quota; the third goes to the next backend.
        assert seen == [[1, 0, 0], [2, 0, 0], [2, 1, 0], [2, 2, 0], [2, 2, 1], [2, 2, 2]], seen
        for i in range(6):
            assert s3.get_object(Bucket=bucket, Key=f"obj-{i}")["Body"].read() == bytes([i]) * (4 * KIB)

        # Full everywhere: 507 InsufficientStorage, and nothing new on any backend.
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="too-much", Body=b"x" * (4 * KIB))
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert e.value.response["Error"]["Code"] == "InsufficientStorage"
        assert counts(fs3) == [2, 2, 2]

        # With Expect: 100-continue the refusal comes before the body is sent.
        src = tmp_path / "body.bin"
        src.write_bytes(os.urandom(MIB))
        cp = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-X", "PUT",
             "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{ADMIN.access_key}:{ADMIN.secret_key}",
             "-H", "Expect: 100-continue", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
             "--expect100-timeout", "30", "--data-binary", f"@{src}",
             f"{strata.endpoint}/{bucket}/early"],
            capture_output=True, text=True, timeout=60)
        status, uploaded = cp.stdout.split()
        assert status == "507", cp.stdout + cp.stderr
        assert int(uploaded) == 0, f"the body was sent before the refusal: {cp.stdout}"
    finally:
        strata.stop_and_check()


def test_blobs_carry_their_catalog_facts(tmp_path, fs3):
    strata = start(tmp_path, fs3)
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("tags")
        s3.create_bucket(Bucket=bucket)
        key = "dir/ünïcode key.txt"
        body = b"catalog facts travel with the bytes"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/plain",
                      Metadata={"owner": "team-a"})
        (blob,) = fs3[0].objects()
        meta = fs3[0].head(blob)["Metadata"]
        assert meta["strata-bucket"] == bucket
        assert unquote(meta["strata-key"]) == key, "values are percent-encoded UTF-8"
        assert meta["strata-content-type"] == "text/plain"
        assert meta["strata-m-owner"] == "team-a"
        assert meta["strata-size"] == str(len(body))
        assert meta["strata-codec"] == "none"
        assert meta["strata-v"] == "1"
        assert blob.endswith(meta["strata-object-id"]), (blob, meta)
        assert key not in blob, "backend keys are opaque ids, never the user's key"
    finally:
        strata.stop_and_check()


def test_spread_balances_over_the_backends(tmp_path, fs3):
    strata = start(tmp_path, fs3, limits={"quota_bytes": 1_000_000},
                   extra="placement: {routing_strategy: spread}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("spread")
        s3.create_bucket(Bucket=bucket)
        for i in range(9):
            s3.put_object(Bucket=bucket, Key=f"k{i}", Body=os.urandom(10 * KIB))
        assert counts(fs3) == [3, 3, 3]
    finally:
        strata.stop_and_check()


def test_replication_keeps_two_copies_and_overwrites_clean_both(tmp_path, fs3):
    strata = start(tmp_path, fs3, extra="replication: {factor: 2, interval_secs: 1}\n"
                                        "placement: {routing_strategy: spread}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("repl")
        s3.create_bucket(Bucket=bucket)
        small = os.urandom(100 * KIB)
        big = os.urandom(12 * MIB)
        s3.put_object(Bucket=bucket, Key="small", Body=small)
        mp = s3.create_multipart_upload(Bucket=bucket, Key="big")
        parts = []
        for n, off in enumerate(range(0, len(big), 6 * MIB), start=1):
            r = s3.upload_part(Bucket=bucket, Key="big", UploadId=mp["UploadId"], PartNumber=n,
                               Body=big[off:off + 6 * MIB])
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=mp["UploadId"],
                                     MultipartUpload={"Parts": parts})
        # small: 1 blob; big: 2 part blobs. Each gets one more full copy (one blob).
        wait_until(lambda: sum(counts(fs3)) == 5, 30, what="copies on a second backend")
        stored, holders = {}, {}
        for i, b in enumerate(fs3):
            for blob, size in b.objects().items():
                key = b.head(blob)["Metadata"]["strata-key"]
                stored[key] = stored.get(key, 0) + size
                holders.setdefault(key, set()).add(i)
        # Two full copies of each; the copy is on a backend the first copy did not use.
        assert stored == {"small": 2 * len(small), "big": 2 * len(big)}, stored
        assert len(holders["small"]) == 2, holders
        assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == small
        got = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
        assert md5_hex(got) == md5_hex(big)

        # Overwrite and delete: every copy's bytes leave every backend.
        s3.put_object(Bucket=bucket, Key="small", Body=b"v2")
        s3.delete_object(Bucket=bucket, Key="big")
        wait_until(lambda: sum(counts(fs3)) == 2, 30, what="old copies cleaned up, new one replicated")
        assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"v2"
        status = json.loads(http_get(f"{strata.endpoint}/status")[2])
        assert sum(b["objects"] for b in status["backends"]) == 2, status
        assert sum(b["bytes_used"] for b in status["backends"]) == 4, status
    finally:
        strata.stop_and_check()


@pytest.mark.parametrize("case,yaml,field", [
    ("unknown routing strategy", "placement: {routing_strategy: fastest}\n", "placement.routing_strategy"),
    ("quota mix", None, r"backends[0].limits.max_object_size"),
    ("replication above backends", "replication: {factor: 4}\n", "replication.factor"),
    ("pin to unknown backend", "placement: {bucket_backends: {photos: [nope]}}\n",
     "placement.bucket_backends.photos"),
])
def test_validate_names_the_broken_field(tmp_path, fs3, case, yaml, field):
    limits = {"max_object_size": 2000, "quota_bytes": 1000} if case == "quota mix" else None
    backends = "\n".join(b.yaml(f"fs{i}", **(limits or {})) for i, b in enumerate(fs3))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("backends:\n" + backends + "\n" + (yaml or ""))
    cp = subprocess.run([STRATA_BIN, "validate", "--config", str(cfg)], capture_output=True, text=True,
                        env=child_env(), timeout=60)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1, out
    assert field in out, f"{case}: {field} not named in:\n{out}"
