"""The shared fake storage (tests/fakes.py) serves what storage serves, the way storage serves it,
and the one storage client calls nothing else: a test that passes against the fake then says
something about the real vault. Fails on a renamed method, an added, removed or re-defaulted
argument, a different decorator (@rpc vs @instance_rpc), or a verb the client calls that the
fake (and so storage) lacks."""
import inspect
import re

from nameko.rpc import Rpc

from storage.service import StorageService
from tests.fakes import FakeStorage
from wbs_plumbing import storage_client
from wbs_plumbing.queues import QuorumRpc
from wbs_plumbing.rpc import InstanceRpc


def entrypoints(cls) -> dict[str, tuple]:
    """method name -> (kinds of RPC entrypoint, signature) for every RPC entrypoint of `cls`."""
    found = {}
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        kinds = {type(e).__name__ for e in getattr(member, "nameko_entrypoints", ())
                 if isinstance(e, Rpc)}
        if kinds:
            found[name] = (frozenset(kinds), str(inspect.signature(member)))
    return found


def test_every_fake_entrypoint_is_a_storage_entrypoint_with_the_same_signature():
    real, fake = entrypoints(StorageService), entrypoints(FakeStorage)
    assert fake, "the fake serves nothing"
    differences = {name: (fake[name], real.get(name)) for name in fake if fake[name] != real.get(name)}
    assert differences == {}


def test_instance_rpc_is_told_apart_from_rpc():
    kinds = entrypoints(StorageService)["append_evidence"][0]
    assert kinds == {InstanceRpc.__name__}
    assert entrypoints(StorageService)["begin_evidence"][0] == {QuorumRpc.__name__, InstanceRpc.__name__}


def test_the_storage_client_calls_only_what_the_fake_serves():
    source = inspect.getsource(storage_client)
    called = set(re.findall(r"self\._proxy(?:\.route\(route\))?\.(\w+)", source))
    called |= set(re.findall(r"self\._read\(\"(\w+)\"", source))
    called |= set(re.findall(r"self\._to_instance\(\w+, \"(\w+)\"", source))
    called -= {"route", "service_name"}
    assert {"open_transit", "store_report", "store_report_content", "begin_evidence", "read_report_content",
            "read_messages"} <= called
    assert called - set(entrypoints(FakeStorage)) == set()
