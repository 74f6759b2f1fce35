import pytest

from wbs_plumbing.transit import TransitError, TransitKeyPair, TransitSender


def test_sealed_messages_open_in_order_and_hide_the_plaintext():
    storage = TransitKeyPair()
    sender = TransitSender(storage.public_key, "report-1")
    receiver = storage.receiver(sender.public_key, "report-1")
    sealed = [sender.seal(b"rahasia %d" % i) for i in range(3)]
    assert all(b"rahasia" not in s for s in sealed)
    assert [receiver.open(s) for s in sealed] == [b"rahasia 0", b"rahasia 1", b"rahasia 2"]


def test_replay_reorder_tamper_and_wrong_report_are_refused():
    storage = TransitKeyPair()
    sender = TransitSender(storage.public_key, "report-1")
    first, second = sender.seal(b"a"), sender.seal(b"b")
    receiver = storage.receiver(sender.public_key, "report-1")
    receiver.open(second)
    with pytest.raises(TransitError):
        receiver.open(first)  # older counter
    with pytest.raises(TransitError):
        receiver.open(second)  # replay
    third = bytearray(sender.seal(b"c"))
    third[-1] ^= 1
    with pytest.raises(TransitError):
        receiver.open(bytes(third))
    with pytest.raises(TransitError):
        storage.receiver(sender.public_key, "report-2").open(sender.seal(b"d"))
    with pytest.raises(TransitError):
        TransitKeyPair().receiver(sender.public_key, "report-1").open(sender.seal(b"e"))
