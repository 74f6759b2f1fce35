"""intake's two tiers, so the reporter-facing web part and the event worker scale apart.

``IntakeService`` (``intake.service``) has both: every HTTP entrypoint, and one event handler
(``report_shredded``: forget a shredded report's metadata). Each tier here is that same class
with the other tier's entrypoints turned into plain methods, so nothing is copied and a new
entrypoint lands in its tier by its kind:

    nameko run --config services/intake/config.yml intake.tiers:IntakeWeb      # HTTP only
    nameko run --config services/intake/config.yml intake.tiers:IntakeWorker   # events only

(the ``:Class`` form: ``nameko run intake.tiers`` alone would start every class of the module).
``make run`` and ``intake.service`` keep both in one process.
"""
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from intake.service import IntakeService
from wbs_plumbing.web import HttpEntrypoint


def _is_http(method) -> bool:
    return any(isinstance(e, HttpEntrypoint) for e in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()))


def _plain(method):
    """The method without its entrypoint (no functools.wraps: it would copy the entrypoint)."""
    def call(self, *args, **kwargs):
        return method(self, *args, **kwargs)
    call.__doc__ = method.__doc__
    return call


def _tier(name: str, keep_http: bool):
    dropped = {attr: _plain(member) for attr, member in vars(IntakeService).items()
               if getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, None) and _is_http(member) != keep_http}
    return type(name, (IntakeService,), {"__module__": __name__, "name": "intake", **dropped})


IntakeWeb = _tier("IntakeWeb", keep_http=True)
IntakeWorker = _tier("IntakeWorker", keep_http=False)
