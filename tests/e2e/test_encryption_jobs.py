"""Key rotation, encrypt-existing and scrub-and-repair, end to end.

Each test drives a real `strata serve --role all` through config changes and restarts, uses the
`strata jobs` command an operator would use, and checks what users and operators see: bytes read
back with boto3, the blobs on the local-disk backends, `GET /status` and `/metrics`.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import (STRATA_BIN, Strata, boto3_client, child_env, client_error, http_get, render_config,
                     unique_bucket, wait_until)

MAGIC = b"STRATA"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def enc_yaml(primary: tuple[str, str] | None, previous: list[tuple[str, str]] = (), mode: str = "aes256-gcm",
             jobs: str = "") -> str:
    lines = ["encryption:", f"  mode: {mode}"]
    if primary:
        lines.append(f"  primary_key: {{id: {primary[0]}, base64: \"{primary[1]}\"}}")
    if previous:
        lines.append("  previous_keys:")
        lines += [f"    - {{id: {i}, base64: \"{k}\"}}" for i, k in previous]
    lines.append("jobs: {cleanup_period_secs: 1, rewrite_period_secs: 1" + (", " + jobs if jobs else "") + "}")
    return "\n".join(lines) + "\n"


def reconfigure(s: Strata, extra_yaml: str, backends_yaml: str | None = None) -> None:
    """Rewrites the deployment's config in place (same ports and data) and restarts it."""
    s.config_path.write_text(render_config(data_dir=s.data_dir, s3_port=s.s3_port, grpc_port=s.grpc_port,
                                           s3_backend=backends_yaml, extra_yaml=extra_yaml))
    s.restart()


def status(s: Strata) -> dict:
    code, _, body = http_get(f"{s.endpoint}/status")
    assert code == 200, body
    return json.loads(body)


def keys_in_use(s: Strata) -> dict[str, int]:
    return {k: n for k, n in status(s)["encryption"]["blobs_by_key"] if n}


def job(s: Strata, name: str) -> dict | None:
    return next((j for j in status(s)["jobs"] if j["name"] == name), None)


def strata_jobs(s: Strata, *args: str) -> str:
    r = subprocess.run([STRATA_BIN, "jobs", *args, "--config", str(s.config_path)], capture_output=True,
                       text=True, timeout=60, env=child_env({"STRATA_CLUSTER_SECRET": s.cluster_secret}))
    assert r.returncode == 0, f"strata jobs {args}: {r.stdout}\n{r.stderr}"
    return r.stdout


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix != ".meta" and "tmp" not in p.relative_to(root).parts)


def metric(s: Strata, name: str) -> float:
    _, _, body = http_get(f"{s.endpoint}/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---------------------------------------------------------------------------


def test_rotation_over_three_keys_then_rewrap_lets_old_keys_go(tmp_path):
    k1, k2, k3 = ("k1", new_key()), ("k2", new_key()), ("k3", new_key())
    s = Strata("all", tmp_path, extra_yaml=enc_yaml(k1)).start()
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("rot")
        c.create_bucket(Bucket=bucket)
        bodies: dict[str, bytes] = {}

        def put(tag: str, n: int = 3) -> None:
            for i in range(n):
                key, body = f"{tag}/{i}", os.urandom(random.randint(1, 200_000))
                c.put_object(Bucket=bucket, Key=key, Body=body)
                bodies[key] = body

        put("k1")
        assert keys_in_use(s).get("k1") == 3

        # k2 becomes primary and k1 is forgotten: objects under k1 must not be served, and the
        # error names the missing key.
        reconfigure(s, enc_yaml(k2))
        c = boto3_client(s.endpoint)
        with pytest.raises(Exception) as e:
            c.get_object(Bucket=bucket, Key="k1/0")["Body"].read()
        st, code = client_error(e)
        assert (st, code) == (500, "InternalError"), (st, code)
        assert "k1" in str(e.value) and "previous_keys" in str(e.value)

        reconfigure(s, enc_yaml(k2, [k1]))
        c = boto3_client(s.endpoint)
        put("k2")
        reconfigure(s, enc_yaml(k3, [k2, k1]))
        c = boto3_client(s.endpoint)
        put("k3")

        # The rewrap job moves every data key under k3.
        wait_until(lambda: set(keys_in_use(s)) <= {"k3", ""}, 60, procs=s.procs,
                   what=f"every blob under k3 (now {keys_in_use(s)})")
        assert keys_in_use(s)["k3"] >= 9
        rewrap = job(s, "rewrap")
        assert rewrap is not None and rewrap["done"] >= 6, rewrap

        # Old keys can now be removed: everything still reads back.
        reconfigure(s, enc_yaml(k3))
        c = boto3_client(s.endpoint)
        for key, body in bodies.items():
            assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
        assert status(s)["encryption"]["primary_key_id"] == "k3"
    finally:
        s.stop_and_check()


def test_encrypt_existing_survives_a_kill_and_resumes(tmp_path):
    key = ("k1", new_key())
    s = Strata("all", tmp_path, extra_yaml=enc_yaml(key, mode="none")).start()
    objects = s.data_dir / "objects"
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("encx")
        c.create_bucket(Bucket=bucket)
        bodies = {}
        for i in range(150):
            body = os.urandom(64 * 1024 + i)
            c.put_object(Bucket=bucket, Key=f"o/{i:04d}", Body=body)
            bodies[f"o/{i:04d}"] = body
        assert not any(p.read_bytes()[:6] == MAGIC for p in blob_files(objects))
        used_before = status(s)["backends"][0]["bytes_used"]

        # The reaper resolves the intent of the rewrite the kill interrupts.
        reconfigure(s, enc_yaml(key, mode="aes256-gcm", jobs="reaper_min_age_secs: 2, reaper_period_secs: 1"))
        strata_jobs(s, "start", "encrypt-existing")
        wait_until(lambda: (job(s, "encrypt-existing") or {}).get("done", 0) >= 5, 60, interval=0.02,
                   procs=s.procs, what="encrypt-existing under way")
        # Kill it in the middle of the run.
        s.main.signal(signal.SIGKILL)
        s.main.wait_exit(10)
        listing = strata_jobs(s, "list")
        # `jobs list` shows the background jobs' schedule first, then the resumable jobs' progress
        # (the table whose header starts with `job`): the row is in the second.
        progress = listing.split("\njob ", 1)[1]
        row = next(line.split() for line in progress.splitlines() if line.startswith("encrypt-existing"))
        done, total = int(row[2]), int(row[3])
        assert row[1] == "running" and 0 < done < total == 150, listing

        s.start()
        wait_until(lambda: (job(s, "encrypt-existing") or {}).get("state") == "done", 120, procs=s.procs,
                   what="encrypt-existing done")
        final = job(s, "encrypt-existing")
        assert final["done"] == 150 and final["errors"] == 0, final
        c = boto3_client(s.endpoint)
        for k, body in bodies.items():
            assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == body, k
        # Old plaintext blobs are cleaned up, and the blob of the rewrite the kill cut short is
        # reaped; what is left is sealed, one blob per object.
        wait_until(lambda: len(blob_files(objects)) == 150, 30, procs=s.procs,
                   what=f"old blobs cleaned up (now {len(blob_files(objects))})")
        assert all(p.read_bytes()[:6] == MAGIC for p in blob_files(objects))
        # Quota counters count plaintext bytes and stayed exact through the swap.
        assert status(s)["backends"][0]["bytes_used"] == used_before == sum(len(b) for b in bodies.values())

        # And back: with the policy off, decrypt-existing unseals every blob.
        reconfigure(s, enc_yaml(key, mode="none"))
        strata_jobs(s, "start", "decrypt-existing")
        wait_until(lambda: (job(s, "decrypt-existing") or {}).get("state") == "done", 120, procs=s.procs,
                   what="decrypt-existing done")
        assert job(s, "decrypt-existing")["done"] == 150
        wait_until(lambda: len(blob_files(objects)) == 150, 30, procs=s.procs, what="sealed blobs cleaned up")
        assert {p.read_bytes() for p in blob_files(objects)} == set(bodies.values())
        assert status(s)["backends"][0]["bytes_used"] == used_before
        assert "decrypt-existing" in strata_jobs(s, "list")
    finally:
        s.stop_and_check()


def two_disks(root: Path) -> str:
    return (f"  - {{type: local, id: d1, path: {root / 'd1'}}}\n"
            f"  - {{type: local, id: d2, path: {root / 'd2'}}}")


def test_scrubber_finds_a_corrupt_replica_and_repairs_it_from_the_other(tmp_path):
    extra = ("replication: {factor: 2, interval_secs: 1}\n"
             "jobs: {cleanup_period_secs: 1, scrub_period_secs: 1, scrub_objects_per_cycle: 50}\n")
    s = Strata("all", tmp_path, backends_yaml=two_disks(tmp_path), extra_yaml=extra).start()
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("scrub")
        c.create_bucket(Bucket=bucket)
        body = os.urandom(700_000)
        c.put_object(Bucket=bucket, Key="obj", Body=body)
        wait_until(lambda: len(blob_files(tmp_path / "d1")) == 1 and len(blob_files(tmp_path / "d2")) == 1, 30,
                   procs=s.procs, what="a copy on each disk")
        victim = blob_files(tmp_path / "d2")[0]
        data = bytearray(victim.read_bytes())
        data[400_000] ^= 0xFF
        victim.write_bytes(bytes(data))

        wait_until(lambda: metric(s, 'strata_repairs_total{result="repaired"}') >= 1, 60, procs=s.procs,
                   what="the scrubber repairs the corrupt copy")
        assert metric(s, "strata_scrub_corrupt_total") >= 1
        # The corrupt blob is cleaned up and replaced by a healthy one.
        wait_until(lambda: not victim.exists(), 30, procs=s.procs, what="the corrupt blob deleted")
        files = blob_files(tmp_path / "d1") + blob_files(tmp_path / "d2")
        assert len(files) == 2 and all(f.read_bytes() == body for f in files)
        assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == body
        assert status(s)["encryption"]["corrupt_blobs"] == 0
    finally:
        s.stop_and_check()


def test_a_corrupt_last_copy_is_quarantined_never_deleted(tmp_path):
    extra = "jobs: {cleanup_period_secs: 1, scrub_period_secs: 1, scrub_objects_per_cycle: 50}\n"
    s = Strata("all", tmp_path, extra_yaml=extra).start()
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("quar")
        c.create_bucket(Bucket=bucket)
        body = os.urandom(300_000)
        c.put_object(Bucket=bucket, Key="only", Body=body)
        (victim,) = blob_files(s.data_dir / "objects")
        data = bytearray(victim.read_bytes())
        data[10] ^= 0x01
        victim.write_bytes(bytes(data))
        wait_until(lambda: metric(s, 'strata_repairs_total{result="quarantined"}') >= 1, 60, procs=s.procs,
                   what="the corrupt last copy quarantined")
        time.sleep(2)  # a few more scrub and cleanup cycles
        assert victim.exists() and victim.read_bytes() == bytes(data), "the last copy must never be deleted"
        # A full read never completes with the wrong bytes: the response is cut short.
        # (botocore raises IncompleteReadError, ResponseStreamingError or ConnectionClosedError,
        # depending on how much of the response was flushed before the abort.)
        try:
            got = c.get_object(Bucket=bucket, Key="only")["Body"].read()
        except Exception:
            got = None
        assert got is None or len(got) < len(body), "a corrupt object read to completion"
    finally:
        s.stop_and_check()
