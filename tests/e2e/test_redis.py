"""Redis shared usage counters (issue 6, item 4) with real processes.

One control plane (SQLite) and two `--role dataplane` processes share a real `redis-server`
and two s3s-fs backends: `lim` (api_request_limit 40, first in pack order) and `big` (no
limit). Every data plane counts against one Redis hash per backend and month, so writes
overflow to `big` once the two data planes TOGETHER have used `lim`'s 40 requests, within the
margin docs/redis.md documents. Then Redis is killed under load and restarted empty; the data
planes count locally meanwhile, re-sync exactly once when it returns, and the Redis counters
converge to the requests, egress and ingress the data planes really sent (their Prometheus
counters).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import pytest

from harness import (
    StrataProc,
    boto3_client,
    child_env,
    free_port,
    http_get,
    unique_bucket,
    wait_until,
)
from multi import S3sFs
from pg import Redis
from harness import Strata

LIMIT = 40
# docs/redis.md: each data plane may overshoot by the requests it has in flight plus what the
# other data planes sent within about two sync periods (here 2 threads per data plane, 20 ms).
MARGIN = 12


def metric(endpoint: str, name: str, backend: str | None = None) -> float:
    status, _, body = http_get(f"{endpoint}/metrics")
    assert status == 200
    total = 0.0
    for line in body.decode().splitlines():
        if not line.startswith(name):
            continue
        m = re.match(rf'{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$', line)
        if m is None:
            continue
        if backend is not None and f'backend="{backend}"' not in (m.group(1) or ""):
            continue
        total += float(m.group(2))
    return total


def redis_hash(redis: Redis, key: str) -> dict[str, int]:
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "HGETALL", key], capture_output=True, text=True,
                         timeout=10, check=True).stdout.split()
    return {out[i]: int(out[i + 1]) for i in range(0, len(out) - 1, 2)}


@pytest.fixture
def cluster(tmp_path):
    fs = [S3sFs(tmp_path / "lim", name="lim"), S3sFs(tmp_path / "big", name="big")]
    for f in fs:
        f.start()
    redis = Redis().start()
    backends = fs[0].yaml("lim", api_request_limit=LIMIT) + "\n" + fs[1].yaml("big")
    extra = (f"redis: {{url: '{redis.url}', key_prefix: 't:', sync_ms: 20, open_secs: 1, failure_threshold: 2}}\n"
             "placement: {routing_strategy: pack}\n"
             "resilience: {usage: {flush_secs: 60}}\n")
    s = Strata("split", tmp_path / "s", backends_yaml=backends, extra_yaml=extra).start()
    port2 = free_port()
    text = s.config_path.read_text().replace(f"listen: 127.0.0.1:{s.s3_port}", f"listen: 127.0.0.1:{port2}")
    text = text.replace(f"data_dir: {s.data_dir}", f"data_dir: {s.root / 'data2'}")
    cfg2 = s.root / "strata-dp2.yaml"
    cfg2.write_text(text)
    dp2 = StrataProc("strata-dataplane2", ["serve", "--role", "dataplane", "--config", str(cfg2)], s.root,
                     s.logdir, child_env({"STRATA_CLUSTER_SECRET": s.cluster_secret}))
    dp2.start()
    ep2 = f"http://127.0.0.1:{port2}"
    wait_until(lambda: http_get(f"{ep2}/ready", timeout=2)[0] == 200, 60, procs=[dp2], what="second data plane")
    try:
        yield s, dp2, [s.endpoint, ep2], redis, fs
    finally:
        dp2.stop()
        s.stop()
        redis.cleanup()
        for f in fs:
            f.stop()


def test_two_data_planes_share_the_limit_and_counters_converge_after_a_redis_restart(cluster):
    s, dp2, endpoints, redis, fs = cluster
    month = time.strftime("%Y-%m", time.gmtime())
    clients = [boto3_client(e) for e in endpoints]
    bucket = unique_bucket("redis")
    clients[0].create_bucket(Bucket=bucket)

    # Phase 1: 120 PUTs, 2 threads on each data plane. All succeed; `lim` takes at most its
    # limit plus the margin, the rest overflows to `big`.
    errors: list[str] = []

    def put_many(c, tag: str, n: int) -> None:
        for i in range(n):
            try:
                c.put_object(Bucket=bucket, Key=f"{tag}/{i}", Body=b"x" * 100)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"{tag}/{i}: {e}")

    threads = [threading.Thread(target=put_many, args=(clients[d], f"d{d}t{t}", 30))
               for d in range(2) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    per_dp = [metric(e, "strata_backend_requests_total", "lim") for e in endpoints]
    on_lim = sum(per_dp)
    print(f"lim requests per data plane {per_dp}, total {on_lim} (limit {LIMIT}, margin {MARGIN})")
    assert LIMIT - 2 <= on_lim <= LIMIT + MARGIN, per_dp
    assert min(per_dp) > 0, "both data planes wrote to lim before it was used up"
    assert LIMIT - 2 <= len(fs[0].objects()) <= on_lim, "lim holds what was charged to it"
    assert len(fs[0].objects()) + len(fs[1].objects()) == 120

    # Phase 2: steady load on both data planes; Redis killed, then restarted empty.
    stop = threading.Event()
    served = [0, 0]

    def load(d: int) -> None:
        c, i = clients[d], 0
        while not stop.is_set():
            key = f"load{d}/{i % 20}"
            try:
                c.put_object(Bucket=bucket, Key=key, Body=os.urandom(1000))
                assert len(c.get_object(Bucket=bucket, Key=key)["Body"].read()) == 1000
                served[d] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(f"load {key}: {e}")
            i += 1

    loaders = [threading.Thread(target=load, args=(d,)) for d in range(2)]
    for t in loaders:
        t.start()
    time.sleep(1.5)
    redis.kill()
    time.sleep(3)
    for e in endpoints:
        assert metric(e, "strata_redis_breaker_state") in (1, 2), "open (2) or probing (1) while Redis is down"
    redis.start()
    time.sleep(3)
    stop.set()
    for t in loaders:
        t.join()
    assert errors == [], errors[:5]
    assert min(served) > 20, served

    def converged() -> bool:
        for b in ("lim", "big"):
            h = redis_hash(redis, f"t:usage:{month}:{b}")
            want = [sum(metric(e, f"strata_backend_{k}_total", b) for e in endpoints)
                    for k in ("requests", "egress_bytes", "ingress_bytes")]
            if [h.get("requests", 0), h.get("egress", 0), h.get("ingress", 0)] != want:
                return False
        return True

    wait_until(converged, 10, procs=[s.main, s.control, dp2], what="Redis counters equal the data planes' counts")
    big = redis_hash(redis, f"t:usage:{month}:big")
    print(f"served {served}; redis big {big}")
    assert big["requests"] >= 2 * sum(served), "every PUT and GET counted"
    for e in endpoints:
        assert metric(e, "strata_usage_resync_total") >= 1
        assert metric(e, "strata_redis_errors_total") >= 1
        assert metric(e, "strata_redis_breaker_state") == 0
