"""Calling privileged RPCs in tests the way their real callers do: with a signed command.

Privileged RPCs (directory changes, retention, discards, reporter grants) act only on a command
signed by the key of whoever may ask (``wbs_plumbing.grants``). In tests the container's config
names the data dir, where the development keys live, so the test signs as the admin (the wbs
command) or as intake would.
"""
from contextlib import contextmanager

from nameko.testing.services import entrypoint_hook

from wbs_plumbing.grants import CommandSigner

# the argument a command of intake is bound to
_BOUND = {"get_report_status": "report_id", "discard_report": "report_id"}


def command(config: dict, method: str, issuer: str = "admin", **bind) -> str:
    return CommandSigner.from_config(config, issuer).issue(method, **bind)


@contextmanager
def signed_hook(container, method: str, issuer: str = "admin"):
    """``entrypoint_hook`` that adds ``command=`` signed by ``issuer`` to every call."""
    with entrypoint_hook(container, method) as hook:
        def call(*args, **kwargs):
            bind = {_BOUND[method]: args[0]} if issuer != "admin" and method in _BOUND else {}
            return hook(*args, command=command(container.config, method, issuer, **bind), **kwargs)
        yield call
