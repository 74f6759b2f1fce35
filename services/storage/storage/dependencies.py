"""The storage service's DependencyProviders: one per outside thing, built once in ``setup()``.

* ``Keys`` -- the key-encryption keys (key file). Workers get the :class:`~storage.crypto.KeyRing`,
  whose verbs are wrap/unwrap; no worker ever sees the key file or raw KEK bytes.
* ``Objects`` -- the object store (folder or S3), chosen by ``EVIDENCE_STORE``. Workers get the
  store's small interface (``open_writer``, ``read_range``, ``read_stream``, ``delete``).
* ``TransitKeys`` -- this process's sealed-transit key pair and its senders' channels
  (:mod:`storage.transit`), in memory only, so that content crosses RabbitMQ sealed.
* ``UploadSessions`` -- not an outside thing but this process's memory: uploads in progress
  (encryptor, running hash, store writer). It lives in a provider because it must outlive single
  workers, and because its lifecycle is the container's: an idle-session reaper runs while the
  container runs, and stopping the container aborts whatever is still open (its private RPC
  route disappears with it, so those uploads could never be finished).

Settings are parsed once per provider from the container config (``Settings.from_config``), so a
bad configuration fails at start, before the service takes traffic.
"""
from __future__ import annotations

import logging
import os
import time

from datetime import datetime

import eventlet
from nameko.extensions import DependencyProvider
from wbs_plumbing.grants import GrantVerifier

from storage import domain, keyfile
from storage.crypto import KeyRing
from storage.objectstore import FileStore, S3Store
from storage.settings import FILE, Settings
from storage.transit import TransitChannels

log = logging.getLogger(__name__)

# Temp files of the file store older than this are leftovers of a crashed process, not uploads in
# progress elsewhere (a live upload touches its file at least every UPLOAD_IDLE_SECONDS).
_SWEEP_MARGIN = 2.0


class LiveKeyRing:
    """The key ring of the key file, picked up again when the file changes (key rotation).

    ``wbs keys rotate`` (``storage.admin.rotate_keys``) adds a KEK to the file and re-wraps the
    data keys; running storage processes notice the new file within ``check_seconds`` (or at
    once, when asked to unwrap under a KEK they do not know). Retired KEKs stay in the file, so
    a data key wrapped by a process that had not yet noticed stays readable.
    """

    def __init__(self, path: str, production: bool, check_seconds: float = 5.0):
        self.path = path
        self.production = production
        self.check_seconds = check_seconds
        self._ring = KeyRing.load(path, production=production)
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()

    def __repr__(self):
        return f"LiveKeyRing({self._ring!r})"

    def _file_stamp(self):
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return None

    def _current(self, force: bool = False) -> KeyRing:
        now = time.monotonic()
        if force or now - self._checked >= self.check_seconds:
            self._checked = now
            stamp = self._file_stamp()
            if stamp != self._stamp:
                try:
                    self._ring = KeyRing.load(self.path, production=self.production)
                    self._stamp = stamp
                    log.info("storage: key file changed; key ring reloaded (active %s)",
                             self._ring.active_id)
                except Exception:  # noqa: BLE001 -- keep serving with the ring we have
                    log.warning("storage: key file changed but cannot be loaded; keeping the "
                                "current key ring", exc_info=True)
        return self._ring

    @property
    def active_id(self) -> str:
        return self._current().active_id

    @property
    def kek_ids(self) -> list[str]:
        return self._current().kek_ids

    def wrap(self, report_id, data_key):
        # A stat per new data key: a rotation's new KEK is used at once, so after its grace
        # period no process still wraps under the KEK about to be destroyed (storage.keyfile).
        return self._current(force=True).wrap(report_id, data_key)

    def rotate_after(self, moment, transaction, grace_seconds: float, sleep=time.sleep):
        """Rotate unless the active KEK is newer than ``moment`` (the last shredding); destroy
        retired KEKs nobody uses either way. Returns the rotation summary or None."""
        doc = keyfile.read_document(self.path)
        active = next(k for k in doc["keys"] if k["id"] == doc["active"])
        created = active.get("created_at")
        fresh = created is not None and datetime.fromisoformat(created) > moment
        if fresh and len(doc["keys"]) == 1:
            return None
        result = keyfile.rotate(self.path, self.production, transaction, add_new=not fresh,
                                grace_seconds=grace_seconds, sleep=sleep, unless_active_newer_than=moment)
        self._current(force=True)
        return result

    def unwrap(self, report_id, key_id, kek_id, wrapped):
        ring = self._current()
        if kek_id not in ring.kek_ids:
            ring = self._current(force=True)
        return ring.unwrap(report_id, key_id, kek_id, wrapped)

    def rewrap(self, report_id, key_id, kek_id, wrapped):
        return self._current().rewrap(report_id, key_id, kek_id, wrapped)


class Keys(DependencyProvider):
    """The key ring, loaded (or, in development only, generated) from ``WBS_KEY_FILE``."""

    def setup(self):
        settings = Settings.from_config(self.container.config)
        self.keyring = LiveKeyRing(settings.key_file, production=settings.production)
        log.info("storage: key ring loaded (%d key-encryption key(s))", len(self.keyring.kek_ids))

    def get_dependency(self, worker_ctx):
        return self.keyring


class Grants(DependencyProvider):
    """verification's read grants, checked with its public key (``WBS_GRANT_PUBLIC_KEY``)."""

    def setup(self):
        self.verifier = GrantVerifier.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.verifier


class StorageSettings(DependencyProvider):
    """The typed settings, for entrypoints that need a setting (retention periods, grace)."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


def build_store(settings: Settings):
    if settings.evidence_store == FILE:
        return FileStore(settings.evidence_root)
    s3 = settings.s3
    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, secure=s3.secure,
                    region=s3.region, part_size=s3.part_size,
                    parallel_uploads=s3.parallel_uploads, object_lock_days=s3.object_lock_days)
    store.ensure_bucket()
    return store


class Objects(DependencyProvider):
    """The object store for ciphertext (``EVIDENCE_STORE=file`` or ``s3``)."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)
        self.store = build_store(self.settings)
        log.info("storage: object store %r", self.store)

    def start(self):
        if isinstance(self.store, FileStore):
            self.store.sweep_incoming(older_than=self.settings.upload_idle_seconds * _SWEEP_MARGIN)

    def get_dependency(self, worker_ctx):
        return self.store


class TransitKeys(DependencyProvider):
    """The in-memory transit key pair: made at start, gone when the process exits."""

    def setup(self):
        settings = Settings.from_config(self.container.config)
        self.channels = TransitChannels(idle_seconds=max(3600.0, settings.upload_idle_seconds),
                                        required=settings.require_sealed_transit)
        self._running = False
        self._interval = settings.reaper_interval_seconds

    def start(self):
        self._running = True
        self._reaper = self.container.spawn_managed_thread(self._reap_forever,
                                                           identifier="transit-reaper")

    def _reap_forever(self):
        while self._running:
            eventlet.sleep(self._interval)
            self.channels.reap()

    def stop(self):
        self._running = False
        reaper, self._reaper = getattr(self, "_reaper", None), None
        if reaper is not None:
            reaper.kill()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.channels


class UploadSessions(DependencyProvider):
    """This process's uploads in progress, with the reaper that aborts abandoned ones."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)
        self.uploads = domain.Uploads(max_uploads=self.settings.max_uploads)
        self._running = False

    def start(self):
        self._running = True
        self._reaper = self.container.spawn_managed_thread(self._reap_forever,
                                                           identifier="upload-reaper")

    def _reap_forever(self):
        while self._running:
            eventlet.sleep(self.settings.reaper_interval_seconds)
            try:
                domain.reap_idle_uploads(self.uploads, self.settings.upload_idle_seconds)
            except Exception:  # noqa: BLE001 -- keep reaping; the message carries no content
                log.warning("upload reaper failed; will try again", exc_info=True)

    def stop(self):
        self._running = False
        reaper, self._reaper = getattr(self, "_reaper", None), None
        if reaper is not None:
            reaper.kill()  # it only sleeps between sweeps; nothing to finish
        aborted = domain.abort_all_uploads(self.uploads)
        if aborted:
            log.info("storage stopping: aborted %d upload(s) in progress", aborted)

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.uploads
