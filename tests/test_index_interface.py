"""One index interface: the same verbs on FlatIndex, BinaryIndex and TwoStageIndex, one factory."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web import (BinaryIndex, FlatIndex, TwoStageIndex, VectorFile, load_index,
                            make_index)
from clark_hash_web.codecs import registry
from clark_hash_web.errors import ConfigError, InvalidInputError, SketchFileError
from clark_hash_web.formats import sketch_file

SPECS = ["clark-hash:20", "e8:20", "sign-bits:20:rotation=hadamard", "hyperplane-lsh:20",
         "clark-hash:20:metric=dot"]


def stages(spec, tmp_path, backend="numpy"):
    """Every index kind the factory builds for one spec."""
    yield make_index(spec, backend=backend)
    yield make_index(spec, backend=backend, vectors=VectorFile(tmp_path / f"v-{len(list(tmp_path.iterdir()))}",
                                                                20, "int8"))


@pytest.mark.parametrize("spec", SPECS)
def test_factory_picks_the_index(spec):
    index = make_index(spec)
    assert isinstance(index, FlatIndex if spec.startswith("clark") else BinaryIndex)
    assert index.config == registry.config_from_spec(spec)


@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize("spec", SPECS)
def test_same_verbs_everywhere(spec, backend, tmp_path):
    x = clustered(40, 20, seed=3)
    for index in stages(spec, tmp_path, backend):
        ids = index.add(x[:30], ids=[f"n{i}" for i in range(30)])
        assert ids == [f"n{i}" for i in range(30)] and len(index) == 30 and "n3" in index
        enc = index.codec.encode(x[30:])
        extra = {"vectors": x[30:]} if isinstance(index, TwoStageIndex) else {}
        assert index.add_encoded(enc, [f"m{i}" for i in range(10)], **extra) == \
            [f"m{i}" for i in range(10)]
        assert index.remove(["n0", "m9"]) == 2 and len(index) == 38
        got, scores = index.search(x[5], k=3)
        assert got[0] == "n5" and len(scores) == 3
        batch = index.search_batch(x[5:7], k=3)
        assert [b[0] for b in batch] == [got, index.search(x[6], k=3)[0]]
        assert index.ids == [f"n{i}" for i in range(1, 30)] + [f"m{i}" for i in range(9)]
        assert index.ids_at([0, 29, 1]) == ["n1", "m0", "n2"]


@pytest.mark.parametrize("spec", SPECS)
def test_save_and_load_any_kind(spec, tmp_path):
    x = clustered(25, 20, seed=8)
    index = make_index(spec)
    index.add(x, ids=list(range(100, 125)))
    index.remove([103])
    path = tmp_path / "s.chs"
    index.save(path)
    back = load_index(path)
    assert type(back) is type(index) and back.ids == index.ids
    assert back.encoded().codes_bytes() == index.encoded().codes_bytes()
    a, sa = index.search(x[7], 5)
    b, sb = back.search(x[7], 5)
    assert a == b and np.asarray(sa).tobytes() == np.asarray(sb).tobytes()
    assert type(index).load(path).ids == index.ids
    other = FlatIndex if isinstance(index, BinaryIndex) else BinaryIndex
    with pytest.raises(ConfigError, match=f"which {other.__name__} cannot search"):
        other.load(path)


def test_two_stage_save_compacts_vectors_and_loads(tmp_path):
    x = clustered(30, 20, seed=11)
    vec_path = tmp_path / "v.bin"
    two = make_index("e8:20", vectors=VectorFile(vec_path, 20, "int8"))
    two.add(x, ids=[f"id{i}" for i in range(30)])
    two.remove(["id0", "id17"])
    before = two.search(x[4], 5, rescore=28)
    assert len(two.vectors) == 30           # removed rows stay in the file until save
    two.save(tmp_path / "s.chs")
    assert len(two.vectors) == 28
    again = load_index(tmp_path / "s.chs", vectors=vec_path)
    assert isinstance(again, TwoStageIndex) and again.ids == two.ids
    after = again.search(x[4], 5, rescore=28)
    assert before[0] == after[0] and np.asarray(before[1]).tobytes() == np.asarray(after[1]).tobytes()
    # the compacted file holds exactly the kept rows, in order
    kept = [i for i in range(30) if i not in (0, 17)]
    fresh = VectorFile(tmp_path / "fresh.bin", 20, "int8")
    fresh.append(x[kept])
    assert vec_path.read_bytes() == (tmp_path / "fresh.bin").read_bytes()


def test_two_stage_rescore_count(tmp_path):
    x = clustered(60, 20, seed=2)
    two = make_index("sign-bits:20", vectors=VectorFile(tmp_path / "v", 20))
    two.add(x)
    ids, _ = two.search(x[9], 5, rescore=60)       # everything rescored: exact by the vectors
    exact = np.argsort(-(x / np.linalg.norm(x, axis=1, keepdims=True)) @
                       (x[9] / np.linalg.norm(x[9])), kind="stable")[:5].tolist()
    assert ids == exact
    with pytest.raises(InvalidInputError, match="rescore must be a positive int"):
        two.search(x[9], 5, rescore=0)


def test_two_stage_needs_vectors_for_encoded_rows(tmp_path):
    two = make_index("e8:20", vectors=VectorFile(tmp_path / "v", 20))
    enc = two.codec.encode(clustered(3, 20, seed=1))
    with pytest.raises(InvalidInputError, match="pass vectors="):
        two.add_encoded(enc)
    with pytest.raises(InvalidInputError, match="2 vectors for 3 encoded rows"):
        two.add_encoded(enc, vectors=clustered(2, 20, seed=1))
    assert len(two) == 0 and len(two.vectors) == 0
    with pytest.raises(InvalidInputError, match="needs vectors="):
        TwoStageIndex.load(tmp_path / "x.chs")


def test_load_index_refuses_damaged_files(tmp_path):
    index = make_index("e8:20")
    index.add(clustered(3, 20, seed=1))
    path = tmp_path / "s.chs"
    index.save(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SketchFileError, match="checksum mismatch"):
        load_index(path)


def test_make_index_refuses_bad_arguments():
    with pytest.raises(ConfigError, match="unknown codec 'nope'"):
        make_index("nope:20")
    with pytest.raises(ConfigError, match="vectors must be a VectorFile"):
        make_index("e8:20", vectors="v.bin")
    assert sketch_file.FORMAT_VERSION == 2
