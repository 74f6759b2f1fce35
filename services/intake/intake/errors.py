"""What can go wrong for a reporter, and how each case is answered over HTTP.

Domain code raises these (or `ReportInvalid`, `PowRejected`, `UploadTooLarge`,
`MalformedUpload`); `to_api_error` is the one mapping to status codes, shared by the JSON API
and the HTML form. No message ever echoes what the reporter sent.
"""

from __future__ import annotations

import logging

from nameko.exceptions import RemoteError

from wbs_plumbing.deadline import Unavailable  # noqa: F401 -- intake's name for a peer away
from wbs_plumbing.web import ApiError

from intake.pow import MESSAGES as POW_MESSAGES, PowRejected
from intake.schemas import ReportInvalid
from intake.throttle import Throttled
from intake.uploads import MalformedUpload, UploadTooLarge


class BadRequest(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Unauthorized(Exception):
    """Wrong receipt or token; always the same answer, whatever was wrong."""


log = logging.getLogger(__name__)

TOO_LARGE = {
    "request": "The request is larger than this server accepts.",
    "files": "Too many evidence files for one report.",
    "file": "An evidence file is larger than this server accepts.",
    "report": "The evidence files of this report together are larger than this server accepts.",
    "field": "A form field or the report JSON is too large.",
    "parts": "Too many parts in the form.",
}


def to_api_error(exc: Exception) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ReportInvalid):
        return ApiError(422, "invalid_report", "The report has problems; see fields.",
                        fields=exc.messages("en"))
    if isinstance(exc, PowRejected):
        return ApiError(428, f"pow_{exc.reason}", POW_MESSAGES.get(exc.reason, "Proof of work required."))
    if isinstance(exc, UploadTooLarge):
        return ApiError(413, "too_large", TOO_LARGE.get(exc.what, TOO_LARGE["request"]),
                        headers={"Connection": "close"})
    if isinstance(exc, MalformedUpload):
        return ApiError(400, "malformed_body", "The request body could not be read as multipart/form-data.")
    if isinstance(exc, BadRequest):
        return ApiError(400, exc.code, exc.message)
    if isinstance(exc, Unauthorized):
        return ApiError(401, "unauthorized", "Receipt or session not recognised.")
    if isinstance(exc, Throttled):
        return ApiError(429, "too_many_requests",
                        "The service is busy with many reports right now; nothing was kept. "
                        "Please try again in a moment.",
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, RemoteError):
        # storage or verification failed; its reason stays in its own logs (it may name internals)
        log.warning("RPC failed remotely: %s", exc.exc_type)
        exc = Unavailable("remote_error")
    if isinstance(exc, Unavailable):
        return ApiError(503, "unavailable",
                        "The service is temporarily unavailable; nothing was kept. Please try again shortly.",
                        headers={"Retry-After": "30"})
    return None
