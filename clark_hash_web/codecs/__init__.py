"""Codecs: vectors in, compact codes out, with the same verbs on every codec.

``encode`` (vectors -> :class:`~clark_hash_web.codecs.base.EncodedBatch`),
``sketch_query`` (one vector -> a prepared query), ``score`` (query against
codes) and ``decode_sketch``. One module per codec:

- :mod:`.clark_hash` (+ :mod:`.clark_hash_config`): the exact Clark Hash
  profile of the clark-hash 0.1.1 crate;
- :mod:`.e8`: E8 lattice codes (the recommended 48-byte profile);
- :mod:`.sign_bits`, :mod:`.hyperplane_lsh`, :mod:`.itq`: binary codes;
- :mod:`.registry`: config bytes or a spec string such as ``"e8:384"`` to a codec.
"""
