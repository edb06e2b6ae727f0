"""Sketch file format v1: layout, round trips, append, corruption, fuzzing."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clark_hash_web import (ClarkHash, ClarkHashConfig, ConfigError, ConfigMismatchError,
                            DuplicateIdError, FlatIndex, InvalidInputError, SketchFileError)
from clark_hash_web.formats import sketch_file as sf

COSINE = ClarkHashConfig(24, sketch_dim=10, bits=3)           # 30 bits -> 4 bytes, 2 padding bits
DOT = ClarkHashConfig(24, sketch_dim=16, bits=4, metric="dot")  # 8 bytes, no padding


def vectors(n, d=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x * (2.0 ** rng.uniform(-4, 4, (n, 1))).astype(np.float32)


def encode(cfg, n, backend="numpy", seed=0):
    return ClarkHash(cfg, backend).encode(vectors(n, cfg.input_dim, seed))


def recrc(data: bytes) -> bytes:
    """Fix the trailing CRC after a deliberate edit, to reach the checks behind it."""
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def patch(data: bytes, offset: int, new: bytes, fix_crc=True) -> bytes:
    out = bytearray(data)
    out[offset:offset + len(new)] = new
    return recrc(bytes(out)) if fix_crc else bytes(out)


IDS = {
    "none": lambda n: None,
    "int": lambda n: [(-1) ** i * (i * 7919 + 2**40) for i in range(n)],
    "str": lambda n: [f"doc-{i}-é€😀" for i in range(n)],
}


# ---------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------
def test_layout_matches_the_documented_table():
    """Build the expected bytes independently with struct, field by field."""
    cfg = DOT
    enc = encode(cfg, 3)
    ids = ["a", "", "ü"]
    data = sf.encoded_to_bytes(enc, ids)
    cb = enc.codes_bytes()
    nb = enc.norm_codes_bytes()
    cfg_bytes = cfg.to_bytes()
    fp = hashlib.sha256(b"clark-hash-web/config\x00" + cfg_bytes).digest()[:8]
    blob = "a".encode() + b"" + "ü".encode()
    expected = (b"CHSKETCH" + struct.pack("<HBBBBH", 2, 1, 1, 2, 0, 0) + fp
                + struct.pack("<QII", 3, 8, 32) + cfg_bytes + cb + nb
                + struct.pack("<4I", 0, 1, 1, 1 + len("ü".encode())) + blob)
    expected += struct.pack("<I", zlib.crc32(expected))
    assert data == expected
    assert len(cfg_bytes) == 32 and cfg_bytes[0] == 1


def test_layout_int_ids_and_no_ids():
    enc = encode(COSINE, 2)
    base = sf.encoded_to_bytes(enc)
    assert base[11] == 0 and base[12] == 0
    assert len(base) == 40 + 32 + 2 * 4 + 4
    with_ids = sf.encoded_to_bytes(enc, [5, -(2**63)])
    assert with_ids[12] == 1
    assert with_ids[-20:-4] == struct.pack("<2q", 5, -(2**63))


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [COSINE, DOT], ids=["cosine", "dot"])
@pytest.mark.parametrize("ids_kind", list(IDS))
def test_round_trip(cfg, ids_kind, backend, tmp_path):
    enc = encode(cfg, 17, backend)
    ids = IDS[ids_kind](17)
    path = tmp_path / "s.chs"
    sf.save_encoded(path, enc, ids)
    data = sf.load(path)
    assert data.config == cfg and data.fingerprint == cfg.fingerprint
    assert data.count == 17
    assert data.codes == enc.codes_bytes()
    assert data.norm_codes == enc.norm_codes_bytes()
    assert data.ids == ids
    assert data.id_kind == {"none": 0, "int": 1, "str": 2}[ids_kind]
    assert data.to_bytes() == path.read_bytes()
    back = data.to_encoded()
    assert back.codes_bytes() == enc.codes_bytes()
    assert sf.from_bytes(path.read_bytes()) == data


def test_empty_file_round_trip(tmp_path):
    data = sf.from_bytes(sf.to_bytes(DOT, b"", b""))
    assert data.count == 0 and data.codes == b"" and data.norm_codes == b"" and data.ids is None
    assert sf.from_bytes(sf.to_bytes(COSINE, b"", None, [])).ids is None


def test_codes_accept_arrays_and_norm_code_forms():
    enc = encode(DOT, 5)
    codes = np.asarray(enc.codes)
    ref = sf.encoded_to_bytes(enc)
    nc = np.asarray(enc.norm_codes)
    assert sf.to_bytes(DOT, codes, nc) == ref
    assert sf.to_bytes(DOT, codes.tobytes(), [int(v) for v in nc]) == ref
    assert sf.to_bytes(DOT, memoryview(codes.tobytes()), nc.astype(np.int64)) == ref


def test_numpy_and_python_backends_write_identical_files(tmp_path):
    for cfg in (COSINE, DOT, ClarkHashConfig(24, sketch_dim=7, bits=5, metric="dot",
                                              norm_log2_min=-3, norm_log2_max=5)):
        x = vectors(40, seed=3)
        files = []
        for backend in ("numpy", "python"):
            path = tmp_path / f"{backend}.chs"
            sf.save_encoded(path, ClarkHash(cfg, backend).encode(x), [f"r{i}" for i in range(40)])
            files.append(path.read_bytes())
        assert files[0] == files[1]


def test_index_save_load(backend, tmp_path):
    codec = ClarkHash(DOT, backend)
    index = FlatIndex(codec)
    index.add(vectors(30, seed=1), ids=[f"v{i}" for i in range(30)])
    index.remove(["v3", "v17"])
    path = tmp_path / "i.chs"
    index.save(path)
    loaded = FlatIndex.load(path, backend)
    assert loaded.ids == index.ids and len(loaded) == 28
    for q in vectors(4, seed=9):
        ids_a, s_a = index.search(q, 5)
        ids_b, s_b = loaded.search(q, 5)
        assert ids_a == ids_b
        assert np.asarray(s_a, np.float32).tobytes() == np.asarray(s_b, np.float32).tobytes()


def test_index_without_ids_round_trips_row_numbers(tmp_path):
    path = tmp_path / "n.chs"
    sf.save_encoded(path, encode(COSINE, 6))
    assert FlatIndex.load(path).ids == list(range(6))
    empty = FlatIndex(ClarkHash(COSINE))
    empty.save(path)
    assert len(FlatIndex.load(path)) == 0


# ---------------------------------------------------------------------------
# writer refusals
# ---------------------------------------------------------------------------
def test_writer_refuses_bad_arguments(tmp_path):
    enc = encode(DOT, 4)
    codes, nc = enc.codes_bytes(), enc.norm_codes_bytes()
    path = tmp_path / "never.chs"
    cases = [
        (ConfigMismatchError, "multiple of code_bytes", lambda: sf.save(path, DOT, codes[:-1], nc)),
        (ConfigMismatchError, "norm codes are required", lambda: sf.save(path, DOT, codes, None)),
        (ConfigMismatchError, "stores no norm codes",
         lambda: sf.save(path, COSINE, encode(COSINE, 4).codes_bytes(), nc)),
        (InvalidInputError, "3 norm codes for 4", lambda: sf.save(path, DOT, codes, nc[:6])),
        (InvalidInputError, "0..65535", lambda: sf.save(path, DOT, codes, [0, 1, 2, 70000])),
        (InvalidInputError, "3 ids for 4", lambda: sf.save(path, DOT, codes, nc, [1, 2, 3])),
        (InvalidInputError, "all int or all str", lambda: sf.save(path, DOT, codes, nc, [1, "a", 2, 3])),
        (InvalidInputError, "all int or all str", lambda: sf.save(path, DOT, codes, nc, ["a", 1, 2, 3])),
        (InvalidInputError, "all int or all str", lambda: sf.save(path, DOT, codes, nc, [True, 1, 2, 3])),
        (InvalidInputError, "int64", lambda: sf.save(path, DOT, codes, nc, [0, 1, 2, 2**63])),
        (InvalidInputError, "Unicode", lambda: sf.save(path, DOT, codes, nc, ["a", "\ud800", "b", "c"])),
        (DuplicateIdError, "'b' appears twice", lambda: sf.save(path, DOT, codes, nc, ["a", "b", "c", "b"])),
        (InvalidInputError, "uint8", lambda: sf.save(path, DOT, np.zeros((4, 2), np.uint32), nc)),
        (InvalidInputError, "bytes-like", lambda: sf.save(path, DOT, [1, 2, 3], nc)),
        (InvalidInputError, "to_bytes", lambda: sf.save(path, object(), codes, nc)),
    ]
    for exc_type, words, call in cases:
        with pytest.raises(exc_type, match=words):
            call()
        assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_writer_refuses_padding_bits():
    codes = bytearray(encode(COSINE, 3).codes_bytes())
    codes[2 * 4 + 3] |= 0x80  # row 2, last byte: bits 30 and 31 of the LE bit stream are padding
    with pytest.raises(ConfigMismatchError, match="row 2 has padding bits"):
        sf.to_bytes(COSINE, bytes(codes))


# ---------------------------------------------------------------------------
# append
# ---------------------------------------------------------------------------
def test_append_equals_one_save(backend, tmp_path):
    a, b = encode(DOT, 5, backend, seed=1), encode(DOT, 7, backend, seed=2)
    path = tmp_path / "a.chs"
    sf.save_encoded(path, a, [f"a{i}" for i in range(5)])
    out = sf.append_encoded(path, b, [f"b{i}" for i in range(7)])
    assert out.count == 12
    whole = sf.to_bytes(DOT, a.codes_bytes() + b.codes_bytes(),
                        a.norm_codes_bytes() + b.norm_codes_bytes(),
                        [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(7)])
    assert path.read_bytes() == whole
    assert sf.load(path) == out


def test_append_without_ids_and_to_empty(tmp_path):
    path = tmp_path / "e.chs"
    sf.save(path, COSINE, b"")
    sf.append_encoded(path, encode(COSINE, 3), [10, 11, 12])  # an empty file takes any id kind
    assert sf.load(path).ids == [10, 11, 12]
    path2 = tmp_path / "n.chs"
    sf.save_encoded(path2, encode(COSINE, 2))
    sf.append_encoded(path2, encode(COSINE, 3, seed=5))
    d = sf.load(path2)
    assert d.count == 5 and d.ids is None
    before = path2.read_bytes()
    sf.append(path2, COSINE, b"")
    assert path2.read_bytes() == before


def _assert_append_fails(path, exc_type, words, *args):
    before = path.read_bytes()
    listing = sorted(os.listdir(path.parent))
    with pytest.raises(exc_type, match=words):
        sf.append(path, *args)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == listing


def test_append_refusals_leave_file_identical(tmp_path):
    path = tmp_path / "r.chs"
    enc = encode(DOT, 4)
    sf.save_encoded(path, enc, [1, 2, 3, 4])
    new = encode(DOT, 2, seed=8)
    other = ClarkHashConfig(24, sketch_dim=16, bits=4, metric="dot", seed=7)
    other_codes = ClarkHash(other).encode(vectors(2))
    _assert_append_fails(path, ConfigMismatchError,
                         f"{DOT.fingerprint}.*{other.fingerprint}",
                         other, other_codes.codes_bytes(), other_codes.norm_codes_bytes(), [8, 9])
    _assert_append_fails(path, DuplicateIdError, "id 3 .*already",
                         DOT, new.codes_bytes(), new.norm_codes_bytes(), [3, 9])
    _assert_append_fails(path, DuplicateIdError, "twice",
                         DOT, new.codes_bytes(), new.norm_codes_bytes(), [9, 9])
    _assert_append_fails(path, InvalidInputError, "int64 ids, the new ids are utf-8",
                         DOT, new.codes_bytes(), new.norm_codes_bytes(), ["x", "y"])
    _assert_append_fails(path, InvalidInputError, "give ids",
                         DOT, new.codes_bytes(), new.norm_codes_bytes(), None)
    _assert_append_fails(path, ConfigMismatchError, "norm codes are required",
                         DOT, new.codes_bytes(), None, [8, 9])
    plain = tmp_path / "plain.chs"
    sf.save_encoded(plain, new)
    _assert_append_fails(plain, InvalidInputError, "no ids",
                         DOT, new.codes_bytes(), new.norm_codes_bytes(), [5, 6])


def test_append_to_damaged_file_fails_and_keeps_it(tmp_path):
    path = tmp_path / "d.chs"
    sf.save_encoded(path, encode(COSINE, 4))
    path.write_bytes(path.read_bytes()[:-1])
    new = encode(COSINE, 1)
    _assert_append_fails(path, SketchFileError, "truncated", COSINE, new.codes_bytes())


@pytest.mark.parametrize("where", ["write", "fsync", "chmod", "replace"])
def test_append_failure_injected_mid_write_leaves_file_identical(where, tmp_path, monkeypatch):
    path = tmp_path / "f.chs"
    sf.save_encoded(path, encode(DOT, 6), [f"x{i}" for i in range(6)])
    before = path.read_bytes()
    new = encode(DOT, 3, seed=4)

    def boom(*a, **k):
        raise OSError(28, "No space left on device (injected)")

    if where == "write":
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, f):
                self.f, self.calls = f, 0

            def write(self, b):
                self.calls += 1
                if self.calls == 3:
                    self.f.write(bytes(b)[:5])
                    boom()
                return self.f.write(b)

            def __getattr__(self, name):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.f.__exit__(*exc)

        monkeypatch.setattr(sf.os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    elif where == "fsync":
        # OSError from fsync is tolerated (MEMFS); anything else must abort the write
        def fatal(fd):
            raise RuntimeError("fsync failed (injected)")

        monkeypatch.setattr(sf.os, "fsync", fatal)
    else:
        monkeypatch.setattr(sf.os, where, boom)
    with pytest.raises((OSError, RuntimeError)):
        sf.append_encoded(path, new, ["y0", "y1", "y2"])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["f.chs"]  # no temporary file left behind


def test_save_keeps_permissions_on_append(tmp_path):
    path = tmp_path / "p.chs"
    sf.save_encoded(path, encode(COSINE, 2))
    os.chmod(path, 0o640)
    sf.append_encoded(path, encode(COSINE, 2, seed=1))
    assert os.stat(path).st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------
# corruption and foreign files
# ---------------------------------------------------------------------------
def small_files():
    return {
        "cos-none": sf.encoded_to_bytes(encode(COSINE, 3)),
        "dot-int": sf.encoded_to_bytes(encode(DOT, 3), [7, 8, 9]),
        "dot-str": sf.encoded_to_bytes(encode(DOT, 3), ["ab", "", "ç"]),
        "empty": sf.to_bytes(COSINE, b""),
    }


@pytest.mark.parametrize("name", list(small_files()))
def test_every_byte_flip_is_detected(name):
    data = small_files()[name]
    for offset in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[offset] ^= mask
            with pytest.raises(SketchFileError):
                sf.from_bytes(bytes(bad))


@pytest.mark.parametrize("name", list(small_files()))
def test_every_truncation_says_truncated(name):
    data = small_files()[name]
    for n in range(len(data)):
        with pytest.raises(SketchFileError, match="truncated"):
            sf.from_bytes(data[:n])


def test_trailing_bytes_are_refused():
    data = small_files()["dot-str"]
    with pytest.raises(SketchFileError, match="unexpected bytes"):
        sf.from_bytes(data + b"\0")


def test_checksum_mismatch_names_offset():
    data = bytearray(small_files()["dot-int"])
    data[80] ^= 0x10
    with pytest.raises(SketchFileError, match=f"checksum mismatch: CRC-32 at byte {len(data) - 4}"):
        sf.from_bytes(bytes(data))


@pytest.mark.parametrize("blob, words", [
    (np.lib.format.magic(1, 0) + b"{'descr': '<f4', 'fortran_order': False, 'shape': (100, 384), }"
     + b" " * 100, r"\.npy array"),
    (b'{"config": {"input_dim": 384}, "codes": []}' + b" " * 20, "JSON"),
    (b"PK\x03\x04" + b"\0" * 60, "zip"),
    (b"hello", "not a sketch file"),
    (bytes(range(256)), "not a sketch file"),
])
def test_foreign_files(blob, words, tmp_path):
    with pytest.raises(SketchFileError, match=words):
        sf.from_bytes(blob)
    path = tmp_path / "foreign.bin"
    path.write_bytes(blob)
    with pytest.raises(SketchFileError, match=f"^{re.escape(str(path))}: "):
        sf.load(path)


def test_bytes_like_only():
    with pytest.raises(SketchFileError, match="bytes-like"):
        sf.from_bytes("CHSKETCH")


DEEP = small_files()["dot-str"]  # 3 rows, C = 32, B = 8, norm codes, string ids
IDS_AT = 40 + 32 + 3 * 8 + 3 * 2


@pytest.mark.parametrize("offset, new, words", [
    (0, b"CHSKETCX", "magic"),
    (8, struct.pack("<H", 3), "unsupported format version 3 at byte 8"),
    (8, struct.pack("<H", 0), "unsupported format version 0 at byte 8"),
    (10, b"\x07", "unknown codec kind 7 at byte 10"),
    (11, b"\x03", "flags byte 11"),
    (11, b"\x00", "flags byte 11 says norm codes absent"),
    (12, b"\x03", "unknown id kind 3 at byte 12"),
    (13, b"\x01", "reserved byte 13"),
    (14, struct.pack("<H", 32), "reserved bytes 14..15 hold 32"),
    (36, struct.pack("<I", 0), "config length at byte 36 is 0"),
    (36, struct.pack("<I", 31), "config bytes at byte 40"),
    (36, struct.pack("<I", 5000), "truncated"),
    (36, struct.pack("<I", 2**32 - 1), "truncated: the config length at byte 36"),
    (16, b"\0" * 8, "fingerprint at byte 16"),
    (24, struct.pack("<Q", 2), "expected"),
    (24, struct.pack("<Q", 2**64 - 1), "truncated"),
    (32, struct.pack("<I", 9), "code_bytes at byte 32 is 9"),
    (40, b"\x02", "codec kind 2, the header"),
    (40 + 2, b"\x09", "config bytes at byte 40 .*bits"),
    (40 + 16, b"\x01", "fingerprint at byte 16"),  # a different seed: another config
    (IDS_AT, struct.pack("<I", 1), "first offset is 1"),
    (IDS_AT + 8, struct.pack("<I", 1), "offset 1 of row 1 is below the previous offset 2"),
    (IDS_AT + 16 + 2, b"\xff", "row 2 .*not valid UTF-8"),
])
def test_each_check_names_its_field(offset, new, words):
    with pytest.raises(SketchFileError, match=words):
        sf.from_bytes(patch(DEEP, offset, new))


def test_duplicate_ids_in_file():
    ints = sf.encoded_to_bytes(encode(COSINE, 3), [7, 8, 9])
    at = len(ints) - 4 - 8
    with pytest.raises(SketchFileError, match="duplicate id 8: rows 1 and 2"):
        sf.from_bytes(patch(ints, at, struct.pack("<q", 8)))
    strs = sf.encoded_to_bytes(encode(COSINE, 2), ["a", "b"])
    with pytest.raises(SketchFileError, match="duplicate id 'a'"):
        sf.from_bytes(patch(strs, len(strs) - 5, b"a"))


def test_ids_with_zero_rows_and_padding_bits():
    empty = sf.to_bytes(COSINE, b"")
    with pytest.raises(SketchFileError, match="no rows"):
        sf.from_bytes(patch(empty, 12, b"\x01"))
    data = sf.encoded_to_bytes(encode(COSINE, 3))
    at = 40 + 32 + 4 + 3  # row 1, last byte
    with pytest.raises(SketchFileError, match="codes at byte 72: code row 1 has padding bits"):
        sf.from_bytes(patch(data, at, bytes([data[at] | 0x40])))


# ---------------------------------------------------------------------------
# fuzzing: from_bytes raises SketchFileError and nothing else
# ---------------------------------------------------------------------------
def _parse_or_file_error(data):
    try:
        out = sf.from_bytes(data)
    except SketchFileError:
        return None
    assert isinstance(out, sf.SketchData)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(blob):
    _parse_or_file_error(blob)
    _parse_or_file_error(b"CHSKETCH" + blob)
    _parse_or_file_error(recrc(DEEP[:40] + blob + b"\0\0\0\0"))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(small_files())),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 3), st.booleans())
def test_fuzz_mutated_files(name, edits, cut_mode, fix_crc):
    data = bytearray(small_files()[name])
    for pos, val in edits:
        data[pos % len(data)] = val
    if cut_mode == 1:
        data = data[:edits[0][0] % len(data)]
    elif cut_mode == 2:
        data = data + bytes(edits[0][1] for _ in range(edits[0][0] % 50))
    data = bytes(data)
    if fix_crc and len(data) >= 4:
        data = recrc(data)
    out = _parse_or_file_error(data)
    if out is not None:  # whatever parses must re-serialize to the same bytes
        assert out.to_bytes() == data


# ---------------------------------------------------------------------------
# format version 1 (clark-hash-web 0.1) still loads
# ---------------------------------------------------------------------------
def as_version_1(data: bytes) -> bytes:
    """The same file in the v1 layout: u16 config length at 14, bytes 36..39 zero."""
    clen = struct.unpack_from("<I", data, 36)[0]
    v1 = bytearray(data[:-4])
    v1[8:10] = struct.pack("<H", 1)
    v1[14:16] = struct.pack("<H", clen)
    v1[36:40] = b"\0\0\0\0"
    return bytes(v1) + struct.pack("<I", zlib.crc32(v1))


@pytest.mark.parametrize("name", ["cos-none", "dot-str"])
def test_version_1_files_still_load(name):
    data = small_files()[name]
    v1 = as_version_1(data)
    assert v1[8] == 1 and v1 != data
    old, new = sf.from_bytes(v1), sf.from_bytes(data)
    assert (old.config, old.codes, old.norm_codes, old.ids) == (new.config, new.codes,
                                                              new.norm_codes, new.ids)
    with pytest.raises(SketchFileError, match="reserved bytes 36..39 hold 1, must be 0 in a version 1"):
        sf.from_bytes(patch(v1, 36, b"\x01"))
    with pytest.raises(SketchFileError, match="config length at byte 14 is 0"):
        sf.from_bytes(patch(v1, 14, struct.pack("<H", 0)))


def test_large_config_fits_version_2():
    """An ITQ config for d=384 (591 KB) did not fit v1's u16 config length."""
    np = pytest.importorskip("numpy")
    from clark_hash_web.codecs.itq import train_itq

    rng = np.random.default_rng(3)
    cfg = train_itq(rng.standard_normal((500, 384)).astype(np.float32), iterations=2, seed=1)
    assert len(cfg.to_bytes()) > 0xFFFF
    from clark_hash_web import ITQ

    enc = ITQ(cfg).encode(rng.standard_normal((4, 384)).astype(np.float32))
    back = sf.from_bytes(sf.encoded_to_bytes(enc, ["a", "b", "c", "d"]))
    assert back.config == cfg and back.codes == enc.codes_bytes()
    assert struct.unpack_from("<I", sf.encoded_to_bytes(enc), 36)[0] == len(cfg.to_bytes())


def test_unknown_codec_kind():
    with pytest.raises(SketchFileError, match="unknown codec kind 9 at byte 10"):
        sf.from_bytes(patch(DEEP, 10, b"\x09"))
