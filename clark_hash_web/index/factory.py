"""One factory for every index: :func:`make_index` and :func:`load_index`.

==================================  =========================================
codec                               index
==================================  =========================================
Clark Hash                          :class:`~clark_hash_web.FlatIndex`
sign bits, hyperplane LSH, ITQ, E8  :class:`~clark_hash_web.BinaryIndex`
any of them, with ``vectors=``      :class:`~clark_hash_web.TwoStageIndex`
                                    around the one above
==================================  =========================================

>>> index = make_index("e8:384")                                   # doctest: +SKIP
>>> index = make_index("e8:384", vectors=VectorFile("v.bin", 384, "int8"))  # doctest: +SKIP
"""

from __future__ import annotations

from ..codecs import registry
from ..errors import ConfigError
from .binary import BinaryIndex
from .flat import FlatIndex
from .two_stage import TwoStageIndex, VectorFile

#: stage-1 index types, in the order they are asked whether they accept a codec
INDEX_TYPES = (FlatIndex, BinaryIndex)


def index_type_for(codec):
    """The stage-1 index class that holds ``codec``'s codes, or None."""
    return next((t for t in INDEX_TYPES if t.accepts(codec)), None)


def make_index(codec, vectors=None, backend=None, rescore_multiplier: int = 10):
    """An empty index for a codec.

    Parameters
    ----------
    codec : codec, config, config bytes or spec string (e.g. ``"e8:384"``)
    vectors : VectorFile, optional
        Given: a :class:`TwoStageIndex` that rescores from these vectors.
    backend : {"numpy", "python", None}
        For a codec built here from a config, bytes or spec.
    rescore_multiplier : int, default 10
        Two-stage only: candidates rescored per result.
    """
    codec = registry.as_codec(codec, backend)
    kind = index_type_for(codec)
    if kind is None:
        raise ConfigError(f"no index holds {type(codec).__name__} codes")
    index = kind(codec)
    if vectors is None:
        return index
    if not isinstance(vectors, VectorFile):
        raise ConfigError(f"vectors must be a VectorFile, got {type(vectors).__name__}")
    return TwoStageIndex(index, vectors, rescore_multiplier)


def load_index(path, backend=None, vectors=None, rescore_multiplier: int = 10):
    """The index of a sketch file, whatever codec wrote it (two-stage with ``vectors=``)."""
    from ..formats import sketch_file

    if vectors is not None:
        return TwoStageIndex.load(path, backend=backend, vectors=vectors,
                                  rescore_multiplier=rescore_multiplier)
    data = sketch_file.load(path)
    index = make_index(data.config, backend=backend)
    if data.count:
        index.add_encoded(data.to_encoded(), data.ids)
    return index
