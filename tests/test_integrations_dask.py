"""Bulk encoding through dask.array.map_blocks (clark_hash_web.integrations.dask_arrays)."""

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

from clark_hash_web import ClarkHash, ClarkHashConfig  # noqa: E402
from clark_hash_web.codecs import registry  # noqa: E402
from clark_hash_web.errors import DimensionError, InvalidInputError, InvalidVectorError  # noqa: E402
from clark_hash_web.formats import sketch_file  # noqa: E402
from clark_hash_web.integrations import _partition, load_parts  # noqa: E402
from clark_hash_web.integrations.dask_arrays import encode_array, write_sketch_files  # noqa: E402

N, D = 700, 48
CHUNKINGS = [((N,),), ((1,) * 7 + (N - 7,),), ((100, 250, 1, 349),), ((13,) * 53 + (11,),)]


def data(seed=0, n=N, d=D):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) * rng.uniform(0.01, 50, (n, 1))).astype(np.float32)


def codecs():
    out = [ClarkHash(ClarkHashConfig(input_dim=D, sketch_dim=24, bits=4)),
           ClarkHash(ClarkHashConfig(input_dim=D, sketch_dim=20, bits=3, metric="dot"))]
    try:
        from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig

        out.append(HyperplaneLSH(HyperplaneLSHConfig(input_dim=D, n_bits=128)))
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("codec", codecs(), ids=lambda c: f"{type(c).__name__}-{c.config.fingerprint}")
@pytest.mark.parametrize("chunks", CHUNKINGS, ids=lambda c: f"{len(c[0])}blocks")
def test_bytes_equal_single_process(codec, chunks):
    X = data(1)
    ref = codec.encode(X)
    codes, norm_codes = encode_array(da.from_array(X, chunks=(chunks[0], (D,))), codec)
    codes, norm_codes = dask.compute(codes, norm_codes)
    assert codes.dtype == np.uint8 and codes.shape == (N, codec.config.code_bytes)
    assert codes.tobytes() == ref.codes_bytes()
    if ref.norm_codes_bytes() is None:
        assert norm_codes is None
    else:
        assert norm_codes.astype("<u2").tobytes() == ref.norm_codes_bytes()


def test_column_chunks_and_float64_input():
    X = data(2).astype(np.float64)
    codec = codecs()[0]
    x = da.from_array(X, chunks=(128, 16))  # columns split too: rechunked inside
    assert encode_array(x, codec).codes.compute().tobytes() == codec.encode(X).codes_bytes()


def test_wrong_dimension_is_refused_up_front():
    with pytest.raises(DimensionError, match="input_dim=48"):
        encode_array(da.zeros((10, 47), chunks=5), codecs()[0])


def test_bad_rows_have_global_numbers():
    X = data(3)
    X[3] = 0.0
    X[555, 7] = np.nan
    X[690, 0] = np.inf
    codec = codecs()[0]
    x = da.from_array(X, chunks=((100, 250, 1, 349), (D,)))
    with pytest.raises(InvalidVectorError) as e:
        encode_array(x, codec).codes.compute(scheduler="sync")
    assert set(e.value.rows) <= {3, 555, 690} and e.value.rows  # first failing block
    # write_sketch_files collects every bad row of every block
    with pytest.raises(InvalidVectorError) as e:
        write_sketch_files(x, codec, "unused-never-created")
    assert sorted(e.value.rows) == [3, 555, 690]
    assert "norm" in e.value.rows[3] and "NaN" in e.value.rows[555]
    assert not os.path.exists("unused-never-created")


def writable_codecs():
    """Codecs whose kind the codec registry knows (so sketch files can hold them)."""
    kinds = set(registry.registered())
    return [c for c in codecs() if c.config.to_bytes()[0] in kinds]


def test_write_parts_round_trip(tmp_path):
    X = data(4)
    for codec in writable_codecs():
        out = tmp_path / f"c{codec.config.fingerprint}"
        x = da.from_array(X, chunks=((100, 250, 1, 349), (D,)))
        doc = write_sketch_files(x, codec, out)
        assert doc["count"] == N and [p["first_row"] for p in doc["parts"]] == [0, 100, 350, 351]
        back = load_parts(out)
        ref = codec.encode(X)
        assert back.codes == ref.codes_bytes() and back.norm_codes == ref.norm_codes_bytes()
        assert back.ids == list(range(N))
        one = sketch_file.load(out / "part-00002.chs")
        assert one.ids == [350] and one.codes == ref.code(350)


def test_write_parts_with_string_ids(tmp_path):
    X = data(5, n=50)
    codec = codecs()[1]
    ids = [f"doc-{i}" for i in range(50)]
    write_sketch_files(da.from_array(X, chunks=(16, D)), codec, tmp_path / "o", ids=ids)
    back = load_parts(tmp_path / "o")
    assert back.ids == ids and back.codes == codec.encode(X).codes_bytes()


def _listing(folder):
    return sorted(os.listdir(folder))


def test_failed_block_leaves_no_output(tmp_path, monkeypatch):
    X = data(6)
    codec = codecs()[0]
    x = da.from_array(X, chunks=(100, D))
    real = _partition.write_part

    def flaky(folder, part, *a, **k):
        if part == 4:
            raise OSError("disk full (injected)")
        return real(folder, part, *a, **k)

    monkeypatch.setattr("clark_hash_web.integrations.dask_arrays.write_part", flaky)
    with pytest.raises(OSError, match="injected"):
        write_sketch_files(x, codec, tmp_path / "out")
    assert _listing(tmp_path) == []  # neither the output nor a temp folder remains

    # an existing output survives a failed overwrite untouched
    monkeypatch.setattr("clark_hash_web.integrations.dask_arrays.write_part", real)
    write_sketch_files(x, codec, tmp_path / "out")
    before = {f: (tmp_path / "out" / f).read_bytes() for f in _listing(tmp_path / "out")}
    monkeypatch.setattr("clark_hash_web.integrations.dask_arrays.write_part", flaky)
    with pytest.raises(OSError):
        write_sketch_files(da.from_array(data(7), chunks=(100, D)), codec, tmp_path / "out",
                           overwrite=True)
    assert _listing(tmp_path) == ["out"]
    assert {f: (tmp_path / "out" / f).read_bytes() for f in _listing(tmp_path / "out")} == before
    with pytest.raises(FileExistsError):
        write_sketch_files(x, codec, tmp_path / "out")


@pytest.fixture(scope="module")
def cluster():
    """A ``distributed`` client on 2 worker processes (1 thread each)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as lc, distributed.Client(lc) as client:
        yield client


@pytest.mark.slow
def test_distributed_local_cluster(tmp_path, cluster):
    X = data(8)
    codec = codecs()[0]
    if True:  # (runs on the cluster fixture's client)
        x = da.from_array(X, chunks=(90, D))
        assert encode_array(x, codec).codes.compute().tobytes() == codec.encode(X).codes_bytes()
        write_sketch_files(x, codec, tmp_path / "o")
        assert load_parts(tmp_path / "o").codes == codec.encode(X).codes_bytes()
        X[401] = 0.0
        with pytest.raises(InvalidVectorError) as e:  # crosses the process boundary intact
            encode_array(da.from_array(X, chunks=(90, D)), codec).codes.compute()
        assert list(e.value.rows) == [401]


# -- several encodes in one graph, unknown chunks (issue 13) ------------------------
def test_two_encodes_in_one_graph_keep_their_own_codes():
    """Same chunks, same codec, different data: the task keys must differ."""
    X1, X2 = data(10), data(11)
    codec = codecs()[0]
    a, b = dask.compute(encode_array(da.from_array(X1, chunks=(250, D)), codec).codes,
                        encode_array(da.from_array(X2, chunks=(250, D)), codec).codes)
    assert a.tobytes() == codec.encode(X1).codes_bytes()
    assert b.tobytes() == codec.encode(X2).codes_bytes()


def test_one_array_under_two_configs_in_one_graph():
    """Same input, two configs of the same shape of output: keys differ by config bytes."""
    X = data(12)
    c1 = ClarkHash(ClarkHashConfig(input_dim=D, sketch_dim=24, bits=4, seed=1))
    c2 = ClarkHash(ClarkHashConfig(input_dim=D, sketch_dim=24, bits=4, seed=2))
    x = da.from_array(X, chunks=(250, D))
    e1, e2 = encode_array(x, c1), encode_array(x, c2)
    a, b = dask.compute(e1.codes, e2.codes)
    assert a.tobytes() == c1.encode(X).codes_bytes()
    assert b.tobytes() == c2.encode(X).codes_bytes()
    assert a.tobytes() != b.tobytes() and e1.codes.name != e2.codes.name


def test_same_input_and_config_give_the_same_keys():
    """Tokens are deterministic: encoding the same array twice is one computation."""
    X = data(13)
    codec = codecs()[1]
    x = da.from_array(X, chunks=(250, D))
    e1, e2 = encode_array(x, codec), encode_array(x, ClarkHash(codec.config))
    assert e1.codes.name == e2.codes.name and e1.norm_codes.name == e2.norm_codes.name


def masked(X, keep):
    """``x[mask]`` with a lazy (dask) mask: the row chunks become unknown (nan)."""
    return da.from_array(X, chunks=(100, D))[da.from_array(keep, chunks=100)]


def keep_mask(n=N, seed=0):
    keep = np.random.default_rng(seed).random(n) < 0.7
    keep[[40, 333]] = True
    return keep


def test_unknown_chunk_sizes_are_refused(tmp_path):
    xm = masked(data(14), keep_mask())
    assert np.isnan(xm.shape[0])
    codec = codecs()[0]
    with pytest.raises(InvalidInputError, match="unknown chunk sizes.*compute_chunk_sizes"):
        encode_array(xm, codec)
    with pytest.raises(InvalidInputError, match="unknown chunk sizes"):
        write_sketch_files(xm, codec, tmp_path / "o")
    assert _listing(tmp_path) == []


def test_unknown_chunks_once_computed_give_global_rows(tmp_path):
    X, keep = data(15), keep_mask()
    X[40] = np.nan
    X[333, 5] = np.inf
    xm = masked(X, keep).compute_chunk_sizes()
    kept = np.flatnonzero(keep)
    want = [int(np.searchsorted(kept, r)) for r in (40, 333)]  # their rows in x[mask]
    codec = codecs()[0]
    with pytest.raises(InvalidVectorError) as e:
        write_sketch_files(xm, codec, tmp_path / "o")
    assert sorted(e.value.rows) == want
    with pytest.raises(InvalidVectorError) as e:
        encode_array(xm, codec).codes.compute(scheduler="sync")
    assert set(e.value.rows) <= set(want) and e.value.rows
    keep[[40, 333]] = False
    xm = masked(X, keep).compute_chunk_sizes()
    doc = write_sketch_files(xm, codec, tmp_path / "o")
    assert doc["count"] == keep.sum()
    assert load_parts(tmp_path / "o").codes == codec.encode(X[keep]).codes_bytes()
    assert encode_array(xm, codec).codes.compute().tobytes() == codec.encode(X[keep]).codes_bytes()


@pytest.mark.slow
def test_distributed_two_encodes_in_one_graph(cluster):
    """On 2 worker processes: one graph holding two encodes (codes and norm codes)."""
    assert len(cluster.scheduler_info()["workers"]) >= 2
    X1, X2 = data(16), data(17)
    codec = codecs()[1]  # dot: codes and norm codes
    e1 = encode_array(da.from_array(X1, chunks=(250, D)), codec)
    e2 = encode_array(da.from_array(X2, chunks=(250, D)), codec)
    a, an, b, bn = dask.compute(e1.codes, e1.norm_codes, e2.codes, e2.norm_codes)
    for (codes, norms), X in (((a, an), X1), ((b, bn), X2)):
        ref = codec.encode(X)
        assert codes.tobytes() == ref.codes_bytes()
        assert norms.astype("<u2").tobytes() == ref.norm_codes_bytes()


@pytest.mark.slow
def test_distributed_encode_persisted_before_another(cluster):
    """The scheduler keeps a persisted encode in memory; a later encode of other
    rows with the same chunks and config must not pick up its blocks."""
    X1, X3 = data(19), data(18)
    codec = codecs()[0]
    kept = encode_array(da.from_array(X1, chunks=(250, D)), codec).codes.persist()
    later = encode_array(da.from_array(X3, chunks=(250, D)), codec).codes.compute()
    assert later.tobytes() == codec.encode(X3).codes_bytes()
    assert kept.compute().tobytes() == codec.encode(X1).codes_bytes()
