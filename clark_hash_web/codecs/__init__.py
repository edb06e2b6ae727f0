"""Codecs: vectors in, compact codes out, with the same verbs on every codec.

``encode`` (vectors -> :class:`~clark_hash_web.codecs.base.EncodedBatch`),
``sketch_query`` (one vector -> a prepared query), ``score`` (query against
codes) and ``decode_sketch``. One module per codec:

- :mod:`.clark_hash` (+ :mod:`.clark_hash_config`): the exact Clark Hash
  profile of the clark-hash 0.1.1 crate;
- :mod:`.e8` (+ :mod:`.e8_fast`, its vectorized encoder): E8 lattice codes, the
  recommended 48-byte profile;
- :mod:`.learned_e8`: E8 after a rotation trained on your embeddings;
- :mod:`.sign_bits`, :mod:`.hyperplane_lsh`, :mod:`.itq`: binary codes (shared
  machinery in :mod:`.binary` and :mod:`.bitpack`);
- :mod:`.registry`: config bytes or a spec string such as ``"e8:384"`` to a codec.
"""
