"""Drain, removal/purge, over-replication cleanup and rebalance (issue 6, item 3) against
real processes: Strata in front of s3s-fs backends, PostgreSQL for the restart test, boto3
as the client and the `strata backends` CLI as the operator.

What is on a backend is read from the s3s-fs root directory itself, never from Strata.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import time

import pytest

from harness import STRATA_BIN, Strata, boto3_client, child_env, http_get, run, unique_bucket, wait_until
from multi import S3sFs
from pg import Postgres, db_yaml

KIB = 1024
MIB = 1024 * KIB
# Short periods: a drain, over-replication or rebalance cycle every second.
FAST = ("jobs: {cleanup_period_secs: 1}\n"
        "rebalance: {drain_period_secs: 1, overreplication_period_secs: 1, period_secs: 1")


def start(tmp_path, backends: list[S3sFs], extra: str = "", rebalance: str = "", name: str = "strata") -> Strata:
    yaml = "\n".join(b.yaml(f"fs{i}") for i, b in enumerate(backends))
    cfg = FAST + (", " + rebalance if rebalance else "") + "}\n" + extra
    return Strata("all", tmp_path / name, backends_yaml=yaml, extra_yaml=cfg).start()


def cli(s: Strata, *args: str, check: bool = True):
    env = child_env({"STRATA_CLUSTER_SECRET": s.cluster_secret})
    return run([STRATA_BIN, "backends", *args, "--config", str(s.config_path)], env=env, check=check, timeout=60)


def state(s: Strata, backend: str) -> str:
    out = cli(s, "status", backend).stdout
    return re.search(r"state: (\w+)", out).group(1)


def metric(s: Strata, name: str, labels: str) -> float:
    _, _, body = http_get(f"{s.endpoint}/metrics")
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in body.decode().splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return -1.0


def put_all(c, bucket: str, n: int, size: int, tag: str = "o") -> dict[str, bytes]:
    bodies = {f"{tag}-{i:02d}": os.urandom(size + i) for i in range(n)}
    for k, v in bodies.items():
        c.put_object(Bucket=bucket, Key=k, Body=v)
    return bodies


def check_all(c, bucket: str, bodies: dict[str, bytes]) -> None:
    for k, v in bodies.items():
        got = c.get_object(Bucket=bucket, Key=k)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(v).digest(), k


@pytest.fixture
def fs3(tmp_path):
    backends = [S3sFs(tmp_path / f"fs{i}").start() for i in range(3)]
    yield backends
    for b in backends:
        b.stop()


def test_drain_moves_every_object_off_and_new_writes_avoid_it(tmp_path, fs3):
    s = start(tmp_path, fs3, "placement: {routing_strategy: spread}\n")
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("drain")
        c.create_bucket(Bucket=bucket)
        bodies = put_all(c, bucket, 12, 40 * KIB)
        big = os.urandom(6 * MIB + 123)  # multipart: 2 parts, possibly on two backends
        c.upload_fileobj(io.BytesIO(big), bucket, "big")
        bodies["big"] = big
        assert fs3[1].objects(), "spread placed some objects on fs1"

        out = cli(s, "drain", "fs1", "--reason", "disk swap").stdout
        assert "fs1: draining" in out, out
        time.sleep(1.5)  # control planes re-read backend states within a second
        new = put_all(c, bucket, 6, 10 * KIB, tag="new")
        wait_until(lambda: state(s, "fs1") == "drained", 60, what="fs1 drained")
        wait_until(lambda: not fs3[1].objects(), 30, what="fs1's blobs deleted by the cleanup job")
        listed = cli(s, "list").stdout
        assert re.search(r"^fs1\s+drained\s+0\s+0", listed, re.M), listed
        check_all(c, bucket, bodies | new)
        assert sum(len(b.objects()) for b in (fs3[0], fs3[2])) >= len(bodies) + len(new)

        status = json.loads(http_get(f"{s.endpoint}/status")[2])
        drain = [j for j in status["jobs"] if j["name"] == "drain:fs1"]
        assert drain and drain[0]["state"] == "done", status["jobs"]
        fs1 = [b for b in status["backends"] if b["backend_id"] == "fs1"][0]
        assert fs1["eligible_for_writes"] is False
        assert metric(s, "strata_backend_state", 'backend="fs1",state="drained"') == 1.0
        assert metric(s, "strata_drain_remaining_objects", 'backend="fs1"') == 0.0
        # A drained backend stays out of writes until undrained.
        put_all(c, bucket, 3, 1 * KIB, tag="later")
        assert not fs3[1].objects()
        assert "fs1: active" in cli(s, "undrain", "fs1").stdout
        bad = cli(s, "undrain", "fs1", check=False)
        assert bad.returncode == 1 and "not draining or drained" in bad.stderr
        # Drain again (it holds nothing now), then remove it: its records go, it stays out of writes.
        cli(s, "drain", "fs1")
        wait_until(lambda: state(s, "fs1") == "drained", 30, what="fs1 drained again")
        out = cli(s, "remove", "fs1").stdout
        assert "fs1: removed; dropped 0 copies, deleted 0 objects" in out, out
        assert state(s, "fs1") == "removed"
        bad = cli(s, "drain", "fs1", check=False)
        assert bad.returncode == 1 and "is removed" in bad.stderr, bad.stderr
        check_all(c, bucket, bodies | new)
    finally:
        s.stop_and_check()


def test_a_drain_survives_a_restart_of_everything(tmp_path, fs3):
    pg = Postgres()
    pg.start()
    try:
        db = pg.create_database()
        s = start(tmp_path, fs3, db_yaml(pg, db) + "placement: {routing_strategy: spread}\n")
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("restart")
        c.create_bucket(Bucket=bucket)
        bodies = put_all(c, bucket, 30, 30 * KIB)
        assert fs3[0].objects()
        cli(s, "drain", "fs0")
        # Stop everything right after the drain started: Strata, the backends, PostgreSQL.
        codes = s.stop()
        assert all(v == 0 for v in codes.values()), codes
        for b in fs3:
            b.stop()
        pg.pause()

        pg.resume()
        for b in fs3:
            b.start()
        s.start()
        assert state(s, "fs0") in ("draining", "drained")
        time.sleep(1.5)
        new = put_all(c, bucket, 6, 5 * KIB, tag="after")
        wait_until(lambda: state(s, "fs0") == "drained", 60, what="fs0 drained after the restart")
        wait_until(lambda: not fs3[0].objects(), 30, what="fs0 emptied")
        check_all(c, bucket, bodies | new)
        s.stop_and_check()
    finally:
        pg.stop()


def hmac_token(secret: str, backend: str, objects: int, blobs: int, nbytes: int, expires: int) -> str:
    msg = f"strata-purge-v1\n{backend}\n{objects}\n{blobs}\n{nbytes}\n{expires}"
    return f"{backend}:{expires}:" + hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def test_purge_needs_a_fresh_token_for_that_backend_then_deletes_its_objects(tmp_path, fs3):
    two = fs3[:2]
    s = start(tmp_path, two, "placement: {routing_strategy: spread}\n")
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("purge")
        c.create_bucket(Bucket=bucket)
        bodies = put_all(c, bucket, 10, 8 * KIB)
        on_fs1 = len(two[1].objects())
        assert on_fs1 > 0
        removed = cli(s, "remove", "fs1", check=False)
        assert removed.returncode == 1 and f"{on_fs1} objects would lose their last copy" in removed.stderr

        preview = cli(s, "purge", "fs1").stdout
        m = re.search(r"delete (\d+) blobs \((\d+) bytes\) from it and (\d+) objects", preview)
        assert m, preview
        blobs, nbytes, objects = map(int, m.groups())
        assert (blobs, objects) == (on_fs1, on_fs1), preview
        assert nbytes == sum(two[1].objects().values())
        token = re.search(r"--confirm (\S+)", preview).group(1)
        assert two[1].objects(), "a preview deletes nothing"

        wrong = cli(s, "purge", "fs1", "--confirm", token[:-4] + "0000", check=False)
        assert wrong.returncode == 1 and "does not match" in wrong.stderr, wrong.stderr
        other = re.search(r"--confirm (\S+)", cli(s, "purge", "fs0").stdout).group(1)
        wrong = cli(s, "purge", "fs1", "--confirm", other, check=False)
        assert wrong.returncode == 1 and "is for backend `fs0`, not `fs1`" in wrong.stderr, wrong.stderr
        expired = hmac_token(s.cluster_secret, "fs1", objects, blobs, nbytes, int(time.time() * 1000) - 60_000)
        wrong = cli(s, "purge", "fs1", "--confirm", expired, check=False)
        assert wrong.returncode == 1 and "expired" in wrong.stderr, wrong.stderr
        assert len(two[1].objects()) == on_fs1

        done = cli(s, "purge", "fs1", "--confirm", token).stdout
        assert f"deleted {on_fs1} blobs" in done, done
        assert not two[1].objects()
        assert state(s, "fs1") == "removed"
        gone = 0
        for k, v in bodies.items():
            try:
                assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == v
            except c.exceptions.NoSuchKey:
                gone += 1
        assert gone == on_fs1
        time.sleep(1.5)
        put_all(c, bucket, 4, 1 * KIB, tag="after")
        assert not two[1].objects(), "a removed backend still in the config takes no writes"
    finally:
        s.stop_and_check()


def holders(backends: list[S3sFs]) -> int:
    return sum(len(b.objects()) for b in backends)


def test_lowering_the_factor_removes_surplus_copies(tmp_path, fs3):
    s = start(tmp_path, fs3, "replication: {factor: 3, interval_secs: 1}\n")
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("overrep")
        c.create_bucket(Bucket=bucket)
        bodies = put_all(c, bucket, 6, 12 * KIB)
        # Wait for the catalog, not the backends: a copy whose bytes are on a backend but not yet
        # attached when the server stops stays an intent (the reaper's, an hour later), and the
        # lower factor would then have one surplus copy less to remove.
        wait_until(lambda: metric(s, "strata_replication_copies_made_total", "") == 12.0, 60,
                   what="2 further copies of each object attached")
        assert all(len(b.objects()) == 6 for b in fs3), "3 copies of each object"
        s.stop()
        s.config_path.write_text(s.config_path.read_text().replace("factor: 3", "factor: 2"))
        s.start()
        wait_until(lambda: holders(fs3) == 12, 60, what="surplus copies removed down to factor 2")
        time.sleep(2)
        assert holders(fs3) == 12, "never below the factor"
        check_all(c, bucket, bodies)
        assert metric(s, "strata_overreplication_removed_total", "") == 6.0
    finally:
        s.stop_and_check()


def test_rebalance_spread_moves_objects_to_an_empty_backend(tmp_path, fs3):
    two = fs3[:2]
    # Pack fills fs0 first: every object lands there.
    s = start(tmp_path, two, "placement: {routing_strategy: pack}\n")
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("rebal")
        c.create_bucket(Bucket=bucket)
        bodies = put_all(c, bucket, 20, 16 * KIB)
        assert len(two[0].objects()) == 20 and not two[1].objects()
        s.stop()
        s.config_path.write_text(s.config_path.read_text().replace(
            "rebalance: {", "rebalance: {enabled: true, strategy: spread, "))
        s.start()
        total = sum(two[0].objects().values())

        def balanced() -> bool:
            a, b = sum(two[0].objects().values()), sum(two[1].objects().values())
            return b > 0 and abs(a - b) <= total * 0.15

        wait_until(balanced, 60, what="fs0 and fs1 within 15 % of each other")
        assert 7 <= len(two[1].objects()) <= 13, (len(two[0].objects()), len(two[1].objects()))
        check_all(c, bucket, bodies)
        moves = metric(s, "strata_rebalance_moves_total", "")
        assert moves >= 7, moves
    finally:
        s.stop_and_check()
