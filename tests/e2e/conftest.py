"""Fixtures for the Strata black-box end-to-end suite.

* `server`: a module-scoped Strata deployment, parametrized over three modes:
  `all` (one process, --role all), `split` (controlplane + dataplane over gRPC) and
  `s3` (one process whose objects live in a third-party S3 server, s3s-fs).
  Set STRATA_E2E_MODES=all (or split, or s3) to run only one mode.
* `fresh_server`: the same, but function-scoped (for tests that restart or signal the server).
* `s3` / `scoped_s3`: boto3 clients for the admin and the scoped credential.
* `bucket`: a new, uniquely named bucket for the current test.

Server logs live in the pytest tmp dir; the tail of every live server's stdout/stderr is
attached to the report of a failing test.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ADMIN,
    EXTERNAL_ENDPOINT,
    External,
    LIVE,
    MODES,
    SCOPED,
    STRATA_BIN,
    SUMMARY,
    Strata,
    StrataProc,
    boto3_client,
    unique_bucket,
)

_SETUP_AT = pytest.StashKey[float]()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: large-object / memory tests (run by default)")


def pytest_report_header(config):
    return [f"strata binary: {STRATA_BIN}", f"modes: {','.join(MODES)}"]


def pytest_sessionfinish(session):
    # Under pytest-xdist, hand this worker's measurements to the controller.
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["strata_summary"] = list(SUMMARY)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    SUMMARY.extend(getattr(node, "workeroutput", {}).get("strata_summary", []))


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("strata measurements")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_SETUP_AT] = time.monotonic()


def _servers_of(item) -> list:
    """The deployments this test used: its fixtures, else anything it started itself."""
    used = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, (Strata, StrataProc))]
    if used:
        return used
    since = item.stash.get(_SETUP_AT, 0.0)
    return [s for s in LIVE if getattr(s, "created_at", 0.0) >= since]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in _servers_of(item):
            try:
                rep.sections.append((f"strata log tail: {s.name}", s.tail(40)))
            except Exception as e:  # pragma: no cover - diagnostics only
                rep.sections.append((f"strata log tail: {s.name}", f"<unavailable: {e}>"))


def _deployment(request, tmp_path_factory, mode: str, **kw):
    if mode == "external":
        return External(EXTERNAL_ENDPOINT)
    root = tmp_path_factory.mktemp(f"strata-{mode}")
    s = Strata(mode, root, **kw)
    try:
        s.start()
    except BaseException:
        try:
            s.stop()
            s.stop_backing()
        finally:
            if s in LIVE:
                LIVE.remove(s)
        raise
    return s


@pytest.fixture(scope="module", params=MODES)
def server(request, tmp_path_factory):
    s = _deployment(request, tmp_path_factory, request.param)
    yield s
    s.stop_and_check()


@pytest.fixture(params=MODES)
def fresh_server(request, tmp_path_factory):
    if request.param == "external":
        pytest.skip("restarts or signals a deployment of its own; STRATA_E2E_ENDPOINT names a shared one")
    s = _deployment(request, tmp_path_factory, request.param)
    yield s
    s.stop_and_check()


@pytest.fixture(scope="module")
def s3(server):
    return boto3_client(server.endpoint, ADMIN)


@pytest.fixture(scope="module")
def scoped_s3(server):
    return boto3_client(server.endpoint, SCOPED)


@pytest.fixture
def bucket(s3, request):
    name = unique_bucket(request.node.originalname.replace("test_", "").replace("_", "-"))
    s3.create_bucket(Bucket=name)
    return name
