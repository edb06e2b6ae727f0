"""Vectorized numpy Clark Hash arithmetic, bit-identical to ``python_backend``.

Batches are processed in chunks, transposed to (feature, row) so that every
step is a contiguous elementwise float32 operation over many rows:

* norms: squares added feature by feature (a sequential sum per row);
* projection: step ``p`` adds the p-th contribution of every bucket that has
  one (``CodecTables.step_sources``) to all rows at once, so each bucket still
  receives its contributions in (i, r) order;
* quantization and packing: elementwise, exact.
"""

from __future__ import annotations

import numpy as np

from ..codecs.norm_channel import decode_norms_numpy, norm_codes_numpy
from .tables import CodecTables

CHUNK_ROWS = 1024  # keeps a chunk's working set near the L2 cache
SMALL_ROWS = 256   # score(): up to this many rows are summed with one np.add.accumulate


class NumpyBackend:
    """Encode, sketch and score with vectorized float32 numpy operations."""

    name = "numpy"

    def __init__(self, config):
        self.config = config
        t = self.t = CodecTables(config)
        self._sources = [np.asarray(s, dtype=np.intp) for s in t.step_sources]
        self._bucket_rows = np.argsort(np.asarray(t.order, dtype=np.intp))
        self._deq = np.asarray(t.deq, dtype=np.float32)

    # -- projection ------------------------------------------------------------
    def project_t(self, xt):
        """Sketches (m, n) in bucket order and norms (n,) of rows given as (d, n)."""
        t = self.t
        d, n = xt.shape
        with np.errstate(all="ignore"):
            sq = xt * xt
            nsq = np.zeros(n, dtype=np.float32)
            for row in sq:  # sequential in i, like the crate
                np.add(nsq, row, out=nsq)
            norms = np.sqrt(nsq)
            stacked = np.empty((2 * d, n), dtype=np.float32)
            np.multiply(xt, np.float32(t.scale), out=stacked[:d])
            np.negative(stacked[:d], out=stacked[d:])
            acc = np.zeros((len(t.order), n), dtype=np.float32)
            for src in self._sources:  # step p: p-th contribution of each bucket
                acc[:len(src)] += stacked[src]
            sketch = acc[self._bucket_rows]
            ok = ~(norms <= np.float32(2.0**-23))
            post = np.where(ok, np.float32(t.sqrt_m) / np.where(ok, norms, np.float32(1)),
                            np.float32(1))
            sketch *= post
        return sketch, norms

    # -- quantization / packing -----------------------------------------------
    def quantize_t(self, sketch):
        """Levels (m, n) uint8 of sketches (m, n)."""
        t = self.t
        c = np.float32(t.clip)
        with np.errstate(all="ignore"):
            zc = np.clip(sketch, -c, c)
            v = ((zc + c) / np.float32(t.two_c)) * np.float32(t.L)
            r = np.trunc(v)
            r += (v - r) >= np.float32(0.5)
            r = np.clip(r, 0, t.L)
            r[np.isnan(r)] = 0
        return r.astype(np.uint8)

    def pack_t(self, levels):
        """Codes (code_bytes, n) from levels (m, n): LSB-first bit stream."""
        cfg = self.config
        b, m, n = cfg.bits, cfg.sketch_dim, levels.shape[1]
        out = np.zeros((cfg.code_bytes, n), dtype=np.uint8)
        if 8 % b == 0:
            per = 8 // b
            for j in range(per):
                part = levels[j::per]
                out[:len(part)] |= (part << (j * b)).astype(np.uint8)
            return out
        wide = levels.astype(np.uint16)
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
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            xt = np.ascontiguousarray(x[start:stop].T, dtype=np.float32)
            sketch, nrm = self.project_t(xt)
            codes[start:stop] = self.pack_t(self.quantize_t(sketch)).T
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
