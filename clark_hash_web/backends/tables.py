"""Per-configuration constants shared by both backends."""

from __future__ import annotations

import math

from ..float32 import f32
from ..codecs.hashing import bucket_schedule, bucket_sign_table


class CodecTables:
    """Everything about a config that is computed once, in pure Python.

    Attributes
    ----------
    order : list[int]
        Buckets by descending contribution count (see ``bucket_schedule``).
    step_sources : list[list[int]]
        ``step_sources[p][j]``: source row of the p-th contribution of bucket
        ``order[j]`` in the stacked matrix ``[x * scale; -(x * scale)]``
        (row ``i`` for sign +1, ``d + i`` for sign -1).
    scale : float
        ``1 / sqrt(f32(s))`` in float32.
    sqrt_m : float
        ``sqrt(f32(m))`` in float32.
    deq : list[float]
        Dequantized float32 value of every level.
    """

    def __init__(self, config):
        d, m, s = config.input_dim, config.sketch_dim, config.hashes_per_input
        buckets, negative = bucket_sign_table(d, m, s, config.seed)
        self.order, steps = bucket_schedule(buckets, m)
        self.step_sources = [[f // s + (d if negative[f] else 0) for f in row] for row in steps]
        self.scale = f32(1.0 / f32(math.sqrt(f32(float(s)))))
        self.sqrt_m = f32(math.sqrt(f32(float(m))))
        self.m_f32 = f32(float(m))
        c = config.clip
        self.clip = c
        self.two_c = f32(2.0 * c)
        L = config.levels
        self.L = L
        self.deq = [f32(f32(f32(f32(float(lv)) / float(L)) * self.two_c) - c) for lv in range(L + 1)]
