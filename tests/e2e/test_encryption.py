"""Encryption at rest (docs/encryption-format.md), seen from outside: the bytes on the backend are
sealed (header `STRATA`, 64 KiB chunks + 16-byte tags), carry no bucket/key/user metadata, and
round-trip byte-exact through boto3 and the aws CLI; ranged reads at and across chunk boundaries;
tampering on the backend is never served as complete wrong bytes; a second copy covers a corrupt
one; configuration errors are clear; a 1 GiB sealed object streams in bounded memory.

Blobs are found on the backend's own storage (the local backend's directory, or the s3s-fs
directory behind Strata in mode `s3`) by diffing the listing around a PUT.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import (
    ADMIN,
    BACKING,
    BACKING_BUCKET,
    MODES,
    SUMMARY,
    Strata,
    aws,
    boto3_client,
    http_get,
    unique_bucket,
    wait_until,
    write_pattern_file,
)

KiB = 1024
MiB = 1 << 20
CHUNK = 64 * KiB
TAG = 16
HEADER = 16
MASTER_KEY = base64.b64encode(hashlib.sha256(b"strata-e2e-master-key").digest()).decode()
PLAIN_BUCKET = "plain-bucket"
ENC_YAML = (
    "encryption:\n"
    "  mode: aes256-gcm\n"
    f"  buckets: {{{PLAIN_BUCKET}: none}}\n"
    f'  primary_key: {{id: k1, base64: "{MASTER_KEY}"}}\n'
)
# On-disk checks make sense for the local backend (all, split) and for a third-party S3 (s3).
DISK_MODES = [m for m in MODES if m in ("all", "s3")] or ["all"]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def n_chunks(n: int) -> int:
    return max(1, -(-n // CHUNK))


def sealed_len(n: int) -> int:
    return HEADER + n + TAG * n_chunks(n)


def chunk_span(i: int, plain_len: int) -> tuple[int, int]:
    """[start, end) of sealed chunk i (ciphertext + tag) inside the blob."""
    start = HEADER + i * (CHUNK + TAG)
    plain_i = min(CHUNK, plain_len - i * CHUNK)
    return start, start + plain_i + TAG


def recognisable(n: int, seed: str = "strata") -> bytes:
    """Text that is easy to spot on disk and has no repeating 32-byte slice collisions with ciphertext."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += f"{seed}:line {i:08d} the quick brown fox jumps over the lazy dog\n".encode()
        i += 1
    return bytes(out[:n])


def blob_dir(srv: Strata) -> Path:
    if srv.mode == "s3":
        return srv.root / "s3s-fs" / BACKING_BUCKET / "strata"
    return srv.data_dir / "objects" / "objects"


def blobs_in(d: Path) -> set[Path]:
    if not d.exists():
        return set()
    return {p for p in d.rglob("*") if p.is_file() and not p.name.endswith(".meta") and not p.name.startswith(".")
            and "tmp" not in p.relative_to(d).parts}


def put_and_find(s3, srv: Strata, bucket: str, key: str, body: bytes, **kw) -> Path:
    before = blobs_in(blob_dir(srv))
    s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)
    new = blobs_in(blob_dir(srv)) - before
    assert len(new) == 1, f"expected exactly one new blob under {blob_dir(srv)}, got {sorted(new)}"
    return new.pop()


def blob_metadata_text(srv: Strata, blob: Path) -> tuple[dict, str]:
    """The blob's catalog tags as stored on the backend: (normalised dict, raw text)."""
    if srv.mode == "s3":
        backing = boto3_client(srv.backing_endpoint, BACKING)
        head = backing.head_object(Bucket=BACKING_BUCKET, Key=f"strata/{blob.name}")
        md = {k.removeprefix("strata-"): v for k, v in head["Metadata"].items()}
        return md, json.dumps(head["Metadata"])
    text = Path(str(blob) + ".meta").read_text()
    md = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return md, text


def assert_no_plaintext(blob_bytes: bytes, plain: bytes) -> None:
    for off in range(0, max(0, len(plain) - 32), 997):
        s = plain[off:off + 32]
        assert s not in blob_bytes, f"plaintext slice at offset {off} found in the stored blob"


def integrity_failures(srv: Strata) -> float:
    _, _, body = http_get(f"{srv.endpoint}/metrics")
    total = 0.0
    found = False
    for m in re.finditer(r"^strata_integrity_failures_total(?:\{[^}]*\})? (\S+)$", body.decode(), re.M):
        total += float(m.group(1))
        found = True
    return total if found else -1.0


class Outcome:
    def __init__(self, ok: bool, body: bytes = b"", length: int | None = None, detail: str = ""):
        self.ok, self.body, self.length, self.detail = ok, body, length, detail

    def __repr__(self) -> str:
        return f"Outcome(ok={self.ok}, got={len(self.body)} bytes, content_length={self.length}, {self.detail})"


def fetch(s3, bucket: str, key: str, rng: str | None = None) -> Outcome:
    """GET (optionally ranged) and read the whole body; any failure becomes ok=False with its description."""
    kw = {"Range": rng} if rng else {}
    try:
        r = s3.get_object(Bucket=bucket, Key=key, **kw)
    except ClientError as e:
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        return Outcome(False, detail=f"ClientError {st} {e.response.get('Error', {}).get('Code')}")
    except Exception as e:  # noqa: BLE001 - connection reset before headers etc.
        return Outcome(False, detail=f"{type(e).__name__}: {e}")
    try:
        body = r["Body"].read()
    except Exception as e:  # noqa: BLE001 - IncompleteReadError / ResponseStreamingError / ProtocolError
        return Outcome(False, length=r["ContentLength"], detail=f"body: {type(e).__name__}: {e}")
    return Outcome(True, body, r["ContentLength"], detail=f"status {r['ResponseMetadata']['HTTPStatusCode']}")


def assert_refused(o: Outcome, what: str, wrong_len: int) -> None:
    """The client must not end up with a complete body of the expected length: an error, or a short body."""
    assert not (o.ok and len(o.body) >= wrong_len), f"{what}: tampered data served as a complete body: {o}"
    assert not o.ok or len(o.body) < (o.length or 0), f"{what}: {o}"


@pytest.fixture(scope="module", params=MODES)
def enc_server(request, tmp_path_factory):
    srv = Strata(request.param, tmp_path_factory.mktemp(f"strata-enc-{request.param}"), extra_yaml=ENC_YAML)
    srv.start()
    yield srv
    srv.stop_and_check()


@pytest.fixture(scope="module")
def enc_s3(enc_server):
    return boto3_client(enc_server.endpoint, ADMIN, read_timeout=60)


# ---------------------------------------------------------------------------
# 1. on-backend bytes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", [300 * KiB, 0, CHUNK])
def test_stored_blob_is_sealed_and_round_trips(enc_server, enc_s3, tmp_path, size):
    s3, srv = enc_s3, enc_server
    bucket = unique_bucket("sealed")
    s3.create_bucket(Bucket=bucket)
    key = f"secret/report-{size}.txt"
    body = recognisable(size, "confidential")
    blob = put_and_find(s3, srv, bucket, key, body, Metadata={"owner": "alice-wonderland"},
                        ContentType="text/x-secret")

    data = blob.read_bytes()
    assert data[:6] == b"STRATA", data[:16]
    assert data[:16] == b"STRATA\x01\x01\x10" + bytes(7), data[:16]
    assert len(data) == sealed_len(size), (len(data), sealed_len(size))
    assert_no_plaintext(data, body)

    md, raw = blob_metadata_text(srv, blob)
    assert md.get("bucket") == "" and md.get("key") == "", md
    assert md.get("codec") == "aes256-gcm", md
    for leak in (bucket, "report", "alice-wonderland", "owner", "text/x-secret"):
        assert leak not in raw, f"{leak!r} leaks into the blob's backend metadata: {raw}"

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256", head
    assert head["ContentLength"] == size
    assert head["Metadata"] == {"owner": "alice-wonderland"}
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ServerSideEncryption"] == "AES256"
    assert got["Body"].read() == body

    out = tmp_path / "cli.out"
    cp = aws(srv, "s3api", "get-object", "--bucket", bucket, "--key", key, str(out))
    assert json.loads(cp.stdout)["ServerSideEncryption"] == "AES256"
    assert out.read_bytes() == body
    out2 = tmp_path / "cli-cp.out"
    aws(srv, "s3", "cp", f"s3://{bucket}/{key}", str(out2))
    assert out2.read_bytes() == body


def test_bucket_override_none_stores_plaintext(enc_server, enc_s3):
    s3, srv = enc_s3, enc_server
    s3.create_bucket(Bucket=PLAIN_BUCKET)
    body = recognisable(300 * KiB, "public")
    blob = put_and_find(s3, srv, PLAIN_BUCKET, "plain.txt", body)
    data = blob.read_bytes()
    assert data == body, "a bucket with `encryption: none` must store the plaintext as is"
    head = s3.head_object(Bucket=PLAIN_BUCKET, Key="plain.txt")
    assert "ServerSideEncryption" not in head, head
    assert s3.get_object(Bucket=PLAIN_BUCKET, Key="plain.txt")["Body"].read() == body


# ---------------------------------------------------------------------------
# 2. ranges
# ---------------------------------------------------------------------------

def test_ranges_at_and_across_chunk_boundaries(enc_server, enc_s3):
    s3 = enc_s3
    bucket = unique_bucket("ranges")
    s3.create_bucket(Bucket=bucket)
    size = 300 * KiB + 123
    body = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    last = size - 1
    cases: list[tuple[str, int, int]] = []  # (Range header, first, last inclusive)
    fixed = [(0, 0), (65535, 65535), (65536, 65536), (65537, 65537), (131071, 131071), (131072, 131072),
             (65535, 65536), (0, 65535), (65536, 131071), (65530, 131080), (1, last - 1), (0, last),
             (last, last), (last - 70000, last), (3 * CHUNK, last), (4 * CHUNK - 1, 4 * CHUNK)]
    cases += [(f"bytes={a}-{b}", a, b) for a, b in fixed]
    cases += [("bytes=-1", last, last), ("bytes=-70000", size - 70000, last), (f"bytes=-{size}", 0, last),
              ("bytes=200000-", 200000, last), ("bytes=65536-", 65536, last), (f"bytes=0-{size + 999}", 0, last)]
    rnd = random.Random(1234)
    for _ in range(50):
        a = rnd.randrange(size)
        b = rnd.randrange(a, min(size, a + rnd.choice([1, 100, CHUNK, 3 * CHUNK])))
        cases.append((f"bytes={a}-{b}", a, b))
    for hdr, a, b in cases:
        r = s3.get_object(Bucket=bucket, Key="r", Range=hdr)
        got = r["Body"].read()
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, hdr
        assert r["ContentRange"] == f"bytes {a}-{b}/{size}", (hdr, r["ContentRange"])
        assert got == body[a:b + 1], f"{hdr}: {len(got)} bytes, expected {b + 1 - a}"


# ---------------------------------------------------------------------------
# 3. tampering
# ---------------------------------------------------------------------------

TAMPER_SIZE = 3 * CHUNK + CHUNK // 2  # chunks 0, 1, 2 full, chunk 3 half


def _flip(data: bytearray, at: int) -> None:
    data[at] ^= 0x01


def tamper_flip_chunk1(data: bytearray, other: bytes) -> bytes:
    s, _ = chunk_span(1, TAMPER_SIZE)
    _flip(data, s + 1000)
    return bytes(data)


def tamper_truncate_last(data: bytearray, other: bytes) -> bytes:
    return bytes(data[:-10])


def tamper_drop_last(data: bytearray, other: bytes) -> bytes:
    s, _ = chunk_span(3, TAMPER_SIZE)
    return bytes(data[:s])


def tamper_swap_1_2(data: bytearray, other: bytes) -> bytes:
    s1, e1 = chunk_span(1, TAMPER_SIZE)
    s2, e2 = chunk_span(2, TAMPER_SIZE)
    c1, c2 = bytes(data[s1:e1]), bytes(data[s2:e2])
    data[s1:e1] = c2
    data[s2:e2] = c1
    return bytes(data)


def tamper_splice_chunk1(data: bytearray, other: bytes) -> bytes:
    s1, e1 = chunk_span(1, TAMPER_SIZE)
    assert other[s1:e1] != data[s1:e1]
    data[s1:e1] = other[s1:e1]
    return bytes(data)


def tamper_header(data: bytearray, other: bytes) -> bytes:
    _flip(data, 12)  # a reserved header byte
    return bytes(data)


C = CHUNK
# name -> (tamper, [good plaintext ranges], [bad plaintext ranges])
TAMPERS = {
    "flip-byte-chunk1": (tamper_flip_chunk1, [(100, 2000), (2 * C + 5, 2 * C + 500)], [(C + 900, C + 1100)]),
    "truncate-last-chunk": (tamper_truncate_last, [(100, 2000), (C, 2 * C - 1)], [(3 * C + 10, 3 * C + 20)]),
    "drop-last-chunk": (tamper_drop_last, [(100, 2000), (2 * C, 3 * C - 1)], [(3 * C + 10, 3 * C + 20)]),
    "swap-chunks-1-2": (tamper_swap_1_2, [(100, 2000), (3 * C + 1, 3 * C + 100)], [(C + 1, C + 10),
                                                                                  (2 * C + 1, 2 * C + 10)]),
    "splice-chunk1-from-other": (tamper_splice_chunk1, [(0, C - 1), (2 * C, 2 * C + 99)], [(C, C + 99)]),
    "flip-header": (tamper_header, [(2 * C + 7, 2 * C + 700)], [(0, 99)]),
}


@pytest.fixture(scope="module", params=DISK_MODES)
def tamper_server(request, tmp_path_factory):
    srv = Strata(request.param, tmp_path_factory.mktemp(f"strata-tamper-{request.param}"), extra_yaml=ENC_YAML)
    srv.start()
    yield srv
    srv.stop_and_check()


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampered_blob_is_never_served_as_good(tamper_server, case):
    srv = tamper_server
    s3 = boto3_client(srv.endpoint, ADMIN, read_timeout=30)
    bucket = unique_bucket(f"tamper-{case}")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(TAMPER_SIZE)
    blob = put_and_find(s3, srv, bucket, "victim", body)
    other_blob = put_and_find(s3, srv, bucket, "other", os.urandom(TAMPER_SIZE))
    original = blob.read_bytes()
    assert len(original) == sealed_len(TAMPER_SIZE)
    assert fetch(s3, bucket, "victim").body == body  # sanity before tampering

    tamper, good, bad = TAMPERS[case]
    tampered = tamper(bytearray(original), other_blob.read_bytes())
    assert tampered != original
    blob.write_bytes(tampered)

    full = fetch(s3, bucket, "victim")
    assert_refused(full, f"{case}: full GET", TAMPER_SIZE)
    assert full.body != body
    for a, b in bad:
        o = fetch(s3, bucket, "victim", f"bytes={a}-{b}")
        assert_refused(o, f"{case}: GET bytes={a}-{b} (tampered chunk)", b + 1 - a)
    for a, b in good:
        o = fetch(s3, bucket, "victim", f"bytes={a}-{b}")
        assert o.ok and o.body == body[a:b + 1], f"{case}: GET bytes={a}-{b} (untouched chunk): {o}"
    # the untouched object is still fine
    assert fetch(s3, bucket, "other").ok
    assert integrity_failures(srv) > 0, "strata_integrity_failures_total missing or 0 after a tampered read"
    assert srv.main.alive()


# ---------------------------------------------------------------------------
# 4. a second copy covers a corrupt one
# ---------------------------------------------------------------------------

class TwoCopies:
    def __init__(self, srv, s3, bucket, bodies, dirs, oid_of):
        self.srv, self.s3, self.bucket, self.bodies, self.dirs, self.oid_of = srv, s3, bucket, bodies, dirs, oid_of

    def copies(self, d: Path) -> dict[str, Path]:
        """object-id (from the sidecar) -> blob, for one backend directory."""
        out = {}
        for p in blobs_in(d / "objects"):
            md = dict(line.split("=", 1) for line in Path(str(p) + ".meta").read_text().splitlines() if "=" in line)
            out[md.get("object-id", p.name)] = p
        return out


@pytest.fixture(scope="module")
def two_copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("strata-two-copies")
    d1, d2 = root / "d1", root / "d2"
    yaml = f"  - {{type: local, id: d1, path: {d1}}}\n  - {{type: local, id: d2, path: {d2}}}"
    srv = Strata("all", root / "strata", backends_yaml=yaml,
                 extra_yaml=ENC_YAML + "replication: {factor: 2, interval_secs: 1}\n").start()
    s3 = boto3_client(srv.endpoint, ADMIN, read_timeout=30)
    bucket = unique_bucket("two-copies")
    s3.create_bucket(Bucket=bucket)
    bodies = {f"o-{d}-{c}": os.urandom(TAMPER_SIZE) for d in ("d1", "d2") for c in (0, 2)}

    def names() -> set[str]:
        return {p.name for p in blobs_in(d1 / "objects") | blobs_in(d2 / "objects")}

    oid_of = {}
    for k, b in bodies.items():
        before = names()
        s3.put_object(Bucket=bucket, Key=k, Body=b, Metadata={"colour": "ultraviolet"})
        (oid_of[k],) = names() - before
    tc = TwoCopies(srv, s3, bucket, bodies, (d1, d2), oid_of)
    wait_until(lambda: all(set(tc.copies(d)) == set(oid_of.values()) for d in (d1, d2)), 60, interval=0.5,
               procs=srv.procs, what="two copies of every object (replication factor 2)")
    yield tc
    srv.stop_and_check()


def test_replicated_copies_are_sealed_too(two_copies):
    tc = two_copies
    for d in tc.dirs:
        for oid, blob in tc.copies(d).items():
            data = blob.read_bytes()
            meta = Path(str(blob) + ".meta").read_text()
            where = f"copy of object {oid} on backend {d.name} ({blob})"
            assert data[:6] == b"STRATA", f"{where} is not sealed: starts {data[:16]!r}, size {len(data)}"
            assert len(data) == sealed_len(TAMPER_SIZE), where
            assert tc.bucket not in meta and "o-d" not in meta and "ultraviolet" not in meta, \
                f"{where}: backend metadata leaks bucket/key/user metadata:\n{meta}"
            assert "codec=aes256-gcm" in meta, f"{where}:\n{meta}"
    for k, b in tc.bodies.items():
        r = tc.s3.get_object(Bucket=tc.bucket, Key=k)
        assert r["ServerSideEncryption"] == "AES256"
        assert r["Body"].read() == b


def test_corrupt_copy_is_skipped_when_another_copy_exists(two_copies):
    tc = two_copies
    s3 = tc.s3
    d1, d2 = tc.dirs
    for k, b in tc.bodies.items():
        assert s3.get_object(Bucket=tc.bucket, Key=k)["Body"].read() == b
    # corrupt one copy of each object: on d1 or d2, in chunk 0 or in chunk 2 (mid-stream)
    for k in tc.bodies:
        _, d, c = k.split("-")
        target = tc.copies(d1 if d == "d1" else d2)[tc.oid_of[k]]
        data = bytearray(target.read_bytes())
        s = chunk_span(int(c), TAMPER_SIZE)[0] if data[:6] == b"STRATA" else int(c) * CHUNK
        data[s + 77] ^= 0xFF
        target.write_bytes(bytes(data))
    for k, b in tc.bodies.items():
        o = fetch(s3, tc.bucket, k)
        assert o.ok and o.body == b, f"{k}: one copy corrupt, the other intact, GET gave {o}"
    assert integrity_failures(tc.srv) > 0


# ---------------------------------------------------------------------------
# 5. config errors
# ---------------------------------------------------------------------------

def _start_fails(tmp_path: Path, name: str, extra_yaml: str) -> str:
    srv = Strata("all", tmp_path / name, extra_yaml=extra_yaml)
    srv.main.start()
    rc = srv.main.wait_exit(30)
    if rc is None:
        srv.main.stop()
        pytest.fail(f"{name}: strata kept running with a bad encryption config\n{srv.main.tail(20)}")
    assert rc != 0, f"{name}: exit code 0\n{srv.main.tail(20)}"
    return srv.main.stderr_text() + srv.main.stdout_text()


def test_config_without_encryption_section_starts(tmp_path):
    """Encryption is optional: a config with no `encryption:` section must start as before."""
    srv = Strata("all", tmp_path / "noenc")
    srv.start()
    try:
        s3 = boto3_client(srv.endpoint, ADMIN)
        b = unique_bucket("noenc")
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="k", Body=b"plain")
        assert "ServerSideEncryption" not in s3.head_object(Bucket=b, Key="k")
    finally:
        srv.stop_and_check()


def test_config_errors_are_clear(tmp_path):
    err = _start_fails(tmp_path, "nokey", "encryption:\n  mode: aes256-gcm\n")
    assert "encryption.primary_key" in err, err[-2000:]

    keyfile = tmp_path / "short.key"
    keyfile.write_bytes(os.urandom(31))
    err = _start_fails(tmp_path, "shortfile",
                       f"encryption:\n  mode: aes256-gcm\n  primary_key: {{id: k1, file: {keyfile}}}\n")
    assert str(keyfile) in err, err[-2000:]
    assert re.search(r"\b32 (raw )?bytes", err), err[-2000:]

    err = _start_fails(tmp_path, "badb64",
                       'encryption:\n  mode: aes256-gcm\n  primary_key: {id: k1, base64: "not*base64!!"}\n')
    assert ("encryption.primary_key" in err or "encryption key 'k1'" in err) and "base64" in err, err[-2000:]

    short = base64.b64encode(os.urandom(16)).decode()
    err = _start_fails(tmp_path, "b64short",
                       f'encryption:\n  mode: aes256-gcm\n  primary_key: {{id: k1, base64: "{short}"}}\n')
    assert "encryption.primary_key" in err or "encryption key 'k1'" in err, err[-2000:]
    assert re.search(r"\b32 (raw )?bytes", err), err[-2000:]


# ---------------------------------------------------------------------------
# 6. 1 GiB sealed object in bounded memory
# ---------------------------------------------------------------------------

BIG = int(os.environ.get("STRATA_E2E_ENC_BIG_MIB", "1024")) * MiB
RSS_LIMIT_MIB = 256


@pytest.mark.slow
def test_1gib_sealed_object_streams_in_bounded_memory(tmp_path):
    srv = Strata("all", tmp_path / "strata", extra_yaml=ENC_YAML).start()
    path = tmp_path / "big.bin"
    try:
        digest = write_pattern_file(path, BIG)
        s3 = boto3_client(srv.endpoint, ADMIN)
        bucket = unique_bucket("enc-big")
        s3.create_bucket(Bucket=bucket)
        before = blobs_in(blob_dir(srv))
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key="big.bin", Body=f)
        (blob,) = blobs_in(blob_dir(srv)) - before
        assert blob.stat().st_size == sealed_len(BIG)
        with open(blob, "rb") as f:
            assert f.read(6) == b"STRATA"
        path.unlink()

        got = s3.get_object(Bucket=bucket, Key="big.bin")
        assert got["ContentLength"] == BIG
        assert got["ServerSideEncryption"] == "AES256"
        h = hashlib.sha256()
        n = 0
        for chunk in got["Body"].iter_chunks(4 * MiB):
            h.update(chunk)
            n += len(chunk)
        assert n == BIG
        assert h.hexdigest() == digest
        mib = srv.main.vm_hwm_kib() / 1024
        line = f"PEAK_RSS_MIB={mib:.1f} mode={srv.mode} process={srv.main.name} test=encrypted-{BIG // MiB}MiB"
        print(line)
        SUMMARY.append(line)
        assert mib < RSS_LIMIT_MIB
    finally:
        path.unlink(missing_ok=True)
        srv.stop_and_check()
