"""IEEE-754 binary32 arithmetic in pure Python.

The reference crate computes everything in f32 with round-to-nearest-even.
Python floats are binary64; rounding the exact double result of one ``+``,
``-``, ``*``, ``/`` or ``sqrt`` of two f32 values to f32 gives the correctly
rounded f32 result (double rounding is innocuous because 53 >= 2 * 24 + 2),
so every f32 operation here is "do it in double, round once".

Rounding uses ``array('f')``, whose C conversion maps overflow to +-inf like
the hardware does (``struct.pack`` would raise instead).
"""

from __future__ import annotations

import math
import struct
from array import array
from decimal import Decimal, localcontext

EPSILON = 2.0**-23  # f32::EPSILON
MIN_POSITIVE = 2.0**-126  # f32::MIN_POSITIVE (smallest normal)

_one = array("f", [0.0])


def f32(x: float) -> float:
    """Round a Python float to the nearest float32 (ties to even)."""
    _one[0] = x
    return _one[0]


def f32_list(values) -> array:
    """Round many Python floats to float32 at once; returns ``array('f')``."""
    return array("f", values)


def bits_of(x: float) -> int:
    """The 32-bit pattern of a float32 value (as an unsigned int)."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_bits(bits: int) -> float:
    """The float32 value of a 32-bit pattern."""
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def round_half_away(v: float) -> float:
    """Round to the nearest integer, ties away from zero (Rust ``f32::round``).

    Exact for every float32 input: ``abs(v) + 0.5`` is computed exactly in
    double for float32 values below 2**29, and larger values are integers.
    """
    if v != v or v in (math.inf, -math.inf):
        return v
    a = abs(v)
    if a >= 2.0**23:
        return v
    r = math.floor(a + 0.5)
    return math.copysign(r, v)


def next_toward(x: float, target: float) -> float:
    """The float32 neighbour of float32 ``x`` in the direction of ``target``."""
    if x == target:
        return x
    b = bits_of(x)
    if x == 0.0:
        return from_bits(1) if target > 0 else from_bits(0x80000001)
    up = (target > x) == (x > 0)
    return from_bits(b + 1 if up else b - 1)


def round_to_f32_exactly(approx: float, exact_value) -> float:
    """Correctly round a real number to float32, given a double approximation.

    ``approx`` must be within a few double ulps of the true value. When it is
    so close to a float32 rounding boundary that this matters, the callable
    ``exact_value(digits)`` is asked for a ``Decimal`` with that many digits
    and decides. This makes the result independent of the platform's libm.
    """
    r = f32(approx)
    if math.isinf(r) or approx == r:
        # a double that is itself a float32 is ~2**28 double ulps away from
        # any rounding boundary: no ambiguity
        return r
    nb = next_toward(r, math.inf if approx >= r else -math.inf)
    mid = (r + nb) / 2.0  # exact in double
    if abs(approx - mid) > abs(mid) * 2.0**-40:
        return r
    with localcontext() as ctx:
        ctx.prec = 60
        true = exact_value(60)
        m = Decimal(mid)
        if true == m:  # exact tie: round to even
            return r if bits_of(r) % 2 == 0 else nb
        if (true > m) == (nb > r):
            return nb
        return r
