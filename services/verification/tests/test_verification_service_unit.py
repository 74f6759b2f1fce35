"""Settings refusals, HTTP shaping, and the entrypoints' error mapping, without servers."""
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
    with mock.patch("verification.domain.open_case", side_effect=InvalidInput("report_submitted lacks unit")):
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
