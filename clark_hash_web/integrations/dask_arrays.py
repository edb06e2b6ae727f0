"""Bulk encoding with Dask arrays (``map_blocks``).

>>> import dask.array as da
>>> from clark_hash_web import ClarkHash, ClarkHashConfig
>>> from clark_hash_web.integrations.dask_arrays import encode_array, write_sketch_files
>>> codec = ClarkHash(ClarkHashConfig(input_dim=384))
>>> x = da.from_array(vectors, chunks=(100_000, 384))      # or da.from_zarr(...), ...
>>> codes, norm_codes = encode_array(x, codec)              # lazy; uint8 (N, code_bytes)
>>> codes.compute()                                         # == codec.encode(vectors).codes
>>> write_sketch_files(x, codec, "corpus.chs.d")             # one sketch file per block

Works with the default threaded scheduler and with ``distributed`` clusters
(``distributed.LocalCluster`` in the tests); the codec travels to the workers
as its 32 config bytes. Row blocks may have any sizes: the bytes are those of
one ``codec.encode`` over all rows. The column dimension is rechunked to a
single chunk.

Task names
----------
Every graph layer is named from a token of the input array (its dask name),
the codec (class and config bytes, see
:func:`~clark_hash_web.integrations._partition.codec_factory`) and the kernel,
so two encodes of other rows or under other configs never share task keys,
in one graph or across calls on a ``distributed`` scheduler that keeps
persisted results; the same input and config give the same keys.

Unknown chunk sizes
-------------------
Arrays whose row chunks are unknown (``nan``, e.g. ``x[mask]`` with a dask
mask) are refused with :class:`~clark_hash_web.errors.InvalidInputError`:
global row numbers need the sizes. Call ``x.compute_chunk_sizes()`` first.

Errors
------
A bad row (NaN/inf, zero vector, norm overflow) makes the computation raise
:class:`~clark_hash_web.integrations._partition.PartitionRowsError` (an
``InvalidVectorError``) whose ``rows`` are GLOBAL row numbers.
:func:`write_sketch_files` first encodes every block, collects every bad row
of every block, and raises before anything appears at the output path.
"""

from __future__ import annotations

from collections import namedtuple

from ..errors import InvalidInputError
from ._partition import (PartitionRowsError, atomic_output_dir, codec_factory, encode_slice,
                         write_manifest, write_part)

EncodedArrays = namedtuple("EncodedArrays", ["codes", "norm_codes"])
EncodedArrays.__doc__ = """Lazy results of :func:`encode_array`.

codes : dask.array uint8 (N, code_bytes)
norm_codes : dask.array uint16 (N,) in dot mode, else None
"""


def _dask():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "clark_hash_web.integrations.dask_arrays needs dask: "
            "pip install 'clark-hash-web[scale-out]'") from exc
    return da


def _as_rows(x, input_dim):
    da = _dask()
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.ndim != 2:
        raise InvalidInputError(f"vectors must be a 2-D dask array, got shape {x.shape}")
    if any(c != c for axis in x.chunks for c in axis):  # nan: unknown size
        raise InvalidInputError(
            f"vectors have unknown chunk sizes (shape {x.shape}, e.g. after x[mask] with a dask "
            "mask); global row numbers need them: call x.compute_chunk_sizes() first (it "
            "computes the blocks of x once)")
    if x.shape[1] != input_dim:
        from ..errors import DimensionError

        raise DimensionError(
            f"vectors have dimension {x.shape[1]}, the config expects input_dim={input_dim}")
    if x.dtype.kind not in "fiub":
        raise InvalidInputError(f"vectors must be real numbers, got dtype {x.dtype}")
    if len(x.chunks[1]) != 1:
        x = x.rechunk({1: -1})
    return x


def _encode_block(block, make_codec, block_info=None):
    """map_blocks kernel: rows -> codes (+ 2 little-endian norm-code bytes)."""
    import numpy as np

    codec = make_codec()
    first = block_info[0]["array-location"][0][0] if block_info else 0
    rows = np.ascontiguousarray(block, dtype=np.float32)
    codes, ncodes, _good, bad = encode_slice(codec, rows, first)
    if bad:
        raise PartitionRowsError(bad)
    cb = codec.config.code_bytes
    out = np.frombuffer(codes, dtype=np.uint8).reshape(-1, cb)
    if ncodes is not None:
        out = np.concatenate([out, np.frombuffer(ncodes, dtype=np.uint8).reshape(-1, 2)], axis=1)
    return out


def encode_array(x, codec) -> EncodedArrays:
    """Lazily encode a (N, d) dask array; codes equal ``codec.encode`` bytes.

    Parameters
    ----------
    x : dask.array.Array or array-like, (N, input_dim)
    codec : ClarkHash (or a codec with the same verbs)

    Returns
    -------
    EncodedArrays
        ``codes`` uint8 (N, code_bytes) and, in dot mode, ``norm_codes``
        uint16 (N,); both come from one ``map_blocks`` graph, so
        ``dask.compute(codes, norm_codes)`` encodes each block once.
    """
    import numpy as np
    from dask.base import tokenize

    cfg = codec.config
    x = _as_rows(x, cfg.input_dim)
    dot = getattr(cfg, "metric", "cosine") == "dot"
    width = cfg.code_bytes + (2 if dot else 0)
    make = codec_factory(codec)
    token = tokenize(x, make.token(), _encode_block, width)
    both = x.map_blocks(_encode_block, make, dtype=np.uint8,
                        chunks=(x.chunks[0], (width,)), name=f"clark-hash-encode-{token}",
                        meta=np.empty((0, width), dtype=np.uint8))
    codes = both[:, :cfg.code_bytes]
    if not dot:
        return EncodedArrays(codes, None)
    nc = both[:, cfg.code_bytes:].map_blocks(
        _norm_codes_block, dtype=np.uint16, drop_axis=1, name=f"clark-hash-norm-codes-{token}",
        meta=np.empty((0,), dtype=np.uint16))
    return EncodedArrays(codes, nc)


def _norm_codes_block(block):
    """(n, 2) little-endian bytes -> (n,) uint16 norm codes."""
    import numpy as np

    return np.ascontiguousarray(block).view("<u2").reshape(-1).astype(np.uint16)


def _encode_part(block, make_codec, first_row, ids, folder, part):
    """Encode one block and write its part file; report bad rows or the error.

    Never raises, so that ``dask.compute`` returns only when every block has
    finished (no task may still be writing when the temp folder is removed).
    """
    try:
        return _encode_part_unsafe(block, make_codec, first_row, ids, folder, part)
    except Exception as exc:  # noqa: BLE001 - re-raised by the driver
        return {"error": exc}


def _encode_part_unsafe(block, make_codec, first_row, ids, folder, part):
    import numpy as np

    codec = make_codec()
    rows = np.ascontiguousarray(block, dtype=np.float32)
    codes, ncodes, good, bad = encode_slice(codec, rows, first_row)
    if bad:
        return {"bad": bad}
    ids = list(range(first_row, first_row + len(good))) if ids is None else list(ids)
    return {"part": write_part(folder, part, codec.config, codes, ncodes, ids, first_row)}


def write_sketch_files(x, codec, path, ids=None, overwrite: bool = False) -> dict:
    """Encode a (N, d) dask array into a folder of per-block sketch files.

    Parameters
    ----------
    x : dask.array.Array (N, input_dim)
    codec : ClarkHash (or a codec with the same verbs)
    path : str or os.PathLike
        Output folder (``part-PPPPP.chs`` + ``_MANIFEST.json``; see
        :mod:`clark_hash_web.integrations._partition`).
    ids : sequence of int or str, optional
        One id per row (default: the global row numbers).
    overwrite : bool
        Replace an existing folder (only once the new one is complete).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    PartitionRowsError
        Listing every bad row of every block by global row number; nothing
        is written at ``path``.
    """
    import dask

    cfg = codec.config
    x = _as_rows(x, cfg.input_dim)
    n = x.shape[0]
    if ids is not None:
        ids = list(ids.tolist() if hasattr(ids, "tolist") else ids)
        if len(ids) != n:
            raise InvalidInputError(f"{len(ids)} ids for {n} rows")
        if len(set(ids)) != n:
            from ..errors import DuplicateIdError

            raise DuplicateIdError("ids repeat within the batch")
    make = codec_factory(codec)
    with atomic_output_dir(path, overwrite=overwrite) as tmp:
        tasks, start = [], 0
        for part, block in enumerate(x.to_delayed().ravel()):
            size = x.chunks[0][part]
            part_ids = None if ids is None else ids[start:start + size]
            tasks.append(dask.delayed(_encode_part)(block, make, start, part_ids, tmp, part))
            start += size
        results = dask.compute(*tasks)
        for r in results:
            if "error" in r:
                raise r["error"]
        bad = {}
        for r in results:
            bad.update(r.get("bad", {}))
        if bad:
            raise PartitionRowsError(bad)
        return write_manifest(tmp, cfg.fingerprint, [r["part"] for r in results])
