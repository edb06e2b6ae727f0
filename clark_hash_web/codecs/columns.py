"""Rows to columns in cheap copies: the transpose of the column-wise encoders
(Clark Hash's numpy backend, :mod:`.hadamard_fast`).

Column layout ``(d, b)`` makes every per-coordinate step one long vector
operation over ``b`` rows, but an element-by-element transpose of ``(b, d)``
float32 rows reads one cache line per element. With ``d`` a multiple of a
group width ``w`` (a power of two) it runs in three cheap steps instead:

1. the rows, in order, into a buffer (memory reads them sequentially),
   optionally times an exact per-coordinate factor (a sign flip);
2. whole groups of ``w`` coordinates (``4 w`` bytes), ``(b, d/w) -> (d/w, b)``,
   as void copies;
3. the ``w`` coordinates inside each group: :func:`group_columns` is the
   strided ``(d/w, w, b)`` view that the caller's first elementwise operation
   reads (a copy into contiguous columns, a butterfly).

Measured here: 16-float groups then a copy make the fastest full transpose;
2-float groups make the fastest first Hadamard stage read from the view.
"""

from __future__ import annotations


def group_width(d: int, widest: int) -> int:
    """The largest power of two ``<= widest`` that divides ``d`` (1: no grouping)."""
    w = 1
    while w < widest and d % (2 * w) == 0:
        w *= 2
    return w


def rows_to_groups(rows, copy, groups, factor=None):
    """Steps 1 and 2: (b, d) float32 ``rows`` (times ``factor`` (d,) if given) into
    ``groups`` (d/w, w b), through ``copy`` (b, d); ``w`` divides ``d``."""
    import numpy as np

    if factor is None:
        np.copyto(copy, rows)
    else:
        np.multiply(rows, factor, out=copy)
    unit = f"V{4 * (groups.shape[1] // len(rows))}"
    groups.view(unit)[...] = copy.view(unit).T


def group_columns(groups, b: int):
    """Step 3: the (d/w, w, b) view of ``groups`` (d/w, w b): ``[g, k, r]`` is
    coordinate ``w g + k`` of row ``r``; as (d, b) after a contiguous copy."""
    w = groups.shape[1] // b
    return groups.reshape(len(groups), b, w).transpose(0, 2, 1)
