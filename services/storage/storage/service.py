"""The storage service: the vault. Thin nameko entrypoints over :mod:`storage.domain`.

storage is the only service that holds keys and talks to the object store. Plaintext comes in
over RPC, only ciphertext goes to the store, and plaintext goes out only to a caller that presents
a read grant: verification decides who may read a case and signs that decision (Ed25519,
``wbs_plumbing.grants``); storage checks the signature, the report, the scope and the expiry, and
records every read with the grant's subject, case and id.

Retention: storage keeps each report's retention schedule from verification's
``case_status_changed`` and ``legal_hold_changed`` events (reliable handlers, each event applied
once) and shreds what is due from a daily timer or ``run_retention`` (``wbs retention run``).
An event only makes a report a candidate: before shredding, storage asks verification
(``case_retention_state``) and shreds only what verification confirms (DESIGN §10: events are
facts to verify, not orders); the clock is storage's own.

Privileged RPCs need a signed command (``wbs_plumbing.grants``) besides broker access:
``discard_report`` one from intake bound to the report (intake discards only its own failed
submission), ``run_retention`` one from the admin key (the wbs command). Each is checked before
any effect and audited; a refusal is ``Forbidden``.

Evidence uploads are conversations: ``begin_evidence`` (any instance, plain ``@rpc``) opens an
upload in *this* process's memory and returns this instance's private ``route``; the chunks,
``finish_evidence`` and ``abort_evidence`` are ``@instance_rpc`` methods reached through that route
(``RoutedRpcProxy(...).route(route)``), so they land where the encryptor and the running SHA-256
live. If the instance dies, its route disappears and the caller gets an error at once; abandoned
uploads are reaped after ``UPLOAD_IDLE_SECONDS``.

Sealed transit (opt-in, :mod:`storage.transit`): content must not cross RabbitMQ in plaintext.
``open_transit`` gives this instance's route and in-memory transit key; calls that carry a
``sender_key`` take sealed content and must be sent to that route (so ``store_report``, ``store_report_content``,
``begin_evidence`` and ``discard_report`` are reachable both ways); reads given a ``reader_key``
answer sealed to it. Without these arguments every call works on plaintext, as the spec lists it,
unless ``REQUIRE_SEALED_TRANSIT`` is set: then plaintext content in or out is refused.

Errors raised to callers are the contract types (``wbs_contracts.errors``: ``Invalid``,
``NotFound``, ``Forbidden``, ``Conflict``, ``IntegrityError``); nameko hands them over as ``RemoteError`` with
that ``exc_type``. Messages never contain content, file names or keys.

CPU: per-chunk work is bounded (<= 1 MiB: measured ~1.5 ms AES-GCM + ~1.5 ms SHA-256 on the
reference machine), far below anything that could starve AMQP heartbeats, so it runs on the
hub; ``eventlet.tpool`` would add a thread hand-off per chunk without a heartbeat benefit.
"""
import logging
from functools import partial

from wbs_plumbing.queues import RpcProxy, rpc  # quorum rpc-storage, transient reply queue (deploy/rabbitmq/README.md)
from wbs_contracts.errors import Conflict, Forbidden, Invalid, IntegrityError, NotFound
from wbs_plumbing.db import Database
from wbs_plumbing.deadline import call_with_deadline
from wbs_plumbing.grants import CommandCheck
from wbs_plumbing.ops import Ops
from wbs_plumbing.outbox import utcnow
from wbs_plumbing.reliable import event_handler
from wbs_plumbing.rpc import InstanceRoute, instance_rpc

from storage import contact, domain, retention
from storage.dependencies import (Grants, Keys, Objects, StorageSettings, TransitKeys,
                                  UploadSessions)
from storage.models import Base, OutboxMessage, ProcessedEvent
from wbs_plumbing.timers import configured_timer

log = logging.getLogger(__name__)

# Refusals the caller caused: logged by nameko as a warning, without a stack trace.
EXPECTED = (Invalid, NotFound, Forbidden, Conflict, IntegrityError)


class StorageService:
    name = "storage"

    db = Database(Base, OutboxMessage)
    ops = Ops()
    keyring = Keys()
    store = Objects()
    uploads = UploadSessions()
    transit = TransitKeys()
    grants = Grants()
    settings = StorageSettings()
    route = InstanceRoute()
    commands = CommandCheck("intake", "notification", "admin")
    verification = RpcProxy("verification")

    @rpc(expected_exceptions=EXPECTED)
    def open_transit(self):
        """This instance's route and transit public key, to seal content for it.

        Input: none. Returns ``{"route", "transit_key"}`` (32-byte X25519 public key, valid while
        this process lives). Events: none. Errors: none.
        """
        return {"route": self.route, "transit_key": self.transit.public_key}

    # -- evidence uploads ------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def begin_evidence(self, report_id, filename, media_type, sender_key=None):
        """Open an evidence upload for a report.

        Input: ``report_id`` (UUID), ``filename`` and ``media_type`` (sealed at once under the
        report's data key); with ``sender_key`` both arrive sealed in transit (send to the route
        of ``open_transit``) and so must every chunk. Returns ``{"upload_id", "route",
        "transit_key"}``: send the chunks to ``route``. Events: none. Errors: ``Invalid`` (bad
        id, name or sealed value), ``Conflict`` (too many uploads in progress on this instance).
        """
        upload_id = domain.begin_upload(self.db.transaction, self.keyring, self.store,
                                        self.uploads, report_id, filename, media_type,
                                        transit=self.transit, sender_key=sender_key)
        return {"upload_id": upload_id, "route": self.route,
                "transit_key": self.transit.public_key}

    @instance_rpc(expected_exceptions=EXPECTED)
    def append_evidence(self, upload_id, chunk):
        """Encrypt and store the next chunk of an upload (sticky route only).

        Input: ``upload_id``, ``chunk`` (bytes, at most 1 MiB of plaintext; sealed if the upload
        was begun with a ``sender_key``), in order. Returns None. Events: none. Errors:
        ``Invalid`` (not bytes, too big, fails to unseal), ``NotFound`` (unknown, finished,
        aborted or expired upload); a store failure aborts the upload.
        """
        domain.append_upload(self.uploads, upload_id, chunk, transit=self.transit)

    @instance_rpc(expected_exceptions=EXPECTED)
    def finish_evidence(self, upload_id):
        """Complete an upload (sticky route only).

        Returns ``{"evidence_id", "size_bytes", "sha256"}`` (size and SHA-256 of the plaintext).
        Events: ``evidence_stored`` {report_id, evidence_id, size_bytes, sha256}, through the
        outbox in the transaction that records the evidence. Errors: ``NotFound`` (unknown
        upload, or the report was discarded meanwhile).
        """
        return domain.finish_upload(self.db.transaction, self.uploads, upload_id)

    @instance_rpc(expected_exceptions=EXPECTED)
    def abort_evidence(self, upload_id):
        """Drop an upload and its partial object (sticky route only). Unknown ids are a no-op.

        Returns None. Events: none. Errors: none.
        """
        domain.abort_upload(self.uploads, upload_id)

    # -- report content --------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def store_report_content(self, report_id, content, sender_key=None):
        """Seal a report's sensitive content (JSON as bytes: narrative, parties, identity).

        With ``sender_key``, ``content`` is sealed in transit (send to the ``open_transit``
        route). Storing again replaces it. Returns None. Events: none. Errors: ``Invalid``.
        """
        domain.store_report_content(self.db.transaction, self.keyring, self.store, report_id,
                                    content, transit=self.transit, sender_key=sender_key)

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def store_report(self, report_id, content, files, sender_key=None):
        """Store a new report at once: its content and evidence files of at most one chunk each.

        Input: ``report_id``, ``content`` (as ``store_report_content``), ``files``
        ``[{"filename", "media_type", "data"}]`` (at most 20, each at most 1 MiB); with
        ``sender_key`` every value arrives sealed in transit (send to the ``open_transit`` route).
        Returns ``[{"evidence_id", "size_bytes", "sha256"}]``. Events: ``evidence_stored`` per
        file, in the one transaction that records the report. Errors: ``Invalid``, ``Conflict``
        (the report is stored already).
        """
        return domain.store_report(self.db.transaction, self.keyring, self.store, report_id, content,
                                   files, transit=self.transit, sender_key=sender_key)

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def discard_report(self, report_id, command=None):
        """Destroy everything of a report: data key (crypto-shredding), rows, objects, uploads.

        Used when intake fails half-way: ``command`` is intake's signed ``discard_report`` for
        this ``report_id``. Idempotent. Returns None. Events: none.
        Errors: ``Forbidden`` (no valid command from intake for this report), ``Invalid``.
        """
        self.commands(command, "discard_report", ("intake",), report_id=str(report_id))
        domain.discard_report(self.db.transaction, self.store, self.uploads, report_id)

    @rpc(expected_exceptions=EXPECTED)
    def read_report_content(self, report_id, grant, reader_key=None):
        """Decrypt a report's content for the holder of ``grant`` (scope ``content``); logged.

        Input: ``report_id``, ``grant`` (verification's signed read grant), ``reader_key``.
        Returns bytes, or ``{"sender_key", "sealed"}`` sealed to ``reader_key``. Events: none.
        Errors: ``Forbidden`` (grant missing, forged, expired, for another report or scope),
        ``Invalid``, ``NotFound``, ``IntegrityError`` (stored ciphertext tampered with).
        """
        return domain.read_report_content(self.db.transaction, self.keyring, self.store,
                                          self.grants, report_id, grant, reader_key=reader_key,
                                          transit=self.transit)

    @rpc(expected_exceptions=EXPECTED)
    def read_report_parties(self, report_id, grant, reader_key=None):
        """Only the people a report names (for routing), for the holder of ``grant`` (scope
        ``parties``); logged as a ``parties`` read.

        Input: ``report_id``, ``grant``, ``reader_key``. Returns JSON bytes ``{"format",
        "parties": [{name, position?, unit?, nip?}], "valid"}`` (``valid``: the whole document
        matches ``wbs.report-content/1``), or sealed to ``reader_key``. Events: none. Errors: as
        ``read_report_content``.
        """
        return domain.read_report_parties(self.db.transaction, self.keyring, self.store,
                                          self.grants, report_id, grant, reader_key=reader_key,
                                          transit=self.transit)

    @rpc(expected_exceptions=EXPECTED)
    def read_reporter_contact(self, report_id, command=None):
        """The reporter's notice address and language, nothing else; logged (``storage.contact``).

        Input: ``report_id``, ``command`` (notification's signed ``read_reporter_contact`` for this
        report; no other issuer is accepted). Returns ``{"email", "language"}`` or None when the
        reporter gave no address. Events: none. Errors: ``Forbidden``, ``Invalid``, ``NotFound``
        (unknown or shredded report: the address went with its key).
        """
        claims = self.commands(command, "read_reporter_contact", ("notification",),
                               report_id=str(report_id))
        return contact.read_reporter_contact(self.db.transaction, self.keyring, self.store,
                                             report_id, claims)

    # -- evidence reads --------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_evidence(self, report_id, grant, reader_key=None):
        """A report's evidence: [{"evidence_id", "size_bytes", "sha256", "filename",
        "media_type"}], oldest first (sealed to ``reader_key`` as JSON when given); the listing
        is logged as a read of the grant's subject.

        Input: ``grant`` with scope ``evidence``. Events: none. Errors: ``Forbidden``,
        ``Invalid``, ``NotFound`` (unknown report).
        """
        return domain.list_evidence(self.db.transaction, self.keyring, self.grants, report_id,
                                    grant, reader_key=reader_key, transit=self.transit)

    @rpc(expected_exceptions=EXPECTED)
    def read_evidence_chunk(self, evidence_id, index, grant, reader_key=None):
        """The ``index``-th 1 MiB of an evidence file's plaintext: {"data": bytes, "last": bool}
        (or {"sender_key", "sealed", "last"} sealed to ``reader_key``).

        Input: ``grant`` with scope ``evidence`` for the file's report. Read chunks 0, 1, ...
        until ``last``; the last chunk verifies the end of the file. Each chunk read is logged.
        Events: none. Errors: ``Forbidden``, ``Invalid`` (bad index), ``NotFound``,
        ``IntegrityError``.
        """
        return domain.read_evidence_chunk(self.db.transaction, self.keyring, self.store,
                                          self.grants, evidence_id, index, grant,
                                          reader_key=reader_key, transit=self.transit)

    # -- messages --------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def store_message(self, report_id, message_id, text, sender_key=None):
        """Seal one message of a report's conversation under the report's data key.

        Input: ``report_id``, ``message_id`` (UUIDs), ``text`` (UTF-8 bytes, at most 64 KiB;
        sealed in transit when ``sender_key`` is given: send to the ``open_transit`` route).
        Idempotent per ``message_id``. Returns None. Events: none. Errors: ``Invalid``,
        ``Conflict`` (the message id belongs to another report).
        """
        domain.store_message(self.db.transaction, self.keyring, report_id, message_id, text,
                             transit=self.transit, sender_key=sender_key)

    @rpc(expected_exceptions=EXPECTED)
    def read_messages(self, report_id, message_ids, grant, reader_key=None):
        """Messages of a report in the order asked: ``[{"message_id", "text"}]`` (or sealed JSON
        of that list to ``reader_key``); each message read is logged.

        Input: ``grant`` with scope ``messages`` (listing every id asked, if it lists ids).
        Events: none. Errors: ``Forbidden``, ``Invalid``, ``NotFound``.
        """
        return domain.read_messages(self.db.transaction, self.keyring, self.grants, report_id,
                                    message_ids, grant, reader_key=reader_key,
                                    transit=self.transit)

    # -- retention -------------------------------------------------------------------------

    @event_handler("verification", "case_status_changed")
    def handle_case_status_changed(self, event):
        """Keep the report's retention schedule: an end state sets its shred date, a reopening
        clears it.

        Input: ``case_status_changed`` {case_id, report_id, from_state, to_state} (validated by
        the reliable handler; applied once per event_id). Events: none. Errors: a database
        failure is retried, then dead-lettered.
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent,
                                 "storage.case_status_changed") as session:
            if session is not None:
                retention.record_status_change(session, self.settings.retention, event)

    @event_handler("verification", "legal_hold_changed")
    def handle_legal_hold_changed(self, event):
        """Set or lift a legal hold: a held report is never shredded.

        Input: ``legal_hold_changed`` {case_id, report_id, legal_hold}. Events: none.
        Errors: as ``handle_case_status_changed``.
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent,
                                 "storage.legal_hold_changed") as session:
            if session is not None:
                retention.record_legal_hold(session, event)

    @rpc(expected_exceptions=EXPECTED)
    def run_retention(self, command=None):
        """Shred every report past its retention, confirmed by verification and not on legal
        hold (``wbs retention run``). The clock is storage's; no caller sets it.

        Input: ``command``, the admin key's signed ``run_retention``. Returns ``{"shredded":
        [report ids]}``. Events: ``report_shredded`` {report_id} per report, through the outbox
        in the transaction that destroys its data key. Errors: ``Forbidden``.
        """
        self.commands(command, "run_retention", ("admin",))
        return {"shredded": self._retention()}

    def _retention(self):
        return retention.run_retention(
            self.db.transaction, self.store, self.uploads, utcnow(),
            rotate=partial(self.keyring.rotate_after, transaction=self.db.transaction,
                           grace_seconds=self.settings.key_rotation_grace_seconds),
            confirm=self._confirmed_due)

    def _confirmed_due(self, report_id, now):
        """Whether verification, asked now, says the report's case is past retention and not
        held. Any doubt (verification away, unknown report, an answer that does not add up)
        keeps the report: the next run asks again."""
        try:
            state = call_with_deadline(self.verification.case_retention_state,
                                       self.settings.retention_confirm_timeout_seconds, report_id)
        except Exception as exc:  # noqa: BLE001 -- not confirmed is the safe answer
            log.warning("retention: report %s not confirmed by verification (%s); kept",
                        report_id, type(exc).__name__)
            return False
        return retention.confirmed_due(self.settings.retention, state, now)

    @configured_timer(interval=86400, config_key="RETENTION_INTERVAL_SECONDS")
    def retention_timer(self):
        """Daily: the same as ``run_retention()`` with the current time.

        Input: none (timer). Events: ``report_shredded`` per report shredded. Errors: logged;
        the next tick tries again.
        """
        shredded = self._retention()
        if shredded:
            log.info("retention timer: shredded %d report(s)", len(shredded))
