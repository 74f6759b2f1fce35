"""Key rotation and KEK destruction on the key file: what makes shredding reach the backups.

Why shredding needs this
------------------------
Deleting a report's wrapped data key from the database makes its objects unreadable *for this
database*. But a backup of the database taken before the shredding still holds that wrapped key,
and the key-encryption key (KEK) that unwraps it is still in the key file. So shredding alone
would let "a restore of last week's backup + today's key file" read shredded reports again.

The fix is the one the key hierarchy is built for: after shredding, **rotate** (a new KEK becomes
active, every remaining data key is re-wrapped under it) and then **destroy** every retired KEK
that no data key uses any more. From then on, the wrapped keys in old backups are sealed under a
KEK that exists nowhere (the key file is never part of the database or object-store backups;
deploy/README.md says so). Reports that were not shredded are re-wrapped, so nothing else is lost.
``wbs keys rotate`` does exactly the same (rotation *is* "new KEK, re-wrap, retire").

Safety against losing a KEK that is still needed
------------------------------------------------
* **One writer at a time.** Rotations (retention runs on several storage instances, an operator's
  ``wbs keys rotate``) take an exclusive ``flock`` on ``<key file>.lock`` and re-read the file
  under it, so no rotation overwrites another's new KEK.
* **Grace before destruction.** A storage process that read the old file may be wrapping a new
  report's data key under the old KEK right now. After the new KEK is written we wait
  ``grace_seconds`` (longer than any such transaction; processes re-check the file before every
  wrap) before re-wrapping and destroying.
* **Check after destruction.** After writing the file without the retired KEKs we count the data
  keys under them again; if a straggler appeared, those KEKs are written back (they are still in
  memory) and the next run destroys them. A KEK is never gone while a data key needs it.

An interrupted rotation (crash, Ctrl-C half-way through the re-wrapping) leaves some data keys
under the new KEK and some under the old one, both in the file: every read keeps working, and
running the rotation again finishes the job.
"""
from __future__ import annotations

import fcntl
import json
import logging
import time
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select

from storage import crypto, domain
from storage.models import DataKeyRecord

log = logging.getLogger(__name__)

BATCH = 500


@contextmanager
def locked(key_file: str):
    """Exclusive lock for changing the key file (a sibling ``.lock`` file, never the key file)."""
    with open(f"{key_file}.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_document(key_file: str) -> dict:
    with open(key_file, "rb") as handle:
        return json.loads(handle.read())


def kek_usage(transaction) -> dict[str, int]:
    with transaction() as session:
        return dict(session.execute(select(DataKeyRecord.kek_id, func.count())
                                    .group_by(DataKeyRecord.kek_id)).all())


def rewrap_all(transaction, ring: crypto.KeyRing, batch: int = BATCH, after_batch=None) -> int:
    """Re-wrap every data key not under the active KEK, in short transactions.

    ``after_batch(count_so_far)`` is called after each committed batch (tests interrupt here).
    """
    total = 0
    while True:
        with transaction() as session:
            moved = domain.rewrap_data_keys(session, ring, limit=batch)
        total += moved
        if after_batch is not None and moved:
            after_batch(total)
        if moved < batch:
            return total


def rotate(key_file: str, production: bool, transaction, *, add_new: bool = True,
           grace_seconds: float = 0.0, sleep=time.sleep, batch: int = BATCH,
           after_batch=None, unless_active_newer_than=None) -> dict:
    """New KEK (unless ``add_new`` is false), re-wrap every data key, destroy unused retired KEKs.

    ``unless_active_newer_than``: add no KEK if, under the key file's lock, the active one was
    created after that moment: another storage replica's retention run rotated just now, and
    several replicas firing at once make one rotation, not one each.

    Returns ids and counts only: ``{"active", "rewrapped", "destroyed", "remaining_by_kek"}``.
    """
    crypto.KeyRing.load(key_file, production=production)  # refuse a bad file before changing it
    if add_new:
        with locked(key_file):
            doc = read_document(key_file)
            created = next(k for k in doc["keys"] if k["id"] == doc["active"]).get("created_at")
            add_new = (unless_active_newer_than is None or created is None
                       or datetime.fromisoformat(created) <= unless_active_newer_than)
            if add_new:
                crypto.add_kek(doc)
                crypto.write_key_file(key_file, doc)
        if add_new and grace_seconds > 0:
            sleep(grace_seconds)
    ring = crypto.KeyRing.load(key_file, production=production)
    rewrapped = rewrap_all(transaction, ring, batch=batch, after_batch=after_batch)
    destroyed = destroy_retired(key_file, transaction)
    return {"active": ring.active_id, "rewrapped": rewrapped, "destroyed": destroyed,
            "remaining_by_kek": kek_usage(transaction)}


def destroy_retired(key_file: str, transaction) -> list[str]:
    """Remove from the key file every non-active KEK that no data key is wrapped under."""
    with locked(key_file):
        doc = read_document(key_file)
        in_use = kek_usage(transaction)
        unused = [entry for entry in doc["keys"]
                  if entry["id"] != doc["active"] and not in_use.get(entry["id"])]
        if not unused:
            return []
        doc["keys"] = [entry for entry in doc["keys"] if entry not in unused]
        crypto.write_key_file(key_file, doc)
        in_use = kek_usage(transaction)
        stragglers = [entry for entry in unused if in_use.get(entry["id"])]
        if stragglers:  # a data key was wrapped under one meanwhile: keep that KEK for now
            log.warning("key rotation: %d retired key(s) gained data keys meanwhile; kept until "
                        "the next rotation", len(stragglers))
            doc["keys"].extend(stragglers)
            crypto.write_key_file(key_file, doc)
        destroyed = [entry["id"] for entry in unused if entry not in stragglers]
    if destroyed:
        log.info("key rotation: destroyed %d retired key-encryption key(s)", len(destroyed))
    return destroyed
