"""Large objects must stream: 2 GiB in and out while the server's peak RSS stays < 256 MiB.

Runs by default; deselect with `-m "not slow"`. Size can be lowered for local iteration with
STRATA_E2E_BIG_MIB (the RSS limit stays the same).
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from harness import ADMIN, MODES, SUMMARY, Strata, aws, boto3_client, sha256_file, unique_bucket, write_pattern_file

pytestmark = pytest.mark.slow

MiB = 1 << 20
BIG = int(os.environ.get("STRATA_E2E_BIG_MIB", "2048")) * MiB
RSS_LIMIT_MIB = 256


@pytest.fixture(scope="module", params=MODES)
def big_server(request, tmp_path_factory):
    # The measured process is the one serving S3: `strata --role all`, or the dataplane in split mode.
    srv = Strata(request.param, tmp_path_factory.mktemp(f"strata-memory-{request.param}"))
    srv.start()
    yield srv
    srv.stop_and_check()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bigfile") / "big.bin"
    digest = write_pattern_file(path, BIG)
    yield path, digest
    path.unlink(missing_ok=True)


def peak_rss_mib(srv: Strata) -> float:
    mib = srv.main.vm_hwm_kib() / 1024
    extra = ""
    if srv.control is not None:
        extra = f" (controlplane PEAK_RSS_MIB={srv.control.vm_hwm_kib() / 1024:.1f})"
    line = f"PEAK_RSS_MIB={mib:.1f} mode={srv.mode} process={srv.main.name}{extra}"
    print(line)
    SUMMARY.append(line)
    return mib


def test_2gib_multipart_upload_with_aws_cli(big_server, big_file, tmp_path):
    path, digest = big_file
    b = unique_bucket("big-mp")
    aws(big_server, "s3", "mb", f"s3://{b}")
    aws(big_server, "s3", "cp", str(path), f"s3://{b}/big.bin", timeout=1800)
    s3 = boto3_client(big_server.endpoint, ADMIN)
    head = s3.head_object(Bucket=b, Key="big.bin")
    assert head["ContentLength"] == BIG
    assert re.fullmatch(r'"[0-9a-f]{32}-\d+"', head["ETag"]), head["ETag"]

    out = tmp_path / "big.out"
    try:
        aws(big_server, "s3", "cp", f"s3://{b}/big.bin", str(out), timeout=1800)
        assert out.stat().st_size == BIG
        assert sha256_file(out) == digest
    finally:
        out.unlink(missing_ok=True)
    s3.delete_object(Bucket=b, Key="big.bin")
    assert peak_rss_mib(big_server) < RSS_LIMIT_MIB


def test_2gib_single_put_with_boto3(big_server, big_file):
    path, digest = big_file
    b = unique_bucket("big-put")
    s3 = boto3_client(big_server.endpoint, ADMIN)
    s3.create_bucket(Bucket=b)
    with open(path, "rb") as f:
        put = s3.put_object(Bucket=b, Key="big.bin", Body=f)
    assert re.fullmatch(r'"[0-9a-f]{32}"', put["ETag"]), put["ETag"]

    got = s3.get_object(Bucket=b, Key="big.bin")
    assert got["ContentLength"] == BIG
    h = hashlib.sha256()
    n = 0
    for chunk in got["Body"].iter_chunks(4 * MiB):
        h.update(chunk)
        n += len(chunk)
    assert n == BIG
    assert h.hexdigest() == digest

    # a ranged read in the middle of the big object
    r = s3.get_object(Bucket=b, Key="big.bin", Range=f"bytes={BIG // 2}-{BIG // 2 + MiB - 1}")
    with open(path, "rb") as f:
        f.seek(BIG // 2)
        assert r["Body"].read() == f.read(MiB)
    s3.delete_object(Bucket=b, Key="big.bin")
    assert peak_rss_mib(big_server) < RSS_LIMIT_MIB
