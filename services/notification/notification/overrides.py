"""Email templates an administrator edits: versioned overrides of the shipped defaults.

Why this shape: an inspectorate wants its name, hotline and legal notice in the emails, but an
editable template must not become a way to put case content into an email or to reach Python
objects. So an override is checked at upload (it parses in Jinja2's sandbox, uses no variable
outside the kind's ``allowed_variables`` and renders with a sample link) and rendered in the sandbox from
the link only; if it still fails at send time the default is used and the failure logged
(``mailer._render_one``): a bad edit never blocks delivery. Each save is a new version (the
history says what was sent when); the RPCs that save, preview and list need the admin key's
signed command and are audited (``wbs.audit.commands`` and ``wbs.audit.templates``).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Dict, Optional

import jinja2
import jinja2.meta
from sqlalchemy import func, select

from wbs_contracts.errors import Invalid

from notification.mailer import (KINDS, LANGUAGES, Override, _env, _html_env, allowed_variables,
                                 default_env, render_override, _catalogue)
from notification.models import TemplateVersion

audit = logging.getLogger("wbs.audit.templates")

SAMPLE_LINK = "https://example.invalid/sample-link"
SAMPLE_UNITS = [{"unit": "sample-unit", "new": 1, "waiting": 2, "overdue": 0, "awaiting_reporter": 1}]
SAMPLE = {"link": SAMPLE_LINK, "units": SAMPLE_UNITS,
          "items": [{"link": SAMPLE_LINK, "reference": "WBS/CONTOH/2026/00001"}],
          "fingerprint": "0123456789ABCDEF0123456789ABCDEF01234567", "expires_on": "2026-12-31"}
MAX_TEMPLATE_CHARS = 20000
_TRANS = re.compile(r"\{%-?\s*trans\b(.*?)-?%\}(.*?)\{%-?\s*endtrans\s*-?%\}", re.S)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def sample_variables(kind: str) -> dict:
    """What a preview renders with: a sample link (and sample counts, items or key details)."""
    return {name: SAMPLE[name] for name in allowed_variables(kind)}


def default_source(kind: str, language: str) -> dict:
    """The shipped default of ``kind`` in ``language`` as an override's source (its texts taken
    from the Babel catalogue, its variables kept as ``{{ ... }}``), where an editor starts."""
    env = default_env(language)
    source = env.loader.get_source(env, "{}.txt".format(kind))[0]
    catalogue = _catalogue(language)

    def translated(match):
        assigned = dict(part.split("=", 1) for part in
                        (p.strip().replace(" ", "") for p in match.group(1).split(",")) if "=" in part)
        names = {name: "{{{{ {} }}}}".format(assigned.get(name, name))
                 for name in _PLACEHOLDER.findall(match.group(2))}
        msgid = _PLACEHOLDER.sub(lambda m: "%({})s".format(m.group(1)), match.group(2))
        text = catalogue.gettext(msgid)
        return text % names if names else text

    subject, _, text = _TRANS.sub(translated, source).partition("\n")
    return {"subject": subject.strip(), "text": text, "html": None}


def check(kind: str, language: str, subject: str, text: str, html: Optional[str] = None) -> Override:
    """The override, or ``Invalid`` naming what is wrong (never echoing the template)."""
    if kind not in KINDS:
        raise Invalid("unknown template kind")
    if language not in LANGUAGES:
        raise Invalid("language must be one of {}".format(", ".join(LANGUAGES)))
    for name, value, optional in (("subject", subject, False), ("text", text, False), ("html", html, True)):
        if value is None and optional:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEMPLATE_CHARS:
            raise Invalid("{} must be a non-empty text of at most {} characters".format(name, MAX_TEMPLATE_CHARS))
        env = _html_env if name == "html" else _env
        try:
            used = jinja2.meta.find_undeclared_variables(env.parse(value))
        except jinja2.TemplateSyntaxError as exc:
            raise Invalid("{}: template syntax error on line {}".format(name, exc.lineno)) from None
        if not used <= allowed_variables(kind):
            raise Invalid("{} may use only {}".format(name, ", ".join(sorted(allowed_variables(kind)))))
    if "\n" in subject.strip():
        raise Invalid("subject must be one line")
    override = Override(version=0, subject=subject, text=text, html=html)
    try:
        render_override(override, sample_variables(kind))
    except Exception as exc:  # sandbox refusals, filters on the wrong type, ...
        raise Invalid("template does not render: {}".format(type(exc).__name__)) from None
    return override


def current(session, kind: str) -> Dict[str, Override]:
    """language -> the highest version of ``kind``'s overrides (none: the defaults are used)."""
    latest = (select(TemplateVersion.language, func.max(TemplateVersion.version).label("version"))
              .where(TemplateVersion.kind == kind).group_by(TemplateVersion.language).subquery())
    rows = session.scalars(select(TemplateVersion).join(
        latest, (TemplateVersion.language == latest.c.language) & (TemplateVersion.version == latest.c.version)
    ).where(TemplateVersion.kind == kind))
    return {r.language: Override(r.version, r.subject, r.text, r.html) for r in rows}


def save(session, override: Override, kind: str, language: str, by: str, now: datetime) -> int:
    """Store a checked override as the next version; the version number."""
    version = (session.scalar(select(func.max(TemplateVersion.version)).where(
        TemplateVersion.kind == kind, TemplateVersion.language == language)) or 0) + 1
    session.add(TemplateVersion(kind=kind, language=language, version=version, subject=override.subject,
                                text=override.text, html=override.html, created_at=now, created_by=by[:100]))
    session.flush()  # two saves racing for one version: the primary key refuses the second
    audit.info("template %s.%s version %d set by %s", kind, language, version, by)
    return version


def listing(session) -> list:
    """Every kind and language with its version in use (0: the shipped default) and the sources
    in use (``subject``, ``text``, ``html``: the administrator's, or the default's)."""
    result = []
    for kind in KINDS:
        in_use = current(session, kind)
        for language in LANGUAGES:
            override = in_use.get(language)
            sources = (default_source(kind, language) if override is None else
                       {"subject": override.subject, "text": override.text, "html": override.html})
            result.append(dict(sources, kind=kind, language=language,
                               version=override.version if override else 0))
    return result
