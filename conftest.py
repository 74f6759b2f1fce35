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

pytest_plugins = ["tests.fixtures"]
