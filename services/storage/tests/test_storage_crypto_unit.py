"""Unit tests for the envelope-encryption facade: round trips at the segment boundaries and every
tamper case the format claims to detect."""
import json
import os
import stat

import pytest

from storage import crypto
from storage.crypto import (
    HEADER_SIZE, SEGMENT_SIZE, TAG_SIZE, DataKey, IntegrityError, KeyFileError, KeyRing,
    SegmentDecryptor, SegmentEncryptor,
)

REPORT = "3f1c2a9e-0000-4000-8000-000000000001"
OTHER_REPORT = "3f1c2a9e-0000-4000-8000-000000000002"
SIZES = [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * 1024 * 1024]


def encrypt(key, data, report=REPORT, obj="ev-1", piece=None):
    enc = SegmentEncryptor(key, report, obj)
    if piece is None:
        return enc.update(data) + enc.finalize()
    out = []
    for i in range(0, len(data), piece):
        out.append(enc.update(data[i:i + piece]))
    out.append(enc.finalize())
    return b"".join(out)


def decrypt(key, blob, report=REPORT, obj="ev-1", piece=None):
    dec = SegmentDecryptor(key, report, obj)
    if piece is None:
        return dec.update(blob) + dec.finalize()
    out = []
    for i in range(0, len(blob), piece):
        out.append(dec.update(blob[i:i + piece]))
    out.append(dec.finalize())
    return b"".join(out)


def segments(blob):
    """Split an object into header and its segment ciphertexts."""
    body = blob[HEADER_SIZE:]
    full = SEGMENT_SIZE + TAG_SIZE
    return blob[:HEADER_SIZE], [body[i:i + full] for i in range(0, len(body), full)]


@pytest.fixture
def key():
    return DataKey.generate()


@pytest.mark.parametrize("size", SIZES)
def test_roundtrip(key, size):
    data = os.urandom(size)
    blob = encrypt(key, data)
    assert len(blob) == crypto.ciphertext_size(size)
    assert crypto.plain_size_from_ciphertext(len(blob)) == size
    assert decrypt(key, blob) == data


@pytest.mark.parametrize("size", [SEGMENT_SIZE + 1, 3 * 1024 * 1024 + 5])
@pytest.mark.parametrize("piece", [1000, 65536, 1 << 20])
def test_roundtrip_streaming_in_odd_pieces(key, size, piece):
    data = os.urandom(size)
    blob = encrypt(key, data, piece=piece)
    assert decrypt(key, blob, piece=piece + 7) == data


def test_encryptor_holds_back_less_than_one_segment(key):
    enc = SegmentEncryptor(key, REPORT, "ev-1")
    out = enc.update(b"x" * (SEGMENT_SIZE * 2 + 10))
    assert len(out) == HEADER_SIZE + 2 * (SEGMENT_SIZE + TAG_SIZE)
    assert len(enc.update(b"y" * (SEGMENT_SIZE - 11))) == 0
    assert len(enc.update(b"z")) == SEGMENT_SIZE + TAG_SIZE
    assert len(enc.finalize()) == TAG_SIZE  # empty final segment


def test_header_layout(key):
    blob = encrypt(key, b"hello")
    assert blob[:4] == b"WBSE" and blob[4] == 1
    assert blob[5:21] == key.key_id
    assert int.from_bytes(blob[28:32], "big") == SEGMENT_SIZE


def test_same_plaintext_encrypts_differently(key):
    assert encrypt(key, b"same") != encrypt(key, b"same")


def test_flip_any_byte_fails(key):
    data = os.urandom(2 * SEGMENT_SIZE + 100)
    blob = encrypt(key, data)
    positions = [0, 4, 5, 21, 28, 31, HEADER_SIZE, HEADER_SIZE + 500,
                 HEADER_SIZE + SEGMENT_SIZE + TAG_SIZE - 1, len(blob) - 1]
    for pos in positions:
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(IntegrityError) as err:
            decrypt(key, bytes(bad))
        assert data[:32] not in str(err.value).encode("utf-8", "replace")


@pytest.mark.parametrize("cut", [1, TAG_SIZE, SEGMENT_SIZE])
def test_truncation_fails(key, cut):
    blob = encrypt(key, os.urandom(3 * SEGMENT_SIZE + 10))
    with pytest.raises(IntegrityError):
        decrypt(key, blob[:-cut])


def test_truncation_at_segment_boundary_fails(key):
    blob = encrypt(key, os.urandom(3 * SEGMENT_SIZE + 10))
    header, segs = segments(blob)
    with pytest.raises(IntegrityError, match="final segment is missing"):
        decrypt(key, header + b"".join(segs[:2]))


def test_truncation_of_exact_multiple_fails(key):
    """The empty final segment of a 64 KiB object is what proves the object ended."""
    blob = encrypt(key, os.urandom(SEGMENT_SIZE))
    with pytest.raises(IntegrityError):
        decrypt(key, blob[:-TAG_SIZE])


def test_header_only_and_empty_fail(key):
    blob = encrypt(key, b"abc")
    with pytest.raises(IntegrityError):
        decrypt(key, blob[:HEADER_SIZE])
    with pytest.raises(IntegrityError):
        decrypt(key, blob[:10])
    with pytest.raises(IntegrityError):
        decrypt(key, b"")


def test_drop_a_segment_fails(key):
    blob = encrypt(key, os.urandom(3 * SEGMENT_SIZE + 10))
    header, segs = segments(blob)
    with pytest.raises(IntegrityError):
        decrypt(key, header + segs[0] + segs[2] + segs[3])


def test_reorder_segments_fails(key):
    blob = encrypt(key, os.urandom(3 * SEGMENT_SIZE + 10))
    header, segs = segments(blob)
    with pytest.raises(IntegrityError):
        decrypt(key, header + segs[1] + segs[0] + segs[2] + segs[3])


def test_duplicate_segment_fails(key):
    blob = encrypt(key, os.urandom(2 * SEGMENT_SIZE + 10))
    header, segs = segments(blob)
    with pytest.raises(IntegrityError):
        decrypt(key, header + segs[0] + segs[0] + segs[1] + segs[2])


def test_trailing_data_fails(key):
    blob = encrypt(key, os.urandom(100))
    dec = SegmentDecryptor(key, REPORT, "ev-1")
    dec.update(blob)
    dec.finalize()
    with pytest.raises(IntegrityError):
        dec.update(b"x")
    with pytest.raises(IntegrityError):
        decrypt(key, blob + encrypt(key, b"more")[HEADER_SIZE:])


def test_swap_between_reports_fails(key):
    """Same data key, other report id: the associated data no longer matches."""
    blob = encrypt(key, b"evidence", report=REPORT)
    with pytest.raises(IntegrityError):
        decrypt(key, blob, report=OTHER_REPORT)


def test_swap_between_objects_fails(key):
    blob = encrypt(key, b"evidence", obj="ev-1")
    with pytest.raises(IntegrityError):
        decrypt(key, blob, obj="ev-2")
    with pytest.raises(IntegrityError):
        decrypt(key, blob, obj="content")


def test_segment_spliced_from_other_object_fails(key):
    a = encrypt(key, os.urandom(2 * SEGMENT_SIZE + 1), obj="ev-1")
    b = encrypt(key, os.urandom(2 * SEGMENT_SIZE + 1), obj="ev-1")
    ha, sa = segments(a)
    _, sb = segments(b)
    with pytest.raises(IntegrityError):
        decrypt(key, ha + sa[0] + sb[1] + sa[2])


def test_wrong_key_fails(key):
    blob = encrypt(key, b"evidence")
    with pytest.raises(IntegrityError):
        decrypt(DataKey.generate(), blob)
    # Same key id, different key bytes: the id check passes, authentication does not.
    with pytest.raises(IntegrityError):
        decrypt(DataKey(key.key_id, os.urandom(32)), blob)


def test_integrity_error_never_contains_plaintext(key):
    secret = b"NARRATIVE-CANARY-" * 10
    blob = bytearray(encrypt(key, secret))
    blob[-1] ^= 1
    with pytest.raises(IntegrityError) as err:
        decrypt(key, bytes(blob))
    assert "CANARY" not in str(err.value) and "CANARY" not in repr(err.value)


def test_data_key_repr_hides_key(key):
    assert key.key.hex() not in repr(key)


# -- random access ---------------------------------------------------------------------------

CHUNK = 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, SEGMENT_SIZE, CHUNK - 1, CHUNK, CHUNK + 1,
                                  3 * CHUNK, 3 * CHUNK + SEGMENT_SIZE + 3])
def test_chunked_random_access_reads_everything(key, size):
    data = os.urandom(size)
    blob = encrypt(key, data)
    header = blob[:HEADER_SIZE]
    chunks = max(1, -(-size // CHUNK))
    out = []
    for index in reversed(range(chunks)):  # any order
        plan = crypto.plan_chunk(size, index, CHUNK)
        assert plan.last == (index == chunks - 1)
        ct = blob[plan.ciphertext_offset:plan.ciphertext_offset + plan.ciphertext_length]
        assert len(ct) == plan.ciphertext_length
        out.insert(0, crypto.decrypt_segments(key, header, REPORT, "ev-1", plan.first_segment,
                                              ct, plan.last))
    assert b"".join(out) == data
    final = crypto.plan_chunk(size, chunks - 1, CHUNK)
    assert final.ciphertext_offset + final.ciphertext_length == len(blob)
    with pytest.raises(IndexError):
        crypto.plan_chunk(size, chunks, CHUNK)


def test_random_access_detects_wrong_position_and_truncation(key):
    size = 2 * CHUNK + 10
    blob = encrypt(key, os.urandom(size))
    header = blob[:HEADER_SIZE]
    p0 = crypto.plan_chunk(size, 0, CHUNK)
    p1 = crypto.plan_chunk(size, 1, CHUNK)
    ct1 = blob[p1.ciphertext_offset:p1.ciphertext_offset + p1.ciphertext_length]
    with pytest.raises(IntegrityError):  # chunk 1's bytes presented as chunk 0
        crypto.decrypt_segments(key, header, REPORT, "ev-1", p0.first_segment, ct1, False)
    last = crypto.plan_chunk(size, 2, CHUNK)
    ct2 = blob[last.ciphertext_offset:]
    with pytest.raises(IntegrityError):
        crypto.decrypt_segments(key, header, REPORT, "ev-1", last.first_segment, ct2[:-1], True)
    with pytest.raises(IntegrityError):
        crypto.decrypt_segments(key, header, OTHER_REPORT, "ev-1", last.first_segment, ct2,
                                True)
    with pytest.raises(IntegrityError):
        crypto.decrypt_segments(key, header, REPORT, "ev-1", p0.first_segment,
                                blob[p0.ciphertext_offset:p0.ciphertext_offset + 100], False)


# -- key ring and key file -------------------------------------------------------------------

def test_wrap_unwrap_roundtrip_and_binding():
    ring = KeyRing.from_document(crypto.new_key_document())
    dk = DataKey.generate()
    w = ring.wrap(REPORT, dk)
    assert w.kek_id == ring.active_id and w.wrapped[:5] == b"WBSK\x01"
    assert dk.key not in w.wrapped
    assert ring.unwrap(REPORT, dk.key_id, w.kek_id, w.wrapped) == dk
    with pytest.raises(IntegrityError):
        ring.unwrap(OTHER_REPORT, dk.key_id, w.kek_id, w.wrapped)
    with pytest.raises(IntegrityError):
        ring.unwrap(REPORT, os.urandom(16), w.kek_id, w.wrapped)
    with pytest.raises(IntegrityError):
        ring.unwrap(REPORT, dk.key_id, "kek-unknown", w.wrapped)
    bad = bytearray(w.wrapped)
    bad[-1] ^= 1
    with pytest.raises(IntegrityError):
        ring.unwrap(REPORT, dk.key_id, w.kek_id, bytes(bad))
    other = KeyRing.from_document(crypto.new_key_document())
    with pytest.raises(IntegrityError):
        other.unwrap(REPORT, dk.key_id, w.kek_id, w.wrapped)


def test_rotation_rewraps_under_new_kek_and_keeps_old_readable():
    doc = crypto.new_key_document()
    ring = KeyRing.from_document(doc)
    dk = DataKey.generate()
    old = ring.wrap(REPORT, dk)
    new_id = crypto.add_kek(doc)
    ring2 = KeyRing.from_document(doc)
    assert ring2.active_id == new_id != old.kek_id
    assert ring2.unwrap(REPORT, dk.key_id, old.kek_id, old.wrapped) == dk
    moved = ring2.rewrap(REPORT, dk.key_id, old.kek_id, old.wrapped)
    assert moved.kek_id == new_id
    assert ring2.unwrap(REPORT, dk.key_id, moved.kek_id, moved.wrapped) == dk


def test_development_generates_key_file_mode_0600(tmp_path):
    path = str(tmp_path / "sub" / "keys.json")
    ring = KeyRing.load(path, production=False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.load(open(path))["generated"] is True
    again = KeyRing.load(path, production=False)
    assert again.active_id == ring.active_id
    assert not [p for p in os.listdir(tmp_path / "sub") if p.endswith(".tmp")]


def test_production_refuses_missing_key_file(tmp_path):
    with pytest.raises(KeyFileError):
        KeyRing.load(str(tmp_path / "keys.json"), production=True)
    assert not (tmp_path / "keys.json").exists()


def test_production_refuses_generated_key_file(tmp_path):
    path = str(tmp_path / "keys.json")
    KeyRing.load(path, production=False)
    with pytest.raises(KeyFileError, match="generated"):
        KeyRing.load(path, production=True)


def test_production_refuses_world_readable_key_file(tmp_path):
    path = str(tmp_path / "keys.json")
    crypto.write_key_file(path, crypto.new_key_document(generated=False))
    assert KeyRing.load(path, production=True)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="every user"):
        KeyRing.load(path, production=True)


def test_malformed_key_files_are_refused(tmp_path):
    path = tmp_path / "keys.json"
    for content in ["not json", json.dumps({"format": "other"}),
                    json.dumps({"format": "wbs-keys", "version": 1, "active": "a", "keys": []}),
                    json.dumps({"format": "wbs-keys", "version": 1, "active": "a",
                                "keys": [{"id": "a", "key": "c2hvcnQ="}]}),
                    json.dumps({"format": "wbs-keys", "version": 1, "active": "b",
                                "keys": [{"id": "a", "key": "A" * 43 + "="}]})]:
        path.write_text(content)
        os.chmod(path, 0o600)
        with pytest.raises(KeyFileError):
            KeyRing.load(str(path), production=False)


def test_sealed_small_values():
    dk = DataKey.generate()
    blob = crypto.seal(dk, REPORT, "meta:ev-1", b'{"filename": "x.pdf"}')
    assert crypto.open_sealed(dk, REPORT, "meta:ev-1", blob) == b'{"filename": "x.pdf"}'
    with pytest.raises(IntegrityError):
        crypto.open_sealed(dk, REPORT, "meta:ev-2", blob)
