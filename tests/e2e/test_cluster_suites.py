"""The S3 suites of the single-deployment modes (boto3, bad input, scoped credentials, aws CLI,
rclone and s3cmd), run once through each data plane of a scale-out cluster (issue 6: "The S3 suite
passes through either data plane"): PostgreSQL, Redis, 3 s3s-fs backends, 2 control planes, 2 data
planes and 2 workers, as in test_cluster.py, but a cluster of its own, so the objects the suites
leave behind do not slow that module's drain and job checks.

`STRATA_E2E_ENDPOINT` points the suites' `server` fixture at one data plane instead of starting a
deployment; the few tests that restart their own deployment skip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster import Cluster
from harness import SUMMARY

SUITES = ["test_boto3.py", "test_bad_input.py", "test_scoped.py", "test_awscli.py", "test_rclone_s3cmd.py"]


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("suites-cluster"))
    try:
        c.start()
        yield c
    finally:
        tails = c.tail(60)
        codes = c.stop()
    assert all(v == 0 for v in codes.values()), f"not a clean SIGTERM shutdown: {codes}\n{tails}"


@pytest.mark.parametrize("dp", [0, 1])
def test_the_s3_suites_pass_through_each_data_plane(cl, dp):
    here = Path(__file__).resolve().parent
    env = dict(os.environ, STRATA_E2E_ENDPOINT=cl.endpoints[dp])
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider", "-rfEs"],
                          cwd=here, env=env, capture_output=True, text=True, timeout=900)
    tail = proc.stdout[-6000:] + proc.stderr[-2000:] + "\n" + cl.tail(30)
    summary = [line for line in proc.stdout.splitlines() if " passed" in line or " failed" in line]
    SUMMARY.append(f"CLUSTER s3 suites through dp{dp}: {summary[-1] if summary else '?'} "
                   f"({time.monotonic() - t0:.1f} s)")
    assert proc.returncode == 0, tail
    assert summary and " passed" in summary[-1] and " failed" not in summary[-1], tail
