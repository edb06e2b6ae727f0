"""Bulk encoding with pyspark mapInArrow (clark_hash_web.integrations.spark), local mode."""

import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("pyspark needs a Java runtime (java not found)", allow_module_level=True)


from clark_hash_web import ClarkHash, ClarkHashConfig  # noqa: E402
from clark_hash_web.formats import sketch_file
from clark_hash_web.errors import InvalidInputError, InvalidVectorError  # noqa: E402
from clark_hash_web.integrations import load_parts  # noqa: E402
from clark_hash_web.integrations import spark as chs  # noqa: E402

D = 40
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # stay on loopback
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("clark-hash-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
               .config("spark.task.maxFailures", "1")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.adaptive.enabled", "true")  # AQE on (the default), stated
               .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def data(seed, n, d=D):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) * rng.uniform(0.01, 50, (n, 1))).astype(np.float32)


def frame(spark, vectors, slices, element="float"):
    """DataFrame in row order: partition i holds a contiguous run of rows."""
    from pyspark.sql import types as T

    el = T.FloatType() if element == "float" else T.DoubleType()
    schema = T.StructType([T.StructField("doc", T.StringType()),
                           T.StructField("embedding", T.ArrayType(el), True)])
    rows = [(f"d{i}", None if v is None else [float(x) for x in v]) for i, v in enumerate(vectors)]
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, slices), schema)


def codecs():
    out = [ClarkHash(ClarkHashConfig(input_dim=D, sketch_dim=24)),
           ClarkHash(ClarkHashConfig(input_dim=D, sketch_dim=17, bits=5, metric="dot"))]
    try:
        from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig

        out.append(HyperplaneLSH(HyperplaneLSHConfig(input_dim=D, n_bits=96)))
    except ImportError:
        pass
    return out


CASES = [(0, 1), (0, 7), (1, 3)] + ([(2, 4)] if len(codecs()) > 2 else [])


@pytest.mark.parametrize("which,slices", CASES)
def test_code_column_equals_single_process(spark, which, slices):
    codec = codecs()[which]
    X = data(1, 300)
    df = frame(spark, X, slices)
    out = chs.encode_dataframe(df, codec, "embedding", keep=["doc"]).orderBy("row").toPandas()
    ref = codec.encode(X)
    assert out["row"].tolist() == list(range(300))
    assert out["doc"].tolist() == [f"d{i}" for i in range(300)]
    assert out["error"].isna().all()
    assert b"".join(out["code"]) == ref.codes_bytes()
    if ref.norm_codes_bytes() is not None:
        assert out["norm_code"].astype("<u2").to_numpy().tobytes() == ref.norm_codes_bytes()
    else:
        assert "norm_code" not in out.columns


def test_double_vectors_round_like_encode(spark):
    X = data(2, 50).astype(np.float64) * 1.0000001
    codec = codecs()[0]
    out = chs.encode_dataframe(frame(spark, X, 2, element="double"), codec).orderBy("row").toPandas()
    assert b"".join(out["code"]) == codec.encode(X).codes_bytes()


def bad_vectors():
    X = [list(v) for v in data(3, 260)]
    X[7] = [0.0] * D            # zero vector
    X[77] = X[77][:-1]          # wrong dimension
    X[123][5] = float("nan")    # NaN
    X[250] = None               # null
    return X


def test_bad_rows_reported_with_global_row_numbers(spark):
    codec = codecs()[0]
    out = chs.encode_dataframe(frame(spark, bad_vectors(), 4), codec).orderBy("row").toPandas()
    errs = {int(r): e for r, e in zip(out["row"], out["error"]) if isinstance(e, str)}
    assert sorted(errs) == [7, 77, 123, 250]
    assert "norm" in errs[7] and "dimension 39" in errs[77] and "NaN" in errs[123] and "null" in errs[250]
    assert out.loc[[7, 77, 123, 250], "code"].isna().all()
    good = [i for i in range(260) if i not in errs]
    ref = codec.encode(np.array([bad_vectors()[i] for i in good], dtype=np.float32))
    assert b"".join(out.loc[good, "code"]) == ref.codes_bytes()
    with pytest.raises(InvalidVectorError) as e:
        chs.check_errors(chs.encode_dataframe(frame(spark, bad_vectors(), 4), codec))
    assert sorted(e.value.rows) == [7, 77, 123, 250]


def test_bad_rows_write_nothing(spark, tmp_path):
    with pytest.raises(InvalidVectorError) as e:
        chs.write_sketch_files(frame(spark, bad_vectors(), 4), codecs()[0], str(tmp_path / "o"))
    assert sorted(e.value.rows) == [7, 77, 123, 250]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("codec", codecs()[:2], ids=["cosine", "dot"])
def test_sketch_files_round_trip(spark, tmp_path, codec):
    X = data(4, 333)
    doc = chs.write_sketch_files(frame(spark, X, 5), codec, str(tmp_path / "o"))
    assert doc["count"] == 333 and len(doc["parts"]) == 5
    back = load_parts(tmp_path / "o")
    ref = codec.encode(X)
    assert back.codes == ref.codes_bytes() and back.norm_codes == ref.norm_codes_bytes()
    assert back.ids == list(range(333))
    first = doc["parts"][2]
    part = sketch_file.load(tmp_path / "o" / first["file"])
    assert part.ids[0] == first["first_row"] and part.codes[:codec.config.code_bytes] == \
        ref.code(first["first_row"])


def test_sketch_files_with_id_column(spark, tmp_path):
    X = data(5, 90)
    codec = codecs()[0]
    chs.write_sketch_files(frame(spark, X, 3), codec, str(tmp_path / "o"), id_col="doc")
    back = load_parts(tmp_path / "o")
    assert back.ids == [f"d{i}" for i in range(90)]
    assert back.codes == codec.encode(X).codes_bytes()


def test_wrong_column_type(spark):
    df = spark.createDataFrame([(1, "x")], "a long, embedding string")
    with pytest.raises(InvalidInputError, match="array<float>"):
        chs.encode_dataframe(df, codecs()[0], "embedding")
    with pytest.raises(InvalidInputError, match="no column"):
        chs.encode_dataframe(df, codecs()[0], "vec")


class ExplodingCodec:
    """Wraps a codec; its encode fails for the batch holding row ``boom``."""

    def __init__(self, codec, boom_vector_first_value):
        self.codec = codec
        self.config = codec.config
        self.boom = boom_vector_first_value

    def encode(self, rows, errors="raise"):
        if np.any(np.asarray(rows)[:, 0] == np.float32(self.boom)):
            raise RuntimeError("worker crashed (injected)")
        return self.codec.encode(rows, errors=errors)


def test_failed_partition_leaves_no_output(spark, tmp_path):
    from pyspark import cloudpickle  # pyspark's own copy pickles the UDF closures

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    X = data(6, 200)
    codec = ExplodingCodec(codecs()[0], X[170, 0])
    with pytest.raises(chs.PartitionError, match="partition 3: RuntimeError: worker crashed"):
        chs.write_sketch_files(frame(spark, X, 4), codec, str(tmp_path / "o"))
    assert os.listdir(tmp_path) == []
    # an existing output survives a failed overwrite
    chs.write_sketch_files(frame(spark, X, 4), codecs()[0], str(tmp_path / "o"))
    before = {f: (tmp_path / "o" / f).read_bytes() for f in os.listdir(tmp_path / "o")}
    with pytest.raises(chs.PartitionError, match="injected"):
        chs.write_sketch_files(frame(spark, X, 4), codec, str(tmp_path / "o"), overwrite=True)
    assert os.listdir(tmp_path) == ["o"]
    assert {f: (tmp_path / "o" / f).read_bytes() for f in os.listdir(tmp_path / "o")} == before


# -- downstream plans (issue 13): row numbers travel with the data -----------------
def check_encoded(pdf, X, bad=()):
    """``pdf`` (any row order) holds rows 0..n-1 once each, with X's codes."""
    codec = codecs()[0]
    pdf = pdf.sort_values("row").reset_index(drop=True)
    assert pdf["row"].tolist() == list(range(len(X)))
    assert pdf["doc"].tolist() == [f"d{i}" for i in range(len(X))]
    errs = sorted(int(r) for r, e in zip(pdf["row"], pdf["error"]) if isinstance(e, str))
    assert errs == sorted(bad)
    good = [i for i in range(len(X)) if i not in bad]
    ref = codec.encode(np.array([X[i] for i in good], dtype=np.float32))
    assert b"".join(pdf.loc[good, "code"]) == ref.codes_bytes()


def test_coalesce_after_encode_keeps_row_numbers(spark):
    """One task runs several input partitions: each keeps its own first row."""
    X = bad_vectors()
    enc = chs.encode_dataframe(frame(spark, X, 4), codecs()[0], keep=["doc"]).coalesce(1)
    check_encoded(enc.toPandas(), X, bad=[7, 77, 123, 250])
    with pytest.raises(InvalidVectorError) as e:
        chs.check_errors(enc)
    assert sorted(e.value.rows) == [7, 77, 123, 250]


def test_union_of_two_encodes(spark):
    """Second DataFrame's partitions run with task ids shifted by the first's count."""
    X1, X2 = data(20, 150), data(21, 110)
    codec = codecs()[0]
    enc = chs.encode_dataframe(frame(spark, X1, 3), codec, keep=["doc"]).union(
        chs.encode_dataframe(frame(spark, X2, 2), codec, keep=["doc"]))
    pdf = enc.toPandas()
    assert len(pdf) == 260
    check_encoded(pdf.iloc[:150], X1)
    check_encoded(pdf.iloc[150:], X2)
    # coalesced union: all five input partitions in one task, in order
    pdf = enc.coalesce(1).toPandas()
    check_encoded(pdf.iloc[:150], X1)
    check_encoded(pdf.iloc[150:], X2)


def _join(enc, spark, hint):
    other = spark.range(0, 260).withColumnRenamed("id", "row")
    return enc.join(other.hint(hint), "row")


PLANS = {
    "coalesce-2": lambda enc, spark: enc.coalesce(2),
    "repartition-3": lambda enc, spark: enc.repartition(3),
    "join-merge": lambda enc, spark: _join(enc, spark, "merge"),
    "join-broadcast": lambda enc, spark: _join(enc, spark, "broadcast"),
}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_downstream_plans_with_aqe(spark, plan):
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"
    X = bad_vectors()
    enc = PLANS[plan](chs.encode_dataframe(frame(spark, X, 4), codecs()[0], keep=["doc"]), spark)
    check_encoded(enc.toPandas(), X, bad=[7, 77, 123, 250])


def test_cached_encode_then_coalesce_and_join(spark):
    X = data(22, 260)
    enc = chs.encode_dataframe(frame(spark, X, 4), codecs()[0], keep=["doc"]).cache()
    try:
        assert enc.count() == 260
        check_encoded(enc.coalesce(1).toPandas(), X)
        check_encoded(_join(enc, spark, "merge").toPandas(), X)
    finally:
        enc.unpersist()


def _pid_batch(pids):
    import pyarrow as pa

    return pa.RecordBatch.from_arrays([pa.array(pids, type=pa.int32()),
                                       pa.array(range(len(pids)))], names=[chs.PARTITION_COL, "x"])


def test_runs_number_rows_per_input_partition():
    """A batch mixing input partitions is split; numbering continues across batches."""
    offsets, ends, next_row = {0: 0, 1: 3, 2: 3, 3: 3}, {0: 3, 1: 3, 2: 3, 3: 8}, {}
    got = [(p, row, b.column(1).to_pylist())
           for batch in (_pid_batch([0, 0, 3, 3]), _pid_batch([3, 0, 3]))
           for p, row, b in chs._runs(batch, offsets, ends, next_row)]
    assert got == [(0, 0, [0, 1]), (3, 3, [2, 3]), (3, 5, [0]), (0, 2, [1]), (3, 6, [2])]
    assert next_row == {0: 3, 3: 7}


def test_runs_refuse_a_changed_input():
    offsets, ends = {0: 0, 1: 2}, {0: 2, 1: 4}
    with pytest.raises(chs.PartitionError, match="partition 0 yields more than the 2 rows"):
        list(chs._runs(_pid_batch([0, 0, 0]), offsets, ends, {}))
    with pytest.raises(chs.PartitionError, match="partition 5 was not counted"):
        list(chs._runs(_pid_batch([5]), offsets, ends, {}))


def test_reserved_partition_column(spark):
    df = spark.createDataFrame([([1.0] * D, 1)], f"embedding array<float>, {chs.PARTITION_COL} long")
    with pytest.raises(InvalidInputError, match="reserved"):
        chs.encode_dataframe(df, codecs()[0], keep=[chs.PARTITION_COL])


def test_shuffled_cached_input_numbers_like_zip_with_index(spark):
    """Input after a shuffle (AQE on), cached as the docs ask: ``row`` is the
    position ``rdd.zipWithIndex`` gives, also with a coalesce after the encode."""
    X = data(23, 200)
    df = frame(spark, X, 3).repartition(5, "doc").cache()
    try:
        position = dict(df.rdd.map(lambda r: r["doc"]).zipWithIndex().collect())
        assert sorted(position.values()) == list(range(200))
        codec = codecs()[0]
        pdf = chs.encode_dataframe(df, codec, keep=["doc"]).coalesce(1).toPandas()
        assert sorted(pdf["row"]) == list(range(200))
        assert all(position[d] == r for d, r in zip(pdf["doc"], pdf["row"]))
        pdf = pdf.sort_values("row")
        order = [int(d[1:]) for d in pdf["doc"]]
        assert b"".join(pdf["code"]) == codec.encode(X[order]).codes_bytes()
    finally:
        df.unpersist()
