"""Fast numpy E8 encoder: the exact block rule of :mod:`clark_hash_web.codecs.e8`, column-wise.

The reference formulation works on ``(blocks, 8)`` arrays with ``argmax``
along the short axis and fancy indexing. Here a chunk of blocks becomes 8
coordinate columns ``(8, B)`` of ``|x|`` bit patterns (int32: same order and
equality as the floats, since ``|x| >= +0`` and nothing is NaN), and every
step is a whole-column operation into buffers allocated once per call:

* the two largest magnitudes (counting repeats) come from a tournament
  (max/min of column halves), the smallest from one ``min``;
* "first index of the largest / of the largest among the others / of the
  smallest" is the lowest set bit of a byte of equality flags (bit ``k`` =
  column ``k``), kept as a one-bit mask, never as an index;
* the integer root's byte is read from one table indexed by the two-bit
  mask of ``i, j`` and the sign bits under it.

Every float32 operation that decides the code is the reference one (same
operands, same order): ``s1 = a_i + a_j``, ``T`` the sequential sum
``((0 + t_0) + t_1) + ...`` of the magnitudes with the flipped one negated,
``s2 = 0.5 T``; so the bytes are identical. Chunks of ``CHUNK_BLOCKS``
blocks keep the buffers in cache whatever the batch size.
"""

from __future__ import annotations

CHUNK_BLOCKS = 1 << 14


def _integer_table():
    """uint8 (65536,): the integer root byte at ``pair_mask | neg_mask << 8``.

    ``pair_mask`` has bits ``lo < hi`` set; ``neg_mask`` is the sign bits of the
    block restricted to those two (other entries are never read).
    """
    import numpy as np

    from .e8 import PAIRS

    table = np.zeros(65536, dtype=np.uint8)
    for p, (lo, hi) in enumerate(PAIRS):
        mask = (1 << lo) | (1 << hi)
        for n_lo in (0, 1):
            for n_hi in (0, 1):
                neg = (n_lo << lo) | (n_hi << hi)
                table[mask | neg << 8] = 128 + 4 * p + 2 * n_lo + n_hi
    return table


_TABLE = []


class _Work:
    """Buffers for chunks of up to ``width`` blocks (a multiple of 8)."""

    def __init__(self, width: int):
        import numpy as np

        if not _TABLE:
            _TABLE.append(_integer_table())
        self.table = _TABLE[0]
        self.width = width
        w8 = width // 8
        self.a = np.empty((8, width), dtype=np.int32)          # |x| bits, columns
        self.terms = np.empty((8, width), dtype=np.uint32)     # signed magnitudes
        self.b = np.empty((8, width), dtype=np.bool_)          # per-column flags
        self.signs = np.empty((width, 8), dtype=np.bool_)      # per-block flags
        self.word = np.empty(width, dtype="<u8")
        self.v32 = np.empty(width, dtype=np.uint32)
        self.hi = np.empty((4, width), dtype=np.int32)         # tournament
        self.lo = np.empty((4, width), dtype=np.int32)
        self.t = np.empty((2, width), dtype=np.int32)
        self.w64 = np.empty((8, w8), dtype="<u8")
        self.shift64 = np.arange(8, dtype="<u8")[:, None]
        self.shift31 = (31 - np.arange(8, dtype=np.uint32))[:, None]
        self.v = [np.empty(width, dtype=np.int32) for _ in range(3)]     # max, second, min
        self.f = [np.empty(w8, dtype="<u8") for _ in range(3)]        # flag bytes
        self.m = [np.empty(width, dtype=np.uint8) for _ in range(5)]
        self.s = [np.empty(width, dtype=np.float32) for _ in range(2)]
        self.idx = np.empty(width, dtype=np.intp)
        self.gt = np.empty(width, dtype=np.bool_)


def _flags(w, cols_bool, out):
    """(8, B) bools -> (B,) uint8 (viewing ``out``, B/8 uint64) with bit k = row k."""
    import numpy as np

    u = cols_bool.view("<u8")                     # 8 blocks per word, one 0/1 byte each
    n = u.shape[1]
    np.left_shift(u, w.shift64, out=w.w64[:, :n])
    np.bitwise_or.reduce(w.w64[:, :n], axis=0, out=out[:n])
    return out[:n].view(np.uint8)


_GATHER = 0x0102040810204080      # byte k (0 or 1) of a uint64 -> bit 56 + k of the product


def _sign_bits(w, blocks, bp):
    """(b, 8) float32 -> (bp,) uint8 with bit k = ``x_k < 0`` (-0.0 is not), 0 past b.

    The 8 flags of a block are 8 bytes of one uint64; multiplying by
    ``_GATHER`` lands byte k on bit ``56 + k`` without carries (every byte
    meets every multiplier bit at a distinct position).
    """
    import numpy as np

    b = len(blocks)
    flags = w.signs[:bp]
    np.less(blocks, np.float32(0), out=flags[:b])
    flags[b:] = False
    word = w.word[:bp]
    np.multiply(flags.view("<u8")[:, 0], np.uint64(_GATHER), out=word)
    np.right_shift(word, np.uint64(56), out=word)
    out = w.m[4][:bp]
    np.copyto(out, word, casting="unsafe")
    return out


def _odd_mask(bits, out):
    """0xFF where uint8 ``bits`` has an odd number of set bits, else 0."""
    import numpy as np

    if hasattr(np, "bitwise_count"):
        np.bitwise_count(bits, out=out)
    else:                                         # numpy < 2: fold the parity into bit 0
        np.right_shift(bits, 4, out=out)
        np.bitwise_xor(out, bits, out=out)
        np.bitwise_xor(out, out >> 2, out=out)
        np.bitwise_xor(out, out >> 1, out=out)
    np.bitwise_and(out, np.uint8(1), out=out)
    return np.negative(out, out=out)


def _lowest_bit(mask, out):
    """The lowest set bit of each uint8 ``mask`` as a one-bit mask (0 for 0)."""
    import numpy as np

    np.negative(mask, out=out)
    return np.bitwise_and(mask, out, out=out)


class BlockEncoder:
    """Encodes blocks with buffers for ``width`` blocks at a time, reused across calls.

    Parameters
    ----------
    width : int
        Blocks per step (rounded up to a multiple of 8); ``CHUNK_BLOCKS`` keeps
        the buffers in cache.
    """

    def __init__(self, width: int = CHUNK_BLOCKS):
        self.work = _Work(max(8, -(-int(width) // 8) * 8))

    def __call__(self, blocks):
        """(B, 8) float32 blocks -> (B,) uint8 root numbers (see :mod:`.e8`)."""
        import numpy as np

        blocks = np.ascontiguousarray(blocks, dtype=np.float32)
        n, step = len(blocks), self.work.width
        out = np.empty(n, dtype=np.uint8)
        for s in range(0, n, step):
            e = min(n, s + step)
            out[s:e] = _encode_chunk(self.work, blocks[s:e])
        return out


def encode_blocks(blocks):
    """(B, 8) float32 blocks -> (B,) uint8 root numbers (see :mod:`.e8`)."""
    return BlockEncoder(min(CHUNK_BLOCKS, max(1, len(blocks))))(blocks)


def _largest_two_and_smallest(w, a, bp):
    """Per column of ``a`` (8, bp) int32 magnitudes: the largest, the second largest
    (repeats counted) and the smallest, as views into ``w``'s buffers (a tournament)."""
    import numpy as np

    hi, lo, t = w.hi[:, :bp], w.lo[:, :bp], w.t[:, :bp]
    np.maximum(a[:4], a[4:], out=hi)
    np.minimum(a[:4], a[4:], out=lo)
    np.maximum(lo[:2], lo[2:], out=lo[:2])       # best loser of round 1
    np.minimum(hi[:2], hi[2:], out=t)            # loser of round 2
    np.maximum(lo[:2], t, out=lo[:2])
    np.maximum(hi[:2], hi[2:], out=hi[:2])
    mx, mx2, mn = (v[:bp] for v in w.v)
    np.maximum(hi[0], hi[1], out=mx)
    np.minimum(hi[0], hi[1], out=mx2)
    np.maximum(mx2, lo[0], out=mx2)
    np.maximum(mx2, lo[1], out=mx2)
    a.min(axis=0, out=mn)
    return mx, mx2, mn


def _encode_chunk(w, blocks):
    import numpy as np

    b = len(blocks)
    bp = -(-b // 8) * 8                          # padded to whole uint64 words of flags
    a, flag = w.a[:, :bp], w.b[:, :bp]
    a[:, :b] = blocks.view(np.int32).T
    if bp > b:                                   # zero blocks: encoded, then dropped
        a[:, b:] = 0
    np.bitwise_and(a, np.int32(0x7FFFFFFF), out=a)
    negbits = _sign_bits(w, blocks, bp)
    mx, mx2, mn = _largest_two_and_smallest(w, a, bp)
    # i: first column holding mx; j: first other column holding mx2 (one-bit masks)
    np.equal(a, mx, out=flag)
    bit_i = _lowest_bit(_flags(w, flag, w.f[0]), w.m[0][:bp])
    np.equal(a, mx2, out=flag)
    rest = _flags(w, flag, w.f[1])
    np.bitwise_and(rest, np.invert(bit_i, out=w.m[1][:bp]), out=rest)
    bit_j = _lowest_bit(rest, w.m[1][:bp])
    s1 = w.s[0][:bp]
    np.add(mx.view(np.float32), mx2.view(np.float32), out=s1)
    # half root: flip the first smallest when the sign count is odd
    np.equal(a, mn, out=flag)
    flip = _lowest_bit(_flags(w, flag, w.f[2]), w.m[2][:bp])
    np.bitwise_and(flip, _odd_mask(negbits, w.m[3][:bp]), out=flip)
    terms = w.terms[:, :bp]
    flip32 = w.v32[:bp]
    np.copyto(flip32, flip)
    np.left_shift(flip32, w.shift31, out=terms)  # bit k of flip -> bit 31 of column k
    np.bitwise_and(terms, np.uint32(0x80000000), out=terms)
    np.bitwise_or(a.view(np.uint32), terms, out=terms)
    tf = terms.view(np.float32)
    s2 = w.s[1][:bp]
    np.add(np.float32(0), tf[0], out=s2)
    for k in range(1, 8):
        np.add(s2, tf[k], out=s2)
    np.multiply(np.float32(0.5), s2, out=s2)
    # the two codes, and the choice
    half = np.bitwise_xor(negbits, flip, out=w.m[3][:bp])
    np.bitwise_and(half, np.uint8(0x7F), out=half)
    pair = np.bitwise_or(bit_i, bit_j, out=bit_i)
    neg = np.bitwise_and(negbits, pair, out=bit_j)
    idx = w.idx[:bp]
    np.left_shift(neg, 8, out=idx, dtype=np.intp)
    np.bitwise_or(idx, pair, out=idx)
    integer = np.take(w.table, idx, out=w.m[2][:bp], mode="clip")
    # half ^ ((half ^ integer) & -(s1 > s2)): the integer byte where s1 > s2
    gt = np.greater(s1, s2, out=w.gt[:bp]).view(np.uint8)
    np.negative(gt, out=gt)
    np.bitwise_xor(integer, half, out=integer)
    np.bitwise_and(integer, gt, out=integer)
    return np.bitwise_xor(half, integer, out=half)[:b]
