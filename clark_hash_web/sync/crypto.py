"""End-to-end encrypted note bodies: the payload format shared by desktop and browser.

The sync server stores each item's payload as opaque bytes; only devices that
know the collection's key can read it. ``static/sync-crypto.js`` implements
the same format with WebCrypto; this module with PyPI ``cryptography``.

Format (version 1)
------------------
::

    payload   = b"CHE1" (4 bytes: magic "CHE" + format version 1)
                || nonce (12 random bytes, new for every encryption)
                || AES-256-GCM ciphertext of the UTF-8 note text || 16-byte tag
    AAD       = b"clark-hash-note/v1" 0x00 collection (UTF-8) 0x00 item id (UTF-8)

The AAD binds a payload to its collection and item id: a server (or anyone
with write access) that moves a payload to another id or collection makes it
fail to decrypt instead of showing the wrong note. Payloads are at most
64 KiB (``sync_wire.MAX_PAYLOAD_BYTES``), so a note holds up to
65,536 - 32 bytes of UTF-8 text.

Keys
----
- **Passphrase**: ``key = PBKDF2-HMAC-SHA256(passphrase UTF-8 (NFC), salt,
  600,000 iterations, 32 bytes)``. The salt is 16 random bytes per
  collection, made by the server when the collection is created and returned
  in the collection info (``"salt"``, hex); it is not secret.
- **Random key**: 32 random bytes, shown once as ``"chk1_"`` + 43 base64url
  characters (no padding); type it on the other devices instead of a
  passphrase. Any text of that exact form is taken as a key, anything else as
  a passphrase.

Key check
---------
So that a wrong passphrase is caught before anything is written, the first
device stores ``key_check = encrypt(b"clark-hash key check v1")`` with
``AAD = b"clark-hash-keycheck/v1" 0x00 collection`` in the collection
(``PUT /api/v1/collections/<name>/key-check``, set once). Every device
decrypts it before it pushes or applies anything; failure means a wrong
passphrase (:class:`WrongKeyError`).
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from typing import Optional, Tuple

from ..errors import ClarkHashError

MAGIC = b"CHE1"
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = len(MAGIC) + NONCE_BYTES + TAG_BYTES  # 32
ITERATIONS = 600_000
KEY_BYTES = 32
MAX_PAYLOAD_BYTES = 64 * 1024
KEY_CHECK_PLAINTEXT = b"clark-hash key check v1"
_RAW_KEY = re.compile(r"^chk1_[A-Za-z0-9_-]{43}$")


class WrongKeyError(ClarkHashError):
    """The payload (or key check) does not decrypt with this key: wrong passphrase or tampering."""


def _aesgcm(key: bytes):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the install
        raise ClarkHashError("encrypted note bodies need PyPI 'cryptography' "
                             "(pip install 'clark-hash-web[server]')") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"keys are {KEY_BYTES} bytes, got {len(key)}")
    return AESGCM(bytes(key))


def note_aad(collection: str, item_id: str) -> bytes:
    """The associated data of item ``item_id`` in ``collection``."""
    return b"clark-hash-note/v1\x00" + collection.encode("utf-8") + b"\x00" + item_id.encode("utf-8")


def key_check_aad(collection: str) -> bytes:
    return b"clark-hash-keycheck/v1\x00" + collection.encode("utf-8")


def derive_key(passphrase: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    """PBKDF2-HMAC-SHA256 of the NFC-normalized passphrase: 32 key bytes."""
    import hashlib

    if not passphrase:
        raise ValueError("the passphrase is empty")
    if len(salt) < 16:
        raise ValueError(f"the salt has {len(salt)} bytes, at least 16 expected")
    text = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", text, bytes(salt), iterations, KEY_BYTES)


def new_random_key() -> Tuple[bytes, str]:
    """A random key and its text form (``chk1_...``, to show once)."""
    key = os.urandom(KEY_BYTES)
    return key, "chk1_" + base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")


def key_from_text(text: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    """The key of a ``chk1_...`` random-key text, else of a passphrase."""
    if _RAW_KEY.match(text.strip()):
        return base64.urlsafe_b64decode(text.strip()[5:] + "=")
    return derive_key(text, salt, iterations)


def _seal(key: bytes, plaintext: bytes, aad: bytes, nonce: Optional[bytes]) -> bytes:
    nonce = os.urandom(NONCE_BYTES) if nonce is None else bytes(nonce)
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonces are {NONCE_BYTES} bytes, got {len(nonce)}")
    return MAGIC + nonce + _aesgcm(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, payload: bytes, aad: bytes, what: str) -> bytes:
    from cryptography.exceptions import InvalidTag

    payload = bytes(payload)
    if len(payload) < OVERHEAD or payload[:4] != MAGIC:
        raise WrongKeyError(f"{what}: not an encrypted payload (expected {MAGIC!r} and at least "
                            f"{OVERHEAD} bytes, got {payload[:4]!r}, {len(payload)} bytes)")
    try:
        return _aesgcm(key).decrypt(payload[4:4 + NONCE_BYTES], payload[4 + NONCE_BYTES:], aad)
    except InvalidTag:
        raise WrongKeyError(f"{what}: does not decrypt with this key (wrong passphrase, or the "
                            "payload was altered or moved to another id)") from None


def encrypt_note(key: bytes, collection: str, item_id: str, text, nonce: Optional[bytes] = None) -> bytes:
    """Encrypt a note's text (str, or UTF-8 bytes) for item ``item_id`` of ``collection``."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(data) + OVERHEAD > MAX_PAYLOAD_BYTES:
        raise ValueError(f"note {item_id!r:.80} has {len(data)} bytes of text; at most "
                         f"{MAX_PAYLOAD_BYTES - OVERHEAD} fit in one payload")
    return _seal(key, data, note_aad(collection, item_id), nonce)


def decrypt_note(key: bytes, collection: str, item_id: str, payload: bytes) -> str:
    """The note text of a payload; WrongKeyError when it does not decrypt."""
    data = _open(key, payload, note_aad(collection, item_id), f"note {item_id!r:.80}")
    return data.decode("utf-8")


def make_key_check(key: bytes, collection: str) -> bytes:
    """The key check to store in a new collection."""
    return _seal(key, KEY_CHECK_PLAINTEXT, key_check_aad(collection), None)


def verify_key_check(key: bytes, collection: str, check: bytes) -> None:
    """Raise WrongKeyError unless ``check`` was made with ``key`` for ``collection``."""
    if _open(key, check, key_check_aad(collection), f"collection {collection!r}") != KEY_CHECK_PLAINTEXT:
        raise WrongKeyError(f"collection {collection!r}: the key check holds other text")
