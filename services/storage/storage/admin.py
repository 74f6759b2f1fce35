"""Operator tasks on the vault, run outside the service (the ``wbs`` command calls these).

``rotate_keys(config)`` is ``wbs keys rotate``: a new key-encryption key becomes active in the key
file, every data key is re-wrapped under it (32 bytes each: no object is re-encrypted), and every
retired KEK that no data key uses any more is destroyed (see :mod:`storage.keyfile`, which also
explains the grace period and why destroying retired KEKs is what makes shredding reach backups).
A rotation interrupted half-way leaves both KEKs in the file (every read still works); running it
again, or ``--rewrap-only``, finishes the job.
"""
from __future__ import annotations

from functools import partial

from wbs_plumbing.config import database_url
from wbs_plumbing.db import make_engine, session_scope

from storage import keyfile
from storage.settings import Settings


def rotate_keys(config: dict, rewrap_only: bool = False, after_batch=None) -> dict:
    """Add and activate a new KEK (unless ``rewrap_only``), re-wrap every data key, destroy
    retired KEKs nobody uses.

    Returns ``{"active", "rewrapped", "destroyed", "remaining_by_kek"}`` -- ids and counts only.
    """
    settings = Settings.from_config(config)
    engine = make_engine(database_url(dict(config), "storage"))
    try:
        return keyfile.rotate(settings.key_file, settings.production, partial(session_scope, engine),
                              add_new=not rewrap_only, grace_seconds=settings.key_rotation_grace_seconds,
                              after_batch=after_batch)
    finally:
        engine.dispose()
