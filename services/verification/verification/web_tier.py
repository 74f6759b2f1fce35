"""The web-facing part of verification alone: the inspector API and the console.

``nameko run verification.web_tier`` serves HTTP and consumes no queue (no events, no RPC,
no timer), so it can be scaled with the traffic of inspectors. It still relays its own outbox
(a transition's ``case_status_changed`` leaves from here).
"""
from __future__ import annotations

from .entrypoints import admin_console, console, inspector_api, notification_console


class VerificationWeb(inspector_api.InspectorApi, console.Console, admin_console.AdminConsole,
                      notification_console.NotificationConsole):
    name = "verification"
