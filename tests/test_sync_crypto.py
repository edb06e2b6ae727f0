"""Encrypted note bodies (clark_hash_web.sync.crypto): the documented format, keys, key checks."""

import hashlib

import pytest

from clark_hash_web.sync import crypto


def test_format_is_magic_nonce_ciphertext_tag_with_the_documented_aad():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, nonce = bytes(range(32)), bytes(range(12))
    payload = crypto.encrypt_note(key, "notes", "n-1", "héllo", nonce=nonce)
    assert payload[:4] == b"CHE1" and payload[4:16] == nonce
    assert len(payload) == 4 + 12 + len("héllo".encode()) + 16
    aad = b"clark-hash-note/v1\x00notes\x00n-1"
    assert AESGCM(key).decrypt(nonce, payload[16:], aad) == "héllo".encode()
    assert crypto.decrypt_note(key, "notes", "n-1", payload) == "héllo"
    for coll, item in (("notes", "n-2"), ("other", "n-1")):
        with pytest.raises(crypto.WrongKeyError, match="does not decrypt"):
            crypto.decrypt_note(key, coll, item, payload)
    tampered = bytearray(payload)
    tampered[20] ^= 1
    with pytest.raises(crypto.WrongKeyError):
        crypto.decrypt_note(key, "notes", "n-1", bytes(tampered))
    with pytest.raises(crypto.WrongKeyError, match="not an encrypted payload"):
        crypto.decrypt_note(key, "notes", "n-1", b"plain text note")


def test_fresh_nonces_and_size_limit():
    key = bytes(32)
    a, b = (crypto.encrypt_note(key, "c", "i", "same text") for _ in range(2))
    assert a[4:16] != b[4:16] and a != b
    assert len(crypto.encrypt_note(key, "c", "i", "x" * (65536 - 32))) == 65536
    with pytest.raises(ValueError, match="at most 65504"):
        crypto.encrypt_note(key, "c", "i", "x" * (65536 - 31))


def test_passphrase_key_is_pbkdf2_sha256_and_random_keys_round_trip():
    salt = bytes(range(16))
    assert crypto.ITERATIONS >= 600_000
    assert crypto.derive_key("pass", salt, 1000) == hashlib.pbkdf2_hmac("sha256", b"pass", salt, 1000, 32)
    # NFC: the same passphrase typed with a combining accent gives the same key
    assert crypto.derive_key("cafe\u0301", salt, 1000) == crypto.derive_key("caf\u00e9", salt, 1000)
    key, text = crypto.new_random_key()
    assert text.startswith("chk1_") and len(text) == 48
    assert crypto.key_from_text(text, salt) == key
    assert crypto.key_from_text(" " + text + "\n", salt) == key
    assert crypto.key_from_text("pass", salt, 1000) == crypto.derive_key("pass", salt, 1000)
    with pytest.raises(ValueError, match="empty"):
        crypto.derive_key("", salt)


def test_key_check_catches_a_wrong_passphrase():
    salt = bytes(16)
    good, bad = (crypto.derive_key(p, salt, 1000) for p in ("right", "wrong"))
    check = crypto.make_key_check(good, "notes")
    crypto.verify_key_check(good, "notes", check)
    with pytest.raises(crypto.WrongKeyError, match="collection 'notes'"):
        crypto.verify_key_check(bad, "notes", check)
    with pytest.raises(crypto.WrongKeyError):
        crypto.verify_key_check(good, "other", check)
