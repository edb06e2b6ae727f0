"""Sketch files (``.chs``): encoded codes, their config and ids, in one checked file.

The writer is pure Python (``struct``, ``zlib``, ``array``): the same
arguments give the same bytes on a desktop and in the browser (Pyodide),
with or without numpy. MIME type ``application/x-clark-hash-sketches``.

Byte layout, format version 2 (all integers little-endian)
-----------------------------------------------------------
========  =====  ================================================================
offset    size   field
========  =====  ================================================================
0         8      magic ``b"CHSKETCH"``
8         2      format version (u16) = 2
10        1      codec kind (u8), always the first byte of the config bytes
                 (1 = Clark Hash, 2 = hyperplane LSH, 3 = sign bits, 4 = ITQ,
                 5 = E8; see :mod:`clark_hash_web.codecs.registry`)
11        1      flags (u8): bit 0 = norm codes present (dot metric); other bits 0
12        1      id kind (u8): 0 = none (ids are the row numbers 0..N-1),
                 1 = int64, 2 = UTF-8 strings
13        1      reserved, 0
14        2      reserved, 0
16        8      config fingerprint: the 8 raw bytes of ``config.fingerprint``
24        8      count N (u64)
32        4      code_bytes B (u32)
36        4      config length C (u32)
40        C      config canonical bytes (``config.to_bytes()``)
40+C      N*B    codes, row after row
...       N*2    norm codes (u16), only if flag bit 0
...       ...    ids: kind 1: N*8 (i64); kind 2: (N+1) u32 offsets (the first 0,
                 non-decreasing) into the UTF-8 blob that follows, then the blob
end-4     4      CRC-32 (``zlib.crc32``) of every preceding byte
========  =====  ================================================================

Format version 1 (written by clark-hash-web 0.1) is the same except that the
config length C is a u16 at offset 14 and bytes 36..39 are reserved (0), so
a config could not exceed 65,535 bytes (an ITQ config for d=384 has 591 KB).
Version 1 files still load; every writer here writes version 2.

Reading checks, in this order, each failure a :class:`SketchFileError` naming
the field and its byte offset: length >= 44, magic, version, reserved bytes,
flags and id kind, codec kind, config length, config bytes (parsed by the
registry's codec of that kind, and canonical), fingerprint recomputed == stored,
code_bytes == the config's, flag bit 0 == (metric == "dot"), total length ==
what the header implies ("truncated: ..."), CRC, ids (offsets, UTF-8,
uniqueness), codes (the codec's own sanity check, e.g. zero padding bits).

API
---
- bytes: :func:`to_bytes` ``(config, codes, norm_codes=None, ids=None)`` and
  :func:`from_bytes` ``-> SketchData``;
- files: :func:`save` (same arguments), :func:`load`, :func:`append`;
- conveniences: :func:`encoded_to_bytes`, :func:`save_encoded`,
  :func:`append_encoded` (an ``EncodedBatch``), ``SketchData.to_encoded()``;
  a whole ``FlatIndex``: ``FlatIndex.save(path)`` / ``FlatIndex.load(path)``;
- codecs: every codec registered in :mod:`clark_hash_web.codecs.registry`.

Writing refuses bad arguments before touching any file; :func:`save` and
:func:`append` replace the file atomically (temporary file in the same
folder, fsync, ``os.replace``), so a failure leaves the old file byte for
byte as it was.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import zlib
from array import array
from dataclasses import dataclass
from typing import List, Optional, Union

from ..codecs import registry
from ..codecs.base import CodeRows
from ..little_endian import array_bytes, bytes_array
from ..errors import (ClarkHashError, ConfigError, ConfigMismatchError, DuplicateIdError,
                      InvalidInputError, SketchFileError)

MAGIC = b"CHSKETCH"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
MAX_CONFIG_BYTES = 64 * 1024 * 1024
EXTENSION = ".chs"
MIME_TYPE = "application/x-clark-hash-sketches"

FLAG_NORM_CODES = 0x01
ID_NONE, ID_INT64, ID_UTF8 = 0, 1, 2
ID_KIND_NAMES = {ID_NONE: "none", ID_INT64: "int64", ID_UTF8: "utf-8"}

_HEADER = struct.Struct("<8sHBBBBH8sQII")
HEADER_BYTES = _HEADER.size  # 40
CRC_BYTES = 4
MIN_FILE_BYTES = HEADER_BYTES + CRC_BYTES  # 44
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Ids = Optional[Union[List[int], List[str]]]


# ---------------------------------------------------------------------------
# the in-memory value
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SketchData:
    """The content of one sketch file.

    Attributes
    ----------
    config : ClarkHashConfig (or another registered codec's config)
    count : int
        Number of stored codes N.
    codes : bytes
        N * ``config.code_bytes`` bytes, row after row.
    norm_codes : bytes or None
        N little-endian u16 (dot metric), else None.
    ids : list[int] or list[str] or None
        None means the rows are numbered 0..N-1.
    """

    config: object
    count: int
    codes: bytes
    norm_codes: Optional[bytes]
    ids: Ids

    @property
    def fingerprint(self) -> str:
        """The config fingerprint (16 hex digits)."""
        return self.config.fingerprint

    @property
    def id_kind(self) -> int:
        """0 (none), 1 (int64) or 2 (UTF-8), as stored at byte 12."""
        return _id_kind(self.ids)

    def to_bytes(self) -> bytes:
        """The file bytes (same as :func:`to_bytes` with these fields)."""
        return to_bytes(self.config, self.codes, self.norm_codes, self.ids)

    def to_encoded(self):
        """The codes as a :class:`clark_hash_web.EncodedBatch` (Clark Hash only)."""
        from ..codecs.base import EncodedBatch

        return EncodedBatch.from_bytes(self.config, self.codes, self.norm_codes,
                                       fingerprint=self.fingerprint)

    def __repr__(self):
        return (f"SketchData(count={self.count}, fingerprint={self.fingerprint}, "
                f"code_bytes={self.config.code_bytes}, ids={ID_KIND_NAMES[self.id_kind]})")


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------
def _codec_kind_of(config) -> registry.CodecKind:
    if not hasattr(config, "to_bytes"):
        raise InvalidInputError(
            f"config must be a codec config with to_bytes(), got {type(config).__name__}")
    entry = registry.kind_of(config)
    size = len(config.to_bytes())
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config bytes are {size} long, this format allows {MAX_CONFIG_BYTES}")
    return entry


def _codes_bytes(config, codes) -> tuple:
    cb = config.code_bytes
    if isinstance(codes, CodeRows):
        codes = codes.tobytes()
    try:
        raw = memoryview(codes).cast("B")
    except TypeError:
        raise InvalidInputError(
            f"codes must be bytes-like or a C-contiguous uint8 array, got {type(codes).__name__}"
        ) from None
    if getattr(codes, "dtype", None) is not None and str(codes.dtype) != "uint8":
        raise InvalidInputError(f"codes must be uint8, got dtype {codes.dtype}")
    if len(raw) % cb:
        raise ConfigMismatchError(
            f"codes hold {len(raw)} bytes, not a multiple of code_bytes={cb} "
            f"of config {config.fingerprint}")
    return raw, len(raw) // cb


def _norm_bytes(config, norm_codes, count) -> Optional[bytes]:
    dot = config.metric == "dot"
    if norm_codes is None:
        if dot:
            raise ConfigMismatchError(
                f"config {config.fingerprint} uses the dot metric: norm codes are required")
        return None
    if not dot:
        raise ConfigMismatchError(
            f"config {config.fingerprint} uses the {config.metric} metric: it stores no norm codes")
    if isinstance(norm_codes, (bytes, bytearray, memoryview)):
        raw = bytes(memoryview(norm_codes).cast("B"))
    elif getattr(norm_codes, "dtype", None) is not None:
        if norm_codes.dtype.kind not in "ui" or (len(norm_codes) and (
                int(norm_codes.min()) < 0 or int(norm_codes.max()) > 0xFFFF)):
            raise InvalidInputError("norm codes must be integers in 0..65535")
        raw = norm_codes.astype("<u2").tobytes()
    else:
        try:
            a = array("H", [int(v) for v in norm_codes])
        except (OverflowError, TypeError, ValueError):
            raise InvalidInputError("norm codes must be integers in 0..65535") from None
        if sys.byteorder != "little":
            a.byteswap()
        raw = a.tobytes()
    if len(raw) != 2 * count:
        raise InvalidInputError(f"{len(raw) // 2} norm codes for {count} codes")
    return raw


def _id_kind(ids) -> int:
    if not ids:
        return ID_NONE
    return ID_UTF8 if isinstance(ids[0], str) else ID_INT64


def _normalize_ids(ids, count) -> Ids:
    """Validated ids as a list of int or of str (None / empty for none)."""
    if ids is None:
        return None
    ids = list(ids)
    if len(ids) != count:
        raise InvalidInputError(f"{len(ids)} ids for {count} codes")
    if not ids:
        return None
    out = []
    want_str = isinstance(ids[0], str)
    for pos, i in enumerate(ids):
        if want_str:
            if not isinstance(i, str):
                raise InvalidInputError(
                    f"ids must be all int or all str: position {pos} holds {i!r} after str ids")
            try:
                i.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(f"id at position {pos} is not valid Unicode text") from None
            out.append(i)
        else:
            if isinstance(i, (bool, str)) or not hasattr(i, "__index__"):
                raise InvalidInputError(
                    f"ids must be all int or all str: position {pos} holds {i!r}")
            i = i.__index__()
            if not _INT64_MIN <= i <= _INT64_MAX:
                raise InvalidInputError(f"id {i} at position {pos} does not fit in int64")
            out.append(i)
    if len(set(out)) != len(out):
        seen = set()
        for pos, i in enumerate(out):
            if i in seen:
                raise DuplicateIdError(f"id {i!r} appears twice (again at position {pos})")
            seen.add(i)
    return out


def _ids_parts(ids) -> list:
    kind = _id_kind(ids)
    if kind == ID_NONE:
        return []
    if kind == ID_INT64:
        return [array_bytes("q", ids)]
    blobs = [s.encode("utf-8") for s in ids]
    offsets = array("I", [0])
    total = 0
    for b in blobs:
        total += len(b)
        if total > 0xFFFFFFFF:
            raise InvalidInputError("string ids exceed 4 GiB of UTF-8 in one file")
        offsets.append(total)
    if sys.byteorder != "little":
        offsets.byteswap()
    return [offsets.tobytes(), b"".join(blobs)]


def _file_parts(config, codes, norm_codes, ids) -> list:
    """Validated pieces of a file, without the CRC (see the module docstring)."""
    entry = _codec_kind_of(config)
    raw, count = _codes_bytes(config, codes)
    norms = _norm_bytes(config, norm_codes, count)
    ids = _normalize_ids(ids, count)
    problem = entry.check_codes and entry.check_codes(config, bytes(raw), count)
    if problem:
        raise ConfigMismatchError(f"{problem} (config {config.fingerprint})")
    cfg_bytes = bytes(config.to_bytes())
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, entry.kind,
                          FLAG_NORM_CODES if norms is not None else 0, _id_kind(ids), 0, 0,
                          bytes.fromhex(config.fingerprint), count, config.code_bytes,
                          len(cfg_bytes))
    return [header, cfg_bytes, raw] + ([norms] if norms is not None else []) + _ids_parts(ids)


def to_bytes(config, codes, norm_codes=None, ids=None) -> bytes:
    """Serialize codes (and norm codes, ids) of one config into sketch-file bytes.

    Parameters
    ----------
    config : ClarkHashConfig
    codes : bytes-like or uint8 array (N, code_bytes)
        Packed codes, row after row.
    norm_codes : bytes (little-endian u16), sequence of ints, uint16 array, or None
        Required in dot mode, refused otherwise.
    ids : list of int or list of str, optional
        Unique; None stores no ids (rows are numbered 0..N-1).

    Returns
    -------
    bytes

    Raises
    ------
    ConfigMismatchError
        Codes or norm codes do not fit the config.
    InvalidInputError, DuplicateIdError
        Bad ids.
    """
    parts = _file_parts(config, codes, norm_codes, ids)
    crc = 0
    for p in parts:
        crc = zlib.crc32(p, crc)
    return b"".join(bytes(p) for p in parts) + struct.pack("<I", crc)


def encoded_to_bytes(encoded, ids=None) -> bytes:
    """:func:`to_bytes` for an :class:`~clark_hash_web.EncodedBatch`."""
    return to_bytes(encoded.config, encoded.codes_bytes(), encoded.norm_codes_bytes(), ids)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------
def _fail(msg: str):
    raise SketchFileError(msg)


def _describe_foreign(head: bytes) -> str:
    if head.startswith(b"\x93NUMPY"):
        return " (this is a .npy array: encode it first, e.g. `clark-hash encode`)"
    if head.startswith(b"PK\x03\x04"):
        return " (this is a zip archive)"
    if head[:1] in (b"{", b"["):
        return " (this looks like JSON text)"
    return ""


def from_bytes(data) -> SketchData:
    """Parse and fully check sketch-file bytes.

    Parameters
    ----------
    data : bytes-like

    Returns
    -------
    SketchData

    Raises
    ------
    SketchFileError
        Truncated, corrupt or foreign data; the message names the field and
        its byte offset. Never any other exception type for bad bytes.
    """
    try:
        mv = memoryview(data).cast("B")
    except TypeError:
        raise SketchFileError(f"sketch data must be bytes-like, got {type(data).__name__}") from None
    size = len(mv)
    if size < MIN_FILE_BYTES:
        if bytes(mv[:8]) == MAGIC[:min(size, 8)]:
            _fail(f"truncated: a sketch file has at least {MIN_FILE_BYTES} bytes, this one has {size}")
        _fail(f"not a sketch file: {size} bytes, less than the {MIN_FILE_BYTES}-byte minimum"
              f"{_describe_foreign(bytes(mv[:8]))}")
    (magic, version, kind, flags, id_kind, reserved, clen16, fp, count, code_bytes,
     clen32) = _HEADER.unpack_from(mv, 0)
    if magic != MAGIC:
        _fail(f"not a sketch file: bytes 0..7 are {magic!r}, expected magic {MAGIC!r}"
              f"{_describe_foreign(magic)}")
    if version not in READ_VERSIONS:
        _fail(f"unsupported format version {version} at byte 8 (this reader knows "
              f"{', '.join(map(str, READ_VERSIONS))})")
    if reserved:
        _fail(f"reserved byte 13 is {reserved}, must be 0 (corrupt header)")
    if version == 1:
        clen, clen_at = clen16, 14
        if clen32:
            _fail(f"reserved bytes 36..39 hold {clen32}, must be 0 in a version 1 file (corrupt header)")
    else:
        clen, clen_at = clen32, 36
        if clen16:
            _fail(f"reserved bytes 14..15 hold {clen16}, must be 0 in a version 2 file (corrupt header)")
    if flags & ~FLAG_NORM_CODES:
        _fail(f"flags byte 11 is 0x{flags:02x}: unknown bits set (only bit 0 is defined)")
    if id_kind not in ID_KIND_NAMES:
        _fail(f"unknown id kind {id_kind} at byte 12 (0 = none, 1 = int64, 2 = UTF-8)")
    try:
        codec = registry.codec_kind(kind)
    except ConfigError:
        known = ", ".join(f"{k} ({e.name})" for k, e in registry.registered().items())
        raise SketchFileError(f"unknown codec kind {kind} at byte 10 (known: {known})") from None
    if clen == 0:
        _fail(f"config length at byte {clen_at} is 0")
    if HEADER_BYTES + clen + CRC_BYTES > size:
        _fail(f"truncated: the config length at byte {clen_at} ({clen}) implies at least "
              f"{HEADER_BYTES + clen + CRC_BYTES} bytes, file has {size}")
    cfg_bytes = bytes(mv[HEADER_BYTES:HEADER_BYTES + clen])
    if cfg_bytes[0] != kind:
        _fail(f"config bytes at byte {HEADER_BYTES} start with codec kind {cfg_bytes[0]}, "
              f"the header (byte 10) says {kind}")
    try:
        config = codec.config_type.from_bytes(cfg_bytes)
    except (ClarkHashError, ValueError, TypeError, OverflowError, struct.error) as exc:
        raise SketchFileError(
            f"config bytes at byte {HEADER_BYTES} ({clen} bytes) are invalid: {exc}") from None
    if bytes(config.to_bytes()) != cfg_bytes:
        _fail(f"config bytes at byte {HEADER_BYTES} are not in canonical form")
    if bytes.fromhex(config.fingerprint) != fp:
        _fail(f"fingerprint at byte 16 is {fp.hex()}, but the config at byte {HEADER_BYTES} "
              f"hashes to {config.fingerprint} (corrupt header or config)")
    if code_bytes != config.code_bytes:
        _fail(f"code_bytes at byte 32 is {code_bytes}, config {config.fingerprint} "
              f"needs {config.code_bytes}")
    dot = config.metric == "dot"
    if bool(flags & FLAG_NORM_CODES) != dot:
        _fail(f"flags byte 11 says norm codes {'present' if flags & 1 else 'absent'}, "
              f"but the config's metric is {config.metric!r}")

    pos = HEADER_BYTES + clen
    codes_at, pos = pos, pos + count * code_bytes
    norms_at, pos = pos, pos + (2 * count if dot else 0)
    ids_at = pos
    if id_kind == ID_INT64:
        pos += 8 * count
    elif id_kind == ID_UTF8:
        pos += 4 * (count + 1)
        if pos + CRC_BYTES > size:
            _fail(f"truncated: count {count} (byte 24) implies at least {pos + CRC_BYTES} bytes, "
                  f"file has {size}")
        (blob_len,) = struct.unpack_from("<I", mv, pos - 4)
        pos += blob_len
    expected = pos + CRC_BYTES
    if expected != size:
        if expected > size:
            _fail(f"truncated: count {count} (byte 24) and the layout imply {expected} bytes, "
                  f"expected {expected} bytes, file has {size}")
        _fail(f"{size - expected} unexpected bytes after the data: expected {expected} bytes, "
              f"file has {size}")
    (stored_crc,) = struct.unpack_from("<I", mv, size - CRC_BYTES)
    crc = zlib.crc32(mv[:size - CRC_BYTES])
    if crc != stored_crc:
        _fail(f"checksum mismatch: CRC-32 at byte {size - CRC_BYTES} is 0x{stored_crc:08x}, "
              f"the content hashes to 0x{crc:08x} (corrupt file)")

    if count == 0 and id_kind != ID_NONE:
        _fail(f"id kind {id_kind} at byte 12 with no rows (must be 0)")
    ids = _read_ids(mv, id_kind, count, ids_at)
    codes = bytes(mv[codes_at:codes_at + count * code_bytes])
    if codec.check_codes is not None:
        problem = codec.check_codes(config, codes, count)
        if problem:
            _fail(f"codes at byte {codes_at}: {problem}")
    norms = bytes(mv[norms_at:norms_at + 2 * count]) if dot else None
    return SketchData(config=config, count=count, codes=codes, norm_codes=norms, ids=ids)


def _read_ids(mv, id_kind, count, at) -> Ids:
    if id_kind == ID_NONE:
        return None
    if id_kind == ID_INT64:
        ids = bytes_array("q", mv[at:at + 8 * count]).tolist()
    else:
        offsets = bytes_array("I", mv[at:at + 4 * (count + 1)])
        blob_at = at + 4 * (count + 1)
        if offsets[0] != 0:
            _fail(f"id offsets at byte {at}: the first offset is {offsets[0]}, must be 0")
        blob = bytes(mv[blob_at:blob_at + offsets[-1]])
        ids = []
        prev = 0
        for r in range(count):
            end = offsets[r + 1]
            if end < prev:
                _fail(f"id offsets at byte {at + 4 * (r + 1)}: offset {end} of row {r} is below "
                      f"the previous offset {prev}")
            try:
                ids.append(blob[prev:end].decode("utf-8"))
            except UnicodeDecodeError:
                _fail(f"id of row {r} (bytes {blob_at + prev}..{blob_at + end - 1}) "
                      f"is not valid UTF-8")
            prev = end
    if len(set(ids)) != count:
        first = {}
        for r, i in enumerate(ids):
            if i in first:
                _fail(f"duplicate id {i!r}: rows {first[i]} and {r}")
            first[i] = r
    return ids


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomic(path, parts, mode=None):
    """Write ``parts`` + CRC to a temporary file beside ``path``, fsync, rename over it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            crc = 0
            for p in parts:
                crc = zlib.crc32(p, crc)
                f.write(p)
            f.write(struct.pack("<I", crc))
            f.flush()
            try:
                os.fsync(f.fileno())
            except OSError:  # e.g. file systems without fsync (browser MEMFS)
                pass
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _fsync_dir(folder):
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path, config, codes, norm_codes=None, ids=None) -> None:
    """Write a sketch file atomically (replacing ``path`` if it exists).

    Parameters are those of :func:`to_bytes`. Nothing is written when the
    arguments are refused.
    """
    _write_atomic(path, _file_parts(config, codes, norm_codes, ids))


def load(path) -> SketchData:
    """Read and check a sketch file; see :func:`from_bytes`.

    Raises
    ------
    SketchFileError
        Bad content (the message starts with the path).
    OSError
        The file cannot be read.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return from_bytes(data)
    except SketchFileError as exc:
        raise SketchFileError(f"{os.fspath(path)}: {exc}") from None


def append(path, config, codes, norm_codes=None, ids=None) -> SketchData:
    """Add codes to an existing sketch file (atomic rewrite).

    Parameters are those of :func:`to_bytes`. The file's config must be the
    same (same fingerprint), the ids of the same kind (an empty file takes
    any kind) and unique across old and new rows.

    Returns
    -------
    SketchData
        What the file holds now.

    Raises
    ------
    ConfigMismatchError
        Another config (the message names both fingerprints).
    DuplicateIdError, InvalidInputError
        Repeated ids, or ids of another kind than the file's.
    SketchFileError
        The existing file is damaged.

    Notes
    -----
    On any failure the file is left byte for byte as it was.
    """
    old = load(path)
    if old.fingerprint != getattr(config, "fingerprint", None):
        raise ConfigMismatchError(
            f"{os.fspath(path)} holds codes of config {old.fingerprint}, the new codes belong "
            f"to config {getattr(config, 'fingerprint', '?')}")
    raw, count = _codes_bytes(config, codes)
    new_norms = _norm_bytes(config, norm_codes, count)
    new_ids = _normalize_ids(ids, count)
    if count == 0:
        return old
    if old.count and (old.ids is None) != (new_ids is None):
        if old.ids is None:
            raise InvalidInputError(
                f"{os.fspath(path)} stores no ids (rows are numbered): append without ids")
        raise InvalidInputError(
            f"{os.fspath(path)} stores {ID_KIND_NAMES[old.id_kind]} ids: give ids for the new rows")
    if old.count and new_ids is not None and _id_kind(new_ids) != old.id_kind:
        raise InvalidInputError(
            f"{os.fspath(path)} stores {ID_KIND_NAMES[old.id_kind]} ids, the new ids are "
            f"{ID_KIND_NAMES[_id_kind(new_ids)]}")
    if new_ids is not None and old.ids:
        have = set(old.ids)
        for pos, i in enumerate(new_ids):
            if i in have:
                raise DuplicateIdError(
                    f"id {i!r} (new row {pos}) is already in {os.fspath(path)}")
    ids = None if new_ids is None else (old.ids or []) + new_ids
    norms = None if new_norms is None else old.norm_codes + new_norms
    parts = _file_parts(config, old.codes + bytes(raw), norms, ids)
    mode = os.stat(path).st_mode & 0o7777
    _write_atomic(path, parts, mode)
    return SketchData(config=config, count=old.count + count, codes=bytes(parts[2]),
                      norm_codes=norms, ids=ids)


# ---------------------------------------------------------------------------
# EncodedBatch / FlatIndex conveniences
# ---------------------------------------------------------------------------
def save_encoded(path, encoded, ids=None) -> None:
    """:func:`save` an :class:`~clark_hash_web.EncodedBatch` (with optional ids)."""
    save(path, encoded.config, encoded.codes_bytes(), encoded.norm_codes_bytes(), ids)


def append_encoded(path, encoded, ids=None) -> SketchData:
    """:func:`append` an :class:`~clark_hash_web.EncodedBatch` (with optional ids)."""
    return append(path, encoded.config, encoded.codes_bytes(), encoded.norm_codes_bytes(), ids)
