"""Fast numpy encoder of the format-2 learned-E8 head: the exact rule of :mod:`.learned_e8_stages`.

Same bytes as :func:`~.learned_e8_stages.rotate_numpy` followed by
:func:`~.learned_e8_stages.stage_codes_numpy` (and the pure-Python encoder);
only the memory layout and the order of independent work differ:

* the rotation runs transposed, ``P = V' n'`` (one float64 BLAS call per
  chunk of rows), with the rotation's columns permuted once so that ``P`` comes
  out as ``(8, blocks, rows)``: coordinate ``k`` of every block of every row is
  one contiguous column. Every product and partial sum is an integer below
  ``2**53`` (``|n_i| <= 2**15``, ``|V_ij| <= 2**14``, ``d <= 65535``), so the
  summation order cannot change ``P``;
* ``n_i = rint(x_i 2**(15 - e))`` multiplies by an exact power of two instead
  of calling ``ldexp`` per element, in float32: valid rows have
  ``2**-60 <= max|x| <= 2**60``, so ``2**(15 - e)`` is a float32
  (``2**-46 .. 2**74``), products of magnitude ``>= 2**-126`` are exact and
  smaller ones round to 0 under ``rint`` either way; the integers are widened
  to float64 once, ``PREP_ROWS`` rows at a time (still in cache for their
  norms). ``fl(p / s) 2**-14 = fl(p / (s 2**14))``: ``s 2**14`` is exact and
  nothing is subnormal;
* blocks are sorted by their number of stages (most first), so the blocks
  that still have a stage at level ``l`` are a prefix; level ``l`` of all of
  them is one call of the column-wise float64 E8 rule, and the residual
  update ``res_k - c root_k`` (float64) reads ``c root_k`` (an exact
  product) from a per-level table;
* that rule is :class:`.e8_columns.DoubtedColumns`: the float32 rule in
  cache-sized steps of buffers made once per call, and the float64 rule only
  where float32 could decide otherwise (near-ties, exact ties, zeros);
* rows go in chunks of ``CHUNK_VALUES`` rotated values: large enough for the
  BLAS call and to amortize the per-step calls (``2**20``, 5461 rows at 192
  kept axes, measured a few % faster than ``2**18``); the E8 rule then walks
  each level in steps of ``CHUNK_COLUMNS`` blocks.
"""

from __future__ import annotations

from .e8 import ROOTS
from .e8_columns import DoubtedColumns

CHUNK_VALUES = 1 << 20   # float64 rotated values per chunk of rows (8 MB)
CHUNK_COLUMNS = 1 << 15  # blocks per step of the E8 rule (its int32 buffers: 1 MB)
PREP_ROWS = 512          # rows per step of the integer inputs (~25 % faster than all at once)


class StagedEncoderNumpy:
    """Encoder of one format-2 config (numpy); :meth:`encode` maps rows to codes.

    Parameters
    ----------
    rotation : (d, K) float64 array
        The integer rotation ``V``.
    offset : (K,) float64 array
        The offset ``o``.
    stages : sequence of int
        Stages per kept block.
    scales : (C,) float64 array
        Stage scales, block-major.
    """

    def __init__(self, rotation, offset, stages, scales):
        import numpy as np

        from .learned_e8_stages import V_BITS, X_BITS

        stages = np.asarray(stages, dtype=np.int64)
        nk = len(stages)
        order = np.argsort(-stages, kind="stable")      # blocks by stages, most first
        first = np.concatenate([[0], np.cumsum(stages)[:-1]])
        # row k * nk + b of the transposed rotation = coordinate k of sorted block b
        cols = (8 * order[None, :] + np.arange(8)[:, None]).ravel()
        self._rot_t = np.ascontiguousarray(rotation[:, cols].T)
        self._offset = np.ascontiguousarray(offset[cols]).reshape(8, nk, 1)
        self._nk = nk
        self._x_shift, self._v_scale = X_BITS, float(2 ** V_BITS)
        sorted_stages = stages[order]
        roots = np.asarray(ROOTS, dtype=np.float64)               # (240, 8)
        self._levels = []           # (blocks at this level, blocks with a next one, tables)
        out_col = []
        for level in range(int(stages.max())):
            nb = int(np.count_nonzero(sorted_stages > level))
            # residuals are updated only for the blocks with a next stage (a prefix too)
            nu = int(np.count_nonzero(sorted_stages > level + 1))
            c = scales[first[order[:nu]] + level]                 # (nu,)
            # table[k, b * 256 + v] = c_b * root_v[k]: exact products
            table = np.zeros((8, nu, 256))
            table[:, :, :len(roots)] = c[None, :, None] * roots.T[:, None, :]
            self._levels.append((nb, nu, table.reshape(8, -1), (np.arange(nu) * 256)[:, None]))
            out_col.extend((first[order[:nb]] + level).tolist())
        # code row r (level-major) -> output column out_col[r]
        self._row_of_col = np.argsort(np.asarray(out_col))
        self.n_codes = len(out_col)

    def encode(self, rows):
        """(N, d) float32 rows (valid) -> (N, C) uint8 codes."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.float32)
        n = len(rows)
        out = np.empty((n, self.n_codes), dtype=np.uint8)
        step = max(1, min(n, CHUNK_VALUES // (8 * self._nk)))
        # buffers for this call: integers, rotated values, the E8 rule's
        work = (np.empty((step, rows.shape[1])), np.empty(8 * self._nk * step),
                np.empty(min(PREP_ROWS, step) * rows.shape[1], dtype=np.float32),
                DoubtedColumns(min(CHUNK_COLUMNS, step * self._nk)))
        for s in range(0, n, step):
            out[s:s + step] = self._encode_chunk(rows[s:s + step], work)
        return out

    def _integers(self, x, ints, scratch):
        """``n = rint(x 2**(15 - e))`` into ``ints`` and ``|n| 2**14``, ``PREP_ROWS`` rows
        at a time (the float64 rows stay in cache until their norms are read)."""
        import numpy as np

        m = len(x)
        norm = np.empty(m)
        for s in range(0, m, PREP_ROWS):
            xs, ns = x[s:s + PREP_ROWS], ints[s:s + PREP_ROWS]
            f32 = scratch[:len(xs) * x.shape[1]].reshape(xs.shape)
            e = np.frexp(np.abs(xs, out=f32).max(axis=1))[1]
            scale = np.ldexp(np.float32(1), self._x_shift - e)    # a float32 (valid rows)
            np.multiply(xs, scale[:, None], out=f32)               # exact, or rint gives 0
            np.rint(f32, out=f32)
            np.copyto(ns, f32)
            np.einsum("ij,ij->i", ns, ns, out=norm[s:s + PREP_ROWS])
        np.sqrt(norm, out=norm)
        return np.multiply(norm, self._v_scale, out=norm)

    def _encode_chunk(self, x, work):
        import numpy as np

        ints, flat, scratch, rule = work
        m = len(x)
        n = ints[:m]
        norm = self._integers(x, n, scratch)
        res = np.matmul(self._rot_t, n.T, out=flat[:8 * self._nk * m].reshape(-1, m))
        res /= norm                                               # (K, m): exact integers / norm
        np.subtract(res.reshape(8, self._nk, m), self._offset, out=res.reshape(8, self._nk, m))
        res = res.reshape(8, self._nk * m)      # row k: coordinate k, block-major, then rows
        codes = np.empty((self.n_codes, m), dtype=np.uint8)
        row = 0
        for nb, nu, table, base in self._levels:
            part = res[:, :nb * m]              # the blocks with a stage at this level (a view)
            c = codes[row:row + nb]
            rule(part, c.reshape(-1))
            row += nb
            if nu:
                idx = (c[:nu] + base).ravel()  # int64: block b reads table[:, b * 256 + code]
                for k in range(8):
                    res[k, :nu * m] -= table[k].take(idx)
        return codes[self._row_of_col].T
