"""The notification service: turns verification's events into content-free emails to staff, and
"there is news" notices to reporters who left an address (at most one a day per report).

Exactly one email per (event, recipient), retried until a bounded number of attempts when the
mail server or the staff directory is away. How, and the one unavoidable duplicate, are in
``notification.domain``'s docstring.
"""
from __future__ import annotations

from wbs_plumbing.queues import rpc  # quorum rpc-notification, as deploy/rabbitmq declares it

from wbs_contracts.errors import Forbidden, Invalid
from wbs_plumbing.db import Database
from wbs_plumbing.grants import CommandCheck
from wbs_plumbing.ops import Ops
from wbs_plumbing.reliable import event_handler

from notification import domain, overrides, pgp, planning
from notification.dependencies import NotificationSettings, RecipientDirectory, ReporterContacts
from notification.mailer import Mailer
from notification.models import Base, OutboxMessage, ProcessedEvent
from wbs_plumbing.timers import configured_timer


class NotificationService:
    name = "notification"

    db = Database(Base, OutboxMessage)
    ops = Ops()
    mailer = Mailer()
    directory = RecipientDirectory()
    contacts = ReporterContacts()
    settings = NotificationSettings()
    commands = CommandCheck("verification", "admin")

    @event_handler("verification", "case_assigned")
    def handle_case_assigned(self, event):
        """Email the assigned inspector that a case needs them.

        Input: ``case_assigned`` {case_id, inspector_id, unit, reference, report_id} (validated by
        the reliable handler); the reference is remembered for the email subject, the report id
        for the reporter's notices.
        Emits: ``notification_sent`` {notification_id, kind, case_id} once the mail server
        accepted the email (now, or later from the retry sweep).
        Errors: a database failure raises and the event is retried, then dead-lettered; mail and
        directory failures never raise here, the row is retried by ``retry_pending``.
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return  # redelivery: already recorded (and sent or scheduled)
            # recorded and claimed for its first attempt in this one transaction
            prepared = domain.claim_case_assigned(session, event, domain.utcnow(), self.settings)
        # First attempt right away, after the commit: no transaction is open during RPC or SMTP.
        if prepared is not None:
            domain.attempt(prepared, **self._sending())

    @event_handler("verification", "staff_changed")
    def handle_staff_changed(self, event):
        """Stop using any address of this staff member remembered before now, in every replica.

        Input: ``staff_changed`` {staff_id, ...}; only the id is used. The change is noted by id
        and time (``StaffChange``), which every replica checks before it reuses an address.
        Emits: nothing. Errors: a database failure raises and the event is retried.
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is not None:
                domain.note_staff_changed(session, event["staff_id"], domain.utcnow())
        self.directory.forget(event["staff_id"])

    @event_handler("verification", "case_opened")
    def handle_case_opened(self, event):
        """Ask the supervisors to assign a case routing could not assign (``routing_failed``).

        Input: ``case_opened`` {case_id, report_id, reference, unit, category, state, assigned};
        when ``assigned`` is not true, whether it has an assignee and who oversees it come from
        verification's ``case_contacts`` (ids only). The
        case's report id is remembered for reporter notices.
        Emits: ``notification_sent`` per email. Errors: verification unreachable -> retried,
        then dead-lettered; otherwise as ``handle_case_assigned``.
        """
        if event.get("assigned") is True:
            # Nobody to ask or tell, and nothing to learn: the case_assigned that follows tells
            # the inspector and carries the case's reference and report id.
            return
        # Unassigned (or from before ``assigned`` existed): who reaches it comes from verification.
        contacts = self.directory.case_contacts(event["case_id"])
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            domain.remember_case(session, event)
            ids = domain.record_routing_failed(session, event, domain.utcnow(), contacts)
        for notification_id in ids:
            self._deliver(notification_id)

    @event_handler("verification", "sla_breached")
    def handle_sla_breached(self, event):
        """Email the case's assignee and the supervisors overseeing it that a deadline passed.

        Input: ``sla_breached`` {case_id, clock, due_at}; who to tell comes from verification's
        ``case_contacts`` (ids only), asked before the transaction opens.
        Emits: ``notification_sent`` per email, as for ``case_assigned``.
        Errors: verification unreachable -> raised, retried, then dead-lettered; otherwise as
        ``handle_case_assigned``.
        """
        contacts = self.directory.case_contacts(event["case_id"])
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            domain.remember_case_reference(session, event["case_id"], (contacts or {}).get("reference"))
            ids = domain.record_sla_breached(session, event, domain.utcnow(), contacts or {})
        for notification_id in ids:
            self._deliver(notification_id)

    @event_handler("verification", "case_message_posted")
    def handle_case_message_posted(self, event):
        """Tell the assignee that the reporter answered; tell the reporter (if they left an
        address) that an inspector wrote to them. Internal notes tell nobody.

        Input: ``case_message_posted`` {case_id, direction, message_id}. The email is
        content-free: no message text ever reaches this service.
        Emits: ``notification_sent``. Errors: as ``handle_sla_breached``.
        """
        if domain.news_for_reporter(event):
            return self._reporter_news(event)
        if event.get("direction") != "from_reporter":
            return
        contacts = self.directory.case_contacts(event["case_id"])
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            domain.remember_case_reference(session, event["case_id"], (contacts or {}).get("reference"))
            ids = domain.record_reporter_replied(session, event, domain.utcnow(), contacts or {})
        for notification_id in ids:
            self._deliver(notification_id)

    @event_handler("verification", "case_status_changed")
    def handle_case_status_changed(self, event):
        """Tell the reporter (if they left an address) that their status page has news.

        Input: ``case_status_changed`` {case_id, from_state, to_state, report_id?}; only a change
        the reporter sees (a different reporter label, ``wbs_contracts.vocabulary``) counts.
        Emits: nothing (see ``notification.domain``: no event about reporter notices).
        Errors: a database failure raises and the event is retried, then dead-lettered.
        """
        if domain.news_for_reporter(event):
            self._reporter_news(event)

    @event_handler("storage", "report_shredded")
    def handle_report_shredded(self, event):
        """Forget a shredded report: its case link, its waiting news, its pending notices.

        Input: ``report_shredded`` {report_id}. Emits: nothing. Errors: database failure ->
        retried, then dead-lettered. (The address itself was never here; it went with the key.)
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is not None:
                domain.forget_report(session, event["report_id"])

    def _reporter_news(self, event):
        """Mark news for the case's report and plan today's notice if none went out today; the
        first attempt runs after the commit (later news waits for tomorrow's sweep)."""
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            ids = []
            if domain.note_reporter_news(session, event, domain.utcnow()):
                ids = domain.plan_reporter_notices(session, domain.utcnow(), self.settings)
        for notification_id in ids:
            self._deliver(notification_id)

    # -- templates (admin) -----------------------------------------------------------------

    def _template_command(self, command, name, actor, **bind):
        """The admin key's command, or verification's (the console) naming the administrator who
        acts (``actor``, bound into the token; verification signs it only for a signed-in admin)."""
        if actor is not None:
            bind["actor"] = actor
        claims = self.commands(command, name, ("admin", "verification"), **bind)
        if claims["iss"] == "verification" and actor is None:
            raise Forbidden("{} from the console must name the administrator".format(name))
        return claims

    @rpc(expected_exceptions=(Invalid, Forbidden))
    def set_template(self, kind, language, subject, text, html=None, command=None, actor=None):
        """Save a new version of one email template; the next email of that kind uses it.

        Input: ``kind``, ``language`` (id, en), ``subject``, ``text`` and optional ``html``: Jinja2
        sources that may use the kind's variables only (``{{ link }}``; a digest ``units``, a
        bundle ``items``, a key warning ``fingerprint`` and ``expires_on``); ``command``: the admin
        key's signed ``set_template`` bound to kind and language, or verification's (the console)
        bound to kind, language and ``actor``, the administrator's staff id. Returns ``{"kind",
        "language", "version"}``. Events: none (audited in wbs.audit.commands and
        wbs.audit.templates, with the actor).
        Errors: ``Forbidden`` (no valid command), ``Invalid`` (unknown kind or language, a
        variable the kind does not have, a syntax error, a template the sandbox refuses).
        """
        claims = self._template_command(command, "set_template", actor, kind=kind, language=language)
        checked = overrides.check(kind, language, subject, text, html)
        by = ":".join(part for part in (claims["iss"], actor, claims["jti"]) if part)
        with self.db.transaction() as session:
            version = overrides.save(session, checked, kind, language, by, domain.utcnow())
        return {"kind": kind, "language": language, "version": version}

    @rpc(expected_exceptions=(Invalid, Forbidden))
    def preview_template(self, kind, language, subject, text, html=None, command=None, actor=None):
        """Render a template as it would be sent, with a sample link, without saving it.

        Input: as ``set_template`` (command ``preview_template``). Returns ``{"subject", "text",
        "html"}``. Events: none. Errors: as ``set_template``.
        """
        self._template_command(command, "preview_template", actor, kind=kind, language=language)
        checked = overrides.check(kind, language, subject, text, html)
        subject, text, html = overrides.render_override(checked, overrides.sample_variables(kind))
        return {"subject": subject, "text": text, "html": html}

    @rpc(expected_exceptions=(Forbidden,))
    def list_templates(self, command=None, actor=None):
        """Every template (kind, language), the version in use (0: the shipped default) and the
        sources in use (the administrator's, or the default rendered to its source form), so an
        editor starts from what is sent.

        Input: ``command``, the admin key's signed ``list_templates`` or verification's bound to
        ``actor``. Events: none. Errors: ``Forbidden``.
        """
        self._template_command(command, "list_templates", actor)
        with self.db.transaction() as session:
            return overrides.listing(session)

    # -- OpenPGP keys ----------------------------------------------------------------------

    @rpc(expected_exceptions=(Invalid, Forbidden))
    def register_key(self, staff_id, armored_key, command=None):
        """Register a staff member's OpenPGP public key; their next emails are PGP/MIME.

        Input: ``staff_id``, ``armored_key`` (ASCII-armored public key); ``command``: the signed
        ``register_key`` bound to the staff id, from verification (the console, for the signed-in
        staff member) or the admin key. Returns ``{"fingerprint", "expires_at"}``. Events: none
        (audited). Errors: ``Forbidden``; ``Invalid`` with the reason: not a key, a private key,
        expired, revoked, bad self-signature, no encryption key.
        """
        self.commands(command, "register_key", ("verification", "admin"), staff_id=staff_id)
        checked = pgp.check_key(armored_key)
        with self.db.transaction() as session:
            planning.register_key(session, str(staff_id), checked, domain.utcnow())
        expires = checked.expires_at.isoformat() if checked.expires_at else None
        return {"fingerprint": checked.fingerprint, "expires_at": expires}

    @rpc(expected_exceptions=(Forbidden,))
    def remove_key(self, staff_id, command=None):
        """Forget a staff member's OpenPGP key: their next emails go in clear (content-free as
        always), and those held for an expired key go out at the next sweep.

        Input: ``command``: verification's or the admin key's signed ``remove_key`` bound to the
        staff id. Returns ``{"removed": bool}``. Events: none (audited). Errors: ``Forbidden``.
        """
        self.commands(command, "remove_key", ("verification", "admin"), staff_id=staff_id)
        with self.db.transaction() as session:
            return {"removed": planning.remove_key(session, str(staff_id), domain.utcnow())}

    @rpc(expected_exceptions=(Forbidden,))
    def staff_settings(self, staff_id, command=None):
        """A staff member's delivery and digest choice and registered key (fingerprint, expiry).

        Input: ``command``: verification's or the admin key's signed ``staff_settings`` bound to
        the staff id. Returns ``{"staff_id", "delivery", "digest", "key": {"fingerprint",
        "expires_at"} | None}``. Events: none. Errors: ``Forbidden``.
        """
        self.commands(command, "staff_settings", ("verification", "admin"), staff_id=staff_id)
        with self.db.transaction() as session:
            return planning.staff_settings(session, str(staff_id))

    # -- staff reminders, digests, preferences ----------------------------------------------

    @configured_timer(interval=300, config_key="NOTIFY_PLAN_INTERVAL_SECONDS")
    def plan_staff_notices(self):
        """Record due ``sla_reminder`` and ``supervisor_digest`` emails; the sweep sends them.

        Input: none (timer). Asks verification (ids and counts only) for clocks due within
        ``NOTIFY_REMINDER_WORKING_DAYS`` working days and, from ``NOTIFY_DIGEST_HOUR`` on, for
        each supervisor's counts; bundles the held case emails of "daily" staff (one
        ``daily_bundle`` a day each); warns of OpenPGP keys expiring within
        ``NOTIFY_KEY_WARNING_DAYS`` or expired (their owner and the administrators, whose ids it
        asks verification only then). Exactly once per (case, clock, due time), per (supervisor or
        staff member, period) and per (key, threshold) with any number of replicas: the rows' event ids are derived from those, and
        ``UNIQUE(event_id, recipient_id)`` refuses a second. Errors: verification away -> logged
        by nameko, the next tick tries again (nothing was recorded).
        """
        now = domain.utcnow()
        due = self.directory.deadlines_ahead(self.settings.reminder_working_days)
        digests = []
        if planning.digest_period("daily", now, self.settings) is not None:
            digests = self.directory.supervisor_digests(planning.digest_since(now, self.settings).isoformat())
        with self.db.transaction() as session:
            keys_due = planning.key_warnings_due(session, now, self.settings)
        admin_ids = self.directory.administrator_ids() if keys_due else []
        with self.db.transaction() as session:
            planning.record_reminders(session, due, now, self.settings)
            planning.record_digests(session, digests, now, self.settings)
            planning.record_bundles(session, now, self.settings)
            planning.record_key_warnings(session, keys_due, admin_ids, now)

    @rpc(expected_exceptions=(Invalid, Forbidden))
    def set_preference(self, staff_id, delivery=None, digest=None, command=None):
        """A staff member's email preference: ``delivery`` immediate|daily, ``digest`` daily|weekly.

        Input: ``command``: verification's (the console, for the signed-in staff member) or the
        admin key's signed ``set_preference`` bound to the staff id. Returns the preference.
        Events: none (audited). Errors: ``Forbidden``, ``Invalid`` (unknown value).
        """
        self.commands(command, "set_preference", ("verification", "admin"), staff_id=staff_id)
        if delivery not in (None, "immediate", "daily") or digest not in (None, "daily", "weekly"):
            raise Invalid("delivery is immediate or daily; digest is daily or weekly")
        with self.db.transaction() as session:
            return planning.set_preference(session, str(staff_id), delivery, digest, domain.utcnow())

    @configured_timer(interval=5, config_key="NOTIFY_SWEEP_INTERVAL_SECONDS")
    def retry_pending(self):
        """Retry due pending notifications with exponential backoff (bounded attempts).

        Input: none (timer). Emits: ``notification_sent`` for each email that now goes through.
        Errors: none raised for mail or directory failures; rows past ``NOTIFY_MAX_ATTEMPTS``
        become ``failed`` and are logged by id.
        """
        domain.sweep(**self._sending())

    def _recipient(self, recipient_id, changed_since=None):
        """A staff member's address from verification (remembered by this process until they
        change, ``notification.dependencies``); a reporter's from storage (read now, held for
        this one send only)."""
        if recipient_id.startswith(domain.REPORTER_PREFIX):
            return self.contacts.reporter_contact(recipient_id[len(domain.REPORTER_PREFIX):])
        return self.directory.get_recipient(recipient_id, changed_since)

    def _reference(self, case_id):
        """A case's register reference from verification (``case_contacts``), for a staff email
        whose ``case_opened`` this service has not handled yet."""
        return (self.directory.case_contacts(case_id) or {}).get("reference")

    def _sending(self) -> dict:
        """What every delivery attempt is given: the unit of work, the address lookups, the
        mailer and the settings."""
        return dict(transaction=self.db.transaction, lookup_recipient=self._recipient, mailer=self.mailer,
                    settings=self.settings, lookup_reference=self._reference)

    def _deliver(self, notification_id):
        domain.deliver(notification_id, **self._sending())
