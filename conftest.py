"""Root pytest configuration: patch like `nameko run` does, then load the shared fixtures.

nameko >= 2.14's pytest plugin no longer monkey-patches; without this, tests would run with
different concurrency than production (blocking sockets, real threads).
"""
import warnings

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import psycogreen.eventlet  # noqa: E402

psycogreen.eventlet.patch_psycopg()

pytest_plugins = ["tests.fixtures", "tests.browser"]


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a skipped test is a failure: a missing server must not pass silently."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") == "true" and skipped and session.exitstatus == 0:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
