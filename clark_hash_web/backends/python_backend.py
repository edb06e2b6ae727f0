"""Pure-Python Clark Hash arithmetic (no numpy).

Float32 semantics come from rounding every double result once to float32
(``array('f')``), which is exact for single ``+ - * / sqrt`` operations. This
backend is the executable specification: it follows NUMERICS.md step by step.
Batches are lists of ``array('f')`` rows; codes are ``bytes``.
"""

from __future__ import annotations

import math
from array import array
from operator import add

from ..float32 import f32, round_half_away
from ..codecs.norm_channel import decode_table, norm_code
from .tables import CodecTables


class PythonBackend:
    """Encode, sketch and score with plain Python floats rounded to float32."""

    name = "python"

    def __init__(self, config):
        self.config = config
        self.t = CodecTables(config)
        b, mask = config.bits, self.t.L
        # byte value -> level at each in-byte position (only when levels never straddle bytes)
        self._byte_lanes = ([bytes((v >> s) & mask for v in range(256)) for s in range(0, 8, b)]
                            if 8 % b == 0 else None)

    # -- projection ----------------------------------------------------------
    def project_row(self, x):
        """Sketch (``array('f')`` of m, in bucket order 0..m-1) and norm of one row."""
        t = self.t
        nsq = 0.0
        squares = array("f", [v * v for v in x])
        acc1 = array("f", [0.0])
        for sq in squares:
            acc1[0] = nsq + sq
            nsq = acc1[0]
        norm = f32(math.sqrt(nsq))
        xs = array("f", [v * t.scale for v in x])
        stacked = list(xs) + [-v for v in xs]
        acc = array("f", bytes(4 * len(t.order)))
        for sources in t.step_sources:
            k = len(sources)
            acc[:k] = array("f", [a + stacked[src] for a, src in zip(acc[:k], sources)])
        out = array("f", bytes(4 * len(t.order)))
        for j, b in enumerate(t.order):
            out[b] = acc[j]
        if norm <= 2.0**-23:  # rejected by the caller; no scaling
            return out, norm
        post = f32(t.sqrt_m / norm)
        return array("f", [v * post for v in out]), norm

    # -- quantization ------------------------------------------------------------
    def quantize(self, sketch) -> bytes:
        """Pack the levels of one sketch into ``code_bytes`` bytes (LSB-first stream)."""
        t, b = self.t, self.config.bits
        c, L = t.clip, float(t.L)
        packed = 0
        for k, z in enumerate(sketch):
            if z != z:
                level = 0
            else:
                zc = min(max(z, -c), c)
                u = f32(f32(zc + c) / t.two_c)
                v = f32(u * L)
                level = int(min(max(round_half_away(v), 0.0), L))
            packed |= level << (k * b)
        return packed.to_bytes(self.config.code_bytes, "little")

    def levels(self, code: bytes) -> list:
        """Unpack one code into its m levels."""
        b, mask = self.config.bits, self.t.L
        v = int.from_bytes(code, "little")
        return [(v >> (k * b)) & mask for k in range(self.config.sketch_dim)]

    # -- batches -------------------------------------------------------------------
    def encode(self, rows):
        """Codes, norm codes (dot mode) and norms of float32 rows.

        Returns ``(codes: bytes, norm_codes: list[int] | None, norms: list[float])``;
        rows whose norm is not positive still get a (meaningless) code here,
        the caller rejects them using ``norms``.
        """
        cfg = self.config
        out = bytearray()
        norms = []
        for x in rows:
            sketch, norm = self.project_row(x)
            out += self.quantize(sketch)
            norms.append(norm)
        ncodes = None
        if cfg.metric == "dot":
            ncodes = [norm_code(n, cfg.norm_log2_min, cfg.norm_log2_max) for n in norms]
        return bytes(out), ncodes, norms

    def decode_sketch(self, codes: bytes, count: int) -> list:
        """Dequantized coordinates (list of ``array('f')``) of ``count`` codes."""
        cb, deq = self.config.code_bytes, self.t.deq
        return [array("f", [deq[lv] for lv in self.levels(codes[i * cb:(i + 1) * cb])])
                for i in range(count)]

    def level_columns(self, codes: bytes, count: int) -> list:
        """Levels of coordinate k of every row, as ``bytes`` (one per k).

        Works on whole columns at once: byte column j of the codes is
        ``codes[j::code_bytes]``, and the lane-wise shifts that extract a
        coordinate are done on the column read as one big integer (8-bit
        lanes; masks drop what crosses a lane boundary).
        """
        cfg = self.config
        cb, b, mask = cfg.code_bytes, cfg.bits, self.t.L
        if count == 0:
            return [b""] * cfg.sketch_dim
        lanes = lambda v: int.from_bytes(bytes([v]) * count, "little")  # noqa: E731
        cols = [int.from_bytes(codes[j::cb], "little") for j in range(cb)]
        out = []
        for k in range(cfg.sketch_dim):
            pos = k * b
            byte, shift = pos >> 3, pos & 7
            v = (cols[byte] >> shift) & lanes(0xFF >> shift)
            if shift + b > 8:
                v |= (cols[byte + 1] << (8 - shift)) & lanes((0xFF << (8 - shift)) & 0xFF)
            out.append((v & lanes(mask)).to_bytes(count, "little"))
        return out

    def score(self, query_values, query_norm, codes: bytes, count: int, norm_codes=None,
              rows=None):
        """Exact float32 scores of ``count`` codes (or of ``rows`` only), crate order.

        Row by row this is ``acc += q[k] * deq(level_k)`` for k in order; it
        is evaluated coordinate by coordinate over all rows, rounding every
        sum to float32 with one ``array('f')`` per coordinate.
        """
        cfg, t = self.config, self.t
        cb = cfg.code_bytes
        if rows is not None:
            rows = list(rows)
            if len(rows) < len(t.deq):
                return self._finish(self._accumulate_few(query_values, codes, rows), query_norm,
                                    norm_codes, rows)
            codes = b"".join(codes[i * cb:(i + 1) * cb] for i in rows)
            count = len(rows)
        products = [array("f", [q * dv for dv in t.deq]) for q in query_values]
        acc = array("f", bytes(4 * count))
        for pk, levels in zip(products, self.level_columns(codes, count)):
            acc = array("f", map(add, acc, map(pk.__getitem__, levels)))
        return self._finish(acc, query_norm, norm_codes, rows)

    def _accumulate_few(self, query_values, codes: bytes, rows: list):
        """The float32 accumulators of a few ``rows`` (fewer than there are levels).

        The same products ``f32(q[k] * deq(level))`` and the same sequential
        float32 sums as :meth:`score`, but each product is computed for the
        row that needs it instead of tabulating every level of every
        coordinate (the browser ranks about ten candidate rows per query).
        """
        n = len(rows)
        if n == 0:
            return array("f")
        deq = self.t.deq
        columns = self._few_level_columns(codes, rows)
        products = array("f", [q * deq[lv] for q, column in zip(query_values, columns)
                               for lv in column])      # coordinate-major: n products per coordinate
        acc = array("f", bytes(4 * n))
        for o in range(0, len(products), n):
            acc = array("f", map(add, acc, products[o:o + n]))
        return acc

    def _few_level_columns(self, codes: bytes, rows: list) -> list:
        """:meth:`level_columns` of a few ``rows`` of ``codes``.

        When levels never straddle a byte (bits 1, 2, 4, 8), coordinate k is
        one shifted-and-masked byte column: ``bytes.translate`` does the
        shift and mask for all rows at once, a slice picks the column.
        """
        cfg = self.config
        cb = cfg.code_bytes
        picked = b"".join([codes[i * cb:(i + 1) * cb] for i in rows])
        if self._byte_lanes is None:
            return self.level_columns(picked, len(rows))
        per = len(self._byte_lanes)
        shifted = [picked.translate(table) for table in self._byte_lanes]
        return [shifted[k % per][k // per::cb] for k in range(cfg.sketch_dim)]

    def _finish(self, acc, query_norm, norm_codes, rows):
        """Scores from the accumulators: ``acc / m``, then the dot-mode norm scaling."""
        cfg, t = self.config, self.t
        m = t.m_f32
        out = array("f", [a / m for a in acc])
        if cfg.metric == "dot":
            table = decode_table(cfg.norm_log2_min, cfg.norm_log2_max)
            ncodes = norm_codes if rows is None else [norm_codes[i] for i in rows]
            qn = query_norm
            out = array("f", [f32(s * qn) * table[c] for s, c in zip(out, ncodes)])
        return out
