"""Test OpenPGP keys made with PGPy (RSA 2048), and reading a PGP/MIME email back."""
import email
import warnings
from email import policy

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import (CompressionAlgorithm, HashAlgorithm, KeyFlags, PubKeyAlgorithm,
                                SymmetricKeyAlgorithm)


def make_key(expires=None, encryption_subkey=True, created=None):
    """A private key (primary signs and certifies; a subkey encrypts unless told otherwise).
    ``created`` in the past with a shorter ``expires`` makes a key that has already expired."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048, created=created)
        key.add_uid(pgpy.PGPUID.new("Inspektur", email="inspektur@itjen.example.go.id"),
                    usage={KeyFlags.Sign, KeyFlags.Certify}, hashes=[HashAlgorithm.SHA256],
                    ciphers=[SymmetricKeyAlgorithm.AES256], compression=[CompressionAlgorithm.Uncompressed],
                    key_expiration=expires)
        if encryption_subkey:
            key.add_subkey(pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048),
                           usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage})
    return key


def decrypt_pgp_mime(message, private_key):
    """The inner message of a multipart/encrypted email (RFC 3156), checked for its shape."""
    assert message.get_content_type() == "multipart/encrypted"
    assert message.get_param("protocol") == "application/pgp-encrypted"
    control, body = message.get_payload()
    assert control.get_content_type() == "application/pgp-encrypted"
    assert "Version: 1" in control.get_payload()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = private_key.decrypt(pgpy.PGPMessage.from_blob(body.get_payload())).message
    if isinstance(plain, (bytes, bytearray)):
        plain = plain.decode()
    return email.message_from_string(plain, policy=policy.default)
