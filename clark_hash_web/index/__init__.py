"""Indexes: stored codes plus ids, searched with a query vector.

Every index has the same verbs (:mod:`.base`); :func:`make_index` and
:func:`load_index` (:mod:`.factory`) pick the right one for a codec or a file.

- :mod:`.flat`: :class:`FlatIndex` (Clark Hash codes, exact scan with a proven prefilter);
- :mod:`.binary`: :class:`BinaryIndex` (binary and E8 codes, optional Hamming prefilter);
- :mod:`.two_stage`: :class:`TwoStageIndex` (rescoring from vectors kept on disk).
"""

from .base import Index
from .binary import BinaryIndex
from .factory import load_index, make_index
from .flat import FlatIndex
from .two_stage import TwoStageIndex, VectorFile

__all__ = ["BinaryIndex", "FlatIndex", "Index", "TwoStageIndex", "VectorFile", "load_index",
           "make_index"]
