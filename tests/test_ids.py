"""IdMap: int ids in an int64 array (numpy) behave exactly like the list + dict of pure Python."""

from __future__ import annotations

import numpy as np
import pytest

from clark_hash_web.errors import DuplicateIdError, InvalidInputError
from clark_hash_web.index.ids import IdMap


def add(idmap, ids, count):
    return idmap.append(idmap.prepare(ids, count))


def test_random_operations_agree_with_pure_python():
    rng = np.random.default_rng(0)
    maps = [IdMap(numpy=True), IdMap(numpy=False)]
    for step in range(60):
        op = rng.integers(0, 4)
        if op == 0:                                   # automatic ids
            n = int(rng.integers(0, 50))
            outs = [add(m, None, n) for m in maps]
        elif op == 1:                                 # explicit ids, any order
            vals = rng.choice(10_000, size=int(rng.integers(1, 40)), replace=False)
            vals = [int(v) for v in vals if int(v) not in maps[1]]
            outs = [add(m, list(vals), len(vals)) for m in maps]
        elif op == 2 and len(maps[1]):               # remove some
            present = maps[1].ids
            drop = [present[i] for i in rng.choice(len(present), size=min(5, len(present)),
                                                   replace=False)]
            outs = []
            for m in maps:
                keep = m.rows_to_keep(drop)
                m.keep(keep)
                outs.append(list(np.asarray(keep).tolist()))
        else:
            outs = [None, None]
        assert outs[0] == outs[1]
        assert maps[0].ids == maps[1].ids
        probe = [int(v) for v in rng.integers(-5, 10_050, size=30)]
        assert [v in maps[0] for v in probe] == [v in maps[1] for v in probe]
    rows = list(range(len(maps[1])))[::3]
    assert maps[0].ids_at(rows) == maps[1].ids_at(rows)
    assert all(maps[0][r] == maps[1][r] for r in rows)


def test_int_ids_are_one_int64_array():
    m = IdMap(numpy=True)
    add(m, None, 100_000)
    assert m._store.arr.dtype == np.int64 and m._store.perm is None
    assert m._store.arr.nbytes <= 16 * 100_000
    add(m, np.array([5_000_000, -3, 7_000_000]), 3)      # no longer increasing
    assert m._store.perm is not None and m._store.perm.dtype == np.int32
    assert m._store.arr.nbytes + m._store.perm.nbytes <= 16 * len(m)
    assert -3 in m and 99_999 in m and 100_000 not in m and "x" not in m
    assert m.ids[-3:] == [5_000_000, -3, 7_000_000]
    assert add(m, None, 2) == [7_000_001, 7_000_002]     # after the largest int id


def test_errors_name_the_bad_id_and_store_nothing():
    m = IdMap(numpy=True)
    add(m, [10, 3, 7], 3)
    with pytest.raises(DuplicateIdError, match="id 3"):
        m.prepare(np.array([1, 3]), 2)
    with pytest.raises(DuplicateIdError, match="twice"):
        m.prepare(np.array([1, 1]), 2)
    with pytest.raises(DuplicateIdError, match="id 7"):
        m.prepare([8, 7], 2)
    with pytest.raises(InvalidInputError, match="all be int or all be str"):
        m.prepare(["a"], 1)
    with pytest.raises(InvalidInputError, match="int64"):
        m.prepare([2**63], 1)
    with pytest.raises(InvalidInputError, match="2 ids for 3"):
        m.prepare(np.array([1, 2]), 3)
    with pytest.raises(InvalidInputError):
        m.prepare(np.array([1.5]), 1)
    with pytest.raises(KeyError, match="99"):
        m.rows_to_keep([3, 99])
    assert m.ids == [10, 3, 7]
    s = IdMap(numpy=True)
    add(s, ["b", "a"], 2)
    assert "a" in s and s.ids_at([1, 0]) == ["a", "b"]
    with pytest.raises(InvalidInputError):
        s.prepare(np.array([1]), 1)


def test_pure_python_increasing_int_ids_are_one_array_until_the_order_breaks():
    """Automatic ids and ranges stay one array('q') (8 bytes per id, no Python int per id);
    the first id out of order turns the store into the list + dict form, same answers."""
    from array import array

    m = IdMap(numpy=False)
    assert add(m, None, 3000) == list(range(3000))
    assert add(m, range(5000, 6000), 1000) == list(range(5000, 6000))
    assert isinstance(m._store.arr, array) and m._store.arr.typecode == "q" and len(m) == 4000
    assert 2999 in m and 3000 not in m and 5999 in m and "x" not in m and 2.5 not in m
    with pytest.raises(DuplicateIdError, match="5500"):
        m.prepare(range(5500, 6500), 1000)
    with pytest.raises(DuplicateIdError, match="12"):
        m.prepare([7000, 12], 2)
    assert m.rows_of([5000, 0, 2999]) == [3000, 0, 2999]
    with pytest.raises(KeyError, match="4000"):
        m.rows_of([1, 4000])
    keep = m.rows_to_keep([0, 5999])
    m.keep(keep)
    assert isinstance(m._store.arr, array) and m.ids[:2] == [1, 2] and m.ids[-1] == 5998
    add(m, [7000, -4], 2)                                # out of order: list + dict from now on
    assert not hasattr(m._store, "arr")
    assert m.ids[-2:] == [7000, -4] and -4 in m and m.rows_of([-4]) == [len(m) - 1]
    assert add(m, None, 1) == [7001]                   # after the largest int id ever stored
