"""Typed arrays to and from little-endian bytes (the byte order of every stored format)."""

from __future__ import annotations

import sys
from array import array


def array_bytes(typecode: str, values) -> bytes:
    """``values`` as an ``array(typecode)``, serialized little-endian."""
    a = array(typecode, values)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def bytes_array(typecode: str, raw: bytes) -> array:
    """An ``array(typecode)`` read from little-endian bytes."""
    a = array(typecode)
    a.frombytes(raw)
    if sys.byteorder != "little":
        a.byteswap()
    return a
