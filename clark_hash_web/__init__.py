"""clark_hash_web: Clark Hash sketches of neural embeddings, for desktop, server and browser.

Codes are byte-identical to the clark-hash 0.1.1 Rust crate, computed either
with vectorized numpy or in pure Python (when numpy is unavailable, e.g. in
Pyodide core), and both give the same bytes.

>>> from clark_hash_web import ClarkHashConfig, ClarkHash, FlatIndex
>>> codec = ClarkHash(ClarkHashConfig(input_dim=384))
>>> index = FlatIndex(codec)

Binary codecs with the same verbs (``encode``, ``sketch_query``, ``score``):
:class:`SignBits`, :class:`HyperplaneLSH`, :class:`ITQ`, :class:`E8Codes`,
searched with :class:`BinaryIndex`; :class:`TwoStageIndex` rescores the top
candidates from vectors kept on disk (:class:`VectorFile`).
"""

from .backends import available_backends
from .index.binary import BinaryIndex
from .codecs.clark_hash import ClarkHash, QuerySketch, SQuaJL
from .codecs.base import EncodedBatch
from .codecs.clark_hash_config import ClarkHashConfig, SQuaJLConfig
from .codecs.e8 import E8Codes, E8Config
from .errors import (ClarkHashError, ConfigError, ConfigMismatchError, DimensionError,
                     DuplicateIdError, InvalidInputError, InvalidVectorError, SketchFileError,
                     SyncError)
from .codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
from .index.flat import FlatIndex
from .codecs.itq import ITQ, ITQConfig, train_itq
from .codecs.sign_bits import SignBits, SignBitsConfig
from .index.two_stage import TwoStageIndex, VectorFile

__version__ = "0.1.0"

__all__ = [
    "BinaryIndex", "ClarkHash", "ClarkHashConfig", "ClarkHashError", "ConfigError",
    "ConfigMismatchError", "DimensionError", "DuplicateIdError", "E8Codes", "E8Config",
    "EncodedBatch", "FlatIndex", "HyperplaneLSH", "HyperplaneLSHConfig", "ITQ", "ITQConfig",
    "InvalidInputError", "InvalidVectorError", "QuerySketch", "SQuaJL", "SQuaJLConfig",
    "SignBits", "SignBitsConfig", "SketchFileError", "SyncError", "TwoStageIndex", "VectorFile",
    "available_backends", "train_itq", "__version__",
]
