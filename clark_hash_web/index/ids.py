"""Row ids of an index: :class:`IdMap`.

Indexes store rows in insertion order (ranking ties depend on it) and let
callers name rows with ids: all ints or all strs, unique. Rows added without
ids get consecutive ints after the largest int id seen so far.
"""

from __future__ import annotations

from ..errors import DuplicateIdError, InvalidInputError


class IdMap:
    """Ids in row order, with the row of every id."""

    def __init__(self):
        self._ids = []
        self._row_of = {}
        self._next_auto = 0

    def __len__(self):
        return len(self._ids)

    def __contains__(self, id_):
        return id_ in self._row_of

    def __getitem__(self, row: int):
        return self._ids[row]

    @property
    def ids(self) -> list:
        """Ids in row (insertion) order."""
        return list(self._ids)

    def check_new(self, ids, count: int) -> list:
        """Validate ``count`` new ids (or number them when ``ids`` is None); stores nothing.

        The common case (valid ids) is checked with set operations; only a
        batch that fails them is walked id by id, to name the bad one.
        """
        if ids is None:
            return list(range(self._next_auto, self._next_auto + count))
        ids = list(ids)
        if len(ids) != count:
            raise InvalidInputError(f"{len(ids)} ids for {count} vectors")
        kinds = set(map(type, ids)) | ({type(self._ids[0])} if self._ids else set())
        if not (kinds <= {int, str} and len(kinds) <= 1 and len(set(ids)) == len(ids)
                and self._row_of.keys().isdisjoint(ids)):
            self._explain_bad_ids(ids)
        return ids

    def _explain_bad_ids(self, ids) -> None:
        """Raise the error for the first bad id of ``ids`` (or return when they are fine)."""
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, str)):
                raise InvalidInputError(f"ids must be int or str, got {i!r}")
        kinds = {str if isinstance(i, str) else int for i in ids}
        if self._ids:
            kinds.add(str if isinstance(self._ids[0], str) else int)
        if len(kinds) > 1:
            raise InvalidInputError("ids of one index must all be int or all be str")
        seen = set()
        for pos, i in enumerate(ids):
            if i in self._row_of:
                raise DuplicateIdError(f"id {i!r} (batch position {pos}) is already in the index")
            if i in seen:
                raise DuplicateIdError(f"id {i!r} appears twice in the batch (position {pos})")
            seen.add(i)

    def append(self, ids) -> None:
        """Add ids (already checked with :meth:`check_new`) as the next rows."""
        ids = list(ids)
        start = len(self._ids)
        self._row_of.update(zip(ids, range(start, start + len(ids))))
        self._ids.extend(ids)
        if ids and not isinstance(ids[0], str):   # checked: all ints or all strs
            self._next_auto = max(self._next_auto, max(ids) + 1)

    def rows_to_keep(self, ids) -> list:
        """Rows that remain after deleting ``ids`` (KeyError naming unknown ids)."""
        missing = [i for i in ids if i not in self._row_of]
        if missing:
            raise KeyError(f"id(s) not in the index: {missing[:5]}")
        drop = {self._row_of[i] for i in ids}
        return [r for r in range(len(self._ids)) if r not in drop]

    def keep(self, rows) -> None:
        """Keep only these rows (ascending), renumbered 0..len(rows)-1."""
        self._ids = [self._ids[r] for r in rows]
        self._row_of = {i: r for r, i in enumerate(self._ids)}


def ids_of_encoded_rows(ids, encoded) -> list:
    """The ids of the rows an encode kept (``encoded.rows``), from ids given for every input row."""
    if ids is None:
        return None
    ids = list(ids)
    n_in = len(encoded.rows) + len(encoded.skipped)
    if len(ids) != n_in:
        raise InvalidInputError(f"{len(ids)} ids for {n_in} vectors")
    return [ids[r] for r in encoded.rows]
