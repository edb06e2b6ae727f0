"""Two-stage search: compact first stage, exact rescoring from a vector file."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered, make_codec
from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.errors import InvalidVectorError, SketchFileError
from clark_hash_web.index.two_stage import TwoStageIndex, VectorFile


def exact_top(x, q, k):
    xn = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    s = xn @ (q / np.linalg.norm(q))
    return list(np.argsort(-s, kind="stable")[:k])


def recall(got, want):
    return len(set(got) & set(want)) / len(want)


@pytest.mark.parametrize("first", ["clark", "sign_hamming"])
def test_two_stage_recall_beats_single_stage_and_is_exact_with_full_rescoring(tmp_path, first):
    d, k = 64, 10
    x = clustered(2000, d, clusters=40, spread=0.5, seed=1)
    queries = clustered(20, d, clusters=40, spread=0.5, seed=1)[:20] + 0.01
    if first == "clark":
        index = FlatIndex(ClarkHash(ClarkHashConfig(input_dim=d, sketch_dim=16, bits=2)))
        kw = {}
    else:
        index = BinaryIndex(make_codec("lsh", d, 32, "numpy"))
        kw = {"scoring": "hamming"}
    two = TwoStageIndex(index, VectorFile(tmp_path / "v.f32", d), rescore_multiplier=10)
    two.add(x)
    single = np.mean([recall(index.search(q, k, **kw)[0], exact_top(x, q, k)) for q in queries])
    double = np.mean([recall(two.search(q, k, **kw)[0], exact_top(x, q, k)) for q in queries])
    assert double > single + 0.1, (single, double)
    for q in queries[:5]:
        ids, scores = two.search(q, k, rescore_multiplier=len(x), **kw)
        assert ids == exact_top(x, q, k)
        full = two.vectors.score(q, range(len(x)))
        assert np.asarray(scores).tobytes() == full[ids].tobytes()
        assert sorted(range(len(x)), key=lambda r: (-float(full[r]), r))[:k] == ids


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_vector_file_numpy_python_identical(tmp_path, kind):
    x = clustered(50, 24, seed=2) * 3.0
    a = VectorFile(tmp_path / "a", 24, kind, backend="numpy")
    b = VectorFile(tmp_path / "b", 24, kind, backend="python")
    a.append(x[:30])
    a.append(x[30:])
    b.append(x.tolist())
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    rows = [49, 0, 7, 7, 30]
    assert a.score(x[5], rows).tobytes() == b.score(x[5].tolist(), rows).tobytes()
    assert a.read(rows).tobytes() == b"".join(r.tobytes() for r in b.read(rows))
    np.testing.assert_allclose(a.read([3])[0], x[3] / np.linalg.norm(x[3]), atol=0.01)
    reopened = VectorFile(tmp_path / "a")
    assert (len(reopened), reopened.dim, reopened.kind) == (50, 24, kind)
    assert reopened.score(x[5], rows).tobytes() == a.score(x[5], rows).tobytes()


def test_vector_file_errors_leave_the_file_intact(tmp_path):
    path = tmp_path / "v"
    vf = VectorFile(path, 8)
    vf.append(clustered(5, 8, seed=3))
    before = path.read_bytes()
    bad = clustered(3, 8, seed=4)
    bad[1, 2] = np.nan
    with pytest.raises(InvalidVectorError) as err:
        vf.append(bad)
    assert 1 in err.value.rows
    with pytest.raises(InvalidVectorError):
        vf.append(np.zeros((1, 8)))
    assert path.read_bytes() == before and len(vf) == 5
    with open(path, "ab") as f:
        f.write(b"\x00" * 5)  # a partial row, as a crash mid-write leaves it
    with pytest.raises(SketchFileError, match="partial row"):
        VectorFile(path)
    assert len(VectorFile(path, recover=True)) == 5 and path.read_bytes() == before
    (tmp_path / "junk").write_bytes(b"NOTAFILE" + bytes(40))
    with pytest.raises(SketchFileError, match="magic"):
        VectorFile(tmp_path / "junk")
    with pytest.raises(SketchFileError, match="dim"):
        VectorFile(path, dim=9)


def test_two_stage_add_is_all_or_nothing(tmp_path):
    """A failure in either store leaves both unchanged."""
    codec = make_codec("sign", 8, 8, "numpy")
    two = TwoStageIndex(BinaryIndex(codec), VectorFile(tmp_path / "v", 8), 4)
    two.add(clustered(6, 8, seed=5), ids=list("abcdef"))
    bad = clustered(2, 8, seed=6)
    bad[0, 3] = np.nan  # refused by the codec before anything is stored
    with pytest.raises(InvalidVectorError):
        two.add(bad, ids=["g", "h"])

    def disk_full(vectors):
        raise OSError("no space left on device")

    two.vectors.append_prepared = disk_full  # the write fails after the index accepted the rows
    with pytest.raises(OSError):
        two.add(clustered(2, 8, seed=7), ids=["g", "h"])
    del two.vectors.append_prepared
    assert len(two) == 6 and len(two.vectors) == 6 and "g" not in two.index
    two.remove("b")
    ids, _ = two.search(clustered(6, 8, seed=5)[1], 3)
    assert "b" not in ids and len(ids) == 3
