"""int8 rescoring rows kept in IndexedDB: the rows of a :class:`VectorFile`, without the file.

The browser store's two-stage search keeps, beside each sketch, the same int8
row a desktop :class:`~clark_hash_web.index.two_stage.VectorFile` of kind
``"int8"`` stores (4-byte float32 scale, then ``d`` int8 values; unit vectors
for cosine configs, raw ones for dot), so a browser rescoring gives the
desktop :class:`~clark_hash_web.index.two_stage.TwoStageIndex`'s ids and
score bits. The rows live in the store's IndexedDB block records; this class
only prepares them (and the query) with the VectorFile's own code.

The rescoring itself runs in JavaScript (static/table-scan.js,
``rescoreInt8``), in the VectorFile's exact float32 order: ``acc`` is the
sequential float32 sum over i of ``fl(q_i * c_i)``, the score ``fl(acc * scale)``.
"""

from __future__ import annotations

from ..index.two_stage import VectorFile, _numpy_ok


class Int8Rows(VectorFile):
    """Row and query preparation of an int8 :class:`VectorFile` with no file behind it.

    Parameters
    ----------
    dim : int
        Vector dimension.
    metric : {"cosine", "dot"}
        The codec config's metric (cosine rows are normalized first).
    backend : {"numpy", "python", None}

    Notes
    -----
    Only :meth:`prepare_rows` (row bytes: f32 LE scale + ``dim`` int8) and
    :meth:`prepare_query` (float32 values) are meant to be used; reading and
    appending need a file and are refused.
    """

    def __init__(self, dim: int, metric: str = "cosine", backend=None):  # noqa: super not called: no file
        self.path = "<IndexedDB>"
        self.dim, self.kind, self.metric = int(dim), "int8", metric
        self.use_numpy = _numpy_ok(backend)
        self.row_bytes = 4 + self.dim
        self._count = 0

    def append_prepared(self, data):
        raise TypeError("Int8Rows has no file: the browser store writes its rows to IndexedDB")

    def _raw(self, rows):
        raise TypeError("Int8Rows has no file: the browser store rescores in JavaScript")

    def query_bytes(self, query) -> bytes:
        """The prepared query (normalized for cosine) as float32 LE bytes."""
        import struct

        q = self.prepare_query(query)
        return struct.pack(f"<{self.dim}f", *[float(v) for v in q])
