"""Settings refusals, HTTP shaping, and the entrypoints' error mapping, without servers."""
import json

import pytest
from nameko.testing.services import worker_factory

from wbs_contracts.errors import PermanentError
from wbs_plumbing.config import ConfigError

from verification import web
from verification.errors import InvalidInput
from verification.service import VerificationService
from verification.settings import Settings


def test_development_defaults():
    s = Settings.from_config({})
    assert s.development and not s.secure_cookies and not s.password_cost.weaker_than_default


def test_production_refuses_weak_hashing_plain_http_and_insecure_cookies(insecure_fast_password_hashing):
    good = {"WBS_ENV": "production", "WBS_CONSOLE_URL": "https://wbs.example.go.id"}
    assert Settings.from_config(good).secure_cookies
    with pytest.raises(ConfigError):
        Settings.from_config(dict(good, **insecure_fast_password_hashing["config"]))
    with pytest.raises(ConfigError):
        Settings.from_config(dict(good, WBS_CONSOLE_URL="http://wbs.example.go.id"))
    with pytest.raises(ConfigError):
        Settings.from_config(dict(good, SECURE_COOKIES="false"))


def test_malformed_report_submitted_is_permanent_not_retried():
    service = worker_factory(VerificationService)

    class _Once:
        def __enter__(self):
            return object()

        def __exit__(self, *exc):
            return False

    service.db.handle_once.return_value = _Once()
    from unittest import mock
    with mock.patch("verification.cases.open_case", side_effect=InvalidInput("report_submitted lacks unit")):
        with pytest.raises(PermanentError):
            service.handle_report_submitted({"event_id": "e"})


def test_attachment_is_never_inline_and_names_are_safe():
    response = web.attachment({"filename": 'bukti "rahasia"\r\n.pdf', "size_bytes": 3}, iter([b"abc"]))
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"")
    assert "\r" not in disposition and "\n" not in disposition and '"rahasia"' not in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/octet-stream"


def test_bearer_token_parsing():
    class R:
        def __init__(self, value):
            self.headers = {"Authorization": value} if value is not None else {}
    assert web.bearer_token(R("Bearer abc")) == "abc"
    assert web.bearer_token(R("bearer  abc ")) == "abc"
    assert web.bearer_token(R("Basic abc")) is None
    assert web.bearer_token(R(None)) is None


def test_cuti_bersama_and_throttle_settings():
    import datetime as dt
    s = Settings.from_config({"CUTI_BERSAMA_DATES": "2026-12-24, 2026-12-31", "LOGIN_MAX_FAILURES": "3"})
    assert s.cuti_bersama == {dt.date(2026, 12, 24), dt.date(2026, 12, 31)}
    assert not s.calendar.is_working_day(dt.date(2026, 12, 31)) and s.throttle.max_failures == 3
    with pytest.raises(ConfigError):
        Settings.from_config({"CUTI_BERSAMA_DATES": "24/12/2026"})


def test_openapi_is_valid_and_describes_every_api_route():
    import re
    from openapi_spec_validator import validate
    from nameko.web.handlers import HttpRequestHandler
    from verification import openapi

    document = openapi.document()
    validate(document)
    served = set()
    for name in dir(VerificationService):
        for ext in getattr(getattr(VerificationService, name), "nameko_entrypoints", ()):
            if isinstance(ext, HttpRequestHandler) and ext.url.startswith("/api/"):
                served.add((ext.method.lower(), re.sub(r"<([a-z_]+)>", r"{\1}", ext.url)))
    described = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served == described


def test_routing_reads_parties_and_never_routes_blind_while_storage_is_away():
    from verification import casefile
    from wbs_plumbing.deadline import Unavailable
    from verification.errors import NotFound as DomainNotFound, VaultError

    class Vault:
        def __init__(self, outcome):
            self.outcome = outcome

        def read_report_parties(self, report_id, reader):  # as storage answers, from the stored bytes
            from wbs_contracts.report_content import parties_view
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return parties_view(self.outcome)

        read_report_content = read_report_parties

    document = {"format": "wbs.report-content/1", "description": "d", "language": "id", "good_faith": True,
                "reporter": {"relationship": "public", "involved": False},
                "parties": [{"name": "Dr. Ani", "nip": "198001012005011001"}]}
    parties, note = casefile.routing_parties(Vault(json.dumps(document).encode()), "r1")
    assert [(p.name, p.nip) for p in parties] == [("ani", "198001012005011001")] and note is None
    # a document the contract refuses is still searched for named people, and the case says so
    parties, note = casefile.routing_parties(Vault(b'{"parties": [{"name": "Dr. Ani"}, "x"], "others": []}'), "r1")
    assert [p.name for p in parties] == ["ani"] and note == "report_content_invalid"
    assert casefile.routing_parties(Vault(DomainNotFound("x")), "r1") == ([], "parties_unavailable")
    with pytest.raises(VaultError):  # storage down: retried, never routed blind
        casefile.routing_parties(Vault(Unavailable("timeout", "read_report_content")), "r1")
    with pytest.raises(VaultError):  # a console read while storage is away is a 503
        casefile._vault_call(Vault(Unavailable("timeout", "read_report_content")).read_report_content, "r1", None)


def test_an_evidence_download_withholds_its_end_unless_the_sha256_matches(caplog):
    import hashlib

    from verification.casefile import EvidenceIntegrityError, verified_chunks

    parts = [b"a" * 10, b"b" * 10, b"c" * 3]
    chunks = [{"data": p, "last": i == len(parts) - 1} for i, p in enumerate(parts)]
    good = hashlib.sha256(b"".join(parts)).hexdigest()
    assert b"".join(verified_chunks(chunks[0], good, "ev-1", lambda i: chunks[i])) == b"".join(parts)

    tampered = [dict(c) for c in chunks]
    tampered[1]["data"] = b"B" * 10
    served = []
    with caplog.at_level("ERROR"), pytest.raises(EvidenceIntegrityError):
        for data in verified_chunks(tampered[0], good, "ev-1", lambda i: tampered[i]):
            served.append(data)
    assert served == [b"a" * 10, b"B" * 10]  # the last chunk never leaves: the download is short
    assert "ev-1 does not match" in caplog.text and "BBBB" not in caplog.text


def _entrypoints(cls):
    """{method name: is it an HTTP entrypoint} over a service class's entrypoints."""
    from nameko.web.handlers import HttpRequestHandler

    return {name: isinstance(ext, HttpRequestHandler) for name in dir(cls)
            for ext in getattr(getattr(cls, name), "nameko_entrypoints", ())}


def test_the_web_and_worker_tiers_split_the_service_without_overlap():
    """``verification.web_tier`` serves only HTTP, ``verification.worker_tier`` everything else;
    together they are exactly the one-process service, under the same name."""
    from verification.web_tier import VerificationWeb
    from verification.worker_tier import VerificationWorkers

    web_side, workers, whole = (_entrypoints(c) for c in (VerificationWeb, VerificationWorkers, VerificationService))
    assert web_side and all(web_side.values())
    assert workers and not any(workers.values())
    assert dict(web_side, **workers) == whole and not set(web_side) & set(workers)
    assert VerificationWeb.name == VerificationWorkers.name == VerificationService.name == "verification"


@pytest.mark.parametrize("module, expected", [
    ("verification.service", {"VerificationService"}),
    ("verification.web_tier", {"VerificationWeb"}),
    ("verification.worker_tier", {"VerificationWorkers"}),
])
def test_nameko_run_finds_exactly_one_service_per_module(module, expected):
    from nameko.cli.run import import_service

    assert {cls.__name__ for cls in import_service(module)} == expected


def test_domain_errors_are_plain_and_mapped_to_http_in_one_place():
    from verification import errors, http_errors

    plain = [e for e in vars(errors).values() if isinstance(e, type) and issubclass(e, errors.DomainError)]
    assert all(not hasattr(e, "status") for e in plain)
    statuses = {e: http_errors.to_api_error(e("x")).status for e in plain}
    assert statuses[errors.InvalidInput] == 400 and statuses[errors.AuthenticationFailed] == 401
    assert statuses[errors.Forbidden] == 403 and statuses[errors.NotFound] == 404
    assert statuses[errors.TransitionForbidden] == statuses[errors.NotEligible] == statuses[errors.Conflict] == 409
    assert statuses[errors.VaultError] == 503
    assert http_errors.to_api_error(errors.AuthenticationFailed()).headers == {"WWW-Authenticate": "Bearer"}
    assert http_errors.to_api_error(ValueError("a fault, not an answer")) is None


def test_an_empty_case_list_says_so_in_the_words_of_its_page():
    from wbs_contracts.vocabulary import CATEGORIES

    me = {"staff_id": "s", "username": "ani", "display_name": "Ani", "role": "supervisor", "unit": "itjen",
          "language": "id"}
    from verification import caselist

    query = caselist.ListQuery()
    mine = web.page("cases.html", me=me, filters=query, page_link=query.link, sorts=caselist.SORTS,
                    categories=CATEGORIES, result={"cases": [], "total": 0, "page": 1, "per_page": 50},
                    units=[], last_page=1).get_data(as_text=True)
    overseen = web.page("supervision.html", me=me, cases=[], unassigned=[], lang="en").get_data(as_text=True)
    assert "Tidak ada kasus untuk Anda saat ini." in mine and "<table" not in mine
    assert "No cases in your oversight." in overseen and "<table" not in overseen
