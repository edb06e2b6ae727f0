"""Cosine scores of staged E8 codes: divide by the norm of what the code decodes to.

A format-2 learned-E8 head (:mod:`.learned_e8_stages`) stores ``x - mu`` on its
kept principal axes as stages of scaled E8 roots. The plain score of a code
is the query's inner product with that residual, ``S = v . rhat`` (the sum of
the code's byte tables), which ranks well but is no cosine: the decoded
vector ``xhat = o + rhat`` (``o``, the offset, is ``mu`` on the kept axes) has
a norm that varies with the row and with the quantization noise. A head
trained with ``normalize=True`` (the default; bit 0 of the config's flags)
scores instead

    ``score = fl32(fl32(S + bias) * scale)``

with ``bias = v . o`` (one float32 per query, :func:`query_bias`) and
``scale = 1 / ||xhat||`` (one float32 per row, :func:`row_scales_numpy` /
:func:`row_scales_python`): the cosine of the query with the decoded row on
the kept axes. Measured on SOTU / all-MiniLM-L6-v2 (48 bytes): recall@10 0.742
-> 0.777, true top 10 within the top 50 0.987 -> 0.997, STS-B Pearson against
dense 0.928 -> 0.967 (see ``benchmarks/README.md``).

Exact definitions (every backend and the browser give the same bits)
---------------------------------------------------------------------
Row scale, for a code of ``C`` bytes (block-major, stage order, as written by
the encoder), float64 arithmetic in exactly this order::

    n2 = 0.0
    for each kept block b, for k in 0..7:
        x = o[8 b + k]                                 (float32 -> float64)
        for each stage s of block b:                   (code byte c = c_b + s)
            x = x + c_scale[c] * ROOT[code[c]][k]      (the product is exact)
        n2 = n2 + x * x
    scale = fl32(1 / sqrt(n2))        (0 when n2 == 0; sqrt and / correctly rounded)

Query bias: ``v`` the float32 rotated query (before the per-byte expansion),
``bias = fl32(((0 + v_0 o_0) + v_1 o_1) + ... + v_{K-1} o_{K-1})`` in float64
(each product of two float32 values is exact in float64).

Score: ``S`` is the float32 table sum of :mod:`.bitpack` (unchanged); then
``fl32(S + bias)`` and ``fl32(that * scale)``. ``scale > 0``, so both steps
are monotone in ``S``: a bound on ``S`` bounds the score
(:class:`~clark_hash_web.index.table_bound.TableBound`).
"""

from __future__ import annotations

import math
from array import array

CHUNK = 1 << 15   # rows per numpy step of row_scales_numpy


def row_scales_numpy(codes, stages, scales32, offset32):
    """(N, C) uint8 codes -> (N,) float32 row scales ``1 / ||xhat||`` (module docstring).

    ``stages``: stage count per kept block; ``scales32``: (C,) float32;
    ``offset32``: (K,) float32. Vectorized over rows, sequential over the
    coordinates (the defined float64 order).
    """
    import numpy as np

    from .e8 import ROOTS

    codes = np.asarray(codes, dtype=np.uint8)
    roots = np.zeros((256, 8))
    roots[:len(ROOTS)] = ROOTS
    sc = np.asarray(scales32, dtype=np.float32).astype(np.float64)
    off = np.asarray(offset32, dtype=np.float32).astype(np.float64)
    out = np.empty(len(codes), dtype=np.float32)
    first = [0]
    for ns in stages:
        first.append(first[-1] + ns)
    for s in range(0, len(codes), CHUNK):
        part = codes[s:s + CHUNK]
        n2 = np.zeros(len(part))
        for b, ns in enumerate(stages):
            picked = [roots[part[:, first[b] + t]] for t in range(ns)]   # (n, 8) each
            for k in range(8):
                x = np.full(len(part), off[8 * b + k])
                for t in range(ns):
                    x = x + sc[first[b] + t] * picked[t][:, k]
                n2 = n2 + x * x
        with np.errstate(divide="ignore"):
            inv = np.where(n2 > 0, 1.0 / np.sqrt(n2), 0.0)
        out[s:s + CHUNK] = inv.astype(np.float32)
    return out


def row_scales_python(codes: bytes, count: int, stages, scales, offset) -> array:
    """Pure-Python twin of :func:`row_scales_numpy`: ``count`` codes in ``codes``."""
    from .e8 import ROOTS

    cb = sum(stages)
    out = array("f", bytes(4 * count))
    for r in range(count):
        code = codes[r * cb:(r + 1) * cb]
        n2, c = 0.0, 0
        for b, ns in enumerate(stages):
            picked = [ROOTS[v] if v < len(ROOTS) else (0.0,) * 8 for v in code[c:c + ns]]
            cs = scales[c:c + ns]
            for k in range(8):
                x = float(offset[8 * b + k])
                for t in range(ns):
                    x = x + cs[t] * picked[t][k]
                n2 = n2 + x * x
            c += ns
        out[r] = 1.0 / math.sqrt(n2) if n2 > 0 else 0.0
    return out


def query_bias(v, offset) -> float:
    """``fl32(sum_j v_j o_j)`` in float64, sequentially (module docstring)."""
    acc = 0.0
    for vj, oj in zip(v, offset):
        acc = acc + float(vj) * float(oj)
    return array("f", [acc])[0]


def finish_numpy(sums, bias, scales):
    """``fl32(fl32(S + bias) * scale)`` for float32 table sums ``S`` and row scales."""
    import numpy as np

    return (np.asarray(sums, dtype=np.float32) + np.float32(bias)) * \
        np.asarray(scales, dtype=np.float32)


def finish_python(sums, bias, scales) -> array:
    """Pure-Python twin of :func:`finish_numpy` (array('f') in, array('f') out)."""
    added = array("f", [s + bias for s in sums])
    return array("f", [s * c for s, c in zip(added, scales)])
