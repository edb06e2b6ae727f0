"""clark_hash_web: compact, searchable sketches of neural embeddings, for desktop, server and browser.

Every codec has the same verbs (``encode``, ``sketch_query``, ``score``,
``decode_sketch``) and writes the same bytes with numpy or in pure Python
(Pyodide core); every index has the same verbs (``add``, ``add_encoded``,
``remove``, ``search``, ``save``/``load``).

>>> from clark_hash_web import codec_from_spec, make_index
>>> index = make_index("e8:384")                 # the recommended 48-byte profile
>>> index = make_index("clark-hash:384")         # byte-identical to the clark-hash crate

Codecs (:mod:`clark_hash_web.codecs`): :class:`ClarkHash`, :class:`E8Codes`,
:class:`SignBits`, :class:`HyperplaneLSH`, :class:`ITQ`, :class:`LearnedE8`; the registry turns
spec strings (``"e8:384"``) and config bytes into codecs. Indexes
(:mod:`clark_hash_web.index`): :class:`FlatIndex`, :class:`BinaryIndex`,
:class:`TwoStageIndex` (rescoring from a :class:`VectorFile`).
"""

from .backends import available_backends
from .codecs.base import EncodedBatch
from .codecs.clark_hash import ClarkHash, QuerySketch, SQuaJL
from .codecs.clark_hash_config import ClarkHashConfig, SQuaJLConfig
from .codecs.e8 import E8Codes, E8Config
from .codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
from .codecs.itq import ITQ, ITQConfig, train_itq
from .codecs.learned_e8 import LearnedE8, LearnedE8Config, train_learned_e8
from .codecs.learned_e8_stages import StagedE8Config, train_staged_e8
from .codecs.registry import (codec_from_config, codec_from_spec, config_from_bytes,
                              config_from_spec, spec_of)
from .codecs.sign_bits import SignBits, SignBitsConfig
from .errors import (ClarkHashError, ConfigError, ConfigMismatchError, DimensionError,
                     DuplicateIdError, InvalidInputError, InvalidVectorError, SketchFileError,
                     SyncError)
from .index import (BinaryIndex, FlatIndex, TwoStageIndex, VectorFile, load_index,
                    make_index)

__version__ = "0.2.0"

__all__ = [
    "BinaryIndex", "ClarkHash", "ClarkHashConfig", "ClarkHashError", "ConfigError",
    "ConfigMismatchError", "DimensionError", "DuplicateIdError", "E8Codes", "E8Config",
    "EncodedBatch", "FlatIndex", "HyperplaneLSH", "HyperplaneLSHConfig", "ITQ", "ITQConfig",
    "InvalidInputError", "InvalidVectorError", "LearnedE8", "LearnedE8Config", "QuerySketch", "SQuaJL", "SQuaJLConfig",
    "SignBits", "SignBitsConfig", "SketchFileError", "StagedE8Config", "SyncError", "TwoStageIndex", "VectorFile",
    "available_backends", "codec_from_config", "codec_from_spec", "config_from_bytes",
    "config_from_spec", "load_index", "make_index", "spec_of", "train_itq", "train_learned_e8", "train_staged_e8",
    "__version__",
]
