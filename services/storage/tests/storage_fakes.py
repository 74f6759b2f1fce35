"""Fakes that implement the real ports (cosmicpython style), for unit tests of the domain."""
from functools import partial

from wbs_plumbing.db import session_scope

from storage.objectstore import ObjectNotFound, ObjectStoreError, _check_key


class InMemoryStore:
    """The ObjectStore port in a dict. ``fail_writes_after`` simulates a store that goes away."""

    def __init__(self, fail_writes_after=None):
        self.objects = {}
        self.aborted = 0
        self.fail_writes_after = fail_writes_after
        self.writes = 0

    def open_writer(self, key):
        return _Writer(self, _check_key(key))

    def read_range(self, key, offset, length):
        if key not in self.objects:
            raise ObjectNotFound("no such object")
        return self.objects[key][offset:offset + length]

    def read_stream(self, key, chunk_size=1 << 20):
        if key not in self.objects:
            raise ObjectNotFound("no such object")
        data = self.objects[key]
        return iter([data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""])

    def delete(self, key):
        self.objects.pop(key, None)

    def size(self, key):
        if key not in self.objects:
            raise ObjectNotFound("no such object")
        return len(self.objects[key])

    def exists(self, key):
        return key in self.objects


class _Writer:
    def __init__(self, store, key):
        self.store, self.key, self.buf, self.done = store, key, bytearray(), False

    def write(self, data):
        assert not self.done
        self.store.writes += 1
        if self.store.fail_writes_after is not None and self.store.writes > self.store.fail_writes_after:
            raise ObjectStoreError("fake store: down")
        self.buf += data

    def close(self):
        assert not self.done
        self.done = True
        self.store.objects[self.key] = bytes(self.buf)

    def abort(self):
        self.done = True
        self.store.aborted += 1


def transaction_factory(engine):
    """What Database.transaction does: a session that commits on success, rolls back on error."""
    return partial(session_scope, engine)


def upload_file(tx, keyring, store, uploads, report_id, data, piece=1 << 20,
                filename="bukti.pdf", media_type="application/pdf"):
    """Store ``data`` as one evidence file through the domain's upload path, ``piece`` bytes a
    chunk; returns what finish_upload returns."""
    from storage import domain

    upload_id = domain.begin_upload(tx, keyring, store, uploads, report_id, filename, media_type)
    for i in range(0, len(data), piece):
        domain.append_upload(uploads, upload_id, data[i:i + piece])
    return domain.finish_upload(tx, uploads, upload_id)


def sealed_content(tx, report_id) -> bytes:
    """A report's sealed content as stored in its row (what an attacker with the database sees)."""
    from storage.models import ReportContent

    with tx() as session:
        return session.get(ReportContent, report_id).sealed


def put_sealed_content(tx, report_id, sealed: bytes) -> None:
    """Overwrite a report's sealed content in its row, as a tampering attacker would."""
    from storage.models import ReportContent

    with tx() as session:
        session.get(ReportContent, report_id).sealed = sealed


def move_content_to_an_object(tx, store, report_id) -> str:
    """Turn a content row into one written before 0003 (sealed bytes in an object); returns the
    object key."""
    from storage.models import ReportContent
    from storage.objectstore import new_object_key

    key = new_object_key()
    with tx() as session:
        row = session.get(ReportContent, report_id)
        writer = store.open_writer(key)
        writer.write(row.sealed)
        writer.close()
        row.object_key, row.sealed = key, None
    return key


class TestGrants:
    """Real read grants for tests: verification's signer and storage's verifier on one key pair.

    ``verifier`` is what the domain functions take; ``grant(report_id)`` signs a grant for it
    (all scopes unless told), ``for_evidence(tx, evidence_id)`` one for the file's report.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self, signer=None, verifier=None):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from wbs_plumbing.grants import GrantSigner, GrantVerifier

        if signer is None:
            key = Ed25519PrivateKey.generate()
            signer, verifier = GrantSigner(key), GrantVerifier(key.public_key())
        self.signer, self.verifier = signer, verifier

    @classmethod
    def from_config(cls, config):
        from wbs_plumbing.grants import GrantSigner, GrantVerifier

        return cls(GrantSigner.from_config(config), GrantVerifier.from_config(config))

    def grant(self, report_id, scope=("content", "evidence", "messages"), sub="staff-1",
              case_id="case-1", **kwargs):
        return self.signer.issue(sub=sub, case_id=case_id, report_id=report_id, scope=scope,
                                 **kwargs)

    def for_evidence(self, tx, evidence_id, **kwargs):
        from storage.models import Evidence

        with tx() as session:
            row = session.get(Evidence, evidence_id)
            report_id = row.report_id if row is not None else "00000000-0000-0000-0000-000000000000"
        return self.grant(report_id, **kwargs)
