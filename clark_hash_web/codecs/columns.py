"""Rows to columns in cheap copies: the transpose of the column-wise encoders
(Clark Hash's numpy backend, :mod:`.hadamard_fast`).

Column layout ``(d, b)`` makes every per-coordinate step one long vector
operation over ``b`` rows, but an element-by-element transpose of ``(b, d)``
float32 rows reads one cache line per element. With ``d`` a multiple of 8 it
runs in three cheap steps instead:

1. the rows, in order, into a buffer (memory reads them sequentially),
   optionally times an exact per-coordinate factor (a sign flip);
2. whole 32-byte groups of 8 coordinates, ``(b, d/8) -> (d/8, b)``, as
   void copies;
3. the 8 coordinates inside each group: :func:`group_columns` is the strided
   ``(d/8, 8, b)`` view that the caller's first elementwise operation reads
   (a copy into contiguous columns, the squares, a butterfly).
"""

from __future__ import annotations


def rows_to_groups(rows, copy, groups, factor=None):
    """Steps 1 and 2: (b, d) float32 ``rows`` (times ``factor`` (d,) if given) into
    ``groups`` (d/8, 8 b), through ``copy`` (b, d); ``d % 8 == 0``."""
    import numpy as np

    if factor is None:
        np.copyto(copy, rows)
    else:
        np.multiply(rows, factor, out=copy)
    groups.view("V32")[...] = copy.view("V32").T


def group_columns(groups, b: int):
    """Step 3: the (d/8, 8, b) view of ``groups`` (d/8, 8 b): ``[g, k, r]`` is
    coordinate ``8 g + k`` of row ``r``; as (d, b) after a contiguous copy."""
    return groups.reshape(len(groups), b, 8).transpose(0, 2, 1)
