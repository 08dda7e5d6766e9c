"""Issue 6, "Tests (real processes)": PostgreSQL, Redis and 3 S3 backend servers (s3s-fs), with
2 data planes, 2 control planes and 2 workers as separate processes (tests/e2e/cluster.py).

One cluster for the module; the tests run in file order: the S3 suite (boto3, aws CLI, s3cmd,
rclone) through either data plane, replication factor 2 read from the backends' own directories
(plus a multipart object whose parts sit on every backend), each job once per cycle
across the two workers, a drain that survives a restart of every Strata process, `kill -9` of the
leading control plane with writes resuming through both data planes, and reads surviving `kill -9`
of a backend. Measurements go to the "strata measurements" summary (lines starting CLUSTER).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time

import pytest
from botocore.exceptions import ClientError

from cluster import Cluster
from harness import (
    ADMIN,
    SUMMARY,
    aws,
    client_error,
    http_get,
    multipart_etag,
    rclone_env,
    run,
    s3cmd_args,
    unique_bucket,
    wait_until,
)
from test_leadership import Load, client
from test_workers import Worker, _snapshot

KIB, MIB = 1024, 1024 * 1024


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        tails = c.tail(60)
        codes = c.stop()
    assert all(v == 0 for v in codes.values()), f"not a clean SIGTERM shutdown: {codes}\n{tails}"


@pytest.fixture(autouse=True)
def _attach_logs(cl):
    # conftest attaches the log tails of deployments created since the test began.
    cl.created_at = time.monotonic()


def clients(cl: Cluster):
    return [client(ep) for ep in cl.endpoints]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def holders(cl: Cluster, sizes: set[int]) -> dict[int, list[int]]:
    """For each size in `sizes`, the backends (by index) holding a blob of that size."""
    out: dict[int, list[int]] = {s: [] for s in sizes}
    for i, f in enumerate(cl.fs):
        for size in f.objects().values():
            if size in out:
                out[size].append(i)
    return out


def settle(cl: Cluster, job: str = "replication", cycles: int = 2) -> None:
    """Wait until `job` finished `cycles` more cycles (cluster-wide): a copy whose bytes are already on
    a backend is then also in the catalog (a cycle attaches what it wrote before it ends)."""
    start = cl.jobs(0)[job]["runs"]
    wait_until(lambda: cl.jobs(0)[job]["runs"] >= start + cycles, 20, procs=cl.workers,
               what=f"{cycles} more {job} cycles")


def factor_two(cl: Cluster, sizes: set[int]) -> None:
    """Every object of these sizes on exactly 2 backends (their directories), and in the catalog too."""
    wait_until(lambda: all(len(set(h)) == 2 for h in holders(cl, sizes).values()), 30, procs=cl.procs,
               what="every object on 2 backends")
    settle(cl)


# ---- (a) the S3 suite through either data plane ------------------------------------------------

def test_s3_suite_through_either_data_plane(cl, tmp_path):
    a, b = clients(cl)
    bucket = unique_bucket("suite")
    a.create_bucket(Bucket=bucket)
    b.head_bucket(Bucket=bucket)
    assert bucket in [x["Name"] for x in b.list_buckets()["Buckets"]]

    # PUT through one data plane, GET/HEAD/LIST through the other, byte-exact.
    bodies = {f"k/{i}": os.urandom(3 * KIB + 11 * i) for i in range(6)}
    for i, (k, v) in enumerate(bodies.items()):
        etag = (a, b)[i % 2].put_object(Bucket=bucket, Key=k, Body=v)["ETag"]
        assert etag == f'"{hashlib.md5(v).hexdigest()}"'
    for i, (k, v) in enumerate(bodies.items()):
        other = (b, a)[i % 2]
        assert other.get_object(Bucket=bucket, Key=k)["Body"].read() == v
        assert other.head_object(Bucket=bucket, Key=k)["ContentLength"] == len(v)
    for c in (a, b):
        assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="k/")["Contents"]] == sorted(bodies)

    # Multipart: parts through alternating data planes, completed through one, read through the other.
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(123_457)]
    up = b.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    done = [{"PartNumber": n + 1, "ETag": (a, b)[n % 2].upload_part(
        Bucket=bucket, Key="mpu", UploadId=up, PartNumber=n + 1, Body=p)["ETag"]} for n, p in enumerate(parts)]
    r = a.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=up, MultipartUpload={"Parts": done})
    assert r["ETag"] == multipart_etag(parts)
    assert sha(b.get_object(Bucket=bucket, Key="mpu")["Body"].read()) == sha(b"".join(parts))

    # Copy through one, read through the other; ranges through both.
    a.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k/3"})
    assert b.get_object(Bucket=bucket, Key="copy")["Body"].read() == bodies["k/3"]
    whole = b"".join(parts)
    r = a.get_object(Bucket=bucket, Key="mpu", Range=f"bytes={5 * MIB - 100}-{5 * MIB + 99}")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == whole[5 * MIB - 100:5 * MIB + 100]
    r = b.get_object(Bucket=bucket, Key="k/5", Range="bytes=-17")
    assert r["ContentRange"] == f"bytes {len(bodies['k/5']) - 17}-{len(bodies['k/5']) - 1}/{len(bodies['k/5'])}"
    assert r["Body"].read() == bodies["k/5"][-17:]

    # Bad input gets its S3 error code, through either data plane.
    with pytest.raises(ClientError) as e:
        b.get_object(Bucket=bucket, Key="k/0", Range="bytes=999999-")
    assert client_error(e) == (416, "InvalidRange")
    with pytest.raises(ClientError) as e:
        a.get_object(Bucket=bucket, Key="nope")
    assert client_error(e) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as e:
        b.get_object(Bucket=unique_bucket("absent"), Key="x")
    assert client_error(e) == (404, "NoSuchBucket")
    small = b.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    tiny = [{"PartNumber": n, "ETag": a.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=n,
                                                    Body=b"x" * 1024)["ETag"]} for n in (1, 2)]
    with pytest.raises(ClientError) as e:
        b.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=small, MultipartUpload={"Parts": tiny})
    assert client_error(e) == (400, "EntityTooSmall")
    a.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)

    # DELETE through one; gone through the other.
    b.delete_object(Bucket=bucket, Key="k/0")
    with pytest.raises(ClientError) as e:
        a.head_object(Bucket=bucket, Key="k/0")
    assert client_error(e)[0] == 404

    # aws CLI: cp up through dp0, ls and cp down through dp1.
    dp0, dp1 = cl.dp_endpoints
    src = tmp_path / "cli.bin"
    src.write_bytes(os.urandom(700 * KIB + 3))
    aws(dp0, "s3", "cp", str(src), f"s3://{bucket}/cli/file.bin")
    assert re.search(r"\s716803 file\.bin$", aws(dp1, "s3", "ls", f"s3://{bucket}/cli/").stdout, re.M)
    aws(dp1, "s3", "cp", f"s3://{bucket}/cli/file.bin", str(tmp_path / "cli.back"))
    assert (tmp_path / "cli.back").read_bytes() == src.read_bytes()

    # s3cmd puts through dp1; rclone copies it back through dp0.
    if not shutil.which("s3cmd") or not shutil.which("rclone"):
        pytest.fail("s3cmd and rclone are needed (scripts/install-deps.sh)")
    run([*s3cmd_args(dp1), "put", str(src), f"s3://{bucket}/s3cmd/file.bin"], timeout=120)
    env = rclone_env(dp0, ADMIN, tmp_path / "rclone.conf")
    run(["rclone", "--retries", "1", "copyto", f"strata:{bucket}/s3cmd/file.bin", str(tmp_path / "rc.back")],
        env=env, timeout=120)
    assert (tmp_path / "rc.back").read_bytes() == src.read_bytes()
    run(["rclone", "--retries", "1", "copyto", str(src), f"strata:{bucket}/rclone/file.bin"], env=env, timeout=120)
    assert a.get_object(Bucket=bucket, Key="rclone/file.bin")["Body"].read() == src.read_bytes()
    assert b.get_object(Bucket=bucket, Key="s3cmd/file.bin")["Body"].read() == src.read_bytes()
    # Both data planes count their backend traffic in the one shared Redis hash per backend and month.
    month = time.strftime("%Y-%m", time.gmtime())
    wait_until(lambda: len(redis_hash(cl, "cluster:applied")) >= 2, 10, what="both data planes synced to Redis")
    requests = sum(redis_hash(cl, f"cluster:usage:{month}:fs{i}").get("requests", 0) for i in range(3))
    assert requests >= len(bodies) + len(parts), requests
    # The multipart object leaves: its parts may sit on all three backends, which the drain below
    # could not finish (see test_multipart_object_over_every_backend_reaches_the_factor).
    a.delete_object(Bucket=bucket, Key="mpu")
    with pytest.raises(ClientError) as e:
        b.head_object(Bucket=bucket, Key="mpu")
    assert client_error(e)[0] == 404


def redis_hash(cl: Cluster, key: str) -> dict[str, int]:
    out = run(["redis-cli", "-p", str(cl.redis.port), "HGETALL", key], timeout=10).stdout.split()
    return {out[i]: int(out[i + 1]) for i in range(0, len(out) - 1, 2)}


def dp_metric(endpoint: str, name: str) -> float:
    """Sum of every sample of `name` on a data plane's /metrics."""
    status, _, body = http_get(f"{endpoint}/metrics")
    assert status == 200
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if re.match(rf"{name}(\{{|\s)", line))


# ---- (b) replication factor 2 across the 3 backends ------------------------------------------

def test_replication_reaches_factor_two_on_the_backends(cl):
    a, b = clients(cl)
    bucket = unique_bucket("repl")
    a.create_bucket(Bucket=bucket)
    bodies = {f"r{i}": os.urandom(77_001 + 13 * i) for i in range(9)}
    for i, (k, v) in enumerate(bodies.items()):
        (a, b)[i % 2].put_object(Bucket=bucket, Key=k, Body=v)
    sizes = {len(v) for v in bodies.values()}
    factor_two(cl, sizes)  # and kept for two more cycles: no third copy, none dropped
    h = holders(cl, sizes)
    assert all(len(v) == 2 and len(set(v)) == 2 for v in h.values()), h
    # Spread placement (lowest fill first) has put copies on all three backends by now.
    assert all(f.objects() for f in cl.fs), [len(f.objects()) for f in cl.fs]
    made = sum(Worker.metric(view(cl, w), "strata_replication_copies_made_total") for w in range(2))
    assert made >= len(bodies), made
    for i, (k, v) in enumerate(bodies.items()):
        assert sha((b, a)[i % 2].get_object(Bucket=bucket, Key=k)["Body"].read()) == sha(v)


def test_multipart_object_over_every_backend_reaches_the_factor(cl):
    """Parts spread over all three backends leave no backend free of the object: the second copy
    (one whole blob) then goes where some parts of the first are, never nowhere."""
    a, b = clients(cl)
    bucket = unique_bucket("mpu3")
    a.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MIB + 1), os.urandom(5 * MIB + 2), os.urandom(5 * MIB + 3)]
    up = a.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    done = [{"PartNumber": n + 1, "ETag": (a, b)[n % 2].upload_part(
        Bucket=bucket, Key="m", UploadId=up, PartNumber=n + 1, Body=p)["ETag"]} for n, p in enumerate(parts)]
    b.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=up, MultipartUpload={"Parts": done})
    try:
        sizes = {len(p) for p in parts}
        spread = {i for h in holders(cl, sizes).values() for i in h}
        if spread != {0, 1, 2}:
            pytest.skip(f"the parts landed on backends {sorted(spread)}, not on all three")
        whole = sum(sizes)
        wait_until(lambda: holders(cl, {whole})[whole], 30, what="a whole copy of the multipart object")
        assert len(holders(cl, {whole})[whole]) == 1, holders(cl, {whole})
        assert all(len(v) == 1 for v in holders(cl, sizes).values()), holders(cl, sizes)
        for c in (a, b):
            assert sha(c.get_object(Bucket=bucket, Key="m")["Body"].read()) == sha(b"".join(parts))
    finally:
        a.delete_object(Bucket=bucket, Key="m")


# ---- (d) each job once per cycle across the two workers ------------------------------------------

class view:
    """test_workers.Worker's status and metric readers over one of the cluster's workers."""
    get, jobs, metric = Worker.get, Worker.jobs, Worker.metric

    def __init__(self, cl: Cluster, w: int):
        self.url, self.proc = cl.worker_urls[w], cl.workers[w]


def test_each_job_runs_once_per_cycle_across_two_workers(cl):
    workers = [view(cl, w) for w in range(2)]
    t0, rows0, ran0 = _snapshot(workers)
    time.sleep(8)
    t1, rows1, ran1 = _snapshot(workers)
    elapsed, checked = t1 - t0, []
    for name, row in rows1.items():
        period = (row.get("period_ms") or 0) / 1000
        if not period or period > 3 or name not in rows0:
            continue
        checked.append(name)
        cycles = row["runs"] - rows0[name]["runs"]
        by_workers = ran1[name] - ran0[name]
        assert cycles <= elapsed / period + 1, (name, cycles, elapsed, period)
        assert cycles >= elapsed / period / 2 - 1, (name, cycles, elapsed, period)
        assert abs(by_workers - cycles) <= 1, (name, by_workers, cycles)
    assert len(checked) >= 5, rows1
    assert {"replication", "cleanup"} <= set(checked), checked
    # Both workers answer with the same cluster-wide rows.
    assert set(cl.jobs(0)) == set(cl.jobs(1))
    SUMMARY.append(f"CLUSTER exactly-once: {len(checked)} jobs over {elapsed:.1f} s with 2 workers")


# ---- (c) a drain survives a restart of everything --------------------------------------------

def backend_state(cl: Cluster, backend: str) -> str:
    return re.search(r"state: (\w+)", cl.cli("backends", "status", backend).stdout).group(1)


def test_drain_survives_a_restart_of_every_strata_process(cl):
    a, b = clients(cl)
    bucket = unique_bucket("drain")
    a.create_bucket(Bucket=bucket)
    bodies = {f"d{i:02d}": os.urandom(55_003 + 17 * i) for i in range(16)}
    for i, (k, v) in enumerate(bodies.items()):
        (a, b)[i % 2].put_object(Bucket=bucket, Key=k, Body=v)
    sizes = {len(v) for v in bodies.values()}
    factor_two(cl, sizes)
    assert any(1 in h for h in holders(cl, sizes).values()), "fs1 holds copies to drain"

    # The workers (which run the drain job) stop first, so the drain is certainly still in progress
    # when everything else stops.
    for w in cl.workers:
        assert w.stop() == 0, w.tail()
    assert "fs1: draining" in cl.cli("backends", "drain", "fs1", "--reason", "e2e restart").stdout
    time.sleep(1.5)  # control planes re-read backend states within a second
    during = {f"w{i}": os.urandom(33_001 + 23 * i) for i in range(4)}
    for i, (k, v) in enumerate(during.items()):
        (a, b)[i % 2].put_object(Bucket=bucket, Key=k, Body=v)
    assert not any(1 in h for h in holders(cl, {len(v) for v in during.values()}).values()), "writes avoid fs1"
    t0 = time.monotonic()
    codes = cl.stop_strata()
    assert all(c == 0 for c in codes.values()), codes
    assert not any(p.alive() for p in cl.procs)
    assert backend_state(cl, "fs1") == "draining", "persisted while every Strata process is down"
    cl.start_strata()
    restart = time.monotonic() - t0
    assert backend_state(cl, "fs1") in ("draining", "drained")
    SUMMARY.append(f"CLUSTER restart of all 6 Strata processes: {restart:.1f} s (stop + start until /ready)")

    new = {f"n{i}": os.urandom(44_001 + 19 * i) for i in range(6)}
    for i, (k, v) in enumerate(new.items()):
        (b, a)[i % 2].put_object(Bucket=bucket, Key=k, Body=v)
    wait_until(lambda: backend_state(cl, "fs1") == "drained", 60, procs=cl.procs, what="fs1 drained")
    wait_until(lambda: not cl.fs[1].objects(), 30, procs=cl.procs, what="fs1's blobs deleted by the cleanup job")
    bodies |= during
    all_sizes = sizes | {len(v) for v in new.values()} | {len(v) for v in during.values()}
    wait_until(lambda: all(sorted(h) == [0, 2] for h in holders(cl, all_sizes).values()), 30,
               procs=cl.procs, what="every object on fs0 and fs2")
    assert re.search(r"^fs1\s+drained\s+0\s+0", cl.cli("backends", "list").stdout, re.M)
    for i, (k, v) in enumerate((bodies | new).items()):
        assert sha((a, b)[i % 2].get_object(Bucket=bucket, Key=k)["Body"].read()) == sha(v), k
    # Leave fs1 in service for the next test.
    assert "fs1: active" in cl.cli("backends", "undrain", "fs1").stdout


# ---- (e) kill -9 of the leading control plane --------------------------------------------------

def test_kill_9_of_the_leader_writes_resume_through_both_data_planes_within_10_s(cl):
    bucket = unique_bucket("kill")
    client(cl.endpoints[0]).create_bucket(Bucket=bucket)
    old = cl.leader()
    _, term_before, _ = cl.lease()
    load = Load(cl, bucket)
    load.start()
    time.sleep(2.0)
    assert load.acked, f"no write succeeded before the kill; errors: {load.other[:5]}"
    killed_at = time.monotonic()
    cl.kill(cl.cps[old])

    def resumed(dp: int) -> float | None:
        with load.lock:
            ends = [end for key, (_, start, end) in load.acked.items()
                    if start > killed_at and int(key.split("/")[1][1:]) % 2 == dp]
        return min(ends) - killed_at if ends else None

    wait_until(lambda: resumed(0) is not None and resumed(1) is not None, 20, procs=cl.dps,
               what="writes through both data planes after the kill")
    took = [resumed(0), resumed(1)]
    time.sleep(1.0)
    load.join()
    new = cl.wait_leader()
    _, term_after, _ = cl.lease()
    summary = (f"CLUSTER leader kill -9: writes resumed after {took[0]:.2f} s (dp0) and {took[1]:.2f} s (dp1); "
               f"acknowledged {len(load.acked)}, 503 SlowDown {load.slowdowns}, other errors {len(load.other)}; "
               f"cp{old} -> cp{new}, term {term_before} -> {term_after}")
    SUMMARY.append(summary)
    print(summary)
    assert new != old and term_after > term_before
    assert max(took) < 10, summary
    # Each data plane followed the new leader after finding the old one unreachable.
    redirects = [dp_metric(ep, "strata_cp_client_redirects_total") for ep in cl.endpoints]
    assert all(r > 0 for r in redirects), redirects
    assert not load.other, f"{summary}: {load.other[:10]}"
    a, b = clients(cl)
    for i, (key, (digest, _, _)) in enumerate(sorted(load.acked.items())):
        assert sha((a, b)[i % 2].get_object(Bucket=bucket, Key=key)["Body"].read()) == digest, key
    # LIST shows each key once; only PUTs in flight when the load stopped may be there unacknowledged.
    listed = [o["Key"] for p in b.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="load/")
              for o in p.get("Contents", [])]
    assert len(listed) == len(set(listed)) and set(load.acked) <= set(listed)
    assert len(set(listed) - set(load.acked)) <= len(load.threads)
    # The killed control plane comes back as a follower; both data planes still write.
    cl.cps[old].start()
    time.sleep(1.0)
    for i, c in enumerate((a, b)):
        c.put_object(Bucket=bucket, Key=f"after/{i}", Body=io.BytesIO(b"after" * 100))
        assert (b, a)[i].get_object(Bucket=bucket, Key=f"after/{i}")["Body"].read() == b"after" * 100
    assert cl.leader() == new


# ---- replicas keep reads alive when a backend process dies -----------------------------------

def test_reads_survive_kill_9_of_a_backend_through_both_data_planes(cl):
    a, b = clients(cl)
    bucket = unique_bucket("bkill")
    a.create_bucket(Bucket=bucket)
    bodies = {f"b{i}": os.urandom(66_001 + 29 * i) for i in range(6)}
    for i, (k, v) in enumerate(bodies.items()):
        (a, b)[i % 2].put_object(Bucket=bucket, Key=k, Body=v)
    sizes = {len(v) for v in bodies.values()}
    factor_two(cl, sizes)
    on_fs0 = [s for s, h in holders(cl, sizes).items() if 0 in h]
    assert on_fs0, "fs0 holds copies"
    cl.fs[0].kill()
    try:
        for c in (a, b):
            for k, v in bodies.items():
                assert sha(c.get_object(Bucket=bucket, Key=k)["Body"].read()) == sha(v), k
    finally:
        cl.fs[0].start()
