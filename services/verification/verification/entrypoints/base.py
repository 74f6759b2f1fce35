"""What every verification entrypoint shares: its dependencies, and the RPC error mapping."""
from __future__ import annotations

import functools

from wbs_contracts import errors as contract_errors
from wbs_plumbing.db import Database
from wbs_plumbing.grants import CommandCheck
from wbs_plumbing.ops import Ops

from ..dependencies import Clock, GrantSigning, PasswordHashing, Vault, VerificationSettings
from ..errors import Conflict, DomainError, InvalidInput, NotFound
from ..models import Base, OutboxMessage

_REMOTE = {InvalidInput: contract_errors.Invalid, Conflict: contract_errors.Conflict, NotFound: contract_errors.NotFound}
EXPECTED = tuple(_REMOTE.values()) + (contract_errors.Forbidden,)


def remote_errors(method):
    """Raise the shared contract error types over RPC, so callers can tell refusals apart
    (the RPC side's one mapping of domain errors; HTTP's is ``http_errors``)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except DomainError as exc:
            remote = next((r for d, r in _REMOTE.items() if isinstance(exc, d)), contract_errors.Invalid)
            raise remote(exc.message) from None

    return wrapper


class Dependencies:
    """One DependencyProvider per outside thing; every tier has all of them, because the console
    reads content (Vault) and the workers route against it."""

    name = "verification"

    db = Database(Base, OutboxMessage)
    ops = Ops()  # healthz, readyz, metrics on VERIFICATION_OPS_ADDRESS
    settings = VerificationSettings()
    passwords = PasswordHashing()
    vault = Vault()
    signer = GrantSigning()
    clock = Clock()
    # privileged RPCs act only on a signed command (the admin key; intake for reporter grants)
    commands = CommandCheck("admin", "intake")
