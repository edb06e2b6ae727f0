"""clark_hash_web: Clark Hash sketches of neural embeddings, for desktop, server and browser.

Codes are byte-identical to the clark-hash 0.1.1 Rust crate, computed either
with vectorized numpy or in pure Python (when numpy is unavailable, e.g. in
Pyodide core), and both give the same bytes.

>>> from clark_hash_web import ClarkHashConfig, ClarkHash, FlatIndex
>>> codec = ClarkHash(ClarkHashConfig(input_dim=384))
>>> index = FlatIndex(codec)
"""

from .backends import available_backends
from .codec import ClarkHash, EncodedBatch, QuerySketch, SQuaJL
from .config import ClarkHashConfig, SQuaJLConfig
from .errors import (ClarkHashError, ConfigError, ConfigMismatchError, DimensionError,
                     DuplicateIdError, InvalidInputError, InvalidVectorError, SketchFileError)
from .index import FlatIndex

__version__ = "0.1.0"

__all__ = [
    "ClarkHash", "ClarkHashConfig", "ClarkHashError", "ConfigError", "ConfigMismatchError",
    "DimensionError", "DuplicateIdError", "EncodedBatch", "FlatIndex", "InvalidInputError",
    "InvalidVectorError", "QuerySketch", "SQuaJL", "SQuaJLConfig", "SketchFileError",
    "available_backends", "__version__",
]
