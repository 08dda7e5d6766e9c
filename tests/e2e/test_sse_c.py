"""SSE-C (customer-provided keys) through boto3 and the aws CLI against a real `strata`: round trips,
the sealed blob on the backend, every error status/code, CopyObject with a copy-source key,
multipart (UploadPart and UploadPartCopy) and ranged reads.

Encryption at rest is off (`encryption: {mode: none}`): SSE-C seals with the customer's key on its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import ADMIN, BACKING_BUCKET, MODES, Strata, aws, boto3_client, client_error, unique_bucket

KiB = 1024
MiB = 1 << 20
CHUNK = 64 * KiB
KEY1 = b"k1-customer-key-0123456789abcdef"  # 32 bytes
KEY2 = b"k2-another-customer-key-98765432"  # 32 bytes
assert len(KEY1) == len(KEY2) == 32


def md5_b64(b: bytes) -> str:
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def sse(key: bytes = KEY1) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_sse(key: bytes = KEY1) -> dict:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def sealed_len(n: int) -> int:
    return 16 + n + 16 * max(1, -(-n // CHUNK))


def blob_dir(srv: Strata) -> Path:
    if srv.mode == "s3":
        return srv.root / "s3s-fs" / BACKING_BUCKET / "strata"
    return srv.data_dir / "objects" / "objects"


def blobs(srv: Strata) -> set[Path]:
    d = blob_dir(srv)
    if not d.exists():
        return set()
    return {p for p in d.rglob("*") if p.is_file() and not p.name.endswith(".meta") and not p.name.startswith(".")
            and "tmp" not in p.relative_to(d).parts}


def text(n: int, seed: str) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += f"{seed} {i:09d} customer secret payload\n".encode()
        i += 1
    return bytes(out[:n])


def assert_echo(resp: dict, key: bytes = KEY1) -> None:
    assert resp.get("SSECustomerAlgorithm") == "AES256", resp
    assert resp.get("SSECustomerKeyMD5") == md5_b64(key), resp


def expect_error(fn, status: int, code: str | None, **kw):
    with pytest.raises(ClientError) as ei:
        fn(**kw)
    st, c = client_error(ei)
    assert st == status, (st, c, ei.value.response.get("Error"))
    if code is not None:
        assert c == code, (st, c, ei.value.response.get("Error"))


@pytest.fixture(scope="module", params=MODES)
def srv(request, tmp_path_factory):
    s = Strata(request.param, tmp_path_factory.mktemp(f"strata-ssec-{request.param}"),
               extra_yaml="encryption:\n  mode: none\n")
    s.start()
    yield s
    s.stop_and_check()


@pytest.fixture(scope="module")
def s3(srv):
    return boto3_client(srv.endpoint, ADMIN)


@pytest.fixture
def bucket(s3, request):
    name = unique_bucket(request.node.originalname.replace("test_", "").replace("_", "-"))
    s3.create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------------------
# boto3
# ---------------------------------------------------------------------------

def test_put_get_head_round_trip_and_blob_is_sealed(srv, s3, bucket):
    body = text(200 * KiB + 7, "ssec")
    before = blobs(srv)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=body, Metadata={"note": "hush"}, **sse())
    assert_echo(put)
    new = blobs(srv) - before
    assert len(new) == 1, new
    data = new.pop().read_bytes()
    assert data[:6] == b"STRATA", data[:16]
    assert len(data) == sealed_len(len(body))
    for off in range(0, len(body) - 32, 4099):
        assert body[off:off + 32] not in data, f"plaintext at {off} stored in the clear"
    for secret in (KEY1, base64.b64encode(KEY1)):
        assert secret not in data

    head = s3.head_object(Bucket=bucket, Key="obj", **sse())
    assert_echo(head)
    assert head["ContentLength"] == len(body)
    assert head["Metadata"] == {"note": "hush"}
    got = s3.get_object(Bucket=bucket, Key="obj", **sse())
    assert_echo(got)
    assert got["Body"].read() == body

    r = s3.get_object(Bucket=bucket, Key="obj", Range=f"bytes={CHUNK - 10}-{2 * CHUNK + 10}", **sse())
    assert_echo(r)
    assert r["Body"].read() == body[CHUNK - 10:2 * CHUNK + 11]
    r = s3.get_object(Bucket=bucket, Key="obj", Range="bytes=-100", **sse())
    assert r["Body"].read() == body[-100:]

    # a key stored under one customer key can be overwritten with another
    s3.put_object(Bucket=bucket, Key="obj", Body=b"v2", **sse(KEY2))
    assert s3.get_object(Bucket=bucket, Key="obj", **sse(KEY2))["Body"].read() == b"v2"


def test_error_cases(srv, s3, bucket):
    body = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="enc", Body=body, **sse())
    s3.put_object(Bucket=bucket, Key="plain", Body=body)

    # no key for an SSE-C object
    expect_error(s3.get_object, 400, "InvalidRequest", Bucket=bucket, Key="enc")
    expect_error(s3.head_object, 400, None, Bucket=bucket, Key="enc")
    # wrong key
    expect_error(s3.get_object, 403, "AccessDenied", Bucket=bucket, Key="enc", **sse(KEY2))
    expect_error(s3.head_object, 403, None, Bucket=bucket, Key="enc", **sse(KEY2))
    expect_error(s3.get_object, 403, "AccessDenied", Bucket=bucket, Key="enc", Range="bytes=0-9", **sse(KEY2))
    # a key for an object that is not SSE-C
    expect_error(s3.get_object, 400, "InvalidRequest", Bucket=bucket, Key="plain", **sse())
    expect_error(s3.head_object, 400, None, Bucket=bucket, Key="plain", **sse())

    # malformed SSE-C headers, on PUT and on GET
    bad_md5 = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(KEY1).decode(),
               "SSECustomerKeyMD5": md5_b64(KEY2)}
    bad_alg = {"SSECustomerAlgorithm": "AES128", "SSECustomerKey": KEY1}
    short_key = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY1[:31]}
    long_key = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY1 + b"x"}
    for op, kw in ((s3.put_object, {"Body": b"x"}), (s3.get_object, {})):
        expect_error(op, 400, "InvalidArgument", Bucket=bucket, Key="enc", **kw, **bad_md5)
        expect_error(op, 400, "InvalidEncryptionAlgorithmError", Bucket=bucket, Key="enc", **kw, **bad_alg)
        expect_error(op, 400, "InvalidArgument", Bucket=bucket, Key="enc", **kw, **short_key)
        expect_error(op, 400, "InvalidArgument", Bucket=bucket, Key="enc", **kw, **long_key)
    # none of the failed PUTs replaced the object
    assert s3.get_object(Bucket=bucket, Key="enc", **sse())["Body"].read() == body


def test_copy_object_from_sse_c_source(srv, s3, bucket):
    body = text(150 * KiB, "copysrc")
    s3.put_object(Bucket=bucket, Key="src", Body=body, **sse())
    src = {"Bucket": bucket, "Key": "src"}

    # the source key is required
    expect_error(s3.copy_object, 400, "InvalidRequest", Bucket=bucket, Key="nope", CopySource=src)
    expect_error(s3.copy_object, 403, "AccessDenied", Bucket=bucket, Key="nope", CopySource=src,
                 **copy_sse(KEY2))

    # (a) to a plaintext target
    s3.copy_object(Bucket=bucket, Key="plain-copy", CopySource=src, **copy_sse())
    head = s3.head_object(Bucket=bucket, Key="plain-copy")
    assert "SSECustomerAlgorithm" not in head, head
    assert s3.get_object(Bucket=bucket, Key="plain-copy")["Body"].read() == body
    expect_error(s3.get_object, 400, "InvalidRequest", Bucket=bucket, Key="plain-copy", **sse())

    # (b) to an SSE-C target under another key
    before = blobs(srv)
    r = s3.copy_object(Bucket=bucket, Key="rekeyed", CopySource=src, **copy_sse(), **sse(KEY2))
    assert_echo(r, KEY2)
    (blob,) = blobs(srv) - before
    data = blob.read_bytes()
    assert data[:6] == b"STRATA" and body[1000:1032] not in data
    got = s3.get_object(Bucket=bucket, Key="rekeyed", **sse(KEY2))
    assert_echo(got, KEY2)
    assert got["Body"].read() == body
    expect_error(s3.get_object, 403, "AccessDenied", Bucket=bucket, Key="rekeyed", **sse(KEY1))
    expect_error(s3.get_object, 400, "InvalidRequest", Bucket=bucket, Key="rekeyed")
    # the source is unchanged
    assert s3.get_object(Bucket=bucket, Key="src", **sse())["Body"].read() == body


def test_multipart_with_sse_c(srv, s3, bucket):
    parts_data = [os.urandom(5 * MiB) for _ in range(3)]
    small = text(100 * KiB + 3, "tail")
    s3.put_object(Bucket=bucket, Key="small-src", Body=small, **sse(KEY2))

    mpu = s3.create_multipart_upload(Bucket=bucket, Key="mp", **sse())
    assert_echo(mpu)
    uid = mpu["UploadId"]
    parts = []
    for i, d in enumerate(parts_data, start=1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=d, **sse())
        assert_echo(r)
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
    # the last part copied from another SSE-C object (copy-source key KEY2, target key KEY1)
    r = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=4,
                            CopySource={"Bucket": bucket, "Key": "small-src"}, **copy_sse(KEY2), **sse())
    parts.append({"PartNumber": 4, "ETag": r["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})

    whole = b"".join(parts_data) + small
    head = s3.head_object(Bucket=bucket, Key="mp", **sse())
    assert_echo(head)
    assert head["ContentLength"] == len(whole)
    got = s3.get_object(Bucket=bucket, Key="mp", **sse())
    assert_echo(got)
    data = got["Body"].read()
    assert len(data) == len(whole) and data == whole
    a, b = 5 * MiB - 100, 10 * MiB + CHUNK + 5  # across parts 1|2|3 boundaries
    r = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={a}-{b}", **sse())
    assert r["Body"].read() == whole[a:b + 1]
    r = s3.get_object(Bucket=bucket, Key="mp", Range="bytes=-1000", **sse())
    assert r["Body"].read() == whole[-1000:]
    expect_error(s3.get_object, 400, "InvalidRequest", Bucket=bucket, Key="mp")
    expect_error(s3.get_object, 403, "AccessDenied", Bucket=bucket, Key="mp", **sse(KEY2))


def test_multipart_parts_must_carry_the_upload_key(srv, s3, bucket):
    """An upload created with SSE-C only takes parts sealed under the same key (as S3 does): a part
    without the key would be stored in plaintext, a part under another key could never be read."""
    part = text(5 * MiB, "must-be-sealed")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", **sse())["UploadId"]
    before = blobs(srv)
    expect_error(s3.upload_part, 400, None, Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part)
    expect_error(s3.upload_part, 403, None, Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=part,
                 **sse(KEY2))
    for p in blobs(srv) - before:
        assert part[:64] not in p.read_bytes(), f"a part of an SSE-C upload was stored in plaintext: {p}"
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid)


# ---------------------------------------------------------------------------
# aws CLI
# ---------------------------------------------------------------------------

CLI_KEY = KEY1.decode()
CLI_KEY2 = KEY2.decode()


def test_aws_cli_s3api_and_s3_cp(srv, s3, bucket, tmp_path):
    src = tmp_path / "small.txt"
    body = text(300 * KiB, "cli")
    src.write_bytes(body)
    sse_args = ["--sse-customer-algorithm", "AES256", "--sse-customer-key", CLI_KEY]

    out = json.loads(aws(srv, "s3api", "put-object", "--bucket", bucket, "--key", "a.txt", "--body", str(src),
                         *sse_args).stdout)
    assert out["SSECustomerAlgorithm"] == "AES256" and out["SSECustomerKeyMD5"] == md5_b64(KEY1), out
    head = json.loads(aws(srv, "s3api", "head-object", "--bucket", bucket, "--key", "a.txt", *sse_args).stdout)
    assert head["ContentLength"] == len(body) and head["SSECustomerKeyMD5"] == md5_b64(KEY1), head
    dst = tmp_path / "a.out"
    got = json.loads(aws(srv, "s3api", "get-object", "--bucket", bucket, "--key", "a.txt", *sse_args,
                         str(dst)).stdout)
    assert got["SSECustomerAlgorithm"] == "AES256", got
    assert dst.read_bytes() == body
    # and boto3 agrees on the same key
    assert s3.get_object(Bucket=bucket, Key="a.txt", **sse())["Body"].read() == body

    # wrong key / no key: the error text the CLI user sees
    cp = aws(srv, "s3api", "get-object", "--bucket", bucket, "--key", "a.txt", "--sse-customer-algorithm",
             "AES256", "--sse-customer-key", CLI_KEY2, str(tmp_path / "x"), check=False)
    assert cp.returncode != 0
    assert "AccessDenied" in cp.stderr and "GetObject" in cp.stderr, cp.stderr
    cp = aws(srv, "s3api", "get-object", "--bucket", bucket, "--key", "a.txt", str(tmp_path / "y"), check=False)
    assert cp.returncode != 0
    assert "InvalidRequest" in cp.stderr, cp.stderr
    cp = aws(srv, "s3api", "head-object", "--bucket", bucket, "--key", "a.txt", "--sse-customer-algorithm",
             "AES256", "--sse-customer-key", CLI_KEY2, check=False)
    assert cp.returncode != 0 and "403" in cp.stderr, cp.stderr

    # aws s3 cp, large enough to go multipart (default threshold 8 MiB), up and down
    big = tmp_path / "big.bin"
    big_body = os.urandom(20 * MiB + 12345)
    big.write_bytes(big_body)
    cp_args = ["--sse-c", "AES256", "--sse-c-key", CLI_KEY]
    aws(srv, "s3", "cp", str(big), f"s3://{bucket}/big.bin", *cp_args)
    head = s3.head_object(Bucket=bucket, Key="big.bin", **sse())
    assert head["ContentLength"] == len(big_body)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # 8 MiB parts
    down = tmp_path / "big.out"
    aws(srv, "s3", "cp", f"s3://{bucket}/big.bin", str(down), *cp_args)
    assert down.read_bytes() == big_body
    aws(srv, "s3", "cp", str(src), f"s3://{bucket}/small-cp.txt", *cp_args)
    down2 = tmp_path / "small-cp.out"
    aws(srv, "s3", "cp", f"s3://{bucket}/small-cp.txt", str(down2), *cp_args)
    assert down2.read_bytes() == body

    # aws s3 cp with the wrong key
    cp = aws(srv, "s3", "cp", f"s3://{bucket}/big.bin", str(tmp_path / "z"), "--sse-c", "AES256",
             "--sse-c-key", CLI_KEY2, check=False)
    assert cp.returncode != 0
    assert "403" in cp.stderr and "HeadObject" in cp.stderr, cp.stderr
    assert not (tmp_path / "z").exists() or (tmp_path / "z").read_bytes() != big_body
