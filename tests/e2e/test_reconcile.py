"""The reconciler against real processes: Strata (`--role all`, on SQLite and on a real
PostgreSQL) in front of two s3s-fs backends with replication factor 2. An orphan planted directly on a backend is
queued and deleted; a copy deleted behind Strata's back is noticed and made again.

What is on each backend is read from the backend itself (boto3 to s3s-fs, or its
directory), never from Strata.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from harness import Strata, boto3_client, http_get, unique_bucket, wait_until
from multi import PREFIX, S3sFs
from pg import Postgres, db_yaml

KIB = 1024
# Short period and grace so that a pass runs every 2 s and a planted blob is old enough in 3 s.
EXTRA = ("replication: {factor: 2, interval_secs: 1}\n"
         "placement: {routing_strategy: spread}\n"
         "jobs: {reconcile_period_secs: 2, reconcile_grace_secs: 3, cleanup_period_secs: 1}\n")


@pytest.fixture
def fs2(tmp_path):
    backends = [S3sFs(tmp_path / f"fs{i}").start() for i in range(2)]
    yield backends
    for b in backends:
        b.stop()


@pytest.fixture(scope="module")
def cluster():
    """One PostgreSQL for the module, started on first use; each test gets its own database."""
    pg: list[Postgres] = []
    yield pg
    for c in pg:
        c.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, cluster) -> str:
    if request.param == "sqlite":
        return ""
    if not cluster:
        cluster.append(Postgres())
        cluster[0].start()
    return db_yaml(cluster[0], cluster[0].create_database())


def start(tmp_path, backends: list[S3sFs], database: str) -> Strata:
    yaml = "\n".join(b.yaml(f"fs{i}") for i, b in enumerate(backends))
    return Strata("all", tmp_path / "strata", backends_yaml=yaml, extra_yaml=EXTRA + database).start()


def metric(s: Strata, name: str, backend: str) -> float:
    _, _, body = http_get(f"{s.endpoint}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(f'{name}{{backend="{backend}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def reconcile_status(s: Strata, backend: str) -> dict:
    status = json.loads(http_get(f"{s.endpoint}/status")[2])
    rows = [j for j in status["jobs"] if j["name"] == f"reconcile:{backend}"]
    return rows[0] if rows else {}


def holders(backends: list[S3sFs], key: str) -> dict[int, list[str]]:
    """Backend index -> blobs there whose catalog tag names Strata key `key`."""
    out: dict[int, list[str]] = {}
    for i, b in enumerate(backends):
        for blob in b.objects():
            if b.head(blob)["Metadata"].get("strata-key") == key:
                out.setdefault(i, []).append(blob)
    return out


def put_replicated(s3, bucket: str, key: str, body: bytes, fs2: list[S3sFs]) -> dict[int, list[str]]:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    wait_until(lambda: len(holders(fs2, key)) == 2, 30, what=f"{key} on both backends")
    return holders(fs2, key)


def test_an_orphan_planted_on_a_backend_is_queued_and_deleted(tmp_path, fs2, database):
    strata = start(tmp_path, fs2, database)
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("orphan")
        s3.create_bucket(Bucket=bucket)
        bodies = {f"obj-{i}": os.urandom(20 * KIB + i) for i in range(3)}
        for key, body in bodies.items():
            put_replicated(s3, bucket, key, body, fs2)
        before = [dict(b.objects()) for b in fs2]

        # Bytes no catalog row names, named like a blob, and a foreign object in the bucket.
        orphan = uuid.uuid4().hex
        raw = fs2[0].client()
        raw.put_object(Bucket=fs2[0].bucket, Key=PREFIX + orphan, Body=b"left behind by a crash" * 100)
        raw.put_object(Bucket=fs2[0].bucket, Key=PREFIX + "notes.txt", Body=b"not Strata's")
        assert orphan in fs2[0].objects()

        wait_until(lambda: orphan not in fs2[0].objects(), 40, procs=strata.procs,
                   what="the orphan deleted from fs0")
        assert metric(strata, "strata_reconcile_orphans_total", "fs0") >= 1
        row = reconcile_status(strata, "fs0")
        assert "orphans=" in row.get("detail", ""), row

        # Nothing of Strata's changed, the foreign object is untouched, and every object reads back.
        after = [dict(b.objects()) for b in fs2]
        assert after[0] == {**before[0], "notes.txt": len(b"not Strata's")}, (before, after)
        assert after[1] == before[1]
        for key, body in bodies.items():
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        assert metric(strata, "strata_reconcile_missing_total", "fs0") == 0
        assert metric(strata, "strata_reconcile_missing_total", "fs1") == 0
    finally:
        strata.stop_and_check()


def test_a_copy_deleted_behind_stratas_back_is_made_again(tmp_path, fs2, database):
    strata = start(tmp_path, fs2, database)
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("lost")
        s3.create_bucket(Bucket=bucket)
        body = os.urandom(300 * KIB)
        where = put_replicated(s3, bucket, "precious", body, fs2)
        other = put_replicated(s3, bucket, "bystander", b"unrelated" * 50, fs2)

        # Delete the copy on fs1 directly on the backend.
        (lost,) = where[1]
        fs2[1].client().delete_object(Bucket=fs2[1].bucket, Key=PREFIX + lost)
        assert lost not in fs2[1].objects()

        def healed() -> bool:
            # Reads stay byte-exact all along (from the surviving copy meanwhile).
            assert s3.get_object(Bucket=bucket, Key="precious")["Body"].read() == body
            now = holders(fs2, "precious")
            return len(now) == 2 and lost not in now.get(1, [])

        wait_until(healed, 45, interval=0.5, procs=strata.procs, what="a new copy of `precious` on fs1")
        assert metric(strata, "strata_reconcile_missing_total", "fs1") == 1
        assert metric(strata, "strata_reconcile_lost_total", "fs1") == 0
        now = holders(fs2, "precious")
        assert now[0] == where[0], "the surviving copy is untouched"
        assert fs2[1].objects()[now[1][0]] == fs2[0].objects()[now[0][0]], "a full copy"
        assert s3.get_object(Bucket=bucket, Key="precious")["Body"].read() == body
        assert holders(fs2, "bystander") == other
        # The dropped copy's row is cleaned up, and the next passes find nothing amiss.
        time.sleep(3)
        wait_until(lambda: "missing=0" in reconcile_status(strata, "fs1").get("detail", ""), 20,
                   what="a clean pass over fs1")
        assert metric(strata, "strata_reconcile_missing_total", "fs1") == 1
    finally:
        strata.stop_and_check()
