"""Error types shared by the services.

nameko serialises a remote exception as its class name (`RemoteError.exc_type`); keeping these
names in one package lets a caller map a storage or verification refusal to the right answer
without importing the other service's code.
"""


class PermanentError(Exception):
    """Processing this message can never succeed (poison): dead-letter it at once, no retries."""


class TransientError(Exception):
    """Something this message needs is away for now (a peer service, the broker, the database):
    the message waits and is retried, for as long as an outage can last, never dead-lettered
    after the few quick retries meant for a failing handler."""


class NotFound(Exception):
    """The thing does not exist, or the caller may not know that it exists."""


class Forbidden(Exception):
    """The caller is known but not allowed to do this."""


class Invalid(Exception):
    """The request is malformed; the message says which field and why (never echoing content)."""


class Conflict(Exception):
    """The request contradicts the current state (e.g. a forbidden lifecycle transition)."""


class IntegrityError(Exception):
    """Stored ciphertext failed authentication: tampered, truncated or under the wrong key."""


def remote_error_type(exc) -> str | None:
    """The class name of the exception a nameko RPC callee raised, or None for a local error."""
    return getattr(exc, "exc_type", None)
