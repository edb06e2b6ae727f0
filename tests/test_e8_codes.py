"""E8 lattice codes: roots, nearest-root encoding, numpy/python identity, scoring, files."""

from __future__ import annotations

import numpy as np
import pytest

from binary_helpers import clustered
from clark_hash_web.formats import sketch_file
from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.codecs.e8 import ROOTS, E8Codes, E8Config
from clark_hash_web.errors import (ConfigError, ConfigMismatchError, InvalidInputError,
                                   SketchFileError)
from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig


def test_roots_are_the_e8_roots():
    r = np.array(ROOTS)
    assert r.shape == (240, 8) and len({tuple(v) for v in ROOTS}) == 240
    assert np.all((r**2).sum(axis=1) == 2)
    assert np.all(((2 * r).sum(axis=1) % 4) == 0)  # even lattice: coordinate sums even
    g = r @ r.T
    assert set(np.unique(g)) <= {-2, -1, 0, 1, 2}  # minimal angle 60 degrees


def tricky_rows(d, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[0, :] = 0.25           # all ties
    x[1, : d // 2] = 0.0     # zeros
    x[2] = np.round(x[2])    # many equal magnitudes
    x[3] = -np.abs(x[3])     # all negative
    x[4, ::2] = 1.0
    x[4, 1::2] = -1.0
    return x


@pytest.mark.parametrize("d", [8, 13, 64, 384])
def test_encoding_is_the_nearest_root_and_backends_agree(d):
    cfg = E8Config(input_dim=d)
    assert cfg.code_bytes == (d + 7) // 8
    a, b = E8Codes(cfg, "numpy"), E8Codes(cfg, "python")
    x = tricky_rows(d, 60 if d == 384 else 300, d)
    ea, eb = a.encode(x), b.encode(x)
    assert ea.codes_bytes() == eb.codes_bytes()
    codes = np.asarray(ea.codes)
    assert codes.max() < 240
    xp = np.zeros((len(x), cfg.n_bits))
    xp[:, :d] = x
    ip = xp.reshape(-1, 8) @ np.array(ROOTS).T
    chosen = ip[np.arange(len(ip)), codes.reshape(-1)]
    np.testing.assert_allclose(chosen, ip.max(axis=1), rtol=1e-6, atol=1e-7)
    for qi in (0, 5):
        qa, qb = a.sketch_query(x[qi]), b.sketch_query(x[qi].tolist())
        assert qa.code == qb.code == ea.code(qi)
        sa, sb = a.score(qa, ea), b.score(qb, eb)
        assert sa.dtype == np.float32 and sa.tobytes() == sb.tobytes()
        dec = a.decode_sketch(ea)
        assert dec.tobytes() == b"".join(r.tobytes() for r in b.decode_sketch(eb))
        np.testing.assert_allclose(sa, dec.astype(np.float64) @ xp[qi], rtol=1e-5, atol=1e-4)


def test_config_bytes_and_errors():
    cfg = E8Config(input_dim=384)
    raw = cfg.to_bytes()
    assert raw[0] == 5 and len(raw) == 16 and E8Config.from_bytes(raw) == cfg
    assert E8Config(input_dim=383).fingerprint != cfg.fingerprint
    assert (cfg.code_bytes, cfg.storage_bytes_per_vector) == (48, 48)
    with pytest.raises(ConfigError):
        E8Config(input_dim=0)
    with pytest.raises(ConfigError):
        E8Config.from_bytes(raw[:8] + b"\x01" + raw[9:])
    codec = E8Codes(cfg, "numpy")
    x = clustered(4, 384, seed=1)
    with pytest.raises(InvalidInputError):
        codec.score(codec.sketch_query(x[0]), codec.encode(x), scoring="hamming")
    index = BinaryIndex(codec)
    index.add(x)
    with pytest.raises(InvalidInputError):
        index.search(x[0], 2, candidates=3)
    assert index.search(x[0], 2)[0][0] == 0


def test_sketch_files_refuse_bytes_that_are_not_roots():
    codec = E8Codes(E8Config(input_dim=16), "numpy")
    enc = codec.encode(clustered(3, 16, seed=2))
    data = sketch_file.encoded_to_bytes(enc)
    assert sketch_file.from_bytes(data).to_encoded().codes_bytes() == enc.codes_bytes()
    bad = np.asarray(enc.codes).copy()
    bad[1, 1] = 250
    with pytest.raises((ConfigMismatchError, SketchFileError)):
        sketch_file.encoded_to_bytes(type(enc)(codec.config, bad))
    index = BinaryIndex(codec)
    with pytest.raises(ConfigMismatchError, match="row 1 byte 1 is 250"):
        index.add_encoded(type(enc)(codec.config, bad))
    assert len(index) == 0


def test_e8_beats_sign_bits_at_the_same_size():
    """Same bytes per vector, more recall@10 than sign bits scored with the float query."""
    d, k = 64, 10
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    queries = (x[:100] + 0.6 / np.sqrt(d) * rng.standard_normal((100, d))).astype(np.float32)
    exact = np.argsort(-(queries.astype(np.float64) @ x.T.astype(np.float64)), axis=1)[:, :k]
    recalls = {}
    for name, codec in (("e8", E8Codes(E8Config(d), "numpy")),
                        ("sign", SignBits(SignBitsConfig(d), "numpy"))):
        assert codec.code_bytes == 8
        index = BinaryIndex(codec)
        index.add(x)
        recalls[name] = np.mean([len(set(index.search(q, k)[0]) & set(e)) / k
                                 for q, e in zip(queries, exact)])
    assert recalls["e8"] > recalls["sign"] + 0.015, recalls


def test_fast_encoder_equals_reference_on_ties_and_near_ties():
    """The column-wise encoder (e8_fast) gives the reference bytes on blocks full of ties:
    equal magnitudes (first-index rules), zeros and -0.0, s1 == s2 exactly, one ulp apart."""
    rng = np.random.default_rng(11)
    n = 3000
    small = np.array([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 0.25, -0.25], dtype=np.float32)
    x = small[rng.integers(0, len(small), size=(n, 64))]
    y = rng.standard_normal((n, 64)).astype(np.float32)
    x[n // 2:] = y[n // 2:]
    x[n // 2:n // 2 + 300] = np.nextafter(x[n // 2:n // 2 + 300], np.float32(np.inf))
    x[-200:, 0:63:3] = -x[-200:, 1:64:3]                                 # repeated magnitudes
    x[5] = 0.0                                                          # an all-zero row
    codec = E8Codes(E8Config(64), "numpy")
    fast = codec._encode_numpy(x)
    ref = codec._encode_numpy_reference(x)
    assert fast.tobytes() == ref.tobytes()
    py = E8Codes(E8Config(64), "python")
    assert b"".join(py._encode_python(x[i].tolist()) for i in range(0, n, 97)) == \
        fast[::97].tobytes()


@pytest.mark.parametrize("d", [1, 13, 385])
def test_fast_encoder_pads_and_chunks(d):
    from clark_hash_web.codecs import e8_fast

    x = np.random.default_rng(d).standard_normal((e8_fast.CHUNK_BLOCKS // 5 + 3, d))
    x = x.astype(np.float32)
    codec = E8Codes(E8Config(d), "numpy")
    assert codec._encode_numpy(x).tobytes() == codec._encode_numpy_reference(x).tobytes()


def _tie_blocks(n, seed):
    """(n, 8) float32 blocks drawn from few magnitudes: ties everywhere, zeros, -0.0,
    subnormals and the extreme magnitudes inputs may have."""
    rng = np.random.default_rng(seed)
    mags = np.array([0.0, 1e-45, 2.0**-60, 0.25, 0.5, 1.0, 1.5, 2.0**60], dtype=np.float32)
    x = mags[rng.integers(0, len(mags), size=(n, 8))]
    x = np.where(rng.random((n, 8)) < 0.5, -x, x).astype(np.float32)     # -0.0 included
    signs = (np.arange(256)[:, None] >> np.arange(8)) & 1                # every sign pattern
    x[:256] = np.where(signs == 1, np.float32(-1.0), np.float32(1.0))    # 8 equal magnitudes
    x[256:512] = np.where(signs == 1, -1.0, 1.0) * np.array([1, 1, 1, 1, 0, 0, 0, 0])  # s1 == s2
    return x


def test_block_encoder_equals_reference_and_python_on_tie_blocks():
    """BlockEncoder (column-wise, 8-block flag words, buffers reused across chunks) gives
    the reference bytes on blocks full of ties; a chunk width that is not a multiple of
    the input length exercises the padded last chunk."""
    from clark_hash_web.codecs.e8 import _encode_block_python
    from clark_hash_web.codecs.e8_fast import BlockEncoder

    x = _tie_blocks(3 * 1000 + 5, seed=5)
    want = E8Codes(E8Config(8), "numpy")._encode_numpy_reference(x).reshape(-1)
    encode = BlockEncoder(1000)
    assert encode(x).tobytes() == want.tobytes()
    assert encode(x[:13]).tobytes() == want[:13].tobytes()          # same buffers, fewer rows
    assert bytes(_encode_block_python(x[i].tolist()) for i in range(0, 600, 7)) == \
        want[0:600:7].tobytes()


def test_block_encoder_without_bitwise_count(monkeypatch):
    """numpy < 2 has no np.bitwise_count: the parity fold gives the same bytes."""
    from clark_hash_web.codecs.e8_fast import encode_blocks

    x = _tie_blocks(2000, seed=6)
    want = encode_blocks(x)
    monkeypatch.delattr(np, "bitwise_count")
    assert encode_blocks(x).tobytes() == want.tobytes()
