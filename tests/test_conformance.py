"""Every recorded reference case, on both backends, through the public API."""

from __future__ import annotations

import struct

import pytest

from clark_hash_web import ClarkHash, EncodedBatch, FlatIndex, InvalidVectorError
from clark_hash_web.validation import REASON_ZERO

from shared_cases import config_of, conformance_files, f32_hex_rows, load_case

CASES = conformance_files()


def f32_bits(values) -> list:
    return ["%08x" % struct.unpack("<I", struct.pack("<f", v))[0] for v in values]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path, backend):
    case = load_case(path)
    exp = case["expected"]
    codec = ClarkHash(config_of(case), backend=backend)
    db = f32_hex_rows(case["db_hex"])
    queries = f32_hex_rows(case["queries_hex"])
    nonfinite_case = path.name.startswith("f_nonfinite")
    encode_errors = {int(k) for k in (exp.get("encode_errors") or {})}
    query_errors = {int(k) for k in (exp.get("query_errors") or {})}

    # nonfinite="reference" encodes exactly the rows the crate encodes.
    if encode_errors:
        with pytest.raises(InvalidVectorError) as info:
            codec.encode(db, nonfinite="reference")
        assert set(info.value.rows) == encode_errors
    enc = codec.encode(db, errors="skip", nonfinite="reference")
    assert set(enc.skipped) == encode_errors
    good = enc.rows
    assert [enc.code(j).hex() for j in range(len(enc))] == [exp["codes_hex"][i] for i in good]
    if codec.config.metric == "dot":
        assert [int(c) for c in enc.norm_codes] == [exp["norm_codes"][i] for i in good]
    if exp.get("decoded_norms_f32_hex"):
        assert f32_bits(codec.decode_norms(enc)) == [exp["decoded_norms_f32_hex"][i] for i in good]

    # By default we also reject rows the crate turns into meaningless codes:
    # NaN/inf entries and squared norms that overflow float32.
    strict = codec.encode(db, errors="skip")
    extra = set(strict.skipped) - encode_errors
    assert encode_errors <= set(strict.skipped)
    for i in extra:
        finite = all(abs(v) < float("inf") for v in db[i])
        assert (not finite) or sum(float(v) * v for v in db[i]) > 3.4e38, i
        assert strict.skipped[i] != REASON_ZERO
    if nonfinite_case:
        return  # queries with NaN/inf are always rejected; nothing more to compare
    index = FlatIndex(codec)
    index.add_encoded(enc, ids=good)
    for j, q in enumerate(queries):
        if j in query_errors or exp["query_input_norm_f32_hex"][j] == "7f800000":
            with pytest.raises(InvalidVectorError):
                codec.sketch_query(q)
            continue
        sk = codec.sketch_query(q)
        assert f32_bits(sk.values) == exp["query_sketch_f32_hex"][j]
        assert f32_bits([sk.norm]) == [exp["query_input_norm_f32_hex"][j]]
        scores = codec.score(sk, enc)
        assert f32_bits(scores) == [exp["scores_f32_hex"][j][i] for i in good]
        ids, top = index.search_prepared(sk, exp["k"])
        assert ids == exp["topk_indices"][j]
        assert f32_bits(top) == exp["topk_scores_f32_hex"][j]
        ids, _ = index.search_prepared(sk, len(good) + 5)
        assert ids == exp["full_ranking"][j]


@pytest.mark.parametrize("path", [p for p in CASES if p.name.startswith("f_nonfinite")],
                         ids=lambda p: p.stem)
def test_nonfinite_rows_rejected_by_default(path, backend):
    case = load_case(path)
    codec = ClarkHash(config_of(case), backend=backend)
    db = f32_hex_rows(case["db_hex"])
    with pytest.raises(InvalidVectorError) as info:
        codec.encode(db)
    assert all(r in info.value.rows for r, row in enumerate(db)
               if any(v != v or abs(v) == float("inf") for v in row))


def test_encoded_batch_round_trips_through_bytes(backend):
    case = load_case(CASES[1])  # default dot
    codec = ClarkHash(config_of(case), backend=backend)
    enc = codec.encode(f32_hex_rows(case["db_hex"]))
    again = EncodedBatch.from_bytes(codec.config, enc.codes_bytes(), enc.norm_codes_bytes(),
                                    fingerprint=codec.config.fingerprint)
    assert again.codes_bytes() == enc.codes_bytes()
    assert again.norm_codes_bytes() == enc.norm_codes_bytes()
