"""The aws CLI (v1, default settings) against Strata."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import aws, md5_hex, sha256_file, unique_bucket

MiB = 1 << 20


def curl(url: str, out: Path) -> int:
    cp = subprocess.run(["curl", "-sS", "-o", str(out), "-w", "%{http_code}", url],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return int(cp.stdout.strip())


@pytest.fixture
def sigv4_config(tmp_path) -> str:
    """An AWS config that makes `aws s3 presign` use SigV4 (awscli v1 defaults to SigV2 for presign)."""
    p = tmp_path / "aws-config"
    p.write_text("[default]\ns3 =\n    signature_version = s3v4\n")
    return str(p)


def test_s3_mb_ls_cp_rm_rb(server, tmp_path):
    b = unique_bucket("cli")
    cp = aws(server, "s3", "mb", f"s3://{b}")
    assert f"make_bucket: {b}" in cp.stdout
    assert re.search(rf"^\S+ \S+ {re.escape(b)}$", aws(server, "s3", "ls").stdout, re.M)

    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from the aws cli\n" * 100)
    aws(server, "s3", "cp", str(src), f"s3://{b}/dir/hello.txt")
    aws(server, "s3", "cp", str(src), f"s3://{b}/top.txt")
    ls = aws(server, "s3", "ls", f"s3://{b}/").stdout
    assert re.search(r"^\s+PRE dir/$", ls, re.M), ls
    assert re.search(rf"^\S+ \S+\s+{src.stat().st_size} top.txt$", ls, re.M), ls
    rec = aws(server, "s3", "ls", "--recursive", f"s3://{b}").stdout
    assert [line.split()[-1] for line in rec.splitlines()] == ["dir/hello.txt", "top.txt"]

    dst = tmp_path / "back.txt"
    aws(server, "s3", "cp", f"s3://{b}/dir/hello.txt", str(dst))
    assert dst.read_bytes() == src.read_bytes()

    cp = aws(server, "s3", "rm", f"s3://{b}/dir/hello.txt")
    assert f"delete: s3://{b}/dir/hello.txt" in cp.stdout
    assert aws(server, "s3", "ls", "--recursive", f"s3://{b}").stdout.split()[-1] == "top.txt"

    cp = aws(server, "s3", "rb", f"s3://{b}", check=False)
    assert cp.returncode != 0 and "BucketNotEmpty" in cp.stderr, cp.stderr
    aws(server, "s3", "rm", "--recursive", f"s3://{b}")
    aws(server, "s3", "rb", f"s3://{b}")
    assert b not in aws(server, "s3", "ls").stdout


def make_tree(root: Path) -> None:
    files = {
        "a.txt": b"alpha\n",
        "sub/b.bin": os.urandom(300_000),
        "sub/deep/c.txt": b"gamma" * 1000,
        "sub/deep/spaced name.txt": b"spaces",
        "ünïcode/d.txt": b"delta",
        "empty.txt": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def assert_same_tree(a: Path, b: Path) -> None:
    fa = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    fb = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert fa == fb
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_s3_sync_round_trip(server, tmp_path):
    b = unique_bucket("sync")
    aws(server, "s3", "mb", f"s3://{b}")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    make_tree(src)
    out = aws(server, "s3", "sync", str(src), f"s3://{b}/pre/").stdout
    assert out.count("upload:") == 6, out

    aws(server, "s3", "sync", f"s3://{b}/pre/", str(dst))
    assert_same_tree(src, dst)

    # nothing changed -> nothing to do
    assert "upload:" not in aws(server, "s3", "sync", str(src), f"s3://{b}/pre/").stdout

    (src / "sub/deep/c.txt").write_bytes(b"changed, and a different size")
    out = aws(server, "s3", "sync", str(src), f"s3://{b}/pre/").stdout
    assert out.count("upload:") == 1 and "sub/deep/c.txt" in out, out

    (src / "a.txt").unlink()
    out = aws(server, "s3", "sync", "--delete", str(src), f"s3://{b}/pre/").stdout
    assert f"delete: s3://{b}/pre/a.txt" in out, out

    dst2 = tmp_path / "dst2"
    aws(server, "s3", "sync", f"s3://{b}/pre/", str(dst2))
    assert_same_tree(src, dst2)


def test_s3api_object_operations(server, tmp_path):
    b = unique_bucket("s3api")
    aws(server, "s3api", "create-bucket", "--bucket", b)
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(12345))

    put = json.loads(aws(server, "s3api", "put-object", "--bucket", b, "--key", "k1", "--body", str(body),
                         "--content-type", "application/x-test", "--metadata", "alpha=1,beta=two").stdout)
    assert put["ETag"] == f'"{md5_hex(body.read_bytes())}"'

    head = json.loads(aws(server, "s3api", "head-object", "--bucket", b, "--key", "k1").stdout)
    assert head["ContentLength"] == 12345
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"alpha": "1", "beta": "two"}
    assert head["ETag"] == put["ETag"]

    out = tmp_path / "out.bin"
    got = json.loads(aws(server, "s3api", "get-object", "--bucket", b, "--key", "k1", str(out)).stdout)
    assert got["ContentLength"] == 12345
    assert out.read_bytes() == body.read_bytes()

    cp = json.loads(aws(server, "s3api", "copy-object", "--bucket", b, "--key", "dir/k2",
                        "--copy-source", f"{b}/k1").stdout)
    assert cp["CopyObjectResult"]["ETag"] == put["ETag"]
    for i in range(3):
        aws(server, "s3api", "put-object", "--bucket", b, "--key", f"dir/x{i}", "--body", str(body))

    v1 = json.loads(aws(server, "s3api", "list-objects", "--bucket", b).stdout)
    assert [o["Key"] for o in v1["Contents"]] == ["dir/k2", "dir/x0", "dir/x1", "dir/x2", "k1"]
    v2 = json.loads(aws(server, "s3api", "list-objects-v2", "--bucket", b, "--prefix", "dir/").stdout)
    assert [o["Key"] for o in v2["Contents"]] == ["dir/k2", "dir/x0", "dir/x1", "dir/x2"]
    # the CLI pages through ContinuationTokens transparently
    paged = json.loads(aws(server, "s3api", "list-objects-v2", "--bucket", b, "--page-size", "2").stdout)
    assert [o["Key"] for o in paged["Contents"]] == ["dir/k2", "dir/x0", "dir/x1", "dir/x2", "k1"]
    deli = json.loads(aws(server, "s3api", "list-objects-v2", "--bucket", b, "--delimiter", "/").stdout)
    assert [p["Prefix"] for p in deli["CommonPrefixes"]] == ["dir/"]
    assert [o["Key"] for o in deli["Contents"]] == ["k1"]

    spec = json.dumps({"Objects": [{"Key": "dir/x0"}, {"Key": "dir/x1"}, {"Key": "nope"}]})
    d = json.loads(aws(server, "s3api", "delete-objects", "--bucket", b, "--delete", spec).stdout)
    assert sorted(x["Key"] for x in d["Deleted"]) == ["dir/x0", "dir/x1", "nope"]
    assert not d.get("Errors")

    aws(server, "s3api", "delete-object", "--bucket", b, "--key", "k1")
    miss = aws(server, "s3api", "head-object", "--bucket", b, "--key", "k1", check=False)
    assert miss.returncode != 0 and ("404" in miss.stderr or "Not Found" in miss.stderr), miss.stderr
    miss = aws(server, "s3api", "get-object", "--bucket", b, "--key", "k1", str(tmp_path / "x"), check=False)
    assert miss.returncode != 0 and "NoSuchKey" in miss.stderr, miss.stderr
    left = json.loads(aws(server, "s3api", "list-objects-v2", "--bucket", b).stdout)
    assert [o["Key"] for o in left["Contents"]] == ["dir/k2", "dir/x2"]


def test_multipart_cp_100mib(server, tmp_path):
    b = unique_bucket("cli-mp")
    aws(server, "s3", "mb", f"s3://{b}")
    src = tmp_path / "big.bin"
    size = 100 * MiB + 12345
    with open(src, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(MiB))
        f.write(os.urandom(12345))
    want = sha256_file(src)
    aws(server, "s3", "cp", str(src), f"s3://{b}/big.bin")

    head = json.loads(aws(server, "s3api", "head-object", "--bucket", b, "--key", "big.bin").stdout)
    assert head["ContentLength"] == size
    # default multipart_chunksize is 8 MiB -> ceil(100.01 MiB / 8 MiB) = 13 parts
    assert re.fullmatch(r'"[0-9a-f]{32}-13"', head["ETag"]), head["ETag"]

    dst = tmp_path / "big.out"
    aws(server, "s3", "cp", f"s3://{b}/big.bin", str(dst))
    assert dst.stat().st_size == size
    assert sha256_file(dst) == want
    src.unlink()
    dst.unlink()


def test_presign_sigv4_with_curl(server, tmp_path, sigv4_config):
    b = unique_bucket("presign")
    aws(server, "s3", "mb", f"s3://{b}")
    data = os.urandom(50_000)
    (tmp_path / "f").write_bytes(data)
    aws(server, "s3", "cp", str(tmp_path / "f"), f"s3://{b}/dir/file name.bin")
    url = aws(server, "s3", "presign", f"s3://{b}/dir/file name.bin", "--expires-in", "300",
              config_file=sigv4_config).stdout.strip()
    assert "X-Amz-Signature=" in url, url
    out = tmp_path / "got"
    assert curl(url, out) == 200, out.read_bytes()[:500]
    assert out.read_bytes() == data


def test_presign_expired_with_curl(server, tmp_path, sigv4_config):
    b = unique_bucket("presign-exp")
    aws(server, "s3", "mb", f"s3://{b}")
    (tmp_path / "f").write_bytes(b"short lived")
    aws(server, "s3", "cp", str(tmp_path / "f"), f"s3://{b}/f")
    url = aws(server, "s3", "presign", f"s3://{b}/f", "--expires-in", "1", config_file=sigv4_config).stdout.strip()
    time.sleep(2.2)
    out = tmp_path / "got"
    assert curl(url, out) == 403
    body = out.read_text()
    assert "<Code>AccessDenied</Code>" in body, body
    assert "expired" in body.lower(), body
    assert "<RequestId>" in body, body


def test_presign_awscli_default_sigv2(server, tmp_path):
    """awscli v1 with no config presigns with SigV2 (AWSAccessKeyId/Signature/Expires). That is what
    `aws s3 presign` users get by default."""
    b = unique_bucket("presign-v2")
    aws(server, "s3", "mb", f"s3://{b}")
    (tmp_path / "f").write_bytes(b"v2 presigned")
    aws(server, "s3", "cp", str(tmp_path / "f"), f"s3://{b}/f")
    url = aws(server, "s3", "presign", f"s3://{b}/f", "--expires-in", "300").stdout.strip()
    out = tmp_path / "got"
    assert curl(url, out) == 200, out.read_bytes()[:500]
    assert out.read_bytes() == b"v2 presigned"
