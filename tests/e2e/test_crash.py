"""Crash safety: 500 concurrent PUTs and overwrites through Strata over three s3s-fs backends,
`kill -9` in the middle, restart, then check what the user and the operator see:

* every key reads back byte-exact as its last acknowledged PUT (or the one PUT to that key that
  was in flight at the crash, which the reaper may promote: S3 lets an unacknowledged write
  take effect or not);
* once the reaper and cleanup have run, every blob on every backend is accounted for in the
  catalog (no orphans, no reserved or orphan bytes left);
* the usage counters equal the sizes of the stored objects and of the blobs on the backends.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import SUMMARY, Strata, boto3_client, http_get, unique_bucket, wait_until
from multi import S3sFs

TOTAL_PUTS = 500
KEYS = 100
WORKERS = 25
KILL_AFTER = 250


def body_of(key: int, version: int) -> bytes:
    """Deterministic content of version `version` of key `key` (1 KiB .. ~200 KiB)."""
    size = 1024 + (key * 7919 + version * 104729) % (200 * 1024)
    seed = hashlib.sha256(f"{key}/{version}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def status(strata: Strata) -> dict:
    code, _, raw = http_get(f"{strata.endpoint}/status")
    assert code == 200
    return json.loads(raw)


@pytest.mark.slow
def test_kill_9_during_500_puts_loses_and_orphans_nothing(tmp_path):
    fs = [S3sFs(tmp_path / f"fs{i}").start() for i in range(3)]
    yaml = "\n".join(b.yaml(f"fs{i}") for i, b in enumerate(fs))
    extra = ("placement: {routing_strategy: spread}\n"
             "jobs: {reaper_min_age_secs: 2, reaper_period_secs: 1, cleanup_period_secs: 1, "
             "cleanup_lease_secs: 2}\n")
    strata = Strata("all", tmp_path / "strata", backends_yaml=yaml, extra_yaml=extra).start()
    bucket = unique_bucket("crash")
    boto3_client(strata.endpoint).create_bucket(Bucket=bucket)

    lock = threading.Lock()
    acked: dict[int, int] = {}          # key -> last acknowledged version
    inflight: dict[int, int] = {}       # key -> version being written
    counts = {"acked": 0, "failed": 0}
    killed = threading.Event()

    def worker(w: int) -> None:
        s3 = boto3_client(strata.endpoint, read_timeout=30)
        keys = list(range(w, KEYS, WORKERS))
        version = 0
        for n in range(TOTAL_PUTS // WORKERS):
            if killed.is_set():
                return
            key = keys[n % len(keys)]
            version += 1
            with lock:
                inflight[key] = version
            try:
                s3.put_object(Bucket=bucket, Key=f"k{key}", Body=body_of(key, version))
            except Exception:
                with lock:
                    counts["failed"] += 1
                continue
            with lock:
                acked[key] = version
                counts["acked"] += 1
                if counts["acked"] >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    strata.main.signal(signal.SIGKILL)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(worker, range(WORKERS)))
    strata.main.wait_exit(10)
    assert killed.is_set(), "the run ended before the kill"

    try:
        strata.main.start()
        strata.wait_ready()
        s3 = boto3_client(strata.endpoint)

        # Reaper (intents older than 2 s) and cleanup settle the catalog.
        def settled() -> bool:
            st = status(strata)
            return all(b["reserved_bytes"] == 0 and b["orphan_bytes"] == 0 for b in st["backends"])
        wait_until(settled, 60, what="no reserved or orphan bytes left")

        verified = promoted = 0
        stored_sizes = 0
        for key in range(KEYS):
            try:
                got = s3.get_object(Bucket=bucket, Key=f"k{key}")["Body"].read()
            except s3.exceptions.NoSuchKey:
                assert key not in acked, f"k{key}: acknowledged version {acked[key]} was lost"
                continue
            stored_sizes += len(got)
            last = acked.get(key, 0)
            if last and got == body_of(key, last):
                verified += 1
            elif inflight.get(key, 0) > last and got == body_of(key, inflight[key]):
                promoted += 1
            else:
                pytest.fail(f"k{key}: content is neither the acknowledged version {last} "
                            f"nor the in-flight one {inflight.get(key)}")

        blobs = {}
        for i, b in enumerate(fs):
            for blob, size in b.objects().items():
                blobs[(i, blob)] = size
        st = status(strata)
        catalog_objects = sum(b["objects"] for b in st["backends"])
        catalog_bytes = sum(b["bytes_used"] for b in st["backends"])
        orphans = len(blobs) - catalog_objects
        line = (f"CRASH_TEST acknowledged={counts['acked']} failed={counts['failed']} "
                f"keys_verified={verified} in_flight_promoted={promoted} orphans={orphans} "
                f"blobs={len(blobs)} catalog_objects={catalog_objects} "
                f"catalog_bytes={catalog_bytes} stored_bytes={stored_sizes}")
        SUMMARY.append(line)
        print(line)
        assert orphans == 0, line
        assert catalog_bytes == stored_sizes == sum(blobs.values()), line
        assert verified + promoted >= len(acked), line
    finally:
        strata.stop_and_check()
        for b in fs:
            b.stop()
