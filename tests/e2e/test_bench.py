"""Smoke test of `strata bench`, so that the tool cannot rot. No timing is asserted.

`bench run` is driven against a Strata deployment (every mode the suite runs) for a small
number of operations per workload; `bench compare` against Strata (mode s3) and the s3s-fs
server it stands in front of, reached directly.
"""

from __future__ import annotations

import json
import shutil

import pytest

from harness import ADMIN, BACKING, STRATA_BIN, Strata, child_env, run

OP_FIELDS = {"op", "ops", "errors", "bytes", "ops_per_s", "mb_per_s", "latency_ms"}
LATENCY_FIELDS = {"p50", "p90", "p99", "max"}


def bench(*args: str, timeout: float = 120):
    cp = run([STRATA_BIN, "bench", *args], env=child_env(), timeout=timeout)
    return json.loads(cp.stdout)


def check_op(r: dict, size: int) -> None:
    assert OP_FIELDS <= set(r), r
    assert LATENCY_FIELDS <= set(r["latency_ms"]), r
    assert r["ops"] > 0, r
    assert r["errors"] == 0, r
    assert r["ops_per_s"] > 0, r
    lat = r["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat
    if r["op"] in ("put", "get"):
        assert r["bytes"] == r["ops"] * size, r
        assert r["mb_per_s"] > 0, r


@pytest.mark.parametrize("op,expected", [("put", {"put"}), ("get", {"get"}), ("mixed", {"get", "put"})])
def test_bench_run(server: Strata, op: str, expected: set):
    pid = server.main.pid
    # 40 ops at concurrency 4: a mixed run does both GETs and PUTs (chance of all one kind: ~1e-6).
    report = bench(
        "run", "--endpoint", server.endpoint, "--access-key", ADMIN.access_key, "--secret-key", ADMIN.secret_key,
        "--bucket", f"bench-{op}", "--op", op, "--size", "4KiB", "--concurrency", "4", "--ops", "40",
        "--duration", "20s", "--pid", str(pid), "--json",
    )
    assert report["workload"] == op
    assert report["size_bytes"] == 4096
    assert report["concurrency"] == 4
    assert report["errors"] == 0, report.get("first_error")
    assert report["first_error"] is None
    assert report["elapsed_s"] > 0
    assert {r["op"] for r in report["results"]} == expected, report
    assert sum(r["ops"] for r in report["results"]) == 40
    for r in report["results"]:
        check_op(r, 4096)
    srv = report["server"]
    assert srv["pids"] == [pid]
    assert srv["peak_rss_mib"] > 0
    assert srv["vm_hwm_mib"] > 0
    assert srv["cpu_seconds"] >= 0


def test_bench_run_human_table(server: Strata):
    cp = run([STRATA_BIN, "bench", "run", "--endpoint", server.endpoint, "--access-key", ADMIN.access_key,
              "--secret-key", ADMIN.secret_key, "--bucket", "bench-table", "--op", "head", "--ops", "10",
              "--concurrency", "2"], env=child_env(), timeout=60)
    assert "p99 ms" in cp.stdout
    assert "head" in cp.stdout


@pytest.fixture(scope="module")
def s3_mode(tmp_path_factory):
    if shutil.which("s3s-fs") is None:
        pytest.skip("s3s-fs not installed (scripts/install-deps.sh)")
    s = Strata("s3", tmp_path_factory.mktemp("strata-bench-s3"))
    try:
        s.start()
    except BaseException:
        s.stop()
        s.stop_backing()
        raise
    yield s
    s.stop_and_check()


def test_bench_compare_strata_vs_backend(s3_mode: Strata):
    report = bench(
        "compare", "--a", s3_mode.endpoint, "--b", s3_mode.backing_endpoint, "--a-name", "strata",
        "--b-name", "s3s-fs", "--a-access-key", ADMIN.access_key, "--a-secret-key", ADMIN.secret_key,
        "--b-access-key", BACKING.access_key, "--b-secret-key", BACKING.secret_key,
        "--a-pid", str(s3_mode.main.pid), "--b-pid", str(s3_mode.backing.pid),
        "--workloads", "put:4KiB,get:4KiB,head:4KiB,list:4KiB,delete:4KiB", "--rounds", "1", "--ops", "12",
        "--concurrency", "3", "--json", timeout=180,
    )
    assert report["a_name"] == "strata" and report["b_name"] == "s3s-fs"
    assert report["rounds"] == 1
    assert [w["workload"] for w in report["workloads"]] == [
        "put:4KiB", "get:4KiB", "head:4KiB", "list:4KiB", "delete:4KiB"]
    for w in report["workloads"]:
        op = w["workload"].split(":")[0]
        for side in ("a", "b"):
            assert w[side]["errors"] == 0, (w["workload"], side, w[side]["first_error"])
            (r,) = w[side]["results"]
            assert r["op"] == op
            check_op(r, 4096)
            assert w[side]["server"]["peak_rss_mib"] > 0
        (q,) = w["ratios"]
        assert q["op"] == op
        for k in ("ops_per_s", "p50", "p99"):
            assert q[k] is not None and q[k] > 0, q
        assert "p99_diff_ms" in q


def test_bench_compare_markdown(s3_mode: Strata):
    cp = run([STRATA_BIN, "bench", "compare", "--a", s3_mode.endpoint, "--b", s3_mode.endpoint,
              "--access-key", ADMIN.access_key, "--secret-key", ADMIN.secret_key, "--workloads", "put:4KiB",
              "--rounds", "1", "--ops", "5", "--concurrency", "1", "--markdown"], env=child_env(), timeout=60)
    lines = [l for l in cp.stdout.splitlines() if l.startswith("|")]
    assert len(lines) == 3, cp.stdout  # header, separator, one row
    assert "ops/s A/B" in lines[0]
    assert lines[2].startswith("| put:4KiB | put |")


def test_bench_rejects_bad_size():
    cp = run([STRATA_BIN, "bench", "run", "--endpoint", "http://127.0.0.1:1", "--access-key", "a",
              "--secret-key", "b", "--op", "put", "--size", "4XB"], env=child_env(), check=False, timeout=30)
    assert cp.returncode != 0
    assert "unknown unit" in cp.stderr
