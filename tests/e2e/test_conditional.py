"""Conditional writes that hold under concurrency (issue 18, item 5).

`If-None-Match: *` and `If-Match: <etag>` on PutObject, CopyObject and CompleteMultipartUpload
are checked by the control plane in the transaction that makes the new object current. Writers
that race on one key therefore see exactly one winner; every loser gets 412 PreconditionFailed
and leaves no bytes behind on the backend.

Deployments (module-scoped, real processes):
* `split2`: a control plane and TWO data planes (`--role dataplane`), clients spread over both;
  the full 50-repetition races run here.
* `all`, `quorum` (write_quorum 2 over two local disks) and `delta` (a delta-enabled bucket):
  shorter races, so every write path commits through the same check.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import (
    ADMIN,
    SUMMARY,
    Strata,
    StrataProc,
    boto3_client,
    child_env,
    free_ports,
    http_get,
    render_config,
    unique_bucket,
    wait_until,
)

WRITERS = 20
DELTA_BUCKET = "artifacts"


class Deployment:
    """A Strata deployment plus, in `split2`, a second data plane on the same control plane."""

    def __init__(self, mode: str, root: Path):
        self.mode = mode
        self.extra: list[StrataProc] = []
        self.endpoints: list[str] = []
        self.disks = [root / "disk-a", root / "disk-b"]
        if mode == "quorum":
            backends = "\n".join(f"  - {{type: local, id: d{i}, path: {p}}}" for i, p in enumerate(self.disks))
            self.s = Strata("all", root, backends_yaml=backends,
                            extra_yaml="replication: {factor: 2, write_quorum: 2, interval_secs: 3600}\n")
        elif mode == "delta":
            self.s = Strata("all", root, extra_yaml=(
                f"delta:\n  enabled: false\n  min_size: 1\n  rules:\n    - {{bucket: {DELTA_BUCKET}, delta: on}}\n"))
        else:
            self.s = Strata("split" if mode == "split2" else "all", root)
        self.s.start()
        self.endpoints.append(self.s.endpoint)
        if mode == "split2":
            (port,) = free_ports(1)
            cfg = root / "strata-dp2.yaml"
            cfg.write_text(render_config(
                data_dir=root / "dp2", s3_port=port, grpc_port=self.s.grpc_port,
                s3_backend=f"  - {{type: local, id: local, path: {self.s.data_dir / 'objects'}}}"))
            dp2 = StrataProc("strata-dataplane-2", ["serve", "--role", "dataplane", "--config", str(cfg)],
                             root, self.s.logdir, child_env({"STRATA_CLUSTER_SECRET": self.s.cluster_secret}))
            dp2.start()
            self.extra.append(dp2)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_get(f"{url}/ready", timeout=2)[0] == 200, 60, procs=[dp2],
                       what=f"{url}/ready == 200")
            self.endpoints.append(url)
        # One client per writer, spread over the data planes (botocore clients are thread-safe
        # to use, not to create).
        self.clients = [boto3_client(self.endpoints[i % len(self.endpoints)], ADMIN) for i in range(WRITERS)]

    @property
    def procs(self):
        return self.s.procs + self.extra

    def blob_count(self) -> int:
        roots = self.disks if self.mode == "quorum" else [self.s.data_dir / "objects"]
        return sum(1 for r in roots if r.exists() for p in r.rglob("*")
                   if p.is_file() and p.suffix != ".meta" and "tmp" not in p.relative_to(r).parts)

    def stop(self) -> None:
        codes = {p.name: p.stop() for p in self.extra}
        self.s.stop_and_check()
        assert all(c == 0 for c in codes.values()), codes


@pytest.fixture(scope="module", params=["split2", "all", "quorum", "delta"])
def dep(request, tmp_path_factory):
    d = Deployment(request.param, tmp_path_factory.mktemp(f"cond-{request.param}"))
    yield d
    d.stop()


def reps(dep) -> int:
    """50 repetitions through the two data planes; 10 in the other modes."""
    return 50 if dep.mode == "split2" else 10


def bucket_for(dep, tag: str) -> str:
    name = DELTA_BUCKET if dep.mode == "delta" else unique_bucket(tag)
    try:
        dep.clients[0].create_bucket(Bucket=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    return name


def race(dep, fn) -> list:
    """Runs fn(i, client) for every writer at once (a barrier releases them together); returns
    each writer's outcome: ("ok", result) or ("error", code, http status)."""
    gate = threading.Barrier(WRITERS)

    def one(i):
        gate.wait()
        try:
            out = fn(i, dep.clients[i])
            return ("ok", out.get("ETag"))
        except ClientError as e:
            return ("error", e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(one, range(WRITERS)))


def one_winner(outcomes: list) -> int:
    winners = [i for i, o in enumerate(outcomes) if o[0] == "ok"]
    assert len(winners) == 1, f"exactly one writer must win: {outcomes}"
    losers = [o for o in outcomes if o[0] != "ok"]
    assert all(o[1:] == ("PreconditionFailed", 412) for o in losers), losers
    return winners[0]


def body(rep: int, i: int) -> bytes:
    return f"writer {i} of repetition {rep}\n".encode() * 50


def test_create_only_put_has_one_winner(dep):
    s3 = dep.clients[0]
    bucket = bucket_for(dep, "ifnonematch")
    for rep in range(reps(dep)):
        key = f"lock-{rep}"
        out = race(dep, lambda i, c: c.put_object(Bucket=bucket, Key=key, Body=body(rep, i), IfNoneMatch="*"))
        w = one_winner(out)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body(rep, w)
    # Every loser's bytes were removed: one blob per key (two in quorum mode).
    per_key = 2 if dep.mode == "quorum" else 1
    expect = reps(dep) * per_key
    if dep.mode != "delta":  # delta stores a reference per deltaspace besides the objects
        wait_until(lambda: dep.blob_count() == expect, 30, procs=dep.procs,
                   what=f"{expect} blobs on the backend (have {dep.blob_count()})")
    SUMMARY.append(f"conditional PUT ({dep.mode}): {reps(dep)} races of {WRITERS} writers, one winner each")


def test_if_match_put_has_one_winner(dep):
    s3 = dep.clients[0]
    bucket = bucket_for(dep, "ifmatch")
    for rep in range(reps(dep)):
        key = f"state-{rep}"
        etag = s3.put_object(Bucket=bucket, Key=key, Body=b"v0 " * 100)["ETag"]
        out = race(dep, lambda i, c: c.put_object(Bucket=bucket, Key=key, Body=body(rep, i), IfMatch=etag))
        w = one_winner(out)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body(rep, w)


def test_create_only_complete_multipart_has_one_winner(dep):
    s3 = dep.clients[0]
    bucket = bucket_for(dep, "mpu")
    for rep in range(reps(dep) if dep.mode == "split2" else 5):
        key = f"mpu-{rep}"
        uploads = []
        for i in range(WRITERS):
            c = dep.clients[i]
            uid = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            etag = c.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=body(rep, i))["ETag"]
            uploads.append((uid, etag))

        def complete(i, c):
            uid, etag = uploads[i]
            return c.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=uid, IfNoneMatch="*",
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})

        out = race(dep, complete)
        w = one_winner(out)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body(rep, w)
        # A loser's upload is still there: it can be aborted (its parts go).
        for i, (uid, _) in enumerate(uploads):
            if i != w:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_conditional_write_answers(dep):
    """The single-writer answers S3 gives: 404 for If-Match on a missing key, 412 for a
    mismatch, 501 for If-None-Match with an ETag, success with the right ETag; CopyObject's
    destination conditions; a repeated CompleteMultipartUpload gets the same answer."""
    if dep.mode != "split2":
        pytest.skip("protocol answers: checked once, through the split deployment")
    s3 = dep.clients[1]  # the second data plane
    bucket = bucket_for(dep, "answers")

    def code(fn):
        with pytest.raises(ClientError) as e:
            fn()
        return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]

    assert code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfMatch='"abc"')) == ("NoSuchKey", 404)
    e1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")["ETag"]
    assert code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")) \
        == ("PreconditionFailed", 412)
    assert code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch='"0123"')) \
        == ("PreconditionFailed", 412)
    e2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=e1)["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"

    # If-None-Match with an ETag on a write is not something S3 implements.
    def put_with_header(name, value):
        def add(request, **_):
            request.headers[name] = value
        s3.meta.events.register_first("before-sign.s3.PutObject", add)
        try:
            return s3.put_object(Bucket=bucket, Key="k", Body=b"three")
        finally:
            s3.meta.events.unregister("before-sign.s3.PutObject", add)
    assert code(lambda: put_with_header("If-None-Match", e2)) == ("NotImplemented", 501)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"

    # CopyObject: the destination's If-None-Match / If-Match headers.
    def copy_with(headers, dst):
        def add(request, **_):
            for k, v in headers.items():
                request.headers[k] = v
        s3.meta.events.register_first("before-sign.s3.CopyObject", add)
        try:
            return s3.copy_object(Bucket=bucket, Key=dst, CopySource={"Bucket": bucket, "Key": "k"})
        finally:
            s3.meta.events.unregister("before-sign.s3.CopyObject", add)
    copy_with({"If-None-Match": "*"}, "copy")
    assert code(lambda: copy_with({"If-None-Match": "*"}, "copy")) == ("PreconditionFailed", 412)
    assert code(lambda: copy_with({"If-Match": '"0123"'}, "copy")) == ("PreconditionFailed", 412)
    copy_with({"If-Match": e2}, "copy")
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"two"

    # CompleteMultipartUpload: If-Match, and a repeat answers with the object it made.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    pe = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"mpu")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": pe}]}
    assert code(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid, IfMatch='"0123"',
                                                     MultipartUpload=parts)) == ("PreconditionFailed", 412)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid, IfMatch=e2, MultipartUpload=parts)
    again = dep.clients[0].complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts)
    assert again["ETag"] == done["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"mpu"
    # Under another key, the completed upload id is unknown.
    assert code(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="other", UploadId=uid,
                                                     MultipartUpload=parts)) == ("NoSuchUpload", 404)
    # Once the object it made is replaced, the upload id is unknown again.
    s3.put_object(Bucket=bucket, Key="k", Body=b"four")
    assert code(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                                     MultipartUpload=parts)) == ("NoSuchUpload", 404)
