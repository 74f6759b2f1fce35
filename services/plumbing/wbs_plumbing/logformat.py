"""Log lines for people (text, the default) or for log shippers (``LOG_FORMAT=json``).

Why: Loki, Elasticsearch and the like expect one JSON object a line; a human running
``make run`` wants plain text. Each service's ``config.yml`` names `formatter` as the factory of
its one formatter, with its service name; ``LOG_FORMAT`` picks the shape when logging starts.

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``service``, ``logger``, ``event`` (the
message), the ids a caller put in ``extra=`` (``event_id``, ``report_id``, ``case_id``,
``upload_id``, ``message_id``, ``call_id``) and ``exc`` for a traceback. Nothing else from the
record is copied: an ``extra`` that is not an id is not written, so a careless ``extra=`` can
never put content into the logs.
"""
import logging
import os
from datetime import datetime, timezone

from pythonjsonlogger.json import JsonFormatter

ID_FIELDS = ("event_id", "report_id", "case_id", "upload_id", "message_id", "call_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class WbsJsonFormatter(JsonFormatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def add_fields(self, log_data, record, message_dict):
        log_data["time"] = datetime.fromtimestamp(record.created, timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        log_data["level"] = record.levelname
        log_data["service"] = self.service
        log_data["logger"] = record.name
        log_data["event"] = record.getMessage()
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                log_data[name] = str(value)
        if message_dict.get("exc_info"):
            log_data["exc"] = message_dict["exc_info"]

    def process_log_record(self, log_data):
        return log_data


def formatter(service: str = "", fmt: str = TEXT_FORMAT, log_format: str | None = None) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for: ``text`` [default] or ``json``."""
    chosen = (log_format or os.environ.get("LOG_FORMAT") or "text").strip().lower()
    if chosen == "json":
        # warnings raised from now on become JSON lines too (those raised while Python starts,
        # before logging exists, are silenced with PYTHONWARNINGS=ignore:::nameko.cli.commands:
        # eventlet's deprecation notice, which `nameko run` triggers)
        logging.captureWarnings(True)
        return WbsJsonFormatter(service)
    if chosen != "text":
        raise ValueError(f"LOG_FORMAT must be 'text' or 'json', not {chosen!r}")
    return logging.Formatter(fmt)
