"""The dot-mode norm channel against the crate's exact tables."""

import json
import struct

import numpy as np
import pytest

from clark_hash_web.codecs import norm_channel as nc
from clark_hash_web.float32 import bits_of, from_bits

from shared_cases import CONFORMANCE

TABLE = json.loads((CONFORMANCE / "norm_channel_default.json").read_text())
THRESHOLDS = np.fromfile(CONFORMANCE / "norm_code_thresholds_default.bin", dtype="<u4")


def test_threshold_file_shape():
    assert len(THRESHOLDS) == 65535 and (np.diff(THRESHOLDS.astype(np.int64)) > 0).all()


def test_decode_table_matches_the_crate_for_every_code():
    ours = nc.decode_table()
    assert [bits_of(v) for v in ours] == [int(h, 16) for h in TABLE["decode_table_f32_hex"]]


def test_numpy_decode_equals_python_decode():
    codes = np.arange(65536, dtype=np.uint16)
    assert nc.decode_norms_numpy(codes).tobytes() == struct.pack("<65536f", *nc.decode_table())


def test_glibc_sensitive_norms():
    for e in TABLE["log2f_sensitive_norms"]:
        n = from_bits(int(e["norm_f32_hex"], 16))
        assert nc.norm_code(n) == e["reference_code"]
        arr = np.array([n], dtype=np.float32)
        assert int(nc.norm_codes_numpy(arr)[0]) == e["reference_code"]


def expected_codes(bits):
    return np.searchsorted(THRESHOLDS, bits, side="right")


def test_every_code_boundary_numpy():
    """Around every threshold (+-24 ulps) the vectorized code equals the crate's."""
    offs = np.arange(-24, 25, dtype=np.int64)
    cand = (THRESHOLDS.astype(np.int64)[:, None] + offs[None, :]).ravel()
    cand = cand[(cand > 0) & (cand < 0x7F800000)].astype(np.uint32)
    got = nc.norm_codes_numpy(cand.view(np.float32))
    bad = np.flatnonzero(got != expected_codes(cand))
    assert bad.size == 0, [hex(int(b)) for b in cand[bad[:5]]]


def test_code_boundaries_scalar_sample():
    rng = np.random.default_rng(1)
    pick = rng.choice(len(THRESHOLDS), 3000, replace=False)
    cand = np.concatenate([THRESHOLDS[pick], THRESHOLDS[pick] - 1]).astype(np.uint32)
    got = [nc.norm_code(float(v)) for v in cand.view(np.float32)]
    assert got == expected_codes(cand).tolist()


def test_random_norms_everywhere():
    rng = np.random.default_rng(2)
    bits = rng.integers(1, 0x7F800000, 200_000, dtype=np.uint32)
    got = nc.norm_codes_numpy(bits.view(np.float32))
    assert (got == expected_codes(bits)).all()


@pytest.mark.parametrize("lo, hi", [(-8.0, 20.0), (-30.0, 2.5)])
def test_other_ranges_agree_between_paths(lo, hi):
    rng = np.random.default_rng(3)
    norms = (2.0 ** rng.uniform(lo - 2, hi + 2, 5000)).astype(np.float32)
    got = nc.norm_codes_numpy(norms, lo, hi)
    assert got.tolist() == [nc.norm_code(float(v), lo, hi) for v in norms]
    codes = rng.integers(0, 65536, 2000)
    assert [bits_of(nc.decode_norm(int(c), lo, hi)) for c in codes] == \
        nc.decode_norms_numpy(codes, lo, hi).view(np.uint32).tolist()


def test_special_values():
    assert nc.norm_code(float("nan")) == 0
    assert nc.norm_code(float("inf")) == 65535
    assert nc.norm_code(0.0) == 0
    with pytest.raises(ValueError):
        nc.decode_norm(65536)
