"""Content-free staff emails, and the one DependencyProvider that sends them.

Why the templates can carry nothing sensitive: they are rendered from exactly two values, the
notification kind (which picks the template) and the console link built from the case id. The
render function does not accept anything else, so no event field, recipient name, unit or
report content can reach an email even by mistake (docs/architecture.md §5.6). A reporter's case is named
only by its opaque id inside a link that requires signing in.

Reporter notices (``reporter_news``) are different on purpose: one language (the report's), no
case id (the link is the reporter's sign-in page, where the receipt is needed), a neutral
subject and sender name from the settings, no "[WBS]" tag: someone reading the reporter's
mailbox learns that this address gets notices from a service, not what the service is.

Templates render in Jinja2's ``SandboxedEnvironment``: a template edited by an administrator
must not reach Python objects through attribute access.

Transports (``SMTP_HOST`` set or not):

* SMTP through the standard library's ``smtplib`` imported with eventlet's green sockets, so a
  slow mail server blocks one greenlet, not the service, and with a timeout so a dead one fails
  the attempt instead of hanging the worker. STARTTLS and login when configured. Connections
  are kept open between emails (``SmtpTransport``): a new one per email cost a TCP (and TLS)
  handshake, EHLO and login each time.
* The outbox folder ``<WBS_DATA_DIR>/outbox/``: one ``.eml`` per message, written to a temporary
  name in the same folder and renamed, so a reader never sees half a file. The file name is the
  notification id: a retry after a crash overwrites instead of duplicating.
"""
from __future__ import annotations

import email.utils
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Optional

from functools import lru_cache
from pathlib import Path

import eventlet.patcher
import jinja2
import markupsafe
from babel.support import Translations
from jinja2.sandbox import SandboxedEnvironment
from nameko.extensions import DependencyProvider

from wbs_plumbing.config import service_settings
from wbs_plumbing.sockets import spoken_unasked

from notification import pgp
from notification.settings import Settings

smtplib = eventlet.patcher.import_patched("smtplib")

log = logging.getLogger(__name__)

# Emails about one case: a staff member who chose "daily" delivery gets them bundled.
CASE_KINDS = ("case_assigned", "sla_breached", "sla_escalated", "reporter_replied", "routing_failed",
              "sla_reminder")
# Emails about a period, not a case: their "case id" is the period key, their link the console.
DIGEST_KINDS = ("supervisor_digest", "daily_bundle")
# About a staff member's OpenPGP key (to them, and to the administrators): always in clear, no case.
KEY_KINDS = ("key_expiring", "key_expired", "key_expiring_admin", "key_expired_admin")
STAFF_KINDS = CASE_KINDS + DIGEST_KINDS + KEY_KINDS
# Emails to a reporter: addressed by report, never to staff, never naming the case.
REPORTER_KINDS = ("reporter_news",)
KINDS = STAFF_KINDS + REPORTER_KINDS
LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
# The only names a template may use. Tested: every template's undeclared variables are a subset.
TEMPLATE_VARIABLES = frozenset({"link"})
# A digest also gets ``units``: [{unit, new, waiting, overdue, awaiting_reporter}] (codes and counts);
# a daily bundle ``items``: [{link, reference}]; a key warning the key's fingerprint and expiry date.
_KIND_VARIABLES = {"supervisor_digest": frozenset({"link", "units"}),
                   "daily_bundle": frozenset({"link", "items"}),
                   **{kind: frozenset({"link", "fingerprint", "expires_on"}) for kind in KEY_KINDS}}
DIGEST_VARIABLES = _KIND_VARIABLES["supervisor_digest"]
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def allowed_variables(kind: str) -> frozenset:
    return _KIND_VARIABLES.get(kind, TEMPLATE_VARIABLES)


# Administrators' overrides: the sandbox, plain text, no gettext (an override is one language).
_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
# Administrators' HTML bodies: the same sandbox, escaping what is substituted.
_html_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True)


@lru_cache(maxsize=None)
def _catalogue(language: str) -> Translations:
    return Translations.load(str(TRANSLATIONS), [language], domain="messages")


@lru_cache(maxsize=None)
def default_env(language: str) -> SandboxedEnvironment:
    """The shipped defaults (``templates/<kind>.txt``, English texts in ``{% trans %}``) with the
    language's Babel catalogue (``translations/<lang>/LC_MESSAGES/messages.po``) installed."""
    env = SandboxedEnvironment(loader=jinja2.PackageLoader("notification", "templates"),
                               undefined=jinja2.StrictUndefined, autoescape=False,
                               keep_trailing_newline=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(_catalogue(language), newstyle=False)
    return env


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str
    html: Optional[str] = None  # only when an administrator's override gives an HTML body


@dataclass(frozen=True)
class Override:
    """An administrator's version of one template (``notification.overrides``)."""
    version: int
    subject: str
    text: str
    html: Optional[str] = None


def case_link(console_url: str, case_id: str) -> str:
    return "{}/cases/{}".format(console_url.rstrip("/"), case_id)


def render_override(override: Override, variables: dict):
    """(subject, text, html) of an override, in the sandbox, from ``variables`` (the kind's
    ``allowed_variables``) only; raises whatever Jinja2 raises (undefined, syntax, security)."""
    def one(source, autoescape=False):
        if source is None:
            return None
        env = _html_env if autoescape else _env
        return env.from_string(source).render(**variables)
    return one(override.subject).strip(), one(override.text), one(override.html, autoescape=True)


def _render_one(kind: str, language: str, variables: dict, override: Optional[Override] = None):
    if override is not None:
        try:
            return render_override(override, variables)
        except Exception as exc:  # a broken override must never block delivery
            log.error("template override %s.%s v%d failed to render (%s); the default is used",
                      kind, language, override.version, type(exc).__name__)
    text = default_env(language).get_template("{}.txt".format(kind)).render(**variables)
    subject, _, body = text.partition("\n")
    return subject.strip(), body, None


def _html_of(parts) -> Optional[str]:
    """One HTML body when any part has one; the others' text goes in escaped."""
    if not any(html for _, _, html in parts):
        return None
    return "\n<hr>\n".join(html or "<pre>{}</pre>".format(markupsafe.escape(text.strip()))
                            for _, text, html in parts)


def render_reporter(kind: str, settings: Settings, language: Optional[str] = None,
                    overrides: Optional[dict] = None) -> RenderedEmail:
    """A reporter notice in the report's language only: the sign-in link and nothing else."""
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    part = _render_one(kind, language, {"link": settings.followup_url}, (overrides or {}).get(language))
    return RenderedEmail(subject=settings.reporter_subject or part[0], body=part[1].strip() + "\n",
                         html=_html_of([part]))


def render(kind: str, case_id: str, console_url: str, language: Optional[str] = None,
           overrides: Optional[dict] = None, units: Optional[list] = None,
           reference: Optional[str] = None, extra: Optional[dict] = None) -> RenderedEmail:
    """Both languages, the recipient's preferred one first (Bahasa Indonesia by default).
    ``overrides``: language -> ``Override`` (the administrator's current versions); ``units``:
    a digest's counts (digests only); ``reference``: the case's register reference, put in the
    subject of an email about one case; ``extra``: a bundle's ``items`` or a key warning's
    ``link``, ``fingerprint`` and ``expires_on`` (only the kind's ``allowed_variables`` are kept)."""
    if kind not in STAFF_KINDS:
        raise ValueError("unknown notification kind {!r}".format(kind))
    first = language if language in LANGUAGES else DEFAULT_LANGUAGE
    order = [first] + [lang for lang in LANGUAGES if lang != first]
    if kind in DIGEST_KINDS:
        variables = {"link": console_url.rstrip("/") + "/cases", "units": list(units or [])}
    else:
        variables = {"link": case_link(console_url, case_id)}
    variables.update(extra or {})
    variables = {name: variables.get(name) for name in allowed_variables(kind)}
    parts = [_render_one(kind, lang, variables, (overrides or {}).get(lang)) for lang in order]
    tag = "[WBS] {}: ".format(reference) if reference and kind in CASE_KINDS else "[WBS] "
    subject = tag + " / ".join(subject for subject, _, _ in parts)
    body = "\n-----\n\n".join(body.strip() + "\n" for _, body, _ in parts)
    return RenderedEmail(subject=subject, body=body, html=_html_of(parts))


def build_message(settings: Settings, to_address: str, rendered: RenderedEmail, message_key: str,
                  sender: Optional[str] = None) -> EmailMessage:
    """A plain-text message. ``Message-ID`` is derived from the notification id so that a
    resend after a crash can be recognised as the same message by the receiving side.
    ``sender`` (a full From header) replaces ``MAIL_FROM`` for reporter notices."""
    message = EmailMessage()
    message["From"] = sender or settings.mail_from
    message["To"] = to_address
    message["Subject"] = rendered.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    address = email.utils.parseaddr(sender or settings.mail_from)[1]
    domain = address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = "<{}@{}>".format(message_key, domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.body)
    if rendered.html:
        message.add_alternative(rendered.html, subtype="html")
    return message


class MailTransportError(Exception):
    """Sending failed in a way worth retrying later (server down, refused, timed out)."""


class KeyUnusable(Exception):
    """The recipient registered an OpenPGP key that can no longer encrypt (expired): the email
    is held, never sent in clear in its place (``notification.domain``)."""


class SmtpTransport:
    """Sends over SMTP, reusing up to ``POOL`` connections that sat idle less than
    ``IDLE_SECONDS`` (mail servers drop idle clients after a few minutes; RFC 5321 asks them to
    wait at least five). A kept connection the server has closed or written to unasked (a 421
    before closing) is readable, so it is dropped before use, without a round trip. A failed
    send closes its connection and fails the attempt, as on a new connection: the row's retry
    decides what comes next, never a silent second send."""

    POOL = 4
    IDLE_SECONDS = 60.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._idle: list = []  # (client, monotonic time it was last used), newest last

    def send(self, message: EmailMessage, key: str) -> None:
        client = None
        try:
            client = self._kept() or self._connect()
            client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            _close(client)
            # The exception's text can quote the recipient address; only its class travels on.
            raise MailTransportError(type(exc).__name__) from None
        if len(self._idle) < self.POOL:
            self._idle.append((client, time.monotonic()))
        else:
            _close(client, polite=True)

    def close(self) -> None:
        while self._idle:
            _close(self._idle.pop()[0])

    def _kept(self):
        while self._idle:
            client, since = self._idle.pop()
            if time.monotonic() - since < self.IDLE_SECONDS and not _spoken_unasked(client):
                return client
            _close(client)  # no QUIT: a server that went away silently would make it wait
        return None

    def _connect(self):
        s = self.settings
        # EHLO names the sender's mail domain: left unset, smtplib resolves this host's FQDN
        # on every connection (slow through eventlet's pure-Python resolver, and it tells the
        # mail server an internal host name).
        helo = s.mail_from.rsplit("@", 1)[-1].strip(">") or "localhost"
        client = smtplib.SMTP(s.smtp_host, s.smtp_port, local_hostname=helo, timeout=s.smtp_timeout)
        try:
            if s.smtp_starttls:
                client.starttls()
            if s.smtp_username:
                client.login(s.smtp_username, s.smtp_password)
        except BaseException:
            _close(client)
            raise
        return client


def _spoken_unasked(client) -> bool:
    """A kept connection with something to read: the server closed it or said goodbye."""
    sock = getattr(client, "sock", None)
    return sock is None or spoken_unasked(sock)


def _close(client, polite: bool = False) -> None:
    if client is None:
        return
    try:
        if polite:
            client.quit()
        else:
            client.close()
    except (OSError, smtplib.SMTPException):
        client.close()


class OutboxFolderTransport:
    def __init__(self, folder: str):
        self.folder = folder

    def send(self, message: EmailMessage, key: str) -> None:
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            final = os.path.join(self.folder, "{}.eml".format(key))
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.as_bytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, final)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        except OSError as exc:
            raise MailTransportError(type(exc).__name__) from None


class MailSender:
    """What a worker gets: one verb, ``send_notification``."""

    def __init__(self, settings: Settings, transport):
        self.settings = settings
        self.transport = transport

    def send_notification(self, *, key: str, to_address: str, kind: str, case_id: str,
                          language: Optional[str] = None, overrides: Optional[dict] = None,
                          public_key: Optional[str] = None, units: Optional[list] = None,
                          reference: Optional[str] = None, extra: Optional[dict] = None) -> None:
        """Render, build, encrypt to ``public_key`` when the recipient registered one, send.
        Raises ``KeyUnusable`` (nothing sent) when that key can no longer encrypt; a key warning
        (``KEY_KINDS``) goes in clear: it carries no case link and must reach its reader."""
        if kind in REPORTER_KINDS:
            rendered = render_reporter(kind, self.settings, language, overrides)
            sender = email.utils.formataddr((self.settings.reporter_sender_name,
                                             self.settings.reporter_from))
        else:
            rendered = render(kind, case_id, self.settings.console_url, language, overrides, units,
                              reference, extra)
            sender = None
        message = build_message(self.settings, to_address, rendered, key, sender)
        if public_key and kind not in KEY_KINDS:
            encrypted = pgp.encrypt_message(message, public_key)
            if encrypted is None:
                raise KeyUnusable(key)
            message = encrypted
        self.transport.send(message, key)


def make_transport(settings: Settings):
    if settings.uses_smtp:
        return SmtpTransport(settings)
    return OutboxFolderTransport(settings.outbox_dir)


class Mailer(DependencyProvider):
    """Sends staff emails over SMTP or into the outbox folder (see module docstring)."""

    def setup(self):
        self.settings = service_settings(self.container, Settings.from_config)
        self.sender = MailSender(self.settings, make_transport(self.settings))
        if self.settings.uses_smtp:
            log.info("mail goes to SMTP %s:%s", self.settings.smtp_host, self.settings.smtp_port)
        else:
            log.info("no SMTP_HOST: mail goes to the outbox folder %s", self.settings.outbox_dir)

    def stop(self):
        close = getattr(self.sender.transport, "close", None)
        if close is not None:
            close()

    def get_dependency(self, worker_ctx):
        return self.sender
