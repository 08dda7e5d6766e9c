"""Delta compression end to end: real clients against a real `strata serve`, checking the bytes
users read back, what HEAD and LIST report, `/status/delta`, and what is left on the backend.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import zipfile
from pathlib import Path

import pytest

from harness import SUMMARY, Strata, aws_cli_base, aws_env, boto3_client, http_get, md5_hex, wait_until

BUCKET = "artifacts"
PLAIN = "plain"
MiB = 1024 * 1024

DELTA_YAML = f"""delta:
  enabled: false
  min_size: 4096
  reselect_ratio: 0.5
  reselect_window: 3
  rules:
    - {{bucket: {BUCKET}, delta: on}}
jobs: {{cleanup_period_secs: 1}}
"""


def base_blob(size: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    # Text-like, compressible content with some entropy, like an artifact's members.
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(4000)]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
        if rnd.random() < 0.01:
            out += rnd.randbytes(rnd.randint(10, 200))
    return bytes(out[:size])


def edit(data: bytes, seed: int, edits: int = 20, span: int = 2000) -> bytes:
    rnd = random.Random(seed)
    out = bytearray(data)
    for _ in range(edits):
        at = rnd.randrange(0, len(out))
        kind = rnd.random()
        if kind < 0.4:
            out[at:at + rnd.randint(1, span)] = os.urandom(rnd.randint(1, span))
        elif kind < 0.7:
            out[at:at] = os.urandom(rnd.randint(1, span))
        else:
            del out[at:at + rnd.randint(1, span)]
    return bytes(out)


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix != ".meta" and "tmp" not in p.relative_to(root).parts)


def delta_status(s: Strata, bucket: str = BUCKET) -> dict:
    code, _, body = http_get(f"{s.endpoint}/status/delta")
    assert code == 200, body
    rows = {b["bucket"]: b for b in json.loads(body)["buckets"]}
    return rows.get(bucket, {})


@pytest.fixture
def srv(tmp_path):
    s = Strata("all", tmp_path, extra_yaml=DELTA_YAML).start()
    c = boto3_client(s.endpoint)
    c.create_bucket(Bucket=BUCKET)
    c.create_bucket(Bucket=PLAIN)
    yield s
    s.stop_and_check()


def test_versions_round_trip_and_report_their_original_size_etag_and_metadata(srv):
    c = boto3_client(srv.endpoint)
    versions = [base_blob(3 * MiB)]
    for i in range(1, 10):
        versions.append(edit(versions[-1], i))
    for i, v in enumerate(versions):
        c.put_object(Bucket=BUCKET, Key=f"app/app-{i}.bin", Body=v, ContentType="application/x-app",
                     Metadata={"build": str(i)})
    for i, v in enumerate(versions):
        got = c.get_object(Bucket=BUCKET, Key=f"app/app-{i}.bin")
        assert got["Body"].read() == v, i
        assert got["ContentLength"] == len(v) and got["ETag"].strip('"') == md5_hex(v)
        assert got["ContentType"] == "application/x-app" and got["Metadata"] == {"build": str(i)}
    listed = {o["Key"]: o for o in c.list_objects_v2(Bucket=BUCKET, Prefix="app/")["Contents"]}
    for i, v in enumerate(versions):
        o = listed[f"app/app-{i}.bin"]
        assert o["Size"] == len(v) and o["ETag"].strip('"') == md5_hex(v)
    st = delta_status(srv)
    assert st["decisions"].get("reference") == 1 and st["decisions"].get("delta") == 9, st
    assert st["logical_bytes"] == sum(map(len, versions))
    assert st["ratio"] < 0.25, st
    # What is on the backend is the small deltas plus one compressed reference.
    stored = sum(p.stat().st_size for p in blob_files(srv.data_dir / "objects"))
    assert stored < 0.3 * sum(map(len, versions)), stored
    _, _, metrics = http_get(f"{srv.endpoint}/metrics")
    assert b'strata_delta_decisions_total{decision="delta"} 9' in metrics
    # The aws CLI reads the same bytes.
    out = srv.root / "cli.bin"
    subprocess.run(aws_cli_base() + ["--endpoint-url", srv.endpoint, "s3", "cp", f"s3://{BUCKET}/app/app-7.bin",
                                     str(out)], env=aws_env(), check=True, capture_output=True)
    assert out.read_bytes() == versions[7]


def test_range_gets_on_delta_objects(srv):
    c = boto3_client(srv.endpoint)
    v1 = base_blob(2 * MiB, 7)
    v2 = edit(v1, 99)
    c.put_object(Bucket=BUCKET, Key="r/v1", Body=v1)
    c.put_object(Bucket=BUCKET, Key="r/v2", Body=v2)
    rnd = random.Random(5)
    for _ in range(40):
        a = rnd.randrange(0, len(v2))
        b = min(len(v2) - 1, a + rnd.randint(0, 300_000))
        got = c.get_object(Bucket=BUCKET, Key="r/v2", Range=f"bytes={a}-{b}")["Body"].read()
        assert got == v2[a:b + 1], (a, b)
    assert c.get_object(Bucket=BUCKET, Key="r/v2", Range="bytes=-100")["Body"].read() == v2[-100:]


def test_content_decides_eligibility_not_the_name(srv):
    c = boto3_client(srv.endpoint)
    # A wheel is a zip whatever its extension: delta applies.
    def wheel(extra: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for i in range(40):
                z.writestr(f"pkg/mod{i}.py", base_blob(30_000, i))
            z.writestr("pkg/VERSION", extra)
        return buf.getvalue()
    w1, w2 = wheel(b"1.0"), wheel(b"1.1")
    c.put_object(Bucket=BUCKET, Key="wheels/pkg-1.0.whl", Body=w1)
    c.put_object(Bucket=BUCKET, Key="wheels/pkg-1.1.whl", Body=w2)
    # Already-compressed media is stored as it is.
    gz = gzip.compress(base_blob(500_000, 3))
    c.put_object(Bucket=BUCKET, Key="wheels/data.gz.bin", Body=gz)
    st = delta_status(srv)
    assert st["decisions"].get("delta", 0) >= 1 and st["decisions"].get("passthrough", 0) >= 1, st
    assert c.get_object(Bucket=BUCKET, Key="wheels/pkg-1.1.whl")["Body"].read() == w2
    assert c.get_object(Bucket=BUCKET, Key="wheels/data.gz.bin")["Body"].read() == gz
    # A bucket without delta is untouched.
    c.put_object(Bucket=PLAIN, Key="x/a", Body=w1)
    assert delta_status(srv, PLAIN).get("decisions", {}).get("delta", 0) == 0


def test_copy_and_multipart_work_on_delta_buckets(srv):
    c = boto3_client(srv.endpoint)
    v1 = base_blob(6 * MiB, 11)
    c.put_object(Bucket=BUCKET, Key="mp/v1", Body=v1)
    v2 = edit(v1, 12)
    up = c.create_multipart_upload(Bucket=BUCKET, Key="mp/v2")["UploadId"]
    parts = []
    for n, at in enumerate(range(0, len(v2), 5 * MiB), start=1):
        e = c.upload_part(Bucket=BUCKET, Key="mp/v2", UploadId=up, PartNumber=n, Body=v2[at:at + 5 * MiB])["ETag"]
        parts.append({"PartNumber": n, "ETag": e})
    before = delta_status(srv)["decisions"].get("passthrough", 0)
    c.complete_multipart_upload(Bucket=BUCKET, Key="mp/v2", UploadId=up, MultipartUpload={"Parts": parts})
    assert c.get_object(Bucket=BUCKET, Key="mp/v2")["Body"].read() == v2
    # Multipart chooses passthrough, and the decision says so.
    assert delta_status(srv)["decisions"].get("passthrough", 0) == before + 1
    c.copy_object(Bucket=BUCKET, Key="mp/v1-copy", CopySource={"Bucket": BUCKET, "Key": "mp/v1"})
    assert c.get_object(Bucket=BUCKET, Key="mp/v1-copy")["Body"].read() == v1
    # The copy is encoded like a PUT: a delta against the deltaspace's reference.
    assert delta_status(srv)["decisions"].get("delta", 0) >= 1
    c.copy_object(Bucket=PLAIN, Key="from-delta", CopySource={"Bucket": BUCKET, "Key": "mp/v1"})
    assert c.get_object(Bucket=PLAIN, Key="from-delta")["Body"].read() == v1


def test_deleting_a_deltaspace_frees_its_reference(tmp_path):
    extra = DELTA_YAML.replace("jobs: {cleanup_period_secs: 1}",
                               "jobs: {cleanup_period_secs: 1, delta_gc_period_secs: 1, delta_gc_grace_secs: 1}")
    s = Strata("all", tmp_path, extra_yaml=extra).start()
    try:
        c = boto3_client(s.endpoint)
        c.create_bucket(Bucket=BUCKET)
        v = base_blob(1 * MiB, 21)
        keys = []
        for i in range(4):
            v = edit(v, 30 + i)
            c.put_object(Bucket=BUCKET, Key=f"gone/v{i}", Body=v)
            keys.append(f"gone/v{i}")
        assert blob_files(s.data_dir / "objects")
        for k in keys:
            c.delete_object(Bucket=BUCKET, Key=k)
        wait_until(lambda: not blob_files(s.data_dir / "objects"), 90, procs=s.procs,
                   what=f"nothing left on the backend (left: {blob_files(s.data_dir / 'objects')})")
    finally:
        s.stop_and_check()


def test_corrupt_delta_or_reference_never_returns_wrong_bytes(srv):
    c = boto3_client(srv.endpoint)
    v1 = base_blob(1 * MiB, 41)
    v2 = edit(v1, 42)
    before = set(blob_files(srv.data_dir / "objects"))
    c.put_object(Bucket=BUCKET, Key="bad/v1", Body=v1)
    after_v1 = set(blob_files(srv.data_dir / "objects"))
    c.put_object(Bucket=BUCKET, Key="bad/v2", Body=v2)
    (delta_blob,) = set(blob_files(srv.data_dir / "objects")) - after_v1
    data = bytearray(delta_blob.read_bytes())
    data[len(data) // 3] ^= 0xFF
    delta_blob.write_bytes(bytes(data))
    try:
        got = c.get_object(Bucket=BUCKET, Key="bad/v2")["Body"].read()
    except Exception:
        got = None
    assert got is None or (got != v2 and len(got) < len(v2)) or got == v2, "wrong bytes served"
    assert got is None or got == v2 or len(got) < len(v2)
    # Corrupt the reference on the backend; after a restart (the local cache is emptied) reads of
    # the deltas that need it fail instead of returning wrong bytes.
    ref_blobs = sorted(after_v1 - before, key=lambda p: p.stat().st_size)
    reference = ref_blobs[-1]
    data = bytearray(reference.read_bytes())
    data[len(data) // 2] ^= 0x55
    reference.write_bytes(bytes(data))
    srv.restart()
    c = boto3_client(srv.endpoint)
    try:
        got = c.get_object(Bucket=BUCKET, Key="bad/v1")["Body"].read()
    except Exception:
        got = None
    assert got is None or len(got) < len(v1), "a read against a corrupt reference completed"


def test_concurrent_writes_to_one_deltaspace(srv):
    c = boto3_client(srv.endpoint)
    base = base_blob(1 * MiB, 51)
    versions = {f"conc/v{i}": edit(base, 100 + i) for i in range(12)}

    def put(item):
        k, v = item
        boto3_client(srv.endpoint).put_object(Bucket=BUCKET, Key=k, Body=v)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(put, versions.items()))
    for k, v in versions.items():
        assert c.get_object(Bucket=BUCKET, Key=k)["Body"].read() == v, k
    st = delta_status(srv)
    assert sum(st["decisions"].values()) == 12, st


def test_a_restart_in_the_middle_of_a_sequence(srv):
    c = boto3_client(srv.endpoint)
    versions = [base_blob(2 * MiB, 61)]
    for i in range(1, 8):
        versions.append(edit(versions[-1], 200 + i))
    for i, v in enumerate(versions[:4]):
        c.put_object(Bucket=BUCKET, Key=f"seq/v{i}", Body=v)
    srv.restart()
    c = boto3_client(srv.endpoint)
    for i, v in enumerate(versions[4:], start=4):
        c.put_object(Bucket=BUCKET, Key=f"seq/v{i}", Body=v)
    for i, v in enumerate(versions):
        assert c.get_object(Bucket=BUCKET, Key=f"seq/v{i}")["Body"].read() == v, i
    st = delta_status(srv)
    assert st["decisions"].get("reference") == 1 and st["decisions"].get("delta") == 7, st


def test_reference_reselection_on_a_drifting_sequence(srv):
    c = boto3_client(srv.endpoint)
    v = base_blob(1 * MiB, 71)
    versions = [v]
    for i in range(1, 12):
        # Each version replaces a growing share of the content: deltas against the first drift up.
        v = edit(v, 300 + i, edits=40, span=6000)
        versions.append(v)
    for i, v in enumerate(versions):
        c.put_object(Bucket=BUCKET, Key=f"drift/v{i:02d}", Body=v)
    st = delta_status(srv)
    assert st["decisions"].get("reference", 0) >= 2, f"no new reference was chosen: {st}"
    for i, v in enumerate(versions):
        assert c.get_object(Bucket=BUCKET, Key=f"drift/v{i:02d}")["Body"].read() == v, i


@pytest.mark.slow
def test_a_1gib_artifact_with_delta_keeps_memory_bounded(tmp_path):
    size = int(os.environ.get("STRATA_E2E_DELTA_BIG_MIB", "1024")) * MiB
    s = Strata("all", tmp_path, extra_yaml=DELTA_YAML).start()
    try:
        c = boto3_client(s.endpoint)
        c.create_bucket(Bucket=BUCKET)
        src = tmp_path / "v1.bin"
        with open(src, "wb") as f:
            rnd = random.Random(9)
            chunk = base_blob(4 * MiB, 81)
            for i in range(size // (4 * MiB)):
                f.write(chunk[: 4 * MiB - 64] + rnd.randbytes(64))
        v2 = tmp_path / "v2.bin"
        with open(src, "rb") as a, open(v2, "wb") as b:
            while block := a.read(8 * MiB):
                b.write(block[:1000] + os.urandom(100) + block[1100:])
        for name, path in (("big/v1", src), ("big/v2", v2)):
            with open(path, "rb") as f:  # one streamed PutObject (multipart would be passthrough)
                c.put_object(Bucket=BUCKET, Key=name, Body=f)
        for name, path in (("big/v1", src), ("big/v2", v2)):
            h, want = hashlib.sha256(), hashlib.sha256()
            body = c.get_object(Bucket=BUCKET, Key=name)["Body"]
            while block := body.read(8 * MiB):
                h.update(block)
            with open(path, "rb") as f:
                while block := f.read(8 * MiB):
                    want.update(block)
            assert h.hexdigest() == want.hexdigest(), name
        peak = s.main.vm_hwm_kib() / 1024
        SUMMARY.append(f"PEAK_RSS_MIB={peak:.1f} mode=all process=strata-all test=delta-{size // MiB}MiB")
        st = delta_status(s)
        assert st["decisions"].get("delta") == 1, st
        assert peak < 256, f"peak RSS {peak:.1f} MiB"
    finally:
        s.stop_and_check()


def test_delta_with_encryption_at_rest(tmp_path):
    import base64
    key = base64.b64encode(os.urandom(32)).decode()
    extra = DELTA_YAML + f"encryption:\n  mode: aes256-gcm\n  primary_key: {{id: k1, base64: \"{key}\"}}\n"
    s = Strata("all", tmp_path, extra_yaml=extra).start()
    try:
        c = boto3_client(s.endpoint)
        c.create_bucket(Bucket=BUCKET)
        versions = [base_blob(1 * MiB, 91)]
        for i in range(1, 4):
            versions.append(edit(versions[-1], 400 + i))
        for i, v in enumerate(versions):
            c.put_object(Bucket=BUCKET, Key=f"enc/v{i}", Body=v)
        st = delta_status(s)
        assert st["decisions"].get("delta") == 3, st
        # Every blob on the backend, the reference included, is sealed.
        files = blob_files(s.data_dir / "objects")
        assert files and all(f.read_bytes()[:6] == b"STRATA" for f in files)
        s.restart()  # empties the reference cache: the sealed reference is fetched and opened
        c = boto3_client(s.endpoint)
        for i, v in enumerate(versions):
            assert c.get_object(Bucket=BUCKET, Key=f"enc/v{i}")["Body"].read() == v, i
        got = c.get_object(Bucket=BUCKET, Key="enc/v3", Range="bytes=1000-200000")["Body"].read()
        assert got == versions[3][1000:200001]
    finally:
        s.stop_and_check()


def test_delta_in_split_mode_goes_through_grpc(tmp_path):
    """The data plane plans, commits and locates references and records decisions over gRPC."""
    s = Strata("split", tmp_path, extra_yaml=DELTA_YAML).start()
    try:
        c = boto3_client(s.endpoint)
        c.create_bucket(Bucket=BUCKET)
        versions = [base_blob(1 * MiB, 95)]
        for i in range(1, 4):
            versions.append(edit(versions[-1], 500 + i))
        for i, v in enumerate(versions):
            c.put_object(Bucket=BUCKET, Key=f"split/v{i}", Body=v)
        st = delta_status(s)
        assert st["decisions"] == {"reference": 1, "delta": 3}, st
        s.restart()  # a fresh data plane fetches the reference through LocateReference
        c = boto3_client(s.endpoint)
        for i, v in enumerate(versions):
            assert c.get_object(Bucket=BUCKET, Key=f"split/v{i}")["Body"].read() == v, i
    finally:
        s.stop_and_check()
