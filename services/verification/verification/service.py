"""The verification service in one process: cases, units, staff, routing, lifecycle; the
inspector console and API.

The entrypoints live in ``entrypoints/``, grouped by caller; this class combines all of them
(``make run``, ``nameko run verification.service``, the tests). ``web_tier`` and
``worker_tier`` combine the same mixins into the web-facing part and the workers, so the two can
be scaled apart. Only one class is defined at the top level here, because ``nameko run`` starts
every top-level class that has entrypoints.
"""
from __future__ import annotations

from .entrypoints import (admin_console, admin_rpc, console, directory_rpc, events, inspector_api,
                          notification_console, service_rpc)


class VerificationService(events.EventsAndTimers, service_rpc.ServiceRpc, admin_rpc.AdminRpc, directory_rpc.DirectoryRpc,
                          notification_console.NotificationDirectory, inspector_api.InspectorApi, console.Console,
                          admin_console.AdminConsole, notification_console.NotificationConsole):
    """Everything: events and timers, RPC for services and for the ``wbs`` command, API, console."""

    name = "verification"


