"""Row ids of an index: :class:`IdMap`.

Indexes store rows in insertion order (ranking ties depend on it) and let
callers name rows with ids: all ints or all strs, unique. Rows added without
ids get consecutive ints after the largest int id seen so far.

Memory
------
With ``numpy=True`` int ids (including the automatic ones) live in one
growable int64 array: 8 bytes per id and no Python object per id. Lookups
(``id in index``, ``remove``, duplicate checks) use binary search: directly
on the array while the ids were appended in increasing order (always true for
automatic ids), else through a sort permutation kept up to date on append
(int32: 4 more bytes per id). The array grows by half its size when full, so
ids cost at most 12 + 4 = 16 bytes each. Int ids must fit in int64 (as in
sketch files).

The pure-Python backend keeps int ids that only ever increased (automatic
ids, ranges: what a browser store of 1M rows holds) in one ``array('q')``
searched with :mod:`bisect`, 8 bytes per id and no Python object per id; the
first append that breaks the order (or an id outside int64) turns them into a
list plus a dict from id to row, the form str ids always have.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

from ..errors import DuplicateIdError, InvalidInputError

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class _ObjectIds:
    """Ids as a list plus a dict id -> row (str ids, or the pure-Python backend)."""

    def __init__(self, ids=()):
        self.ids = list(ids)
        self.row_of = {i: r for r, i in enumerate(self.ids)}

    def __len__(self):
        return len(self.ids)

    def kind(self):
        return (str if isinstance(self.ids[0], str) else int) if self.ids else None

    def contains(self, id_) -> bool:
        return id_ in self.row_of

    def get(self, row: int):
        return self.ids[row]

    def at(self, rows) -> list:
        return [self.ids[r] for r in rows]

    def all(self) -> list:
        return list(self.ids)

    def missing_or_rows(self, ids):
        missing = [i for i in ids if i not in self.row_of]
        return missing, [self.row_of[i] for i in ids if i in self.row_of]

    def any_present(self, ids) -> bool:
        return not self.row_of.keys().isdisjoint(ids)

    def append(self, ids) -> None:
        start = len(self.ids)
        self.row_of.update(zip(ids, range(start, start + len(ids))))
        self.ids.extend(ids)

    def keep(self, rows) -> "_ObjectIds":
        return _ObjectIds(self.ids[r] for r in rows)


def _increasing_int64(ids, after=None) -> bool:
    """True when ``ids`` (a range or a list) are int64 ints in strictly increasing order,
    all above ``after`` (None: no bound)."""
    if isinstance(ids, range):
        return ids.step > 0 and (not len(ids) or (
            INT64_MIN <= ids[0] and ids[-1] <= INT64_MAX and (after is None or ids[0] > after)))
    prev = after
    for i in ids:
        if type(i) is not int or not INT64_MIN <= i <= INT64_MAX or (prev is not None and i <= prev):
            return False
        prev = i
    return True


class _IncreasingIntIds:
    """Strictly increasing int64 ids in one ``array('q')`` (pure Python; bisect lookups)."""

    def __init__(self, ids=()):
        self.arr = array("q", ids)

    def __len__(self):
        return len(self.arr)

    def kind(self):
        return int if self.arr else None

    def last(self):
        return self.arr[-1] if self.arr else None

    def _row(self, id_):
        """Row of ``id_`` or -1."""
        if type(id_) is not int or not INT64_MIN <= id_ <= INT64_MAX:
            return -1
        r = bisect_left(self.arr, id_)
        return r if r < len(self.arr) and self.arr[r] == id_ else -1

    def contains(self, id_) -> bool:
        return self._row(id_) >= 0

    def get(self, row: int):
        return self.arr[row]

    def at(self, rows) -> list:
        if isinstance(rows, range) and rows.step == 1 and 0 <= rows.start <= rows.stop <= len(self.arr):
            return self.arr[rows.start:rows.stop].tolist()
        return [self.arr[r] for r in rows]

    def all(self) -> list:
        return self.arr.tolist()

    def missing_or_rows(self, ids):
        found = [(i, self._row(i)) for i in ids]
        return [i for i, r in found if r < 0], [r for _, r in found if r >= 0]

    def any_present(self, ids) -> bool:
        return any(self._row(i) >= 0 for i in ids)

    def append(self, ids) -> None:
        self.arr.extend(ids)

    def keep(self, rows) -> "_IncreasingIntIds":
        out = _IncreasingIntIds()
        out.arr = array("q", (self.arr[r] for r in rows))
        return out


class _IntIds:
    """Int64 ids in a growable numpy array, searchable by binary search."""

    def __init__(self):
        import numpy as np

        self.arr = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.perm = None          # None while increasing; else argsort of arr[:n]

    def __len__(self):
        return self.n

    def kind(self):
        return int if self.n else None

    def view(self):
        return self.arr[:self.n]

    def _rows_of(self, values):
        """(found mask, rows) of int64 ``values``."""
        import numpy as np

        a = self.view()
        if self.n == 0:
            return np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=np.int64)
        if self.perm is None:
            pos = np.searchsorted(a, values)
            rows = np.minimum(pos, self.n - 1)
        else:
            pos = np.searchsorted(a, values, sorter=self.perm)
            rows = self.perm[np.minimum(pos, self.n - 1)]
        return a[rows] == values, rows

    def contains(self, id_) -> bool:
        import numpy as np

        if isinstance(id_, bool) or not isinstance(id_, (int, np.integer)) \
                or not INT64_MIN <= int(id_) <= INT64_MAX:
            return False
        found, _ = self._rows_of(np.array([int(id_)], dtype=np.int64))
        return bool(found[0])

    def get(self, row: int):
        return int(self.arr[:self.n][row])

    def at(self, rows) -> list:
        import numpy as np

        return self.view()[np.asarray(rows, dtype=np.intp)].tolist()

    def all(self) -> list:
        return self.view().tolist()

    def missing_or_rows(self, ids):
        import numpy as np

        ok = [i for i in ids if not isinstance(i, bool) and isinstance(i, (int, np.integer))
              and INT64_MIN <= int(i) <= INT64_MAX]
        bad = [i for i in ids if i not in ok] if len(ok) != len(ids) else []
        values = np.asarray(ok, dtype=np.int64)
        found, rows = self._rows_of(values)
        return bad + values[~found].tolist(), rows[found]

    def any_present(self, values) -> bool:
        return bool(self._rows_of(values)[0].any())

    def append(self, values) -> None:
        import numpy as np

        n, m = self.n, len(values)
        if m == 0:
            return
        if n + m > len(self.arr):
            grown = np.empty(max(n + m, len(self.arr) * 3 // 2, 1024), dtype=np.int64)
            grown[:n] = self.arr[:n]
            self.arr = grown
        increasing = self.perm is None and (n == 0 or values[0] > self.arr[n - 1]) and \
            bool((values[1:] > values[:-1]).all())
        if not increasing:
            kind = np.int32 if n + m < 2**31 else np.int64
            old = np.arange(n, dtype=kind) if self.perm is None else self.perm.astype(kind)
            order = np.argsort(values, kind="stable")
            pos = np.searchsorted(self.arr[:n], values[order], sorter=old if n else None)
            self.perm = np.insert(old, pos, (order + n).astype(kind))
        self.arr[n:n + m] = values
        self.n = n + m

    def keep(self, rows) -> "_IntIds":
        import numpy as np

        out = _IntIds()
        kept = self.view()[np.asarray(rows, dtype=np.intp)]
        out.arr = kept.copy()
        out.n = len(kept)
        out.perm = None if self.perm is None else \
            np.argsort(kept, kind="stable").astype(np.int32 if len(kept) < 2**31 else np.int64)
        return out


class IdMap:
    """Ids in row order, with the row of every id.

    Parameters
    ----------
    numpy : bool
        Keep int ids in a numpy int64 array (see the module docstring); the
        pure-Python backend leaves it False.
    """

    def __init__(self, numpy: bool = False):
        self._numpy = numpy
        self._store = _ObjectIds()
        self._next_auto = 0

    def __len__(self):
        return len(self._store)

    def __contains__(self, id_):
        return self._store.contains(id_)

    def __getitem__(self, row: int):
        return self._store.get(row)

    @property
    def ids(self) -> list:
        """Ids in row (insertion) order."""
        return self._store.all()

    def ids_at(self, rows) -> list:
        """The ids of these row numbers (a list)."""
        return self._store.at(rows)

    def check_new(self, ids, count: int) -> list:
        """Validate ``count`` new ids (or number them when ``ids`` is None); stores nothing."""
        new = self.prepare(ids, count)
        return new if isinstance(new, list) else new.tolist()

    def prepare(self, ids, count: int):
        """:meth:`check_new` without the conversion to a list (for :meth:`append`).

        Returns an int64 array (numpy, int or automatic ids) or a list.
        The common case (valid ids) is checked with whole-batch operations;
        only a batch that fails them is walked id by id, to name the bad one.
        """
        if ids is None:
            if self._numpy:
                import numpy as np

                return np.arange(self._next_auto, self._next_auto + count, dtype=np.int64)
            return list(range(self._next_auto, self._next_auto + count))
        if self._numpy:
            values = self._int_array(ids)
            if values is not None:
                return self._check_int_array(values, count)
        elif isinstance(ids, range) and len(ids) == count and self._appends_in_order(ids):
            return ids   # increasing, above every stored id: nothing to check one by one
        ids = list(ids)
        if len(ids) != count:
            raise InvalidInputError(f"{len(ids)} ids for {count} vectors")
        kind = self._store.kind()
        kinds = set(map(type, ids)) | ({kind} if kind else set())
        if not (kinds <= {int, str} and len(kinds) <= 1 and len(set(ids)) == len(ids)
                and self._none_present(ids)):
            self._explain_bad_ids(ids)
        return ids

    def _appends_in_order(self, ids) -> bool:
        """True when int ``ids`` can extend a pure-Python increasing store (see the module docstring)."""
        store = self._store
        if isinstance(store, _IncreasingIntIds):
            return _increasing_int64(ids, store.last())
        return not len(store) and _increasing_int64(ids)

    def _none_present(self, ids) -> bool:
        if not len(self._store) or not isinstance(self._store, _IntIds):
            return not self._store.any_present(ids)
        import numpy as np

        if any(not INT64_MIN <= i <= INT64_MAX for i in ids):
            return False
        return not self._store.any_present(np.asarray(ids, dtype=np.int64))

    @staticmethod
    def _int_array(ids):
        """Integer ids as an int64 array, or None when they are not all int64 ints."""
        import numpy as np

        if isinstance(ids, np.ndarray):
            if ids.ndim == 1 and ids.dtype.kind in "iu" and (
                    ids.dtype.kind == "i" or not len(ids) or ids.max() <= INT64_MAX):
                return ids.astype(np.int64)
            return None
        if isinstance(ids, range):
            if ids and not (INT64_MIN <= min(ids[0], ids[-1])
                            and max(ids[0], ids[-1]) <= INT64_MAX):
                return None
            return np.arange(ids.start, ids.stop, ids.step, dtype=np.int64)
        return None

    def _check_int_array(self, values, count: int):
        import numpy as np

        if len(values) != count:
            raise InvalidInputError(f"{len(values)} ids for {count} vectors")
        if self._store.kind() is str:
            raise InvalidInputError("ids of one index must all be int or all be str")
        s = np.sort(values)
        if (s[1:] == s[:-1]).any() or (len(self._store) and self._store.any_present(values)):
            self._explain_bad_ids(values.tolist())
        return values

    def _explain_bad_ids(self, ids) -> None:
        """Raise the error for the first bad id of ``ids`` (or return when they are fine)."""
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, str)):
                raise InvalidInputError(f"ids must be int or str, got {i!r}")
            if self._numpy and isinstance(i, int) and not INT64_MIN <= i <= INT64_MAX:
                raise InvalidInputError(f"int id {i} does not fit in int64")
        kinds = {str if isinstance(i, str) else int for i in ids}
        if self._store.kind():
            kinds.add(self._store.kind())
        if len(kinds) > 1:
            raise InvalidInputError("ids of one index must all be int or all be str")
        seen = set()
        for pos, i in enumerate(ids):
            if i in self:
                raise DuplicateIdError(f"id {i!r} (batch position {pos}) is already in the index")
            if i in seen:
                raise DuplicateIdError(f"id {i!r} appears twice in the batch (position {pos})")
            seen.add(i)

    def append(self, ids) -> list:
        """Add ids (already checked with :meth:`prepare` / :meth:`check_new`) as the next rows.

        Returns them as a list.
        """
        if self._numpy and not isinstance(ids, list):
            values = ids
        elif self._numpy and ids and not isinstance(ids[0], str):
            import numpy as np

            values = np.asarray(ids, dtype=np.int64)
        else:
            values = None
        if values is not None:
            if not len(values):
                return []
            if not isinstance(self._store, _IntIds):
                self._store = _IntIds()
            self._store.append(values)
            self._next_auto = max(self._next_auto, int(values.max()) + 1)
            return values.tolist()
        if not len(ids):
            return []
        if not isinstance(ids, range):
            ids = list(ids)
        if self._appends_in_order(ids):
            if not isinstance(self._store, _IncreasingIntIds):
                self._store = _IncreasingIntIds()
            self._store.append(ids)
            self._next_auto = max(self._next_auto, ids[-1] + 1)
            return list(ids)
        if isinstance(self._store, _IncreasingIntIds):   # the order breaks: list + dict from now on
            self._store = _ObjectIds(self._store.all())
        ids = list(ids)
        self._store.append(ids)
        if not isinstance(ids[0], str):   # checked: all ints or all strs
            self._next_auto = max(self._next_auto, max(ids) + 1)
        return ids

    def rows_to_keep(self, ids):
        """Rows that remain after deleting ``ids`` (KeyError naming unknown ids), ascending.

        A list (pure Python) or an int64 array (numpy).
        """
        ids = list(ids)
        missing, rows = self._store.missing_or_rows(ids)
        if missing:
            raise KeyError(f"id(s) not in the index: {missing[:5]}")
        if isinstance(self._store, _IntIds):
            import numpy as np

            mask = np.ones(len(self._store), dtype=bool)
            mask[rows] = False
            return np.flatnonzero(mask)
        drop = set(rows)
        return [r for r in range(len(self._store)) if r not in drop]

    def rows_of(self, ids) -> list:
        """The rows of ``ids``, in that order (KeyError naming unknown ids)."""
        ids = list(ids)
        missing, rows = self._store.missing_or_rows(ids)
        if missing:
            raise KeyError(f"id(s) not in the index: {missing[:5]}")
        return [int(r) for r in rows]

    def keep(self, rows) -> None:
        """Keep only these rows (ascending), renumbered 0..len(rows)-1."""
        self._store = self._store.keep(rows)
        if not len(self._store):
            self._store = _ObjectIds()


def ids_of_encoded_rows(ids, encoded):
    """The ids of the rows an encode kept (``encoded.rows``), from ids given for every input row.

    Returns ``ids`` itself (not copied) when no row was skipped.
    """
    if ids is None:
        return None
    n_in = len(encoded.rows) + len(encoded.skipped)
    if not encoded.skipped and hasattr(ids, "__len__") and not isinstance(ids, (str, bytes)):
        if len(ids) != n_in:
            raise InvalidInputError(f"{len(ids)} ids for {n_in} vectors")
        return ids
    ids = list(ids)
    if len(ids) != n_in:
        raise InvalidInputError(f"{len(ids)} ids for {n_in} vectors")
    return [ids[r] for r in encoded.rows]
