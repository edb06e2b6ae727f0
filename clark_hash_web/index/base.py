"""What every index shares: the verbs, ``add`` through ``add_encoded``, and sketch files.

Every index (:class:`~clark_hash_web.FlatIndex`, :class:`~clark_hash_web.BinaryIndex`,
:class:`~clark_hash_web.TwoStageIndex`) offers the same verbs:

==========================================  ==========================================
verb                                        what it does
==========================================  ==========================================
``add(vectors, ids=None, errors="raise")``  encode and store; returns the stored ids
``add_encoded(encoded, ids=None)``          store codes of the same config
``remove(ids)``                             delete rows by id; returns how many
``search(query, k=10, **options)``          top ``k`` ``(ids, scores)``, descending,
                                            exact ties by insertion order
``search_batch(queries, k=10, **options)``  :meth:`search` for each query
``save(path)`` / ``load(path)``             a sketch file (:mod:`..formats.sketch_file`)
``len(index)``, ``id in index``, ``ids``    bookkeeping
==========================================  ==========================================

:func:`clark_hash_web.index.make_index` picks the right one for a codec.
"""

from __future__ import annotations

import os

from ..codecs import registry
from ..errors import ConfigError, InvalidInputError
from .ids import ids_of_encoded_rows


class Index:
    """Base of the in-memory indexes: ``add``, ``search_batch``, ``save`` and ``load``.

    Subclasses set ``codec``, ``config`` and ``_ids`` (an :class:`~.ids.IdMap`) and
    implement ``add_encoded``,
    ``remove``, ``search``, ``encoded`` and the bookkeeping, and
    :meth:`accepts` (which codecs they can hold).
    """

    codec = None
    config = None

    @classmethod
    def accepts(cls, codec) -> bool:
        """True when this index type can hold ``codec``'s codes."""
        raise NotImplementedError

    @property
    def backend(self) -> str:
        return self.codec.backend

    def ids_at(self, rows) -> list:
        """The ids of row numbers (insertion order positions), without copying every id."""
        return self._ids.ids_at(rows)

    def rows_of_ids(self, ids) -> list:
        """The row numbers of stored ids, in that order (KeyError naming unknown ids)."""
        return self._ids.rows_of(ids)

    def add(self, vectors, ids=None, errors: str = "raise") -> list:
        """Encode and store vectors; returns the ids of the stored rows.

        With ``errors="skip"`` bad rows are left out (ids given for them are
        not used); see the codec's ``encode``.
        """
        enc = self.codec.encode(vectors, errors=errors)
        return self.add_encoded(enc, ids_of_encoded_rows(ids, enc))

    def search_batch(self, queries, k: int = 10, **options) -> list:
        """:meth:`search` for each row of ``queries`` (N, d); a list of ``(ids, scores)``."""
        if hasattr(queries, "ndim") and queries.ndim != 2:
            raise InvalidInputError(f"queries must be 2-D, got shape {queries.shape}")
        return [self.search(q, k, **options) for q in queries]

    # -- files ----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write every row, with its id, to a sketch file (atomic replace).

        Rows keep their order, so ties rank the same after :meth:`load`.
        """
        from ..formats import sketch_file

        enc = self.encoded()
        sketch_file.save(path, self.config, enc.codes_bytes(), enc.norm_codes_bytes(),
                         self.ids or None)

    @classmethod
    def load(cls, path, backend=None):
        """A new index holding a sketch file's rows (ids 0..N-1 if it has none).

        Raises SketchFileError for damaged files and ConfigError when the file
        holds codes this index type cannot search.
        """
        from ..formats import sketch_file

        data = sketch_file.load(path)
        codec = registry.codec_from_config(data.config, backend)
        if not cls.accepts(codec):
            raise ConfigError(f"{os.fspath(path)} holds {registry.kind_of(data.config).title} "
                              f"codes, which {cls.__name__} cannot search "
                              f"(use clark_hash_web.index.load_index)")
        index = cls(codec)
        if data.count:
            index.add_encoded(data.to_encoded(), data.ids)
        return index
