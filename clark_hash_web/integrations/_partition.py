"""Engine-independent pieces of partitioned encoding.

Spark tasks and Dask blocks each encode a contiguous slice of a large batch.
This module holds what they share:

* :func:`codec_factory`: a small picklable recipe that rebuilds the codec in a
  worker process (for ``ClarkHash``: the 32 canonical config bytes), cached
  per process so a worker builds its hash tables once.
* :func:`encode_slice`: encode one slice, reporting bad rows with their
  GLOBAL row numbers (``first_row`` + local row).
* :class:`PartitionRowsError`: an :class:`~clark_hash_web.errors.InvalidVectorError`
  that survives pickling (workers raise it, the driver re-raises it intact).
* :func:`atomic_output_dir`: build a folder of part files under a temporary
  name and rename it into place only when every part succeeded.

Part files
----------
A partitioned write produces a folder ``OUT/`` holding
``part-PPPPP.chs`` files (``PPPPP`` = partition / block number, 5+ digits)
in the sketch file format v1 (``clark_hash_web.formats.sketch_file``), each with int64
ids (the global row numbers, or the caller's integer ids) or string ids, plus
``_MANIFEST.json``: ``{"format": "clark-hash-parts/1", "fingerprint": ...,
"count": N, "parts": [{"file", "first_row", "count"}, ...]}`` in row order.
Concatenating the parts in manifest order gives exactly the codes of a
single-process ``encode`` of all rows.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager

from ..errors import InvalidInputError, InvalidVectorError

MANIFEST = "_MANIFEST.json"
MANIFEST_FORMAT = "clark-hash-parts/1"
REASON_DIM = "has dimension {got}, the config expects input_dim={want}"
REASON_NULL = "is null (no vector)"


class PartitionRowsError(InvalidVectorError):
    """InvalidVectorError raised in a worker; pickles with its ``rows`` intact."""

    def __init__(self, rows: dict, what: str = "vector"):
        super().__init__(rows, what)
        self._what = what

    def __reduce__(self):
        return (type(self), (self.rows, self._what))


# -- shipping the codec to workers -------------------------------------------------
_CODEC_CACHE: dict = {}


class _ConfigRecipe:
    """Rebuilds ``codec_cls(config_cls.from_bytes(config_bytes), backend=...)``.

    Pickles as two class references and the canonical config bytes, so a
    worker receives a few dozen bytes and builds its tables (hash tables,
    planes) once per process.
    """

    def __init__(self, codec_cls, config_cls, config_bytes: bytes, backend):
        self.codec_cls, self.config_cls = codec_cls, config_cls
        self.config_bytes = bytes(config_bytes)
        self.backend = backend

    def __call__(self):
        key = (self.codec_cls.__module__, self.codec_cls.__qualname__, self.config_bytes, self.backend)
        codec = _CODEC_CACHE.get(key)
        if codec is None:
            codec = self.codec_cls(self.config_cls.from_bytes(self.config_bytes), backend=self.backend)
            _CODEC_CACHE[key] = codec
        return codec

    def token(self) -> tuple:
        """What makes the codes: codec class, config class and bytes, backend."""
        return ("config", self.codec_cls.__module__, self.codec_cls.__qualname__,
                self.config_cls.__module__, self.config_cls.__qualname__, self.config_bytes,
                str(self.backend))

    __dask_tokenize__ = token


class _PickledCodec:
    """Any other codec object: shipped as-is (it must pickle)."""

    def __init__(self, codec):
        self.codec = codec

    def __call__(self):
        return self.codec

    def token(self) -> tuple:
        """A digest of the pickled codec; a fresh random one if it does not pickle.

        Equal digests mean equal codec state, so equal codes; a random token
        only costs a recomputation, never wrong codes.
        """
        import hashlib
        import pickle

        kind = (type(self.codec).__module__, type(self.codec).__qualname__)
        try:
            digest = hashlib.sha256(pickle.dumps(self.codec, protocol=4)).hexdigest()
        except Exception:  # noqa: BLE001 - e.g. a lambda inside: never share a token
            digest = "unpicklable-" + uuid.uuid4().hex
        return ("pickled",) + kind + (digest,)

    __dask_tokenize__ = token


def codec_factory(codec):
    """A picklable zero-argument callable returning an equivalent codec.

    Parameters
    ----------
    codec : ClarkHash, a binary codec, or another codec with the same verbs
        Needs ``config`` (with ``to_bytes()``, ``fingerprint``, ``code_bytes``,
        ``input_dim``) and ``encode(vectors, errors="skip")`` returning a batch
        with ``codes_bytes()``, ``norm_codes_bytes()``, ``rows`` and ``skipped``.
        Codecs of the package (config class with ``from_bytes``, constructor
        ``(config, backend=...)``) travel as their config bytes; any other
        object is pickled as it is.

    Returns
    -------
    callable
        Also has ``token()`` (and ``__dask_tokenize__``): a tuple that is
        equal for two factories only when they build codecs giving the same
        codes (same class, config bytes and backend; or the same pickled
        state). Engines use it to name tasks.
    """
    for attr in ("config", "encode"):
        if not hasattr(codec, attr):
            raise InvalidInputError(f"codec must have a {attr!r} attribute, got {type(codec).__name__}")
    cls, cfg = type(codec), codec.config
    if (cls.__module__.startswith("clark_hash_web.") and hasattr(cfg, "to_bytes")
            and hasattr(type(cfg), "from_bytes") and hasattr(codec, "backend")):
        return _ConfigRecipe(cls, type(cfg), cfg.to_bytes(), codec.backend)
    return _PickledCodec(codec)


# -- encoding one slice ------------------------------------------------------------
def encode_slice(codec, rows, first_row: int, pre_bad=None):
    """Encode the float32 rows of one slice; never raises for bad rows.

    Parameters
    ----------
    codec : codec object
    rows : numpy.ndarray (n, d) float32
        Rows listed in ``pre_bad`` may hold anything (they are replaced by a
        harmless row before encoding and reported).
    first_row : int
        Global row number of ``rows[0]``.
    pre_bad : dict[int, str], optional
        Local rows already known to be bad (null, wrong dimension).

    Returns
    -------
    codes : bytes
        Codes of the good rows, in row order.
    norm_codes : bytes or None
        Little-endian u16 norm codes of the good rows (dot metric), else None.
    good : list[int]
        Local row numbers of the good rows.
    bad : dict[int, str]
        GLOBAL row number -> reason, for every rejected row.
    """
    import numpy as np

    pre_bad = dict(pre_bad or {})
    n = rows.shape[0]
    if pre_bad:
        rows = rows.copy()
        rows[list(pre_bad)] = 1.0  # placeholder, dropped below
    enc = codec.encode(rows, errors="skip")
    bad = {first_row + i: why for i, why in enc.skipped.items()}
    bad.update({first_row + i: why for i, why in pre_bad.items()})
    if not pre_bad:
        good = list(enc.rows)
        return enc.codes_bytes(), enc.norm_codes_bytes(), good, dict(sorted(bad.items()))
    # drop the placeholder rows from the encoded batch
    enc_rows = list(enc.rows)
    pos = [j for j, r in enumerate(enc_rows) if r not in pre_bad]
    cb = codec.config.code_bytes
    codes = np.frombuffer(enc.codes_bytes(), dtype=np.uint8).reshape(-1, cb)[pos].tobytes()
    nb = enc.norm_codes_bytes()
    if nb is not None:
        nb = np.frombuffer(nb, dtype="<u2")[pos].tobytes()
    good = [enc_rows[j] for j in pos]
    return codes, nb, good, dict(sorted(bad.items()))


def rows_from_lists(values, offsets, dim: int):
    """(n, dim) float32 rows from Arrow-style flat values and list offsets.

    ``offsets`` has n+1 entries (row i = values[offsets[i]:offsets[i+1]]);
    ``None`` entries in ``valid`` are handled by the caller. Rows of the wrong
    length are zero-filled and returned in ``bad`` (local row -> reason).
    """
    import numpy as np

    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    n = lengths.shape[0]
    values = np.asarray(values)
    with np.errstate(all="ignore"):
        values = values.astype(np.float32, copy=False)
    if n and (lengths == dim).all() and offsets[-1] - offsets[0] == n * dim:
        return values[offsets[0]:offsets[-1]].reshape(n, dim), {}
    out = np.zeros((n, dim), dtype=np.float32)
    bad = {}
    for i in range(n):
        if lengths[i] == dim:
            out[i] = values[offsets[i]:offsets[i + 1]]
        else:
            bad[i] = "vector " + REASON_DIM.format(got=int(lengths[i]), want=dim)
    return out, bad


# -- atomic folders ----------------------------------------------------------------
@contextmanager
def atomic_output_dir(path, overwrite: bool = False):
    """Yield a temporary sibling folder; rename it to ``path`` on success.

    On any exception the temporary folder is deleted and ``path`` is left as
    it was (absent, or the previous output when ``overwrite`` is set). With
    ``overwrite`` an existing ``path`` is replaced only after the new output
    is complete.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"output folder {path} already exists (pass overwrite=True)")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.exists(path):
            old = os.path.join(parent, f".{os.path.basename(path)}.old-{uuid.uuid4().hex[:12]}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove_tree(tmp)
        raise


def _remove_tree(folder, attempts: int = 20):
    """rmtree that retries while a straggling writer may still add files."""
    import time

    for _ in range(attempts):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.exists(folder):
            return
        time.sleep(0.05)


def part_name(part: int) -> str:
    return f"part-{part:05d}.chs"


def write_manifest(folder, fingerprint: str, parts: list):
    """Write ``_MANIFEST.json`` (parts: dicts with file, first_row, count)."""
    parts = sorted(parts, key=lambda p: p["first_row"])
    doc = {"format": MANIFEST_FORMAT, "fingerprint": fingerprint,
           "count": sum(p["count"] for p in parts), "parts": parts}
    with open(os.path.join(folder, MANIFEST), "w") as f:
        json.dump(doc, f, indent=1)
    return doc


def read_manifest(folder) -> dict:
    """The manifest of a part folder (see the module docstring)."""
    with open(os.path.join(folder, MANIFEST)) as f:
        doc = json.load(f)
    if doc.get("format") != MANIFEST_FORMAT:
        raise InvalidInputError(f"{folder}/{MANIFEST} is not a {MANIFEST_FORMAT} manifest")
    return doc


# -- part files --------------------------------------------------------------------
def sketch_file_bytes(config, codes: bytes, norm_codes, ids) -> bytes:
    """One sketch file (format v1, :mod:`clark_hash_web.formats.sketch_file`)."""
    from ..formats import sketch_file

    return sketch_file.to_bytes(config, codes, norm_codes, list(ids))


def write_part(folder, part: int, config, codes, norm_codes, ids, first_row: int) -> dict:
    """Write ``part-PPPPP.chs`` into ``folder`` (temp name, then rename).

    Returns the manifest entry ``{"file", "first_row", "count"}``.
    """
    name = part_name(part)
    data = sketch_file_bytes(config, codes, norm_codes, ids)
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(folder, name))
    return {"file": name, "first_row": int(first_row), "count": len(ids)}


def load_parts(folder):
    """Read a part folder back as one :class:`~clark_hash_web.formats.sketch_file.SketchData`.

    Parts are concatenated in manifest (row) order; every part must carry the
    manifest's config fingerprint and its announced row count.
    """
    from ..errors import ConfigMismatchError, SketchFileError
    from ..formats.sketch_file import SketchData, load

    doc = read_manifest(folder)
    config, codes, norms, ids = None, [], [], []
    for p in doc["parts"]:
        data = load(os.path.join(folder, p["file"]))
        if data.fingerprint != doc["fingerprint"]:
            raise ConfigMismatchError(
                f"{p['file']} holds config {data.fingerprint}, the manifest says {doc['fingerprint']}")
        if data.count != p["count"]:
            raise SketchFileError(f"{p['file']} holds {data.count} rows, the manifest says {p['count']}")
        config = data.config
        codes.append(data.codes)
        if data.norm_codes is not None:
            norms.append(data.norm_codes)
        ids.extend(data.ids if data.ids is not None else
                   range(p["first_row"], p["first_row"] + data.count))
    if config is None:
        raise SketchFileError(f"{folder} holds no part files")
    return SketchData(config=config, count=len(ids), codes=b"".join(codes),
                      norm_codes=b"".join(norms) if norms else None, ids=list(ids))
