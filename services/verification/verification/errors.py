"""Domain errors of the verification service: plain exceptions that say what went wrong.

They know nothing of HTTP or RPC. Each surface maps them in one place: ``http_errors`` for the
inspector API and the console pages, ``entrypoints.base.remote_errors`` for RPC callers, and
``entrypoints.events`` turns a malformed event into a dead-letter. Messages are safe to show:
they never contain report content or anything about the reporter.
"""
from wbs_contracts.errors import TransientError


class DomainError(Exception):
    default_message = "The request cannot be processed"

    def __init__(self, message: str = ""):
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidInput(DomainError):
    """The request is malformed or misses a required field."""


class NotFound(DomainError):
    """No such thing, or it is outside the caller's reach (the two are indistinguishable)."""


class TransitionForbidden(DomainError):
    """The lifecycle does not allow this move."""


class Conflict(DomainError):
    """The thing already exists, or its state no longer allows the change."""


class AuthenticationFailed(DomainError):
    """Wrong username, password or one-time code (deliberately not saying which)."""

    default_message = "Wrong username, password or one-time code"


class Forbidden(DomainError):
    """The caller reaches the case but their role may not do this (e.g. an inspector placing a
    legal hold)."""


class PasswordChangeRequired(Forbidden):
    """The account signed in with a one-time password (new account, administrator's reset) and
    must choose its own before anything else."""

    default_message = "Choose a new password first"


class NotEligible(DomainError):
    """The chosen staff member may not handle the case (conflict of interest or wrong pool)."""


class VaultError(DomainError):
    """storage could not give the content back right now (down, slow, or it refused)."""


class VaultUnavailable(VaultError, TransientError):
    """storage did not answer (down, restarting, or the broker is away): an event that needed it
    waits for it (``wbs_plumbing.reliable``) instead of being dead-lettered."""


class CaseNotYetOpen(Exception):
    """An event refers to a report whose case is not open yet: transient, retried by the
    reliable handler (the ``report_submitted`` event may still be on its way)."""
