"""Fixtures of the fault-injection suite (pytest -m faults): a cluster of real processes and the loopback HTTP
server its jobs call. See tests/faults/cluster.py."""

import pytest

from tests.faults.cluster import Cluster, Endpoints, make_logdir, private_redis_server
from tests.fixtures.leaks import register_scan_path
from tests.fixtures.processes import process_env


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def endpoints(settings):
    """The loopback server the cluster's jobs call; creating such a job needs private targets allowed, as the
    cluster's processes have them (process_env)."""
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    server = Endpoints()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cluster(request, transactional_db, endpoints):
    """An empty cluster on an empty private Redis; the test starts what it needs. Its processes are SIGKILLed
    before the database is flushed; their logs are printed if the test failed, and kept (path printed) either way.
    The logs are also read by the session's secret sweep (tests/fixtures/leaks.py)."""
    server = private_redis_server()
    if server.process is None or server.process.poll() is not None:
        server.start()  # a previous test left it down
    harness = Cluster(process_env(), make_logdir(), server)
    harness.redis().flushall()
    register_scan_path(harness.logdir)
    yield harness
    harness.stop_all()
    if server.process is None or server.process.poll() is not None:
        server.start()
    harness.redis().flushall()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(harness.logs(tail=6000))
    print(f"process logs: {harness.logdir}")
