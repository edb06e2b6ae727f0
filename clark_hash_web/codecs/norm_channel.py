"""The 16-bit log-scale norm code of dot-product mode.

In ``metric="dot"`` every stored vector also keeps its norm as a u16 code::

    code = round_half_away(((clamp(log2f(max(norm, MIN_POSITIVE)), lo, hi) - lo)
                            / (hi - lo)) * 65535)
    decoded = 2 ** (lo + (code / 65535) * (hi - lo))

with every step in float32 (NUMERICS.md, "Dot-product mode"). ``log2f`` and
``2 ** x`` are computed *correctly rounded* here, independently of the
platform's libm: a double-precision result decides unless it lies within
2**-40 (relative) of a float32 rounding boundary, where exact decimal
arithmetic decides. The reference used glibc, which differs from correct
rounding for 73 norms and 36 decoded values in the default range; those are
patched from ``_glibc_default_range``. Desktop and browser agree bit for bit,
and the default range matches the crate exactly.
"""

from __future__ import annotations

import math
from decimal import Decimal

from . import _glibc_default_range as _glibc
from ..float32 import MIN_POSITIVE, bits_of, f32, from_bits, round_half_away, round_to_f32_exactly

CODE_MAX = 65535


def _is_default_range(lo: float, hi: float) -> bool:
    return lo == -16.0 and hi == 16.0


def log2_f32(x: float) -> float:
    """Correctly rounded float32 log2 of a positive finite float32 ``x``."""
    return round_to_f32_exactly(math.log2(x), lambda digits: Decimal(x).ln() / Decimal(2).ln())


def exp2_f32(x: float) -> float:
    """Correctly rounded float32 ``2 ** x`` for a float32 ``x``."""
    return round_to_f32_exactly(2.0 ** x, lambda digits: Decimal(2) ** Decimal(x))


def code_from_log2(l: float, lo: float, hi: float) -> int:
    """Norm code of a float32 log2 value (the float32 steps after log2f)."""
    l = min(max(l, lo), hi)
    u = f32(f32(l - lo) / f32(hi - lo))
    v = f32(u * 65535.0)
    return int(min(max(round_half_away(v), 0), CODE_MAX))


def norm_code(norm: float, lo: float = -16.0, hi: float = 16.0) -> int:
    """u16 norm code of a float32 norm (NaN gives 0, +inf gives 65535)."""
    if norm != norm:  # Rust f32::max(NaN, MIN_POSITIVE) is MIN_POSITIVE
        norm = MIN_POSITIVE
    if norm == math.inf:
        return CODE_MAX
    n = max(norm, MIN_POSITIVE)
    if _is_default_range(lo, hi):
        patched = _glibc.NORM_CODE_BY_BITS.get(bits_of(n))
        if patched is not None:
            return patched
    return code_from_log2(log2_f32(n), lo, hi)


def decode_exponent(code: int, lo: float, hi: float) -> float:
    """The float32 exponent ``lo + (code / 65535) * (hi - lo)``."""
    return f32(lo + f32(f32(f32(float(code)) / 65535.0) * f32(hi - lo)))


def decode_norm(code: int, lo: float = -16.0, hi: float = 16.0) -> float:
    """Decoded float32 norm of a u16 code."""
    if not 0 <= code <= CODE_MAX:
        raise ValueError(f"norm code must be in 0..65535, got {code}")
    if _is_default_range(lo, hi):
        patched = _glibc.DECODED_BITS_BY_CODE.get(code)
        if patched is not None:
            return from_bits(patched)
    return exp2_f32(decode_exponent(code, lo, hi))


_decode_tables: dict = {}


def decode_table(lo: float = -16.0, hi: float = 16.0) -> list:
    """All 65,536 decoded norms of a range (computed once per range)."""
    key = (lo, hi)
    table = _decode_tables.get(key)
    if table is None:
        table = [decode_norm(c, lo, hi) for c in range(CODE_MAX + 1)]
        _decode_tables[key] = table
    return table


def norm_codes_numpy(norms, lo: float = -16.0, hi: float = 16.0):
    """Vectorized :func:`norm_code` over a float32 numpy array.

    Same results as the scalar function: float64 ``log2`` decides where it is
    safely far from a float32 rounding boundary; the rare remaining elements
    (and the glibc-patched norms) go through the scalar path.
    """
    import numpy as np

    n = np.asarray(norms, dtype=np.float32)
    n = np.where(np.isnan(n), np.float32(MIN_POSITIVE), n)
    n = np.maximum(n, np.float32(MIN_POSITIVE))
    with np.errstate(all="ignore"):
        l64 = np.log2(n.astype(np.float64))
        l32 = l64.astype(np.float32)
        # distance to the nearest float32 rounding boundary, in units of |l|
        up = np.nextafter(l32, np.float32(np.inf))
        dn = np.nextafter(l32, np.float32(-np.inf))
        mid = np.where(l64 >= l32, (l32.astype(np.float64) + up) / 2,
                       (l32.astype(np.float64) + dn) / 2)
        risky = (np.abs(l64 - mid) <= np.abs(mid) * 2.0**-40) & (l64 != l32) & np.isfinite(l64)
        l = np.clip(l32, np.float32(lo), np.float32(hi))
        u = (l - np.float32(lo)) / np.float32(f32(hi - lo))
        v = u * np.float32(65535.0)
        t = np.trunc(v)
        code = t + (v - t >= np.float32(0.5))
        code = np.clip(code, 0, CODE_MAX).astype(np.uint16)
    code = np.where(np.isinf(n), np.uint16(CODE_MAX), code)
    fix = np.flatnonzero(risky)
    if _is_default_range(lo, hi) and len(n):
        bits = n.view(np.uint32)
        patched = np.fromiter(_glibc.NORM_CODE_BY_BITS, dtype=np.uint32)
        fix = np.union1d(fix, np.flatnonzero(np.isin(bits, patched)))
    for j in fix:
        code[j] = norm_code(float(n[j]), lo, hi)
    return code


def decode_norms_numpy(codes, lo: float = -16.0, hi: float = 16.0):
    """Vectorized :func:`decode_norm` (via the cached 65,536-entry table)."""
    import numpy as np

    key = ("np", lo, hi)
    table = _decode_tables.get(key)
    if table is None:
        table = np.array(decode_table(lo, hi), dtype=np.float32)
        _decode_tables[key] = table
    return table[np.asarray(codes, dtype=np.uint16)]
