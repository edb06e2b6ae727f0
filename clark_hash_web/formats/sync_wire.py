"""Sync messages: the binary bodies of pushes and pulls between devices and ``clark-hash serve``.

Codes travel inside a sketch file (``clark_hash_web.formats.sketch_file``, format v2,
ids kind 2 = UTF-8 strings) of the collection's codec (any registered kind:
Clark Hash, E8, sign bits, hyperplane LSH, ITQ), never as JSON arrays of
numbers. The sketch file is wrapped in a small envelope that adds the change
metadata (Lamport clocks, device, deletes), the push id that makes retries
idempotent, and each put's opaque payload (the clients' encrypted note text,
see :mod:`clark_hash_web.sync.crypto`; the server never looks inside).

Envelope layout (all integers little-endian)::

    offset  size  field
    0       8     magic b"CHSYNCMS"
    8       2     envelope version (u16) = 2 (version 1, without payloads, still decodes)
    10      1     kind (u8): 1 = push (device -> server), 2 = pull page (server -> device)
    11      1     reserved, 0
    12      4     meta length M (u32), at most MAX_META_BYTES
    16      4     sketch length S (u32); 0 when the message carries no puts
    20      4     payload section length P (u32); 0 when no put has a payload
                  (version 1: reserved, 0)
    24      M     meta: a UTF-8 JSON object (fields below)
    24+M    S     sketch file (CHSKETCH v2, id kind 2), one row per put, in meta order
    24+M+S  P     payloads: (N+1) u32 offsets (the first 0, non-decreasing) into the
                  blob that follows, then the blob; row i's payload is
                  blob[off[i]:off[i+1]], empty = no payload; each at most
                  MAX_PAYLOAD_BYTES (64 KiB)
    24+M+S+P 4    CRC-32 (zlib.crc32) of every preceding byte
    total = 28 + M + S + P

Push meta::

    {"push_id": str, "chunk": int, "chunks": int, "device": str,
     "put_clocks": [int, ...],            # one per sketch row
     "deletes": [[id, clock], ...]}

Pull meta::

    {"cursor": int, "more": bool, "last_seq": int,
     "put_seqs": [int, ...], "put_clocks": [int, ...], "put_devices": [str, ...],
     "deletes": [[id, clock, device, seq], ...]}

Ids are strings of 1..MAX_ID_BYTES UTF-8 bytes; clocks are integers in
0..2**53-1 (exact in JavaScript); devices are 1..64 characters of
``[A-Za-z0-9_.-]``; push ids 1..64 of the same characters.

Every decoder here reads untrusted bytes and raises only
:class:`SyncProtocolError` (a ``ValueError``), naming the field and offset.
The browser client (``static/sync.js``) writes and reads the same layout.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ..errors import ConfigError, ConfigMismatchError, SketchFileError, SyncProtocolError

MAGIC = b"CHSYNCMS"
VERSION = 2
READ_VERSIONS = (1, 2)
MAX_PAYLOAD_BYTES = 64 * 1024
KIND_PUSH = 1
KIND_PULL = 2
HEADER = struct.Struct("<8sHBBIII")
HEADER_BYTES = HEADER.size  # 24
MAX_META_BYTES = 16 * 1024 * 1024
MAX_ID_BYTES = 256
MAX_CLOCK = 2 ** 53 - 1
MEDIA_TYPE = "application/x-clark-hash-sync"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class Put:
    """One upsert: an id with its packed code (and u16 norm code in dot mode) and payload."""

    id: str
    clock: int
    code: bytes
    norm_code: Optional[int] = None
    device: str = ""
    seq: int = 0
    payload: Optional[bytes] = None


@dataclass(frozen=True)
class Delete:
    """One tombstone: the id stops existing at this clock."""

    id: str
    clock: int
    device: str = ""
    seq: int = 0


@dataclass
class Message:
    """A decoded envelope.

    Attributes
    ----------
    kind : int
        KIND_PUSH or KIND_PULL.
    config : codec config or None
        Config of the embedded sketch file (any registered codec; None when
        there are no puts).
    puts, deletes : list
        The changes, in wire order.
    meta : dict
        The remaining meta fields (push_id, chunk, chunks, device, cursor, ...).
    """

    kind: int
    config: Optional[object]
    puts: List[Put] = field(default_factory=list)
    deletes: List[Delete] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


# -- small validators (shared with the store and the server) -------------------

def check_id(value, where: str) -> str:
    """Return ``value`` if it is a valid sync id, else raise SyncProtocolError."""
    if not isinstance(value, str) or not value:
        raise SyncProtocolError(f"{where}: ids are non-empty strings, got {value!r:.80}")
    try:
        n = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise SyncProtocolError(f"{where}: id is not encodable as UTF-8") from None
    if n > MAX_ID_BYTES:
        raise SyncProtocolError(f"{where}: id is {n} bytes, at most {MAX_ID_BYTES}")
    return value


def check_clock(value, where: str) -> int:
    """Return ``value`` if it is an integer clock in 0..2**53-1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CLOCK:
        raise SyncProtocolError(f"{where}: clocks are integers in 0..2**53-1, got {value!r:.40}")
    return value


def check_token(value, where: str) -> str:
    """Device names and push ids: 1..64 of ``[A-Za-z0-9_.-]``."""
    if not isinstance(value, str) or not _TOKEN_RE.match(value):
        raise SyncProtocolError(f"{where}: expected 1..64 characters of [A-Za-z0-9_.-], "
                                f"got {value!r:.80}")
    return value


def _int(value, where: str, lo: int = 0, hi: int = MAX_CLOCK) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SyncProtocolError(f"{where}: expected an integer in {lo}..{hi}, got {value!r:.40}")
    return value


def _list(meta: dict, key: str) -> list:
    value = meta.get(key, [])
    if not isinstance(value, list):
        raise SyncProtocolError(f"meta.{key}: expected a list, got {type(value).__name__}")
    return value


# -- sketch file adapter ----------------------------------------------------------

def _sketch_bytes(config, codes: bytes, norm_codes: Optional[bytes], ids: list) -> bytes:
    from . import sketch_file

    return sketch_file.to_bytes(config, codes, norm_codes, ids)


def _sketch_parse(data: bytes):
    from . import sketch_file

    return sketch_file.from_bytes(data)


# -- encoding ---------------------------------------------------------------------

def _envelope(kind: int, meta: dict, sketch: bytes, payloads: bytes = b"") -> bytes:
    meta_bytes = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head = HEADER.pack(MAGIC, VERSION, kind, 0, len(meta_bytes), len(sketch), len(payloads))
    body = b"".join((head, meta_bytes, sketch, payloads))
    return body + struct.pack("<I", zlib.crc32(body))


def payload_section(puts) -> bytes:
    """The payload section of ``puts`` (b"" when none has a payload)."""
    blobs = [b"" if p.payload is None else bytes(p.payload) for p in puts]
    if not any(blobs):
        return b""
    offsets, o = [0], 0
    for i, (p, b) in enumerate(zip(puts, blobs)):
        if len(b) > MAX_PAYLOAD_BYTES:
            raise SyncProtocolError(f"payload of id {p.id!r:.80} has {len(b)} bytes, "
                                    f"at most {MAX_PAYLOAD_BYTES}")
        o += len(b)
        offsets.append(o)
    return struct.pack(f"<{len(offsets)}I", *offsets) + b"".join(blobs)


def _parse_payloads(section: bytes, n: int, offset: int) -> list:
    if not section:
        return [None] * n
    head = 4 * (n + 1)
    if n == 0 or len(section) < head:
        raise SyncProtocolError(f"offset {offset}: payload section of {len(section)} bytes for "
                                f"{n} puts (needs {head} bytes of offsets)")
    offs = struct.unpack_from(f"<{n + 1}I", section)
    if offs[0] != 0 or head + offs[-1] != len(section):
        raise SyncProtocolError(f"offset {offset}: payload offsets do not match the section length")
    out = []
    for i in range(n):
        a, b = offs[i], offs[i + 1]
        if b < a:
            raise SyncProtocolError(f"offset {offset + 4 * i}: payload offsets decrease at row {i}")
        if b - a > MAX_PAYLOAD_BYTES:
            raise SyncProtocolError(f"offset {offset + 4 * i}: payload of row {i} has {b - a} bytes, "
                                    f"at most {MAX_PAYLOAD_BYTES}")
        out.append(section[head + a:head + b] or None)
    return out


def _puts_sketch(config, puts) -> bytes:
    if not puts:
        return b""
    if config is None:
        raise SyncProtocolError("a message with puts needs the config of their codes")
    dot = config.metric == "dot"
    codes = b"".join(p.code for p in puts)
    norms = struct.pack(f"<{len(puts)}H", *(p.norm_code for p in puts)) if dot else None
    return _sketch_bytes(config, codes, norms, [p.id for p in puts])


def encode_push(config, push_id: str, device: str, puts=(), deletes=(),
                chunk: int = 0, chunks: int = 1) -> bytes:
    """Build a push envelope (one chunk of a push).

    Parameters
    ----------
    config : codec config or None
        The collection's config, any registered codec (needed when there are puts).
    push_id : str
        Client-generated id, the same for every retry and every chunk of this push.
    device : str
        The pushing device's name (the tie-breaker of the convergence rule).
    puts : sequence of Put
    deletes : sequence of Delete
    chunk, chunks : int
        This chunk's number (0-based) and the number of chunks of the push.
    """
    puts, deletes = list(puts), list(deletes)
    meta = {"push_id": check_token(push_id, "push_id"), "chunk": chunk, "chunks": chunks,
            "device": check_token(device, "device"),
            "put_clocks": [p.clock for p in puts],
            "deletes": [[d.id, d.clock] for d in deletes]}
    return _envelope(KIND_PUSH, meta, _puts_sketch(config, puts), payload_section(puts))


def encode_pull(config, puts, deletes, cursor: int, more: bool, last_seq: int) -> bytes:
    """Build a pull page (server -> device)."""
    puts, deletes = list(puts), list(deletes)
    meta = {"cursor": cursor, "more": bool(more), "last_seq": last_seq,
            "put_seqs": [p.seq for p in puts], "put_clocks": [p.clock for p in puts],
            "put_devices": [p.device for p in puts],
            "deletes": [[d.id, d.clock, d.device, d.seq] for d in deletes]}
    return _envelope(KIND_PULL, meta, _puts_sketch(config, puts), payload_section(puts))


# -- decoding (untrusted bytes) -----------------------------------------------------

def decode(data: bytes, expect_kind: Optional[int] = None,
           expect_config=None) -> Message:
    """Parse and fully validate an envelope.

    Checks, in order: length, magic, version, kind, reserved fields, declared
    lengths against the real length, CRC, meta JSON, the embedded sketch file
    (its own checks, then its config against ``expect_config``), and that every
    id, clock and device is well-formed and no id appears twice.

    Raises
    ------
    SyncProtocolError
        Malformed message (the message names the field and byte offset).
    ConfigMismatchError
        The codes belong to another config than ``expect_config``.
    """
    try:
        data = bytes(data)
    except TypeError:
        raise SyncProtocolError("a sync message must be bytes") from None
    if len(data) < HEADER_BYTES + 4:
        raise SyncProtocolError(f"truncated: a sync message is at least {HEADER_BYTES + 4} "
                                f"bytes, got {len(data)}")
    magic, version, kind, reserved1, meta_len, sketch_len, payload_len = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SyncProtocolError(f"offset 0: bad magic {magic!r}, expected {MAGIC!r}")
    if version not in READ_VERSIONS:
        raise SyncProtocolError(f"offset 8: unsupported envelope version {version}, expected "
                                f"one of {READ_VERSIONS}")
    if kind not in (KIND_PUSH, KIND_PULL) or (expect_kind is not None and kind != expect_kind):
        raise SyncProtocolError(f"offset 10: unexpected message kind {kind}"
                                + (f", expected {expect_kind}" if expect_kind else ""))
    if reserved1 or (version == 1 and payload_len):
        raise SyncProtocolError("offset 11/20: reserved bytes must be 0")
    if meta_len > MAX_META_BYTES:
        raise SyncProtocolError(f"offset 12: meta length {meta_len} exceeds {MAX_META_BYTES}")
    expected = HEADER_BYTES + meta_len + sketch_len + payload_len + 4
    if expected != len(data):
        raise SyncProtocolError(f"truncated or padded: header implies {expected} bytes, "
                                f"message has {len(data)}")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(memoryview(data)[:-4]) != crc:
        raise SyncProtocolError(f"offset {len(data) - 4}: CRC-32 mismatch, the message is corrupt")
    try:
        meta = json.loads(data[HEADER_BYTES:HEADER_BYTES + meta_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SyncProtocolError(f"offset {HEADER_BYTES}: meta is not UTF-8 JSON") from None
    if not isinstance(meta, dict):
        raise SyncProtocolError(f"offset {HEADER_BYTES}: meta must be a JSON object")
    sketch = data[HEADER_BYTES + meta_len:HEADER_BYTES + meta_len + sketch_len]
    config, rows = _decode_sketch(sketch, HEADER_BYTES + meta_len, expect_config)
    at = HEADER_BYTES + meta_len + sketch_len
    payloads = _parse_payloads(data[at:at + payload_len], len(rows), at)
    rows = [row + (pl,) for row, pl in zip(rows, payloads)]
    msg = Message(kind=kind, config=config)
    if kind == KIND_PUSH:
        _decode_push_meta(meta, rows, msg)
    else:
        _decode_pull_meta(meta, rows, msg)
    seen = set()
    for item in msg.puts + msg.deletes:
        if item.id in seen:
            raise SyncProtocolError(f"id {item.id!r:.80} appears more than once in one message")
        seen.add(item.id)
    return msg


def _decode_sketch(sketch: bytes, offset: int, expect_config):
    if not sketch:
        return None, []
    try:
        sf = _sketch_parse(sketch)
    except (SketchFileError, ConfigError) as exc:
        raise SyncProtocolError(f"offset {offset}: embedded sketch file: {exc}") from None
    config = sf.config
    if expect_config is not None and config.fingerprint != expect_config.fingerprint:
        got, want = bytes(config.to_bytes())[0], bytes(expect_config.to_bytes())[0]
        what = (f"codec kind {got}, this collection uses codec kind {want}" if got != want else
                f"config {config.fingerprint}, this collection uses {expect_config.fingerprint}")
        raise ConfigMismatchError(f"the codes were made with {what}: nothing was stored")
    ids = sf.ids
    if ids is None or len(ids) != sf.count or not all(isinstance(i, str) for i in ids):
        raise SyncProtocolError(f"offset {offset}: the embedded sketch file must carry string ids")
    codes = bytes(sf.codes)  # sketch_file.from_bytes ran the codec's own code checks
    norms = None if sf.norm_codes is None else bytes(sf.norm_codes)
    cb = config.code_bytes
    norm_values = struct.unpack(f"<{sf.count}H", norms) if norms is not None else [None] * sf.count
    rows = [(check_id(ids[i], f"sketch id {i}"), codes[i * cb:(i + 1) * cb], norm_values[i])
            for i in range(sf.count)]
    return config, rows


def _decode_push_meta(meta: dict, rows, msg: Message):
    known = {"push_id", "chunk", "chunks", "device", "put_clocks", "deletes"}
    extra = set(meta) - known
    if extra:
        raise SyncProtocolError(f"meta: unknown field(s) {sorted(extra)}")
    push_id = check_token(meta.get("push_id"), "meta.push_id")
    device = check_token(meta.get("device"), "meta.device")
    chunks = _int(meta.get("chunks"), "meta.chunks", 1, 1_000_000)
    chunk = _int(meta.get("chunk"), "meta.chunk", 0, chunks - 1)
    clocks = _list(meta, "put_clocks")
    if len(clocks) != len(rows):
        raise SyncProtocolError(f"meta.put_clocks has {len(clocks)} entries for {len(rows)} sketch rows")
    for i, ((id_, code, norm, payload), clock) in enumerate(zip(rows, clocks)):
        msg.puts.append(Put(id_, check_clock(clock, f"meta.put_clocks[{i}]"), code, norm, device,
                            payload=payload))
    for i, entry in enumerate(_list(meta, "deletes")):
        if not isinstance(entry, list) or len(entry) != 2:
            raise SyncProtocolError(f"meta.deletes[{i}]: expected [id, clock]")
        msg.deletes.append(Delete(check_id(entry[0], f"meta.deletes[{i}]"),
                                  check_clock(entry[1], f"meta.deletes[{i}]"), device))
    msg.meta = {"push_id": push_id, "device": device, "chunk": chunk, "chunks": chunks}


def _decode_pull_meta(meta: dict, rows, msg: Message):
    cursor = _int(meta.get("cursor"), "meta.cursor")
    last_seq = _int(meta.get("last_seq"), "meta.last_seq")
    more = meta.get("more")
    if not isinstance(more, bool):
        raise SyncProtocolError("meta.more: expected true or false")
    seqs, clocks, devices = (_list(meta, k) for k in ("put_seqs", "put_clocks", "put_devices"))
    if not len(seqs) == len(clocks) == len(devices) == len(rows):
        raise SyncProtocolError(f"meta: put_seqs/put_clocks/put_devices must each have "
                                f"{len(rows)} entries (one per sketch row)")
    for i, (id_, code, norm, payload) in enumerate(rows):
        msg.puts.append(Put(id_, check_clock(clocks[i], f"meta.put_clocks[{i}]"), code, norm,
                            check_token(devices[i], f"meta.put_devices[{i}]"),
                            _int(seqs[i], f"meta.put_seqs[{i}]", 1), payload))
    for i, entry in enumerate(_list(meta, "deletes")):
        if not isinstance(entry, list) or len(entry) != 4:
            raise SyncProtocolError(f"meta.deletes[{i}]: expected [id, clock, device, seq]")
        msg.deletes.append(Delete(check_id(entry[0], f"meta.deletes[{i}]"),
                                  check_clock(entry[1], f"meta.deletes[{i}]"),
                                  check_token(entry[2], f"meta.deletes[{i}]"),
                                  _int(entry[3], f"meta.deletes[{i}]", 1)))
    msg.meta = {"cursor": cursor, "more": more, "last_seq": last_seq}


def split_for_push(puts, deletes, code_bytes: int, max_bytes: int) -> List[Tuple[list, list]]:
    """Split changes into chunks whose envelopes stay under ``max_bytes``.

    The estimate is conservative (ids counted at their UTF-8 length, clocks
    at 17 JSON characters, sketch-file overheads at 1 KiB), so the encoded
    chunk is never larger than ``max_bytes``.
    """
    budget = max(1, max_bytes - 2048)
    chunks, cur, cur_del, size = [], [], [], 0
    for kind, item in [("p", p) for p in puts] + [("d", d) for d in deletes]:
        id_cost = len(item.id.encode("utf-8")) + 4 if kind == "p" else len(json.dumps(item.id)) + 4
        n = id_cost + 17 + (code_bytes + 2 + 4 + len(item.payload or b"") if kind == "p" else 0)
        if (cur or cur_del) and size + n > budget:
            chunks.append((cur, cur_del))
            cur, cur_del, size = [], [], 0
        (cur if kind == "p" else cur_del).append(item)
        size += n
    if cur or cur_del or not chunks:
        chunks.append((cur, cur_del))
    return chunks
