"""Operator tasks on the vault, run outside the service (the ``wbs`` command calls these).

``rotate_keys(config)`` is ``wbs keys rotate``: a new key-encryption key becomes active in the key
file, every data key is re-wrapped under it (32 bytes each: no object is re-encrypted), and the old
KEK is marked retired. The retired KEK stays in the file: a storage process that has not yet
noticed the new file may still wrap a data key under it for a few seconds; running ``rotate_keys``
again later (or ``rewrap_only``) moves those too. Delete a retired KEK from the file only when a
rewrap pass reports nothing left under it.
"""
from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wbs_plumbing.config import database_url
from wbs_plumbing.db import make_engine

from storage import crypto, domain
from storage.models import DataKeyRecord
from storage.settings import Settings

BATCH = 500


def rotate_keys(config: dict, rewrap_only: bool = False) -> dict:
    """Add and activate a new KEK (unless ``rewrap_only``), then re-wrap every data key.

    Returns ``{"active", "rewrapped", "remaining_by_kek"}`` -- ids and counts only.
    """
    settings = Settings.from_config(config)
    crypto.KeyRing.load(settings.key_file, production=settings.production)  # refuse bad files
    if not rewrap_only:
        with open(settings.key_file, "rb") as fh:
            doc = json.loads(fh.read())
        crypto.add_kek(doc)
        crypto.write_key_file(settings.key_file, doc)
    ring = crypto.KeyRing.load(settings.key_file, production=settings.production)
    engine = make_engine(database_url(dict(config), "storage"))
    rewrapped = 0
    try:
        while True:  # short transactions, so the service keeps working during a rotation
            with Session(engine) as session, session.begin():
                moved = domain.rewrap_data_keys(session, ring, limit=BATCH)
            rewrapped += moved
            if moved < BATCH:
                break
        with Session(engine) as session:
            remaining = dict(session.execute(
                select(DataKeyRecord.kek_id, func.count()).group_by(DataKeyRecord.kek_id)).all())
    finally:
        engine.dispose()
    return {"active": ring.active_id, "rewrapped": rewrapped, "remaining_by_kek": remaining}
