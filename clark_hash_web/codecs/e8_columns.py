"""The E8 rule on coordinate columns, in float32 or float64 (the learned head's stages).

:func:`encode_columns` takes ``(8, B)`` columns (row ``k`` = coordinate ``k``
of every block) and applies the block rule of :mod:`clark_hash_web.codecs.e8`
column-wise in the input's precision: float32 input gives the E8 codec's
bytes, float64 input the rule with float64 sums (``s1``, ``T``, ``s2``), as
the format-2 learned head defines its stages (:mod:`.learned_e8_stages`).
"First index of the largest / smallest" is the lowest set bit of a byte of
equality flags. With ``doubt=True`` on float32 columns rounded from float64
ones it also says where the float32 decision provably equals the float64
one. It is the learned heads' E8 step (format 2's stages and, through
:func:`.learned_e8.e8_codes_numpy`, format 1 and training); the stateless E8
codec has its own buffered float32 encoder, :mod:`.e8_fast`.
"""

from __future__ import annotations


def _lowest_bit_index(mask):
    """Index of the lowest set bit of nonzero uint8 ``mask`` (uint8)."""
    import numpy as np

    low = mask & np.negative(mask)
    return np.bitwise_count(low - np.uint8(1)) if hasattr(np, "bitwise_count") else \
        np.log2(low).astype(np.uint8)


def _flags(cols_bool):
    """(8, B) bools -> (B,) uint8 with bit k = row k (shifts and ors: packbits along
    the short axis is far slower)."""
    import numpy as np

    u = cols_bool.view(np.uint8)
    if u.shape[1] % 8 == 0:          # 8 blocks per uint64: each byte is 0/1, shifts stay inside it
        u = u.view(np.uint64)
    out = u[0].copy()
    for k in range(1, 8):
        out |= u[k] << u.dtype.type(k)
    return out.view(np.uint8)


_INT_OF = {4: ("int32", "uint32", 0x7FFFFFFF), 8: ("int64", "uint64", 0x7FFFFFFFFFFFFFFF)}


def encode_columns(x, doubt: bool = False):
    """(8, B) float32 or float64 coordinate columns -> (B,) uint8 root numbers.

    Row ``k`` holds coordinate ``k`` of every block (rows may be strided views).
    The rule of :mod:`.e8` in the input's precision: float32 input gives the
    E8 codec's bytes; float64 input gives the rule evaluated in float64 (the
    learned head's stages), ``s1``, ``T`` and ``s2`` all rounded to float64.

    ``doubt=True`` (float32 input ``fl32(y)`` of float64 blocks ``y``) also
    returns a (B,) bool mask; where it is False the code equals the float64
    rule's code on ``y``. Rounding to float32 is monotone, so the indices
    ``i``, ``j``, ``m`` agree when the largest, the second largest and the
    smallest magnitude are each unique in float32, and the signs agree when
    the smallest magnitude is not 0. Then ``s1 - s2`` moves by less than
    ``40 * 2**-24 * max|y|`` between the two precisions (each magnitude
    rounded once, 1 + 7 roundings in the float32 sum of 8 terms <= 8 max), so
    the comparison agrees when ``|s1 - s2| > 2**-16 max`` in float32 (blocks
    with ``max < 2**-100``, near float32 subnormals, are doubted too).
    """
    import numpy as np

    ftype = x.dtype.type
    iname, uname, mask = _INT_OF[x.dtype.itemsize]
    itype, utype = np.dtype(iname), np.dtype(uname)
    # float64: two steps have cheaper forms (measured: -14 % time there, +13 % for float32)
    wide = x.dtype.itemsize == 8
    # |x| as integer bit patterns: same order and equality as the floats (a >= +0, no NaN)
    a = x.view(itype) & itype.type(mask)
    negbits = _flags(x < 0)
    # integer candidate: i = first largest, j = first largest among the others
    mx = a.max(axis=0)
    eq = a == mx
    eqbits = _flags(eq)
    i = _lowest_bit_index(eqbits)
    rest = eqbits & (eqbits - np.uint8(1))
    several = rest != 0
    if wide:                                            # the largest ones -> -1
        a2 = np.where(eq, itype.type(-1), a)
    else:
        a2 = a | -eq.view(np.int8).astype(itype)
    mx2 = a2.max(axis=0)
    second = _flags(a2 == mx2)
    j_single = _lowest_bit_index(second | several.view(np.uint8))
    j = np.where(several, _lowest_bit_index(rest | ~several.view(np.uint8) & np.uint8(1)),
                 j_single)
    mxf = mx.view(ftype)
    s1 = mxf + np.where(several, mx, mx2).view(ftype)
    # half candidate: flip the first smallest when the sign count is odd
    odd = np.bitwise_count(negbits) & np.uint8(1)
    mn = a.min(axis=0)
    smallest = _flags(a == mn)
    m = _lowest_bit_index(smallest)
    flipbits = (odd << m).astype(np.uint8)
    if wide:                    # negate the flipped magnitudes in place (a is not read again)
        terms = a.view(ftype)
        for k in range(8):
            np.negative(terms[k], out=terms[k],
                        where=((flipbits >> np.uint8(k)) & np.uint8(1)).view(np.bool_))
    else:
        shifts = np.arange(8, dtype=np.uint8)[:, None]
        signs = ((flipbits[None, :] >> shifts) & np.uint8(1)).astype(utype) << utype.type(31)
        terms = (a.view(utype) | signs).view(ftype)    # a >= +0: OR sets the sign
    t = ftype(0) + terms[0]
    for k in range(1, 8):
        t += terms[k]
    s2 = ftype(0.5) * t
    half = (negbits ^ flipbits) & np.uint8(0x7F)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    lo16, hi16 = lo.astype(np.int16), hi.astype(np.int16)
    pair = lo16 * 7 - (lo16 * (lo16 - 1)) // 2 + (hi16 - lo16 - 1)      # index in PAIRS
    integer = 128 + 4 * pair + 2 * ((negbits >> lo) & 1) + ((negbits >> hi) & 1)
    codes = np.where(s1 > s2, integer, half).astype(np.uint8)
    if not doubt:
        return codes
    if wide:
        raise ValueError("doubt=True is for float32 columns")
    unsure = several | (np.bitwise_count(second) > 1) | (np.bitwise_count(smallest) > 1)
    unsure |= mn == 0
    unsure |= mxf < np.float32(2.0 ** -100)
    unsure |= np.abs(s1 - s2) <= mxf * np.float32(2.0 ** -16)
    return codes, unsure
