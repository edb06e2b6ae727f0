"""BinaryIndex: ranking, Hamming prefilter (top-N and threshold), ids, both backends."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered, make_codec
from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.errors import ConfigMismatchError, DuplicateIdError, InvalidInputError


def brute_force(codec, enc, q, scoring):
    scores = np.asarray(codec.score(q, enc, scoring=scoring), dtype=np.float32)
    order = sorted(range(len(scores)), key=lambda r: (-float(scores[r]), r))
    return order, scores


@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize("scoring", ["asymmetric", "hamming"])
def test_search_equals_brute_force_with_insertion_order_ties(backend, scoring):
    codec = make_codec("lsh", 24, 20, backend)
    x = clustered(150, 24, clusters=5, spread=0.05, seed=4)
    x = np.concatenate([x, x[:30]])  # exact duplicates: equal scores, ties by insertion
    index = BinaryIndex(codec)
    ids = index.add(x, ids=[f"v{i}" for i in range(len(x))])
    assert len(index) == 180 and ids[0] == "v0"
    enc = codec.encode(x)
    for qi in (0, 7, 151):
        q = codec.sketch_query(x[qi])
        order, scores = brute_force(codec, enc, q, scoring)
        got_ids, got_scores = index.search(q, 25, scoring=scoring)
        assert got_ids == [f"v{r}" for r in order[:25]]
        assert np.asarray(got_scores, dtype=np.float32).tobytes() == scores[order[:25]].tobytes()
    assert index.search(x[0], 0) [0] == []
    assert len(index.search(x[0], 1000)[0]) == 180


@pytest.mark.parametrize("backend", ["numpy", "python"])
def test_hamming_prefilter_top_n_and_threshold(backend):
    codec = make_codec("sign_hadamard", 32, 32, backend)
    x = clustered(300, 32, clusters=6, seed=5)
    index = BinaryIndex(codec)
    index.add(x)
    enc = codec.encode(x)
    q = codec.sketch_query(x[11])
    dist = [int(h) for h in codec.hamming(q, enc)]
    for n in (0, 1, 10, 57, 300, 500):
        want = sorted(sorted(range(300), key=lambda r: (dist[r], r))[:n])
        assert index.hamming_candidates(q, candidates=n) == want
    for t in (0, 3, 8, 32):
        assert index.hamming_candidates(q, max_hamming=t) == [r for r in range(300) if dist[r] <= t]
    both = index.hamming_candidates(q, candidates=20, max_hamming=6)
    assert both == sorted(sorted([r for r in range(300) if dist[r] <= 6],
                                 key=lambda r: (dist[r], r))[:20])
    # prefiltered search = brute force restricted to the candidates
    cand = index.hamming_candidates(q, candidates=40)
    scores = np.asarray(codec.score(q, enc), dtype=np.float32)
    want = sorted(cand, key=lambda r: (-float(scores[r]), r))[:10]
    ids, got = index.search(q, 10, candidates=40)
    assert ids == want and np.asarray(got, dtype=np.float32).tobytes() == scores[want].tobytes()
    ids, _ = index.search(q, 10, max_hamming=0)
    assert ids == [r for r in range(300) if dist[r] == 0][:10]


def test_numpy_and_python_indexes_agree():
    x = clustered(120, 40, seed=6)
    results = []
    for backend in ("numpy", "python"):
        index = BinaryIndex(make_codec("itq", 40, 40, backend))
        index.add(x[:100])
        index.remove([3, 50, 99])
        index.add(x[100:], ids=range(1000, 1020))
        results.append([index.search(x[i], 7, candidates=30) for i in (0, 60, 110)])
    for (ia, sa), (ib, sb) in zip(*results):
        assert ia == ib and np.asarray(sa).tobytes() == np.asarray(sb, dtype=np.float32).tobytes()


@pytest.mark.parametrize("backend", ["numpy", "python"])
def test_ids_remove_and_errors(backend):
    codec = make_codec("sign", 16, 16, backend)
    x = clustered(10, 16, seed=7)
    index = BinaryIndex(codec)
    assert index.add(x[:4]) == [0, 1, 2, 3]
    with pytest.raises(DuplicateIdError):
        index.add(x[4:6], ids=[3, 9])
    with pytest.raises(DuplicateIdError):
        index.add(x[4:6], ids=[8, 8])
    with pytest.raises(InvalidInputError):
        index.add(x[4:6], ids=["a", "b"])
    assert len(index) == 4  # nothing half-added
    assert index.remove(1) == 1 and 1 not in index and len(index) == 3
    with pytest.raises(KeyError):
        index.remove([1])
    ids, _ = index.search(x[2], 3)
    assert ids[0] == 2 and set(ids) == {0, 2, 3}
    assert index.encoded().codes_bytes() == codec.encode(x[[0, 2, 3]]).codes_bytes()
    with pytest.raises(InvalidInputError):
        index.search(x[0], -1)
    with pytest.raises(InvalidInputError):
        index.search(x[0], 2, candidates=-3)
    with pytest.raises(InvalidInputError):
        index.search(x[0], 2, scoring="cosine")
    other = make_codec("sign_hadamard", 16, 16, backend)
    with pytest.raises(ConfigMismatchError):
        index.add_encoded(other.encode(x[:2]))
    with pytest.raises(InvalidInputError):
        BinaryIndex(object())
