"""Python side of the browser runtime: what static/worker.js calls.

The worker keeps one :class:`BrowserStore` per open IndexedDB store, of any
registered codec (:mod:`clark_hash_web.codecs.registry`: Clark Hash, E8, sign
bits, hyperplane LSH, ITQ); its in-memory index comes from
:func:`clark_hash_web.index.make_index`. It
validates and encodes everything here first, gets back a *write plan* (the
IndexedDB records to put and delete), writes that plan in ONE IndexedDB
transaction, and only when the transaction has committed calls
:meth:`BrowserStore.commit` so the in-memory :class:`FlatIndex` follows. A
failed transaction (quota, crash, closed page) calls :meth:`BrowserStore.abort`
or simply never commits: memory and disk both stay as they were.

Records (see static/idb-store.js for the database layout)
--------------------------------------------------------
A block ``b`` (int key, appended in increasing order, rows in insertion
order) is two records:

``blocks[b]`` = ``{"n": rows, "codes": n * code_bytes bytes, "norms": n * 2 bytes (u16 LE) or None,
"vectors": n * (4 + d) bytes or None}``

(``vectors``: the int8 rescoring rows of a two-stage store, see
:mod:`.int8_rows`; in the same record as the codes, so one transaction
writes both.)
``ids[b]``    = one of
    ``{"kind": "range", "start": s, "n": n}``   ints s, s+1, ..., s+n-1
    ``{"kind": "int", "data": n * 8 bytes}``     other ints, f64 LE (safe integers)
    ``{"kind": "str", "data": [str, ...]}``      strings

Each plan also carries ``nextAuto``, the next automatic int id, which the
worker writes into the ``meta`` record in the same transaction.

New rows go to the last block until it holds :data:`BLOCK_ROWS` rows, then to
new blocks; a delete rewrites the affected blocks without the deleted rows (or
deletes them when empty). Reading the blocks in key order therefore gives the
insertion order that ranking ties depend on.

The worker holds the stored rows (static/stored-rows.js: the records read
at open, packed, and every committed plan applied to them), so a write needs
no copy of all rows here: a plan is made from the new rows and what the
worker says of the stored ones (a *stored view*, see :meth:`BrowserStore.plan_add`):
the last block record (new rows fill it), which of the new ids are already
stored, and the records of the blocks holding the ids to delete. The
in-memory index is a read cache, loaded from the worker's rows only when an
operation needs Python's copy (searches of small Clark Hash stores,
``codes()``, ``export()``) and dropped at every committed write.

Everything crossing the JS boundary is plain: ints, strs, lists, dicts and
``bytes`` (the worker converts with ``toJs``).
"""

from __future__ import annotations

import struct
import sys
import time
from array import array

from ..backends import numpy_available  # noqa: F401  (the worker asks after loading numpy)
from ..codecs import registry
from ..codecs.base import EncodedBatch
from ..codecs.clark_hash_config import ClarkHashConfig
from ..errors import ConfigError, ConfigMismatchError, InvalidInputError
from ..index.factory import make_index
from ..index.flat import FlatIndex
from ..index.ids import IdMap
from ..little_endian import bytes_array
from .int8_rows import Int8Rows

#: Rows per block record (48 KiB of codes with the default config).
BLOCK_ROWS = 1024
#: IndexedDB schema version written in the ``meta`` record.
SCHEMA_VERSION = 1
MAX_SAFE_INT = 2**53 - 1
#: Stores up to this many rows are searched by Python alone (the JS prefilter
#: pays off above it); the worker may pass another value.
PREFILTER_MIN_ROWS = 2000


#: Modules the bridge imports lazily: preload() imports them before the
#: worker's interpreter snapshot, so no later visit compiles them again.
LAZY_MODULES = ("clark_hash_web.formats.sketch_file", "clark_hash_web.codecs.norm_channel", "clark_hash_web.index.fast_scan",
                "clark_hash_web.backends.python_backend")


def preload() -> None:
    """Import every module a browser session may need (see :data:`LAZY_MODULES`)."""
    import importlib

    for name in LAZY_MODULES:
        importlib.import_module(name)


_DERIVED = ("fingerprint", "code_bytes", "storage_bytes_per_vector", "codec")


def as_bytes(x) -> bytes:
    """Bytes of a bytes-like object or of a Pyodide JsProxy of a typed array.

    ``bytes(jsproxy)`` would iterate element by element (100x slower); the
    proxy's ``to_bytes()`` copies the buffer at once.
    """
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    to_bytes = getattr(x, "to_bytes", None)
    if to_bytes is not None and not isinstance(x, int):
        return to_bytes()
    return bytes(x)


def config_from_js(fields: dict) -> ClarkHashConfig:
    """ClarkHashConfig from the worker's plain dict (seed may be a decimal or 0x string).

    The derived keys :func:`config_info` adds are ignored, so a store's
    ``config`` can be passed back as is.
    """
    fields = {k: v for k, v in dict(fields).items() if k not in _DERIVED}
    seed = fields.get("seed")
    if isinstance(seed, str):
        try:
            fields["seed"] = int(seed, 0)
        except ValueError:
            raise InvalidInputError(f"config seed {seed!r} is not an integer") from None
    return ClarkHashConfig.from_dict(fields)


def config_of(spec=None, fields=None, config_bytes=None):
    """The config named by exactly one of a spec string, Clark Hash fields or config bytes.

    Parameters
    ----------
    spec : str, optional
        A registry spec such as ``"e8:384"`` (:func:`registry.config_from_spec`).
    fields : dict, optional
        Clark Hash config fields as the page sends them (:func:`config_from_js`).
    config_bytes : bytes-like, optional
        Canonical config bytes of any registered codec (e.g. a trained ITQ).
    """
    given = [x for x in (spec, fields, config_bytes) if x is not None]
    if len(given) != 1:
        raise ConfigError("give exactly one of codec (a spec like 'e8:384'), config (Clark Hash "
                          f"fields) or config bytes; got {len(given)}")
    if spec is not None:
        return registry.config_from_spec(str(spec))
    if fields is not None:
        return config_from_js(fields)
    return registry.config_from_bytes(as_bytes(config_bytes))


def config_bytes_of(spec=None, fields=None, config_bytes=None) -> dict:
    """``{bytes, fingerprint}`` of :func:`config_of` (what the worker stores in ``meta``)."""
    cfg = config_of(spec, fields, config_bytes)
    return {"bytes": bytes(cfg.to_bytes()), "fingerprint": cfg.fingerprint}


def config_info(cfg) -> dict:
    """The config as the page sees it: fields (seed as a decimal string), codec and sizes.

    ``codec`` is :func:`registry.describe` (kind, name, title, spec or None,
    fingerprint, sizes); Clark Hash configs also give their fields at the top
    level, as before.
    """
    d = dict(cfg.to_dict()) if hasattr(cfg, "to_dict") else {}
    if "seed" in d:
        d["seed"] = str(cfg.seed)
    d.pop("mean", None)
    d.pop("projection", None)
    d["input_dim"] = cfg.input_dim
    for name in ("sketch_dim", "bits", "metric"):   # binary/E8: sketch_dim = bits per code, bits = 1
        d[name] = getattr(cfg, name)
    d["fingerprint"] = cfg.fingerprint
    d["code_bytes"] = cfg.code_bytes
    d["storage_bytes_per_vector"] = cfg.storage_bytes_per_vector
    d["codec"] = registry.describe(cfg)
    return d


def _ids_record(ids: list) -> dict:
    if ids and all(isinstance(i, int) for i in ids):
        s = ids[0]
        if all(i == s + k for k, i in enumerate(ids)):
            return {"kind": "range", "start": s, "n": len(ids)}
        return {"kind": "int", "data": struct.pack(f"<{len(ids)}d", *ids)}
    return {"kind": "str", "data": list(ids)}


def _ids_from_record(rec: dict) -> list:
    kind = rec["kind"]
    if kind == "range":
        return list(range(int(rec["start"]), int(rec["start"]) + int(rec["n"])))
    if kind == "int":
        data = as_bytes(rec["data"])
        return [int(v) for v in struct.unpack(f"<{len(data) // 8}d", data)]
    if kind == "str":
        return [str(s) for s in rec["data"]]
    raise InvalidInputError(f"unknown ids record kind {kind!r}")


def _ids_record_bytes(rec: dict) -> int:
    """Payload bytes of an ids record, as :meth:`BrowserStore.stats` counts them."""
    if rec["kind"] == "str":
        return sum(len(str(x).encode()) + 2 for x in rec["data"])
    if rec["kind"] == "int":
        return len(as_bytes(rec["data"]))
    return 16


def _from_js(x):
    """What the worker's stored view returned, as Python objects (JS objects to dicts, arrays
    to lists; typed arrays stay proxies, which :func:`as_bytes` reads); Python values as they are."""
    to_py = getattr(x, "to_py", None)
    return to_py() if to_py is not None else x


def _put(key, ids, codes, norms, vectors) -> dict:
    """A block record to write: ``{key, block, ids}``."""
    return {"key": key, "block": {"n": len(ids), "codes": codes, "norms": norms, "vectors": vectors},
            "ids": _ids_record(ids)}


def _rows_of(data, width, rows) -> bytes:
    return b"".join(data[r * width:(r + 1) * width] for r in rows)


class BrowserStore:
    """One open store: config, codec, write planning and a read cache of the rows.

    Parameters
    ----------
    config_bytes : bytes
        Canonical config bytes of any registered codec (from the ``meta``
        record or a new config); the first byte is the codec kind.
    backend : {"auto", "numpy", "python"}
    vectors : {None, "int8"}
        ``"int8"``: keep an int8 rescoring row beside every sketch (two-stage
        search, :mod:`.int8_rows`).

    The rows themselves are the worker's (see the module docstring);
    :attr:`index` holds them only while :attr:`loaded` (after :meth:`load`,
    until the next committed write or :meth:`reset`).
    """

    def __init__(self, config_bytes: bytes, backend: str = "auto", vectors=None):
        self.config = registry.config_from_bytes(as_bytes(config_bytes))
        self.codec = registry.codec_from_config(self.config,
                                                None if backend in (None, "auto") else backend)
        self.index = make_index(self.codec)
        #: True while :attr:`index` holds every stored row (a read cache, see :meth:`load`)
        self.loaded = False
        #: True for Clark Hash (FlatIndex, JS prefilter + Python ranking); False for
        #: the table-scored kinds (exact JS scan, static/table-scan.js)
        self.flat = isinstance(self.index, FlatIndex)
        if vectors not in (None, "int8"):
            raise InvalidInputError(f"vectors must be None or 'int8', got {vectors!r}")
        self.vectors = vectors
        self._int8 = Int8Rows(self.config.input_dim, self.config.metric, self.codec.backend) \
            if vectors else None
        self.next_auto = 0
        self._pending = {}
        self._token = 0
        self._query = None        # the QuerySketch between prefilter() and rank()
        # pure-Python codec for single queries (see _sketch); kept if the store moves to numpy
        self._sketcher = self.codec if self.codec.backend == "python" else None

    @property
    def code_kind(self) -> str:
        """The codec's spec name (``"clark-hash"``, ``"e8"``, ...)."""
        return registry.kind_of(self.config).name

    def use_backend(self, backend: str) -> str:
        """Move the in-memory index to another codec backend; returns its name.

        The worker calls this when numpy finishes loading after a store was
        opened on the pure-Python backend: the codes, ids and order stay the
        same, and both backends give the same codes and score bits. Only
        between operations (no write plan may be pending).
        """
        if self._pending:
            raise InvalidInputError("use_backend() while a write is pending")
        if backend == self.codec.backend:
            return backend
        codec = registry.codec_from_config(self.config, backend)
        index = make_index(codec)
        if len(self.index):
            index.add_encoded(self.index.encoded(), self.index.ids)
        self.codec, self.index = codec, index
        if self._int8 is not None:
            self._int8 = Int8Rows(self.config.input_dim, self.config.metric, codec.backend)
        return codec.backend

    # -- the read cache -----------------------------------------------------------
    def load(self, records: list, next_auto: int = 0) -> float:
        """Fill the index from block records ([{key, block, ids}], keys ascending); then :attr:`loaded`.

        ``next_auto`` is the ``meta`` record's next automatic id (ids of deleted
        rows are never handed out again, across reloads too).

        Returns the milliseconds spent. Records are checked like any stored
        bytes (lengths, padding bits, code values, duplicate ids); a bad
        record raises and leaves the store empty. Each block goes to the index
        as it is read (range ids as a range), so no second copy of the codes
        and no Python object per id is made on the way. The worker calls
        :meth:`load_record` for each record, then this with ``records=None``.
        """
        t0 = time.perf_counter()
        try:
            for rec in sorted(records or (), key=lambda r: int(r["key"])):
                self.load_record(rec)
        except Exception:
            self.reset()
            raise
        self.next_auto = max(self.next_auto, int(next_auto or 0))
        self.loaded = True
        return (time.perf_counter() - t0) * 1000.0

    def reset(self) -> None:
        """Forget the cached rows (a load that failed part way, or a committed write)."""
        self.index = make_index(self.codec)
        self.loaded = False

    def _record_parts(self, rec) -> tuple:
        """``(key, ids, codes, norm codes or None, int8 rows or None)`` of a block record, sizes checked."""
        cb = self.config.code_bytes
        vb = self._int8.row_bytes if self._int8 is not None else 0
        key, blk, idrec = int(rec["key"]), rec["block"], rec["ids"]
        n = int(blk["n"])
        if idrec["kind"] == "range":
            start = int(idrec["start"])
            bids = range(start, start + int(idrec["n"]))
        else:
            bids = _ids_from_record(idrec)
        bcodes = as_bytes(blk["codes"])
        bnorms = as_bytes(blk["norms"]) if blk.get("norms") is not None else None
        bvecs = as_bytes(blk["vectors"]) if blk.get("vectors") is not None else None
        if len(bids) != n or len(bcodes) != n * cb:
            raise ConfigMismatchError(
                f"IndexedDB block {key}: {n} rows, {len(bids)} ids and {len(bcodes)} code bytes "
                f"do not fit code_bytes={cb}")
        if vb and (bvecs is None or len(bvecs) != n * vb):
            raise ConfigMismatchError(
                f"IndexedDB block {key}: {n} rows need {n * vb} bytes of int8 rescoring rows, "
                f"found {0 if bvecs is None else len(bvecs)}")
        return key, bids, bcodes, bnorms, bvecs if vb else None

    def load_record(self, rec) -> None:
        """Add one block record to the index (keys ascending; see :meth:`load`).

        The worker hands the records over one at a time, so only one block's
        bytes cross into Python at once; after a failure it calls
        :meth:`reset`.
        """
        self.loaded = False
        _, bids, bcodes, bnorms, _ = self._record_parts(rec)
        if len(bids):
            nc = bnorms if self.config.metric == "dot" and self.flat else None
            self.index.add_encoded(EncodedBatch.from_bytes(self.config, bcodes, nc), bids)
            self._bump_auto(bids)

    def _bump_auto(self, ids):
        """Automatic ids continue after the largest int id (``ids``: checked, one kind)."""
        if len(ids) and not isinstance(ids[0], str):
            self.next_auto = max(self.next_auto, (ids[-1] if isinstance(ids, range) else max(ids)) + 1)

    # -- ids ------------------------------------------------------------------
    def _check_ids(self, ids, n, stored, last) -> list:
        """The ids of ``n`` new rows (automatic when None), checked against the stored ones.

        ``stored`` (see :meth:`plan_add`) names the new ids already stored;
        with one id of ``last``, the last block record (the store's id kind), they make a small
        :class:`IdMap` that answers every check as the whole store would
        (same errors, same order).
        """
        if ids is None:
            return list(range(self.next_auto, self.next_auto + n))
        ids = list(ids)
        if len(ids) != n:
            raise InvalidInputError(f"{len(ids)} ids for {n} vectors")
        for pos, i in enumerate(ids):
            if isinstance(i, float) and i.is_integer():
                ids[pos] = i = int(i)
            if isinstance(i, bool) or not isinstance(i, (int, str)):
                raise InvalidInputError(f"id at batch position {pos} must be an int or a str, got {i!r}")
            if isinstance(i, int) and abs(i) > MAX_SAFE_INT:
                raise InvalidInputError(f"int id {i} at batch position {pos} is not a safe JS integer")
        known = list(_from_js(stored.present(ids))) if stored is not None and ids else []
        if last is not None:
            known += list(self._record_parts(last)[1][:1])
        seen = IdMap()
        seen.append(sorted(set(known), key=lambda i: (isinstance(i, str), i)) if known else [])
        return seen.check_new(ids, n)

    # -- write plans -----------------------------------------------------------
    def _plan(self, kind, puts, deletes, apply, next_auto) -> dict:
        self._token += 1
        self._pending[self._token] = apply
        return {"token": self._token, "kind": kind, "puts": puts,
                "deletes": list(deletes), "nextAuto": next_auto}

    def plan_add(self, vectors, n: int, ids=None, stored=None) -> dict:
        """Validate and encode ``n`` float32 rows (raw LE bytes); plan their write.

        ``stored`` is the worker's view of the stored rows (None: the store
        is empty), an object with

        - ``last()``: the last block record ``{key, block, ids}`` (as stored)
          or None; new rows fill it up to :data:`BLOCK_ROWS`, then new blocks;
        - ``present(ids)``: those of ``ids`` that are stored (any order).

        A two-stage store also prepares each row's int8 rescoring row (same
        bytes as a desktop int8 VectorFile). Raises DimensionError,
        InvalidVectorError, DuplicateIdError or InvalidInputError before
        anything is planned.
        """
        raw = as_bytes(vectors)
        d = self.config.input_dim
        if len(raw) != 4 * d * n:
            raise InvalidInputError(f"{len(raw)} bytes of float32 for {n} vectors of dimension {d}")
        last = _from_js(stored.last()) if stored is not None else None
        ids = self._check_ids(ids, n, stored, last)
        enc = self.codec.encode(raw) if n else EncodedBatch.from_bytes(
            self.config, b"", b"" if self.config.metric == "dot" and self.flat else None)
        vecs = self._int8.prepare_rows(raw) if self._int8 is not None and n else b""
        return self._plan_encoded(enc, ids, "add", vecs, last)

    def _plan_encoded(self, enc: EncodedBatch, ids: list, kind: str, vecs, last) -> dict:
        cb = self.config.code_bytes
        vb = self._int8.row_bytes if self._int8 is not None else 0
        codes = enc.codes_bytes()
        norms = enc.norm_codes_bytes()
        puts = []
        pos = 0
        n = len(ids)

        def part(data, width, a, b):
            return None if data is None or not width else data[a * width:b * width]

        key = -1
        if last is not None and n:
            key, old_ids, old_codes, old_norms, old_vecs = self._record_parts(last)
            if len(old_ids) < BLOCK_ROWS:
                take = min(BLOCK_ROWS - len(old_ids), n)
                puts.append(_put(key, list(old_ids) + ids[:take], old_codes + codes[:take * cb],
                                 None if norms is None else (old_norms or b"") + norms[:2 * take],
                                 None if not vb else old_vecs + vecs[:take * vb]))
                pos = take
        while pos < n:
            key += 1
            take = min(BLOCK_ROWS, n - pos)
            puts.append(_put(key, ids[pos:pos + take], codes[pos * cb:(pos + take) * cb],
                             part(norms, 2, pos, pos + take), part(vecs, vb, pos, pos + take)))
            pos += take
        next_auto = max([self.next_auto] + [i + 1 for i in ids if isinstance(i, int)])

        def apply():
            self.next_auto = next_auto
            self.reset()
            return ids

        return self._plan(kind, puts, [], apply, next_auto)

    def plan_delete(self, ids, stored=None) -> dict:
        """Plan removing ``ids``; unknown ids raise KeyError (nothing planned).

        ``stored.holding(ids)`` (the worker's view, see :meth:`plan_add`)
        gives the records of the blocks that hold any of ``ids``; each is
        rewritten without them, or deleted when nothing is left.
        """
        ids = [int(i) if isinstance(i, float) and i.is_integer() else i for i in ids]
        drop = set(ids)
        cb = self.config.code_bytes
        vb = self._int8.row_bytes if self._int8 is not None else 0
        puts, deletes, found = [], [], set()
        records = list(_from_js(stored.holding(ids))) if stored is not None and ids else []
        for rec in sorted(records, key=lambda r: int(r["key"])):
            key, bids, bcodes, bnorms, bvecs = self._record_parts(rec)
            keep = [r for r, i in enumerate(bids) if i not in drop]
            found.update(i for i in bids if i in drop)
            if len(keep) == len(bids):
                continue
            if not keep:
                deletes.append(key)
                continue
            puts.append(_put(key, [bids[r] for r in keep], _rows_of(bcodes, cb, keep),
                             None if bnorms is None else _rows_of(bnorms, 2, keep),
                             None if not vb else _rows_of(bvecs, vb, keep)))
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"id(s) not in the store: {missing[:5]}")

        def apply():
            self.reset()
            return len(found)

        return self._plan("delete", puts, deletes, apply, self.next_auto)

    def plan_import(self, data, stored=None) -> dict:
        """Plan adding every row of a sketch file (same config fingerprint).

        ``stored``: as for :meth:`plan_add`.
        A sketch file holds codes, not vectors (sync pulls arrive this way).
        In a two-stage store its rows get the int8 row of their *decoded*
        code when the codec decodes into the input space (E8: the chosen
        roots; sign bits without rotation: +-1), so rescoring ranks them by
        the cosine to that approximation; for the other codecs they get an
        all-zero int8 row (scale 0, which no added vector has) and rescoring
        scores them 0.0 (``stats()["notesWithoutVectors"]`` counts those).
        """
        from ..formats import sketch_file

        sf = sketch_file.from_bytes(as_bytes(data))
        fp = getattr(sf, "fingerprint", None) or sf.config.fingerprint
        if fp != self.config.fingerprint:
            raise ConfigMismatchError(
                f"the sketch file's config {fp} is not this store's config {self.config.fingerprint}")
        enc = EncodedBatch.from_bytes(self.config, sf.codes, sf.norm_codes)
        check = getattr(self.codec, "check_codes", None)   # codes the codec cannot have written
        if check is not None:                               # (E8 bytes >= 240) fail before the write
            check(enc)
        last = _from_js(stored.last()) if stored is not None else None
        ids = self._check_ids(sf.ids, len(enc), stored, last)
        vecs = self._import_rows(enc) if self._int8 is not None else None
        return self._plan_encoded(enc, ids, "import", vecs, last)

    def _import_rows(self, enc: EncodedBatch) -> bytes:
        """int8 rows for imported codes: of the decoded codes, or zeros (see :meth:`plan_import`)."""
        n, d = len(enc), self.config.input_dim
        cfg = self.config
        in_input_space = self.code_kind == "e8" or (
            self.code_kind == "sign-bits" and cfg.rotation == "none" and cfg.n_bits == d)
        if not n or not in_input_space:
            return bytes(n * self._int8.row_bytes)
        decoded = self.codec.decode_sketch(enc)
        if hasattr(decoded, "dtype"):
            raw = decoded[:, :d].astype("<f4").tobytes()
        else:
            raw = b"".join(array("f", row[:d]).tobytes() for row in decoded)
            if sys.byteorder != "little":
                a = array("f", raw)
                a.byteswap()
                raw = a.tobytes()
        return self._int8.prepare_rows(raw)

    def commit(self, token: int):
        """The plan's transaction committed: drop the read cache (the worker applies the plan
        to its rows). Returns the plan's result."""
        return self._pending.pop(int(token))()

    def abort(self, token: int) -> None:
        """The plan's transaction failed: forget it (memory unchanged)."""
        self._pending.pop(int(token), None)

    # -- reading ----------------------------------------------------------------
    def _sketch(self, query):
        """The prepared query of one float32 query (raw LE bytes), always in pure Python.

        Both backends give the same sketch bits and errors (the conformance
        tests run on both), and for ONE vector the pure-Python backend is the
        faster one under Pyodide: numpy pays a fixed cost per call in wasm
        (about 0.9 ms against 0.5 ms for 384 -> 96 in Chromium). A numpy
        index converts the sketch's values when it scores. A store that
        started on the pure-Python backend keeps that codec; one opened on
        numpy makes it at its first query (a few ms, once).
        """
        if self._sketcher is None:
            self._sketcher = registry.codec_from_config(self.config, "python")
        return self._sketcher.sketch_query(query)

    def search(self, query, k: int) -> dict:
        """Top-k for one float32 query (raw LE bytes) by Python alone: ids, score bytes, timings (ms)."""
        t0 = time.perf_counter()
        q = self._sketch(as_bytes(query))
        t1 = time.perf_counter()
        ids, scores = self.index.search_prepared(q, int(k))
        t2 = time.perf_counter()
        return {"ids": list(ids), "scores": array("f", [float(s) for s in scores]).tobytes(),
                "sketchMs": (t1 - t0) * 1000.0, "searchMs": (t2 - t1) * 1000.0}

    # -- search with the JavaScript prefilter (static/prefilter-scan.js) ------------
    def prefilter(self, query, k: int, min_rows: int = PREFILTER_MIN_ROWS, count=None) -> dict:
        """First step of a browser search of a Clark Hash store: sketch the query, plan the JS scan.

        Stores of at most ``min_rows`` rows (and ``k`` outside ``1..n-1``) are
        searched here directly: the result is ``{"direct": True, ids, scores,
        sketchMs, searchMs}`` as :meth:`search` returns it. Otherwise the
        sketched query is kept for :meth:`rank` and the result is the scan
        plan (:meth:`FlatIndex.prefilter_plan`) plus ``direct: False``, ``k`` (an int,
        ``1 <= k < count``) and ``sketchMs``.

        ``count``: the stored rows when the worker holds them and this store
        has not loaded them (then ``min_rows < count`` and ``0 < k < count``
        are the caller's to ensure, and :meth:`rank_codes` ranks).
        """
        if not self.flat:
            raise InvalidInputError(f"prefilter() is the Clark Hash path; {self.code_kind} stores "
                                    "use table_query()")
        t0 = time.perf_counter()
        q = self._sketch(as_bytes(query))
        t1 = time.perf_counter()
        k = int(k)
        n = len(self.index) if count is None else int(count)
        self._query = None
        if count is not None and (n <= int(min_rows) or not 0 < k < n):
            raise InvalidInputError(f"prefilter(count={n}) needs min_rows < count and 0 < k < count "
                                    f"(min_rows={min_rows}, k={k})")
        if n <= int(min_rows) or not 0 < k < n:
            ids, scores = self.index.search_prepared(q, k)
            return {"direct": True, "ids": list(ids), "scores": scores.tobytes(),
                    "sketchMs": (t1 - t0) * 1000.0, "searchMs": (time.perf_counter() - t1) * 1000.0}
        plan = self.index.prefilter_plan(q)
        plan["count"] = n
        self._query = q
        plan.update(direct=False, k=k, sketchMs=(t1 - t0) * 1000.0,
                    planMs=(time.perf_counter() - t1) * 1000.0)
        return plan

    def rank(self, rows, k: int) -> dict:
        """Second step on a loaded store: exact top ``k`` among the candidate ``rows`` the JS scan kept.

        (The worker ranks the candidates' codes instead, :meth:`rank_codes`,
        so it never loads the rows for a search; this is the reference the
        tests hold that to.) ``rows`` is the bytes of ascending uint32 LE row numbers (FlatIndex
        row order). Returns ``{ids, scores, rankPyMs}`` (scores: float32 LE
        bytes; rankPyMs: time spent here), equal to a full :meth:`search` of
        the query given to :meth:`prefilter`.
        """
        t0 = time.perf_counter()
        q, self._query = self._query, None
        if q is None:
            raise InvalidInputError("rank() needs a query planned by prefilter() first")
        raw = as_bytes(rows)
        if len(raw) % 4:
            raise InvalidInputError(f"{len(raw)} bytes of uint32 row numbers")
        cand = bytes_array("I", raw)
        ids, scores = self.index.rank_rows(q, cand, int(k))
        return {"ids": list(ids), "scores": scores.tobytes(),
                "rankPyMs": (time.perf_counter() - t0) * 1000.0}

    def rank_codes(self, codes, norms, k: int) -> dict:
        """Second step when the worker holds the rows and Python does not: exact top ``k``
        among the candidates' own codes.

        ``codes``: the candidate rows' codes, in ascending row order (bytes);
        ``norms``: their norm codes (u16 LE bytes, dot mode) or None. Returns
        ``{positions, scores, rankPyMs}``: positions into the candidates, best
        first (exact ties by position, i.e. by row), and their float32 LE
        score bytes, the same as :meth:`rank` of those rows.
        """
        t0 = time.perf_counter()
        q, self._query = self._query, None
        if q is None:
            raise InvalidInputError("rank_codes() needs a query planned by prefilter() first")
        dot = self.config.metric == "dot"
        if (norms is not None) != dot:
            raise InvalidInputError(f"rank_codes(): norm codes are {'needed' if dot else 'not used'} "
                                    f"in {self.config.metric} mode")
        enc = EncodedBatch.from_bytes(self.config, as_bytes(codes), as_bytes(norms) if dot else None)
        cand = make_index(self.codec)
        cand.add_encoded(enc)   # ids 0..c-1: the positions
        positions, scores = cand.rank_rows(q, list(range(len(enc))), int(k))
        return {"positions": [int(p) for p in positions], "scores": array("f", [float(v) for v in scores]).tobytes(),
                "rankPyMs": (time.perf_counter() - t0) * 1000.0}

    # -- search with the exact JavaScript table scan (static/table-scan.js) ---------
    def table_query(self, query) -> dict:
        """The query of the exact JS scan of a binary/E8 store: its float32 projection.

        Returns ``{values: float32 LE bytes, bias, tableKind: "e8" | "bits", nbits,
        codeBytes, sketchMs}``; static/table-scan.js (``byteTables``) builds
        the byte lookup tables from them with the same float32 operations as
        the codec's Python tables (:mod:`clark_hash_web.codecs.bitpack`,
        ``E8Codes._tables_python``), and adds them in the bitpack order, so
        its scores are the desktop's bits. ``bias`` (a float32 value, 0.0
        except for normalized learned-E8 heads) is the query's
        :attr:`BinaryQuery.bias`: with the row scales (:meth:`score_scales`)
        static/normalized-scores.js finishes the sums into the desktop's
        scores. The query is validated here (same errors as the desktop).
        """
        if self.flat:
            raise InvalidInputError("table_query() is for binary and E8 stores; Clark Hash "
                                    "stores use prefilter()")
        t0 = time.perf_counter()
        sk = self._sketcher
        if sk is None:
            sk = self._sketcher = registry.codec_from_config(self.config, "python")
        q = sk.sketch_query(as_bytes(query))
        values = array("f", [float(v) for v in q.values])
        if sys.byteorder != "little":
            values.byteswap()
        from ..codecs.e8 import E8Codes   # E8 and learned E8: root tables of the (rotated) query

        return {"values": values.tobytes(), "bias": q.bias,
                "tableKind": "e8" if isinstance(sk, E8Codes) else "bits",
                "nbits": self.config.n_bits, "codeBytes": self.config.code_bytes,
                "sketchMs": (time.perf_counter() - t0) * 1000.0}

    def score_scales(self):
        """What the JS scan needs for the row scales of a normalized learned-E8 head, or None.

        ``{stages, scales, offset}``: the config's stage count per kept block
        (bytes), its stage scale per code byte and its offset (float32 LE
        bytes), the inputs of :func:`~clark_hash_web.codecs.normalized_scores.row_scales_python`.
        The worker asks once per store (static/normalized-scores.js ``rowScaler``);
        None when the codec has no row scales (plain table sums).
        """
        cfg = self.config
        if not getattr(cfg, "normalized", False):
            return None
        return {"stages": bytes(cfg.stages), "scales": bytes(cfg.scales), "offset": bytes(cfg.offset)}

    # -- two-stage rescoring (int8 rows, rescored in JS) -------------------------------
    def rescore_query(self, query) -> bytes:
        """The rescoring query (normalized for cosine) as float32 LE bytes."""
        if self._int8 is None:
            raise InvalidInputError("this store keeps no vectors for rescoring: open it with "
                                    "vectors: 'int8' when creating it")
        return self._int8.query_bytes(as_bytes(query))

    def decoded_norms(self) -> bytes:
        """The 65,536 decoded norms of this config's range as float64 LE bytes (dot mode)."""
        from ..codecs.norm_channel import decode_table

        table = decode_table(self.config.norm_log2_min, self.config.norm_log2_max)
        return struct.pack(f"<{len(table)}d", *table)

    def codes(self) -> dict:
        """Stored ids, codes and norm codes (bytes), in insertion order."""
        enc = self.index.encoded()
        return {"ids": self.index.ids, "codes": enc.codes_bytes(),
                "normCodes": enc.norm_codes_bytes() if self.flat else None}

    def export(self) -> bytes:
        """The whole store as sketch file bytes (clark_hash_web.formats.sketch_file)."""
        from ..formats import sketch_file

        enc = self.index.encoded()
        return sketch_file.to_bytes(self.config, enc.codes_bytes(),
                                    enc.norm_codes_bytes() if self.flat else None,
                                    self.index.ids or None)

    def stats_of_blocks(self, sizes, without: int, vector_bytes: int) -> dict:
        """Counts and the payload bytes of every IndexedDB record of this store, from the
        block records' sizes (the worker's rows, static/worker.js ``rowStats``).

        ``sketchRecordBytes`` counts codes, norm codes, ids and the meta
        record; ``vectorRecordBytes`` the int8 rescoring rows (0 without).

        Parameters
        ----------
        sizes : list of (rows, norm code bytes, ids record bytes)
            One per block record (ids record bytes as :func:`_ids_record_bytes`).
        without : int
            Rows whose int8 rescoring row has scale 0 (``notesWithoutVectors``).
        vector_bytes : int
            Bytes of int8 rescoring rows in all records.
        """
        cb = self.config.code_bytes
        payload = len(self.config.to_bytes()) + 64  # meta record: config bytes + small fields
        n = 0
        for rows, norm_bytes, id_bytes in sizes:
            rows = int(rows)
            n += rows
            payload += rows * cb + int(norm_bytes) + 8 + int(id_bytes)
        vec_payload = int(vector_bytes)
        vb = self._int8.row_bytes if self._int8 is not None else 0
        return {"notesWithoutVectors": int(without), "count": n, "backend": self.codec.backend,
                "codec": registry.describe(self.config),
                "codeBytes": cb,
                "storageBytesPerVector": self.config.storage_bytes_per_vector,
                "vectorBytesPerNote": vb, "vectors": self.vectors,
                "bytesPerNote": self.config.storage_bytes_per_vector + vb,
                "denseBytesPerVector": 4 * self.config.input_dim, "blocks": len(sizes),
                "sketchRecordBytes": payload, "vectorRecordBytes": vec_payload,
                "recordBytes": payload + vec_payload,
                "recordBytesPerSketch": (payload / n) if n else None,
                "recordBytesPerNote": ((payload + vec_payload) / n) if n else None}


def open_store(config_bytes, backend, records=None, next_auto=0, vectors=None) -> tuple:
    """A :class:`BrowserStore` and the milliseconds spent loading ``records`` into its
    read cache (None: nothing loaded, as the worker opens stores)."""
    store = BrowserStore(config_bytes, backend, vectors)
    store.next_auto = int(next_auto or 0)
    return store, store.load(records, next_auto) if records is not None else 0.0


def encode_raw(config_fields, backend: str, vectors, n: int, spec=None, config_bytes=None) -> dict:
    """Stateless encode (used by parity tests): codes and norm codes as bytes.

    The codec is named by Clark Hash ``config_fields``, a ``spec`` string or
    ``config_bytes`` (exactly one).
    """
    cfg = config_of(spec, config_fields, config_bytes)
    codec = registry.codec_from_config(cfg, None if backend in (None, "auto") else backend)
    enc = codec.encode(as_bytes(vectors))
    if len(enc) != n:
        raise InvalidInputError(f"expected {n} rows, encoded {len(enc)}")
    return {"codes": enc.codes_bytes(), "normCodes": enc.norm_codes_bytes(), "backend": codec.backend}
