"""Domain errors of the verification service.

Each carries the HTTP status and error code the inspector API answers with, so entrypoints map
them in one place (``service.py``) and never decide statuses themselves. Messages are safe to
show: they never contain report content or anything about the reporter.
"""


class DomainError(Exception):
    status = 400
    code = "invalid"
    default_message = "The request cannot be processed"

    def __init__(self, message: str = ""):
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidInput(DomainError):
    """The request is malformed or misses a required field."""

    status = 400
    code = "invalid_input"


class NotFound(DomainError):
    """No such thing, or it is outside the caller's reach (the two are indistinguishable)."""

    status = 404
    code = "not_found"


class TransitionForbidden(DomainError):
    """The lifecycle does not allow this move."""

    status = 409
    code = "transition_forbidden"


class Conflict(DomainError):
    """The thing already exists."""

    status = 409
    code = "conflict"


class AuthenticationFailed(DomainError):
    """Wrong username, password or one-time code (deliberately not saying which)."""

    status = 401
    code = "authentication_failed"
    default_message = "Wrong username, password or one-time code"


class Forbidden(DomainError):
    """The caller reaches the case but their role may not do this (e.g. an inspector placing a
    legal hold)."""

    status = 403
    code = "forbidden"


class NotEligible(DomainError):
    """The chosen staff member may not handle the case (conflict of interest or wrong pool)."""

    status = 409
    code = "not_eligible"


class CaseNotYetOpen(Exception):
    """An event refers to a report whose case is not open yet: transient, retried by the
    reliable handler (the ``report_submitted`` event may still be on its way)."""
