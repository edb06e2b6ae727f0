"""Packed bits: layout, Hamming distance vs a naive popcount, asymmetric lookup scores."""

from __future__ import annotations

import numpy as np
import pytest

from clark_hash_web.codecs import bitpack


def naive_popcount_distance(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b))


@pytest.mark.parametrize("nbits", [1, 7, 8, 9, 63, 64, 65, 384, 1000])
def test_pack_layout_and_numpy_equals_python(nbits):
    rng = np.random.default_rng(nbits)
    v = rng.standard_normal((5, nbits)).astype(np.float32)
    v[0, 0] = 0.0
    v[1, 0] = -0.0
    packed = bitpack.pack_signs_numpy(v)
    assert packed.shape == (5, bitpack.code_bytes_for(nbits))
    for r in range(5):
        py = bitpack.pack_signs_python(v[r].tolist(), nbits)
        assert packed[r].tobytes() == py
        bits = bitpack.unpack_bits_python(py, nbits)
        assert bits == [int(x > 0) for x in v[r]]
        # LSB first: bit j is (byte j // 8 >> j % 8) & 1
        assert all(((py[j // 8] >> (j % 8)) & 1) == bits[j] for j in range(nbits))
    assert bitpack.unpack_bits_python(bitpack.pack_signs_python([0.0], 1), 1) == [0]


@pytest.mark.parametrize("cb", [1, 5, 8, 13, 48])
def test_hamming_matches_naive_popcount(cb):
    rng = np.random.default_rng(cb)
    codes = rng.integers(0, 256, (200, cb), dtype=np.uint8)
    q = rng.integers(0, 256, cb, dtype=np.uint8).tobytes()
    want = [naive_popcount_distance(q, c.tobytes()) for c in codes]
    assert bitpack.hamming_numpy(q, bitpack.words_of(codes)).tolist() == want
    assert bitpack.hamming_python(q, codes.tobytes(), len(codes)) == want


def test_popcount_lut_fallback_matches(monkeypatch):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (50, 16), dtype=np.uint8)
    q = codes[0].tobytes()
    want = bitpack.hamming_numpy(q, bitpack.words_of(codes)).tolist()
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert bitpack.hamming_numpy(q, bitpack.words_of(codes)).tolist() == want


@pytest.mark.parametrize("nbits", [5, 16, 17, 100, 384])
def test_asymmetric_scores_numpy_python_identical_and_correct(nbits):
    rng = np.random.default_rng(nbits)
    q = rng.standard_normal(nbits).astype(np.float32)
    codes = rng.integers(0, 256, (64, bitpack.code_bytes_for(nbits)), dtype=np.uint8)
    if nbits % 8:  # clear padding bits, as encoders do
        codes[:, -1] &= (1 << (nbits % 8)) - 1
    t_np = bitpack.byte_tables_numpy(q, nbits)
    t_py = bitpack.byte_tables_python(q.tolist(), nbits)
    assert t_np.tobytes() == b"".join(t.tobytes() for t in t_py)
    s_np = bitpack.asymmetric_scores_numpy(bitpack.pair_tables_numpy(t_np),
                                           bitpack.u16_columns(codes), chunk=17)
    s_py = bitpack.asymmetric_scores_python(t_py, codes.tobytes(), len(codes))
    assert s_np.tobytes() == s_py.tobytes()
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, :nbits]
    exact = (np.where(bits == 1, 1.0, -1.0) * q.astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(s_np, exact, rtol=1e-5, atol=1e-4)


def test_hamming_score():
    assert bitpack.hamming_score_python(0, 384) == 1.0
    assert bitpack.hamming_score_python(384, 384) == -1.0
    d = np.arange(0, 385)
    np_scores = bitpack.hamming_score_numpy(d, 384)
    assert np_scores.dtype == np.float32
    assert np_scores.tolist() == [bitpack.hamming_score_python(int(h), 384) for h in d]
