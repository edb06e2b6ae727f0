"""Behaviour shared by every binary codec: numpy/python byte identity, scores, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import CODECS, clustered, make_codec
from clark_hash_web.formats import sketch_file
from clark_hash_web.codecs.base import EncodedBatch
from clark_hash_web.errors import (ConfigMismatchError, DimensionError, InvalidInputError,
                                   InvalidVectorError)

SIZES = [(16, 16), (24, 13), (64, 64), (100, 128), (384, 384)]


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("d,m", SIZES)
def test_numpy_and_python_give_identical_bytes_and_scores(name, d, m):
    if name == "sign_hadamard" and m > 1 << (d - 1).bit_length():
        pytest.skip("more bits than the Hadamard length")
    a = make_codec(name, d, m, "numpy")
    b = make_codec(name, d, m, "python")
    assert a.config == b.config and a.config.fingerprint == b.config.fingerprint
    rng = np.random.default_rng(d * 1000 + m)
    n = 12 if d == 384 else 40
    x = np.concatenate([clustered(n // 2, d, seed=d), rng.standard_normal((n // 2, d)) * 1e3])
    x = x.astype(np.float32)
    x[0, : d // 2] = 0.0  # exact zeros in the projection inputs
    ea, eb = a.encode(x), b.encode(x)
    assert np.asarray(ea.codes).shape == (n, a.code_bytes)
    assert ea.codes_bytes() == eb.codes_bytes()
    for qi in (0, n - 1):
        qa, qb = a.sketch_query(x[qi]), b.sketch_query(x[qi].tolist())
        assert np.asarray(qa.values, dtype=np.float32).tobytes() == qb.values.tobytes()
        assert qa.code == qb.code == ea.code(qi)
        for scoring in ("asymmetric", "hamming"):
            sa = a.score(qa, ea, scoring=scoring)
            sb = b.score(qb, eb, scoring=scoring)
            assert sa.dtype == np.float32
            assert sa.tobytes() == sb.tobytes()
        assert list(a.hamming(qa, ea)) == list(b.hamming(qb, eb))
        assert a.hamming(qa, ea)[qi] == 0
    dec_a = a.decode_sketch(ea)
    assert dec_a.shape == (n, a.config.n_bits)
    assert dec_a.tobytes() == b"".join(r.tobytes() for r in b.decode_sketch(eb))


@pytest.mark.parametrize("name", CODECS)
def test_asymmetric_score_is_the_signed_sum(name):
    codec = make_codec(name, 32, 32, "numpy")
    x = clustered(30, 32, seed=5)
    enc = codec.encode(x)
    q = codec.sketch_query(x[3])
    signs = codec.decode_sketch(enc).astype(np.float64)
    want = signs @ np.asarray(q.values, dtype=np.float64)
    np.testing.assert_allclose(codec.score(q, enc), want, rtol=1e-5, atol=1e-4)
    # the query's own code gets the largest possible score, sum |q_j|
    assert codec.score(q, enc)[3] == pytest.approx(np.abs(q.values).sum(), rel=1e-5)
    h = codec.hamming(q, enc)
    np.testing.assert_array_equal(codec.score(q, enc, scoring="hamming"),
                                  ((32 - 2 * h) / 32).astype(np.float32))


@pytest.mark.parametrize("name", CODECS)
def test_encode_inputs_and_single_vector(name):
    codec = make_codec(name, 8, 8, "numpy")
    x = clustered(3, 8, seed=1)
    want = codec.encode(x).codes_bytes()
    assert codec.encode(x.tolist()).codes_bytes() == want
    assert codec.encode(x.astype("<f4").tobytes()).codes_bytes() == want
    assert codec.encode(x[1]).codes_bytes() == want[codec.code_bytes:2 * codec.code_bytes]
    assert codec.encode_vector(x[2]) == want[2 * codec.code_bytes:]
    assert codec.storage_bytes_per_vector == codec.code_bytes
    assert codec.compression_ratio_vs_f32 == 32 / codec.code_bytes


@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize("name", CODECS)
def test_bad_input_is_rejected_with_rows(name, backend):
    codec = make_codec(name, 8, 8, backend)
    x = clustered(6, 8, seed=2)
    x[1, 3] = np.nan
    x[2, 0] = np.inf
    x[3] = 0.0
    x[4, 5] = 2.0**61
    with pytest.raises(InvalidVectorError) as err:
        codec.encode(x)
    assert set(err.value.rows) == {1, 2, 3, 4}
    assert "NaN" in err.value.rows[1] and "zero" in err.value.rows[3] and "large" in err.value.rows[4]
    assert "row 1" in str(err.value)
    enc = codec.encode(x, errors="skip")
    assert enc.rows == [0, 5] and set(enc.skipped) == {1, 2, 3, 4}
    assert enc.codes_bytes() == codec.encode(x[[0, 5]]).codes_bytes()
    with pytest.raises(DimensionError):
        codec.encode(np.ones((2, 9), dtype=np.float32))
    with pytest.raises(InvalidInputError):
        codec.encode(np.ones((2, 2, 8), dtype=np.float32))
    with pytest.raises(InvalidInputError):
        codec.encode(x[:1], errors="ignore")
    with pytest.raises(InvalidVectorError):
        codec.sketch_query(np.zeros(8))
    with pytest.raises(InvalidInputError):
        codec.sketch_query(x[:2])
    with pytest.raises(InvalidInputError):
        codec.score(codec.sketch_query(x[0]), codec.encode(x[:1]), scoring="cosine")


def test_codes_of_another_config_are_refused():
    a = make_codec("lsh", 16, 16, "numpy", seed=1)
    b = make_codec("lsh", 16, 16, "numpy", seed=2)
    x = clustered(4, 16, seed=3)
    with pytest.raises(ConfigMismatchError):
        a.score(a.sketch_query(x[0]), b.encode(x))
    with pytest.raises(ConfigMismatchError):
        a.score(b.sketch_query(x[0]), a.encode(x))
    c = make_codec("lsh", 16, 13, "numpy")
    with pytest.raises(ConfigMismatchError):
        EncodedBatch.from_bytes(c.config, b"\xff\xff")  # padding bits set
    with pytest.raises(ConfigMismatchError):
        EncodedBatch.from_bytes(c.config, b"\x00\x00\x00")  # not a multiple of code_bytes


@pytest.mark.parametrize("name", ["lsh", "sign", "sign_hadamard", "itq"])
def test_sketch_file_round_trip(name):
    codec = make_codec(name, 24, 21, "numpy")
    enc = codec.encode(clustered(10, 24, seed=4))
    data = sketch_file.encoded_to_bytes(enc, ids=list(range(100, 110)))
    back = sketch_file.from_bytes(data)
    assert back.config == codec.config and back.fingerprint == codec.config.fingerprint
    assert back.to_encoded().codes_bytes() == enc.codes_bytes()
    assert data[10] == codec.config.to_bytes()[0] == codec.config.kind
    bad = bytearray(data)
    bad[40 + len(codec.config.to_bytes()) + 2] ^= 0x01  # flip a code bit: CRC catches it
    with pytest.raises(Exception):
        sketch_file.from_bytes(bytes(bad))
