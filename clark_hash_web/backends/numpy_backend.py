"""Vectorized numpy Clark Hash arithmetic, bit-identical to ``python_backend``.

Batches are processed in chunks, transposed to (feature, row) so that every
step is a contiguous elementwise float32 operation over many rows:

* columns: :mod:`..codecs.columns` (cheap copies);
* norms: squares added feature by feature (a sequential sum per row);
* projection: step ``p`` adds the p-th contribution of every bucket that has
  one (``CodecTables.step_sources``) to all rows at once, so each bucket still
  receives its contributions in (i, r) order;
* quantization and packing: elementwise, exact.
"""

from __future__ import annotations

import numpy as np

from ..codecs.columns import group_columns, group_width, rows_to_groups
from ..codecs.norm_channel import decode_norms_numpy, norm_codes_numpy
from .tables import CodecTables

CHUNK_ROWS = 512  # keeps a chunk's working set near the L2 cache
SMALL_ROWS = 256   # score(): up to this many rows are summed with one np.add.accumulate


def _columns(rows, work):
    """(n, d) float32 rows -> (d, n) contiguous columns, in ``work``'s buffers.

    The last transpose step is a copy of its own: the squares and the scaled
    copies reading the strided view directly were slower (measured).
    """
    rows = np.asarray(rows, dtype=np.float32)
    n, d = rows.shape
    w = group_width(d, 16)
    if w == 1 or not n:
        return np.ascontiguousarray(rows.T)
    groups = work.get("groups", (d // w, n * w))
    rows_to_groups(rows, work.get("rows", (n, d)), groups)
    out = work.get("xt", (d, n))
    np.copyto(out.reshape(d // w, w, n), group_columns(groups, n))
    return out


def _sequential_row_sum(rows, out):
    """``(((0 + rows[0]) + rows[1]) + ...)`` per column of (d, n) float32 ``rows`` (>= +0).

    With two or more columns, ``np.add.reduce`` over axis 0 runs its inner loop
    along the columns (the axis with the smaller stride) and adds the rows one
    after the other: ``(rows[0] + rows[1]) + ...``, the same bits as starting
    from 0 since ``0 + r = r`` for ``r >= +0``. A single column would make the
    reduced axis the inner one, which numpy sums pairwise: its running sums
    come from ``np.add.accumulate`` (``r[k] = r[k - 1] + rows[k]`` by
    definition), in one call instead of one per row (a query sketch).
    (tests/test_codec.py pins both against a plain loop.)
    """
    d, n = rows.shape
    if n >= 2 and d:
        return np.add.reduce(rows, axis=0, out=out)
    out[...] = np.add.accumulate(rows[:, 0])[-1] if n and d else 0
    return out


class _Buffers:
    """Flat float32 buffers for chunks of up to ``width`` columns, viewed per shape.

    Views are made once per (name, shape) and kept: making a view costs about
    as much as a small elementwise step.
    """

    def __init__(self, backend, width: int):
        d, m = backend.config.input_dim, len(backend.t.order)
        widest = max((len(s) for s in backend._sources), default=0)
        rows = {"sq": d, "nsq": 1, "stacked": 2 * d, "acc": m, "part": widest,
                "rows": d, "groups": d, "xt": d}
        self.bufs = {k: np.empty(r * max(1, width), dtype=np.float32) for k, r in rows.items()}
        self.views = {}
        self.sources, self.m = backend._sources, m

    def get(self, name, shape):
        """A contiguous array of ``shape`` in buffer ``name`` (contents undefined)."""
        key = (name, shape)
        view = self.views.get(key)
        if view is None:
            size = 1
            for v in shape:
                size *= v
            view = self.views[key] = self.bufs[name][:size].reshape(shape)
        return view

    def steps(self, n: int):
        """``(sources, part, acc rows)`` of every projection step, for ``n`` columns."""
        key = ("steps", n)
        steps = self.views.get(key)
        if steps is None:
            acc = self.get("acc", (self.m, n))
            steps = self.views[key] = [(src, self.get("part", (len(src), n)), acc[:len(src)])
                                       for src in self.sources]
        return steps


class NumpyBackend:
    """Encode, sketch and score with vectorized float32 numpy operations."""

    name = "numpy"

    def __init__(self, config):
        self.config = config
        t = self.t = CodecTables(config)
        self._sources = [np.asarray(s, dtype=np.intp) for s in t.step_sources]
        self._bucket_rows = np.argsort(np.asarray(t.order, dtype=np.intp))
        self._deq = np.asarray(t.deq, dtype=np.float32)
        # x * -scale is -(x * scale) bit for bit (rounding is symmetric)
        self._signed_scale = np.array([t.scale, -t.scale], dtype=np.float32)[:, None, None]

    # -- projection ------------------------------------------------------------
    def project_t(self, xt, work=None, bucket_order: bool = True):
        """Sketches (m, n) and norms (n,) of rows given as columns.

        ``xt``: (d, n) float32 columns.
        ``bucket_order``: rows of the sketch in bucket order; else in the
        accumulator's order (row ``_bucket_rows[k]`` is bucket ``k``), in
        ``work``'s buffer, for :meth:`pack_t` to reorder as uint8 levels.
        ``work``: a :class:`_Buffers` for at least n columns, reused across
        chunks (fresh multi-MB temporaries per chunk cost page faults).
        """
        t = self.t
        d, n = xt.shape
        w = work if work is not None else _Buffers(self, n)
        with np.errstate(all="ignore"):
            sq = w.get("sq", (d, n))
            np.multiply(xt, xt, out=sq)
            norms = np.sqrt(_sequential_row_sum(sq, w.get("nsq", (n,))))
            stacked = w.get("stacked", (2 * d, n))     # [x * scale; x * -scale] in one pass
            np.multiply(xt[None], self._signed_scale, out=stacked.reshape(2, d, n))
            acc = w.get("acc", (len(t.order), n))
            steps = w.steps(n)
            acc[len(steps[0][0]) if steps else 0:] = 0       # buckets that get nothing
            take = stacked.take               # the method: np.take's wrapper costs a call
            for p, (src, part, rows) in enumerate(steps):    # p-th contribution of each bucket
                take(src, axis=0, out=part, mode="clip")     # indices in range
                if p:
                    np.add(rows, part, out=rows)
                else:                            # out = +0.0, then out += term: +0 + term
                    np.add(part, np.float32(0), out=rows)
            sketch = np.take(acc, self._bucket_rows, axis=0) if bucket_order else acc
            ok = ~(norms <= np.float32(2.0**-23))
            post = np.where(ok, np.float32(t.sqrt_m) / np.where(ok, norms, np.float32(1)),
                            np.float32(1))
            sketch *= post
        return sketch, norms

    # -- quantization / packing -----------------------------------------------
    def quantize_t(self, sketch, norms, inplace: bool = False):
        """Levels (m, n) uint8 of sketches (m, n) with norms (n,) (``inplace``: ``sketch`` is overwritten).

        ``v = ((clamp(z) + c) / 2c) * L`` in float32, then round half away from
        zero as ``trunc(v) + (v - trunc(v) >= 0.5)`` on uint8 levels (``v`` is in
        ``[0, L]``, so the integer part is exact and the fraction is an exact
        float32 subtraction). NaN coordinates occur only in columns whose norm is
        not finite (reference mode: NaN/inf input, or a squared norm that
        overflowed); they get level 0, like the crate's saturating cast.
        """
        t = self.t
        c = np.float32(t.clip)
        v = sketch if inplace else sketch.copy()
        with np.errstate(all="ignore"):
            np.clip(v, -c, c, out=v)
            np.add(v, c, out=v)
            np.divide(v, np.float32(t.two_c), out=v)
            np.multiply(v, np.float32(t.L), out=v)           # v = ((zc + c) / 2c) * L
            levels = v.astype(np.uint8)                       # trunc(v)
            np.subtract(v, levels, out=v)                     # the fraction, exact
            levels += v >= np.float32(0.5)
            odd = np.flatnonzero(~np.isfinite(norms))
            if len(odd):
                part = levels[:, odd]
                part[np.isnan(v[:, odd])] = 0
                levels[:, odd] = part
        return levels

    def pack_t(self, levels, rows=None):
        """Codes (code_bytes, n) from levels (m, n): LSB-first bit stream.

        ``rows``: if given, coordinate ``k`` is ``levels[rows[k]]``.
        """
        cfg = self.config
        b, m, n = cfg.bits, cfg.sketch_dim, levels.shape[1]
        rows = np.arange(m) if rows is None else rows
        out = np.zeros((cfg.code_bytes, n), dtype=np.uint8)
        if 8 % b == 0:
            per = 8 // b
            for j in range(per):
                part = levels.take(rows[j::per], axis=0)
                if j:
                    np.left_shift(part, j * b, out=part)
                np.bitwise_or(out[:len(part)], part, out=out[:len(part)])
            return out
        wide = levels.astype(np.uint16)[rows]
        for k in range(m):
            pos = k * b
            byte, shift = pos >> 3, pos & 7
            out[byte] |= (wide[k] << shift).astype(np.uint8)
            if shift + b > 8:
                out[byte + 1] |= (wide[k] >> (8 - shift)).astype(np.uint8)
        return out

    def unpack_t(self, codes_t):
        """Levels (m, n) uint8 from codes (code_bytes, n)."""
        cfg = self.config
        b, m, mask = cfg.bits, cfg.sketch_dim, self.t.L
        n = codes_t.shape[1]
        levels = np.empty((m, n), dtype=np.uint8)
        if 8 % b == 0:
            per = 8 // b
            for j in range(per):
                rows = levels[j::per]
                rows[...] = (codes_t[:len(rows)] >> (j * b)) & mask
            return levels
        wide = codes_t.astype(np.uint16)
        for k in range(m):
            pos = k * b
            byte, shift = pos >> 3, pos & 7
            v = wide[byte] >> shift
            if shift + b > 8:
                v = v | (wide[byte + 1] << (8 - shift))
            levels[k] = v & mask
        return levels

    # -- batches ------------------------------------------------------------------
    def encode(self, x):
        """Codes (n, code_bytes) uint8, norm codes (n,) uint16 or None, norms (n,).

        ``x`` is a float32 (n, d) array; rows whose norm is not positive get
        a meaningless code here, the caller rejects them using ``norms``.
        """
        cfg = self.config
        n = x.shape[0]
        codes = np.empty((n, cfg.code_bytes), dtype=np.uint8)
        norms = np.empty(n, dtype=np.float32)
        work = _Buffers(self, min(n, CHUNK_ROWS))
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            xt = _columns(x[start:stop], work)
            sketch, nrm = self.project_t(xt, work, bucket_order=False)
            levels = self.quantize_t(sketch, nrm, inplace=True)
            codes[start:stop] = self.pack_t(levels, self._bucket_rows).T
            norms[start:stop] = nrm
        ncodes = None
        if cfg.metric == "dot":
            ncodes = norm_codes_numpy(norms, cfg.norm_log2_min, cfg.norm_log2_max)
        return codes, ncodes, norms

    def sketch_query(self, x):
        """Float32 query sketch (m,) and norm of one float32 vector (d,)."""
        sketch, norms = self.project_t(np.asarray(x, dtype=np.float32).reshape(-1, 1))
        return sketch[:, 0].copy(), float(norms[0])

    def decode_sketch(self, codes):
        """Dequantized float32 coordinates (n, m) of codes (n, code_bytes)."""
        return self._deq[self.unpack_t(np.ascontiguousarray(codes.T))].T.copy()

    def product_table(self, query_values):
        """(m, L+1) float32 table of ``q[k] * deq(level)``."""
        q = np.asarray(query_values, dtype=np.float32)
        return q[:, None] * self._deq[None, :]

    @staticmethod
    def _sequential_sum(terms):
        """``0 + terms[0] + terms[1] + ...`` in float32, in order, per column of (m, n) ``terms``.

        A few columns (the browser ranks about ten candidates) use one
        ``np.add.accumulate`` over ``[0; terms]``: it computes the same
        running float32 sums ``r[k] = r[k - 1] + terms[k - 1]`` starting
        from +0.0, in one call instead of m (each numpy call costs a few
        microseconds under Pyodide). Wider chunks add row by row in place.
        """
        n = terms.shape[1]
        if n <= SMALL_ROWS:
            start = np.zeros((1, n), dtype=np.float32)
            return np.add.accumulate(np.concatenate([start, terms]), axis=0, dtype=np.float32)[-1]
        acc = np.zeros(n, dtype=np.float32)
        for row in terms:  # sequential in k, like the crate
            np.add(acc, row, out=acc)
        return acc

    def score(self, query_values, query_norm, codes, norm_codes=None):
        """Exact float32 scores (n,) of codes (n, code_bytes), crate order."""
        cfg, t = self.config, self.t
        table = self.product_table(query_values)
        ks = np.arange(cfg.sketch_dim)[:, None]
        n = codes.shape[0]
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            levels = self.unpack_t(np.ascontiguousarray(codes[start:stop].T))
            terms = table[ks, levels]
            out[start:stop] = self._sequential_sum(terms) / np.float32(t.m_f32)
        if cfg.metric == "dot":
            dn = decode_norms_numpy(norm_codes, cfg.norm_log2_min, cfg.norm_log2_max)
            out = (out * np.float32(query_norm)) * dn
        return out
