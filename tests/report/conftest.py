"""One smoke report per test session, shared by the tests (and xdist workers) that read it.

The first worker to ask builds it under a file lock; the others wait and reuse it (the report's
own cache makes the second build_report call return at once)."""

import os

import pytest
from filelock import FileLock

from widenets.report import build_report


@pytest.fixture(scope="session")
def smoke_report(tmp_path_factory):
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the run's directory, common to its workers
        shared = shared.parent
    out = shared / "smoke-report"
    with FileLock(str(shared / "smoke-report.lock")):
        index = build_report(out, smoke=True, progress=False, log=lambda _: None)
    return index
