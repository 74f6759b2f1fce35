"""The one mapping from verification's domain errors to HTTP answers.

Both the inspector API (``web.api``: a JSON error) and the console (``web.console``: an error
page with the same status) call :func:`to_api_error`, the way intake's ``errors.to_api_error``
serves its API and form. Anything not listed is a fault, not an answer, and propagates.
"""
from __future__ import annotations

from wbs_plumbing.web import ApiError

from .errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotEligible,
    NotFound,
    PasswordChangeRequired,
    TransitionForbidden,
    VaultError,
)

# (status, code) per error type; the first matching entry wins, so subclasses go first.
STATUSES = (
    (InvalidInput, 400, "invalid_input"),
    (AuthenticationFailed, 401, "authentication_failed"),
    (PasswordChangeRequired, 403, "password_change_required"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (TransitionForbidden, 409, "transition_forbidden"),
    (NotEligible, 409, "not_eligible"),
    (Conflict, 409, "conflict"),
    (VaultError, 503, "vault_unavailable"),
    (DomainError, 400, "invalid"),
)


def to_api_error(exc: Exception) -> ApiError | None:
    """The HTTP answer for a domain error (None for anything else)."""
    for kind, status, code in STATUSES:
        if isinstance(exc, kind):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return ApiError(status, code, exc.message, headers=headers)
    return None
