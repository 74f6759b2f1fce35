"""The workers of verification alone: events, the deadline timer, and the RPCs.

``nameko run verification.worker_tier`` serves no HTTP; run as many as the event load needs
(event handling is idempotent, and the deadline timer publishes each breach once).
"""
from __future__ import annotations

from .entrypoints import admin_rpc, directory_rpc, events, notification_console, service_rpc


class VerificationWorkers(events.EventsAndTimers, service_rpc.ServiceRpc, admin_rpc.AdminRpc, directory_rpc.DirectoryRpc,
                          notification_console.NotificationDirectory):
    name = "verification"
