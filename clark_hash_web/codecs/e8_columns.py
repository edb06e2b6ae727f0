"""The E8 rule on coordinate columns, in float32 or float64 (the learned head's stages).

:func:`encode_columns` takes ``(8, B)`` columns (row ``k`` = coordinate ``k``
of every block) and applies the block rule of :mod:`clark_hash_web.codecs.e8`
column-wise in the input's precision: float32 input gives the E8 codec's
bytes, float64 input the rule with float64 sums (``s1``, ``T``, ``s2``), as
the format-2 learned head defines its stages (:mod:`.learned_e8_stages`).
"First index of the largest / smallest" is the lowest set bit of a byte of
equality flags. It is the learned heads' E8 step (format 2's stages and,
through :func:`.learned_e8.e8_codes_numpy`, format 1 and training); the
stateless E8 codec has its own buffered float32 encoder, :mod:`.e8_fast`.
:class:`DoubtedColumns` gives the float64 rule's codes fast: the float32
rule in :mod:`.e8_fast`'s buffers where that provably decides the same, the
float64 rule on the few other columns.
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


def encode_columns(x):
    """(8, B) float32 or float64 coordinate columns -> (B,) uint8 root numbers.

    Row ``k`` holds coordinate ``k`` of every block (rows may be strided views).
    The rule of :mod:`.e8` in the input's precision: float32 input gives the
    E8 codec's bytes; float64 input gives the rule evaluated in float64 (the
    learned head's stages), ``s1``, ``T`` and ``s2`` all rounded to float64.
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
    return np.where(s1 > s2, integer, half).astype(np.uint8)


class DoubtedColumns:
    """:func:`encode_columns` on float64 columns, fast: float32 where it provably decides the same.

    :meth:`__call__` writes the codes of ``encode_columns(cols)`` for float64
    columns ``y``: the rule evaluated on ``fl32(y)`` in float32, ``width``
    columns at a time in the stateless encoder's buffers
    (:class:`.e8_fast._Work`: flag bytes, tournament, integer-root table),
    then :func:`encode_columns` in float64 on the columns the doubt test
    does not clear (about 1 in 30,000 on the learned head's SOTU residuals;
    exact ties and zeros always).

    The test: rounding to float32 is monotone, so the pair ``{i, j}`` agrees
    when exactly two float32 magnitudes are ``>=`` the second largest (the
    integer root and ``s1`` depend on the pair, not on its order), ``m``
    agrees when the smallest magnitude is unique in float32 (then these flag
    bytes are the masks used), and the signs agree when the smallest
    magnitude is not 0. Then the float32 ``s1 - s2`` is within ``48 u max|y|``
    (``u = 2**-24``) of the float64 one, whatever the float32 summation order:
    ``s1 = a_i + a_j`` (2 magnitudes rounded, 1 sum: ``4 u max``);
    ``s2 = S / 2 - a_m`` (``- a_m`` only when flipped) with ``S`` the sum of
    the 8 magnitudes (8 rounded, 7 additions of partial sums ``<= 8 max``:
    ``64 u max``, halved exactly), ``a_m`` rounded (``u max``) and one
    subtraction (``|s2| <= 4 max``: ``4 u max``); 41 in all, and the float64
    rule's own roundings are far below ``u max``. So the comparison agrees
    when ``|s1 - s2| > 2**-16 max = 256 u max`` in float32 (room for the
    test's own rounding); blocks with ``max < 2**-100`` (near float32
    subnormals) or ``max >= 2**124`` (sums up to ``8 max`` could overflow,
    ``fl32(y)`` be infinite) are doubted too. ``S`` is summed as a tree, not
    in the E8 codec's sequential order: that can change a float32 code only
    where the test doubts it, and doubted codes are never used.

    Parameters
    ----------
    width : int
        Columns per step (rounded up to a multiple of 8); the buffers stay in cache.
    """

    def __init__(self, width: int):
        import numpy as np

        from .e8_fast import _Work

        self.work = w = _Work(max(8, -(-int(width) // 8) * 8))
        self.negbits = np.empty(w.width // 8, dtype="<u8")
        self.unsure = np.empty(w.width, dtype=np.bool_)
        self.more = np.empty(w.width, dtype=np.bool_)
        self.idx16 = np.empty(w.width, dtype=np.uint16)

    def __call__(self, cols, out):
        """(8, B) float64 columns (rows may be strided views) -> ``out``, (B,) uint8."""
        import numpy as np

        step = self.work.width
        n = cols.shape[1]
        redo = []
        for s in range(0, n, step):
            e = min(n, s + step)
            with np.errstate(over="ignore", invalid="ignore"):     # doubted where it matters
                unsure = self._float32_codes(cols[:, s:e], out[s:e])
            redo.append(np.flatnonzero(unsure) + s)
        redo = np.concatenate(redo)
        if len(redo):
            out[redo] = encode_columns(np.ascontiguousarray(cols[:, redo]))
        return out

    def _float32_codes(self, cols, out):
        """The float32 rule's codes into ``out``; returns the doubt mask (a view)."""
        import numpy as np

        from .e8_fast import _flags, _largest_two_and_smallest, _odd_mask

        w = self.work
        b = cols.shape[1]
        bp = -(-b // 8) * 8                      # whole uint64 words of flags
        a, flag = w.a[:, :bp], w.b[:, :bp]
        af = a.view(np.float32)
        np.copyto(af[:, :b], cols, casting="same_kind")       # fl32(y)
        if bp > b:
            a[:, b:] = 0
        np.less(af, np.float32(0), out=flag)
        negbits = _flags(w, flag, self.negbits)
        np.bitwise_and(a, np.int32(0x7FFFFFFF), out=a)
        mx, mx2, mn = _largest_two_and_smallest(w, a, bp)
        np.greater_equal(a, mx2, out=flag)
        pair = _flags(w, flag, w.f[0])           # i and j, as a set: the two largest
        np.equal(a, mn, out=flag)
        bit_m = _flags(w, flag, w.f[2])
        # the doubt test: not exactly two magnitudes >= the second largest, a repeated
        # smallest one, ...
        unsure, more, tmp, tmp2 = self.unsure[:bp], self.more[:bp], w.m[4][:bp], w.m[0][:bp]
        rest = np.bitwise_and(pair, np.subtract(pair, np.uint8(1), out=tmp), out=tmp)
        np.bitwise_and(rest, np.subtract(rest, np.uint8(1), out=tmp2), out=tmp2)
        np.not_equal(tmp2, 0, out=unsure)        # more than two (never fewer: mx2 is one)
        np.bitwise_and(bit_m, np.subtract(bit_m, np.uint8(1), out=tmp), out=tmp)
        unsure |= np.not_equal(tmp, 0, out=more)
        # ... a zero smallest one, a largest near float32 subnormals or sums near overflow
        unsure |= np.equal(mn, 0, out=more)
        unsure |= np.less(mx, np.float32(2.0 ** -100).view(np.int32), out=more)
        unsure |= np.greater_equal(mx, np.float32(2.0 ** 124).view(np.int32), out=more)
        mxf = mx.view(np.float32)
        s1 = np.add(mxf, mx2.view(np.float32), out=w.s[0][:bp])
        # half root: flip the smallest when the sign count is odd; s2 = S / 2 - (a_m if
        # flipped), S the sum of the magnitudes added as a tree (any order keeps the bound)
        odd = _odd_mask(negbits, w.m[3][:bp])
        flip = np.bitwise_and(bit_m, odd, out=w.m[2][:bp])
        tree = w.hi[:, :bp].view(np.float32)
        np.add(af[:4], af[4:], out=tree)
        np.add(tree[:2], tree[2:], out=tree[:2])
        s2 = np.add(tree[0], tree[1], out=w.s[1][:bp])
        np.multiply(s2, np.float32(0.5), out=s2)
        flipped = w.v32[:bp].view(np.int32)
        np.copyto(flipped, odd.view(np.int8), casting="unsafe")        # 0 or -1
        np.bitwise_and(flipped, mn, out=flipped)
        np.subtract(s2, flipped.view(np.float32), out=s2)
        gt = np.greater(s1, s2, out=w.gt[:bp]).view(np.uint8)
        # ... or s1 and s2 closer than the float32 roundings can move them
        np.subtract(s1, s2, out=s1)
        np.abs(s1, out=s1)
        np.multiply(mxf, np.float32(2.0 ** -16), out=s2)
        unsure |= np.less_equal(s1, s2, out=more)
        # the codes: half ^ ((half ^ integer) & -(s1 > s2))
        half = np.bitwise_xor(negbits, flip, out=w.m[3][:bp])
        np.bitwise_and(half, np.uint8(0x7F), out=half)
        neg = np.bitwise_and(negbits, pair, out=w.m[1][:bp])
        idx = self.idx16[:bp]
        np.left_shift(neg, 8, out=idx, dtype=np.uint16)
        np.bitwise_or(idx, pair, out=idx)
        integer = w.table.take(idx)
        np.negative(gt, out=gt)
        np.bitwise_xor(integer, half, out=integer)
        np.bitwise_and(integer, gt, out=integer)
        np.bitwise_xor(half[:b], integer[:b], out=out)
        return unsure[:b]
