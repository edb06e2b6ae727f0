"""Packed sign bits: packing, Hamming distance and asymmetric lookup scores.

Shared by the binary codecs (:mod:`hyperplane_lsh`, :mod:`sign_bits`,
:mod:`itq`). Everything here is exact: integer arithmetic, or float32
operations in one fixed order, so numpy, pure Python and the browser give the
same bytes and the same score bits.

Bit layout of a code (``m`` bits in ``ceil(m / 8)`` bytes)
-----------------------------------------------------------
Bit ``j`` (0-based) of the projection is bit ``j % 8`` (value ``1 << (j % 8)``)
of byte ``j // 8``: least significant bit first, like
``numpy.packbits(..., bitorder="little")`` and like the Clark Hash codes with
``bits=1``. A bit is 1 when the projected value is ``> 0`` (so 0, -0 and
negatives give 0). Padding bits (the high bits of the last byte) are 0.

Asymmetric score (float query ``q`` of ``m`` float32 values against a code)
-----------------------------------------------------------------------------
``score = sum_j (bit_j ? q_j : -q_j)``, evaluated in this exact order:

1. byte tables: for code byte ``b`` and byte value ``v``,
   ``t[b][v] = (((0 + s_0) + s_1) + ...) + s_7`` in float32, where ``s_k`` is
   ``+q_j`` or ``-q_j`` for ``j = 8b + k`` and padding bits add nothing;
2. pair values: ``u_p = t[2p][byte 2p] + t[2p+1][byte 2p+1]`` in float32 (the
   last pair of an odd byte count is just ``t[2p][byte 2p]``);
3. ``score = (((0 + u_0) + u_1) + ...) + u_{P-1}`` in float32.

The numpy path evaluates step 2 with 65,536-entry pair tables (built by the
same float32 additions) and gathers over 16-bit columns of the codes.

Hamming score: ``(m - 2 h) / m`` as float32 (correctly rounded), where ``h``
is the Hamming distance; 1 means identical bits, -1 opposite bits.
"""

from __future__ import annotations

from array import array

POP8 = bytes(bin(v).count("1") for v in range(256))


# -- packing -------------------------------------------------------------------------
def code_bytes_for(nbits: int) -> int:
    """Bytes of a packed code of ``nbits`` bits."""
    return (nbits + 7) // 8


def pack_signs_python(values, nbits: int) -> bytes:
    """Pack ``values[j] > 0`` for j < nbits into bytes (LSB first)."""
    out = bytearray(code_bytes_for(nbits))
    for j in range(nbits):
        if values[j] > 0:
            out[j >> 3] |= 1 << (j & 7)
    return bytes(out)


def pack_signs_numpy(values):
    """(N, m) float array -> (N, ceil(m/8)) uint8 codes of ``values > 0``."""
    import numpy as np

    return np.packbits(np.asarray(values) > 0, axis=1, bitorder="little")


def unpack_bits_python(code: bytes, nbits: int) -> list:
    """The ``nbits`` bits of one code as a list of 0/1."""
    return [(code[j >> 3] >> (j & 7)) & 1 for j in range(nbits)]


# -- Hamming ------------------------------------------------------------------------
def hamming_python(query_code: bytes, codes: bytes, count: int) -> list:
    """Hamming distances of ``count`` packed codes (concatenated) to one code."""
    cb = len(query_code)
    q = int.from_bytes(query_code, "big")
    return [(q ^ int.from_bytes(codes[i * cb:(i + 1) * cb], "big")).bit_count()
            for i in range(count)]


def _popcount_u64(words):
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    lut = np.frombuffer(POP8, dtype=np.uint8)
    return lut[words.view(np.uint8)].reshape(words.shape + (8,)).sum(axis=-1, dtype=np.uint8)


def words_of(codes):
    """(N, cb) uint8 -> (N, ceil(cb/8)) uint64 (zero padded), for popcounts."""
    import numpy as np

    codes = np.asarray(codes, dtype=np.uint8)
    n, cb = codes.shape
    w = (cb + 7) // 8
    if cb == 8 * w and codes.flags.c_contiguous:
        return codes.view(np.uint64)
    padded = np.zeros((n, 8 * w), dtype=np.uint8)
    padded[:, :cb] = codes
    return padded.view(np.uint64)


def hamming_numpy(query_code, words):
    """Hamming distances (int64, N) of uint64 code words (N, w) to one code.

    ``query_code`` is bytes (or uint8 array) of the same packed layout.
    """
    import numpy as np

    q = words_of(np.frombuffer(bytes(query_code), dtype=np.uint8).reshape(1, -1))[0]
    x = np.bitwise_xor(words, q)
    return _popcount_u64(x).astype(np.int64).sum(axis=1)


def hamming_score_python(dist: int, nbits: int) -> float:
    """``(m - 2h) / m`` rounded to float32."""
    from ..float32 import f32

    return f32((nbits - 2 * dist) / nbits)


def hamming_score_numpy(dist, nbits: int):
    import numpy as np

    return (np.float32(nbits) - np.float32(2) * np.asarray(dist).astype(np.float32)) \
        / np.float32(nbits)


# -- asymmetric lookup scores -------------------------------------------------------------
def byte_tables_python(q, nbits: int) -> list:
    """Byte tables ``t[b]`` (each ``array('f')`` of 256) for query values ``q``."""
    cb = code_bytes_for(nbits)
    tables = []
    for b in range(cb):
        acc = array("f", bytes(4 * 256))
        for k in range(8):
            j = 8 * b + k
            if j >= nbits:
                break
            qj = float(q[j])
            mask = 1 << k
            acc = array("f", [a + (qj if v & mask else -qj) for v, a in enumerate(acc)])
        tables.append(acc)
    return tables


def byte_tables_numpy(q, nbits: int):
    """(cb, 256) float32 byte tables; same float32 operations as the Python path."""
    import numpy as np

    cb = code_bytes_for(nbits)
    qp = np.zeros(8 * cb, dtype=np.float32)
    qp[:nbits] = np.asarray(q, dtype=np.float32)[:nbits]
    qp = qp.reshape(cb, 8)
    values = np.arange(256)
    acc = np.zeros((cb, 256), dtype=np.float32)
    for k in range(8):
        bit = ((values >> k) & 1).astype(bool)
        term = np.where(bit[None, :], qp[:, k:k + 1], -qp[:, k:k + 1])
        valid = (np.arange(cb) * 8 + k < nbits)[:, None]
        acc = np.where(valid, acc + term, acc)
    return acc


def pair_tables_numpy(tables):
    """(P, 65536) float32: entry ``lo | hi << 8`` = ``t[2p][lo] + t[2p+1][hi]``."""
    import numpy as np

    cb = tables.shape[0]
    pairs = (cb + 1) // 2
    out = np.empty((pairs, 65536), dtype=np.float32)
    for p in range(pairs):
        lo = tables[2 * p]
        if 2 * p + 1 < cb:
            out[p] = (lo[None, :] + tables[2 * p + 1][:, None]).reshape(-1)
        else:
            out[p] = np.broadcast_to(lo[None, :], (256, 256)).reshape(-1)
    return out


def asymmetric_scores_python(tables, codes: bytes, count: int) -> array:
    """Asymmetric float32 scores of ``count`` concatenated codes."""
    cb = len(tables)
    acc = array("f", bytes(4 * count))
    for p in range(0, cb, 2):
        ta = tables[p]
        if p + 1 < cb:
            tb = tables[p + 1]
            u = array("f", [ta[codes[i * cb + p]] + tb[codes[i * cb + p + 1]]
                            for i in range(count)])
        else:
            u = array("f", [ta[codes[i * cb + p]] for i in range(count)])
        acc = array("f", [a + v for a, v in zip(acc, u)])
    return acc


def u16_columns(codes):
    """(N, cb) uint8 -> (P, N) uint16 columns ``byte 2p | byte 2p+1 << 8``."""
    import numpy as np

    codes = np.asarray(codes, dtype=np.uint8)
    n, cb = codes.shape
    pairs = (cb + 1) // 2
    if cb % 2:
        padded = np.zeros((n, 2 * pairs), dtype=np.uint8)
        padded[:, :cb] = codes
        codes = padded
    return np.ascontiguousarray(np.ascontiguousarray(codes).view("<u2").T.astype(np.uint16))


def asymmetric_scores_numpy(pair_tables, columns, chunk: int = 1 << 16):
    """Float32 scores (N,) from pair tables (P, 65536) and u16 columns.

    ``columns`` is a (P, N) array or a sequence of P (N,) uint16 arrays
    (possibly strided views); pair values are added in pair order.
    """
    import numpy as np

    pairs, n = len(columns), len(columns[0])
    out = np.empty(n, dtype=np.float32)
    u = np.empty(min(n, chunk), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        acc, uu = out[s:e], u[:e - s]
        acc[:] = 0
        for p in range(pairs):
            np.take(pair_tables[p], columns[p][s:e], out=uu, mode="clip")  # all in range
            acc += uu
    return out
