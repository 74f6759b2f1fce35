"""Receipt format, entropy and keyed hashing."""

import math
import re
from collections import Counter

import pytest

from intake import receipts


def test_format_is_five_groups_of_four_from_base32():
    r = receipts.new_receipt()
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){4}", r), r


def test_entropy_is_at_least_100_bits():
    assert len(receipts.ALPHABET) == 32 and len(set(receipts.ALPHABET)) == 32
    bits = receipts.RECEIPT_LENGTH * math.log2(len(receipts.ALPHABET))
    assert bits >= 100 and receipts.ENTROPY_BITS >= 100


def test_receipts_are_unique_and_characters_roughly_uniform():
    sample = [receipts.normalise_receipt(receipts.new_receipt()) for _ in range(2000)]
    assert len(set(sample)) == len(sample)
    counts = Counter("".join(sample))
    expected = 2000 * 20 / 32  # 1250 per character
    # chi-square with 31 dof: 99.99th percentile ~ 70
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in receipts.ALPHABET)
    assert chi2 < 70, chi2


def test_normalisation_forgives_case_spacing_and_lookalikes():
    r = "ABCD-EFGH-IJKL-MNOP-QRST"
    canon = "ABCDEFGHIJKLMNOPQRST"
    assert receipts.normalise_receipt(r) == canon
    assert receipts.normalise_receipt(" abcd efgh ijkl mnop qrst ") == canon
    assert receipts.normalise_receipt("ABCD-EFGH-1JKL-MN0P-QRST") == canon  # 1->I, 0->O
    assert receipts.normalise_receipt("ABCD-EFGH-IJKL-MNOP-QRS") is None
    assert receipts.normalise_receipt("ABCD-EFGH-IJKL-MNOP-QRS9") is None
    assert receipts.normalise_receipt("x" * 1000) is None
    assert receipts.normalise_receipt(None) is None


def test_hash_is_keyed_deterministic_and_not_the_receipt():
    key1, key2 = b"k" * 32, b"j" * 32
    r = receipts.new_receipt()
    h = receipts.hash_receipt(key1, r)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert h == receipts.hash_receipt(key1, r.lower().replace("-", " "))
    assert h != receipts.hash_receipt(key2, r)
    assert receipts.normalise_receipt(r) not in h
    with pytest.raises(ValueError):
        receipts.hash_receipt(key1, "nope")


def test_subkeys_differ_by_purpose():
    k = b"k" * 32
    assert receipts.derive_key(k, "pow") != receipts.derive_key(k, "other")
    assert len(receipts.derive_key(k, "pow")) == 32
