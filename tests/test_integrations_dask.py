"""Bulk encoding through dask.array.map_blocks (clark_hash_web.integrations.dask_arrays)."""

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

from clark_hash_web import ClarkHash, ClarkHashConfig  # noqa: E402
from clark_hash_web.codecs import registry  # noqa: E402
from clark_hash_web.formats import sketch_file  # noqa: E402
from clark_hash_web.errors import DimensionError, InvalidVectorError  # noqa: E402
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


@pytest.mark.slow
def test_distributed_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    X = data(8)
    codec = codecs()[0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        x = da.from_array(X, chunks=(90, D))
        assert encode_array(x, codec).codes.compute().tobytes() == codec.encode(X).codes_bytes()
        write_sketch_files(x, codec, tmp_path / "o")
        assert load_parts(tmp_path / "o").codes == codec.encode(X).codes_bytes()
        X[401] = 0.0
        with pytest.raises(InvalidVectorError) as e:  # crosses the process boundary intact
            encode_array(da.from_array(X, chunks=(90, D)), codec).codes.compute()
        assert list(e.value.rows) == [401]
