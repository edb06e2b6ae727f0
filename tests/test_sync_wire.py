"""Sync envelopes: round trips, every corruption path, and hypothesis fuzzing of the decoder."""

import json
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clark_hash_web.errors import ConfigMismatchError
from clark_hash_web.formats.sync_wire import (HEADER_BYTES, KIND_PULL, KIND_PUSH, Delete, Put,
                                              SyncProtocolError, decode, encode_pull, encode_push,
                                              split_for_push)
from sync_fixtures import COSINE, DOT, puts_for


def _push(config=COSINE, n=5, deletes=(("gone", 9),)):
    puts = puts_for(config, n, clock=3)
    return encode_push(config, "push-1", "dev-a", puts, [Delete(i, c) for i, c in deletes]), puts


def _reseal(body: bytes) -> bytes:
    """Recompute the CRC so a test reaches the checks behind it."""
    return body[:-4] + struct.pack("<I", zlib.crc32(body[:-4]))


def _with_meta(body: bytes, meta) -> bytes:
    (mlen,) = struct.unpack_from("<I", body, 12)
    new = json.dumps(meta).encode()
    rest = body[HEADER_BYTES + mlen:-4]
    head = body[:12] + struct.pack("<I", len(new)) + body[16:HEADER_BYTES]
    return _reseal(head + new + rest + b"\0\0\0\0")


def _meta(body: bytes) -> dict:
    (mlen,) = struct.unpack_from("<I", body, 12)
    return json.loads(body[HEADER_BYTES:HEADER_BYTES + mlen])


@pytest.mark.parametrize("config", [COSINE, DOT], ids=["cosine", "dot"])
def test_push_round_trip(config):
    body, puts = _push(config)
    msg = decode(body, expect_kind=KIND_PUSH, expect_config=config)
    assert msg.kind == KIND_PUSH and msg.config == config
    assert msg.meta == {"push_id": "push-1", "device": "dev-a", "chunk": 0, "chunks": 1}
    assert [(p.id, p.clock, p.code, p.norm_code) for p in msg.puts] == \
           [(p.id, p.clock, p.code, p.norm_code) for p in puts]
    assert msg.deletes == [Delete("gone", 9, "dev-a")]
    assert encode_push(config, "push-1", "dev-a", puts, [Delete("gone", 9)]) == body  # deterministic


def test_pull_round_trip_and_deletes_only():
    puts = [Put(p.id, p.clock, p.code, p.norm_code, "dev-b", 10 + k)
            for k, p in enumerate(puts_for(DOT, 4))]
    body = encode_pull(DOT, puts, [Delete("x", 5, "dev-c", 20)], cursor=20, more=True, last_seq=30)
    msg = decode(body, expect_kind=KIND_PULL, expect_config=DOT)
    assert msg.puts == puts and msg.deletes == [Delete("x", 5, "dev-c", 20)]
    assert msg.meta == {"cursor": 20, "more": True, "last_seq": 30}
    empty = decode(encode_push(None, "p", "d", [], [Delete("y", 1)]))
    assert empty.config is None and empty.puts == [] and empty.deletes == [Delete("y", 1, "d")]


def test_foreign_config_is_a_config_mismatch():
    body, _ = _push(COSINE)
    with pytest.raises(ConfigMismatchError, match=COSINE.fingerprint):
        decode(body, expect_config=DOT)


def test_every_truncation_and_bit_flip_is_refused():
    body, _ = _push(COSINE, n=2)
    for cut in range(len(body)):
        with pytest.raises(SyncProtocolError):
            decode(body[:cut])
    for pos in range(len(body)):
        bad = bytearray(body)
        bad[pos] ^= 0x10
        with pytest.raises(SyncProtocolError):
            decode(bytes(bad))


@pytest.mark.parametrize("field,value,match", [
    ("push_id", "bad id!", "push_id"), ("device", "", "device"), ("chunk", 2, "chunk"),
    ("chunks", 0, "chunks"), ("put_clocks", [1, 2], "put_clocks"), ("deletes", [["x"]], "deletes"),
    ("deletes", [["x", -1]], "clock"), ("deletes", [["", 1]], "id"), ("extra", 1, "unknown"),
    ("put_clocks", [1, 2, 2 ** 53, 4, 5], "clock"), ("deletes", [["v0", 1]], "more than once"),
])
def test_bad_meta_fields_name_the_field(field, value, match):
    body, _ = _push(COSINE)
    meta = dict(_meta(body), **{field: value})
    with pytest.raises(SyncProtocolError, match=match):
        decode(_with_meta(body, meta))


def test_header_checks_name_offsets():
    body, _ = _push(COSINE, n=1)
    cases = {0: b"XXSYNCMS", 8: struct.pack("<H", 3), 10: b"\x07", 11: b"\x01"}
    for off, patch in cases.items():
        bad = _reseal(body[:off] + patch + body[off + len(patch):])
        with pytest.raises(SyncProtocolError, match=f"offset {off}"):
            decode(bad)
    with pytest.raises(SyncProtocolError, match="not UTF-8 JSON"):
        decode(_reseal(body[:HEADER_BYTES] + b"\xff" + body[HEADER_BYTES + 1:]))
    with pytest.raises(SyncProtocolError, match="kind"):
        decode(body, expect_kind=KIND_PULL)


def test_codes_with_padding_bits_are_refused():
    from clark_hash_web import ClarkHashConfig

    cfg = ClarkHashConfig(input_dim=8, sketch_dim=3, bits=3)  # 9 bits in 2 bytes: 7 padding bits
    with pytest.raises(ConfigMismatchError, match="padding"):
        encode_push(cfg, "p", "d", [Put("a", 1, b"\x00\xff")])
    body = encode_push(cfg, "p", "d", [Put("a", 1, b"\x00\x00")])
    (mlen,) = struct.unpack_from("<I", body, 12)
    sketch = bytearray(body[HEADER_BYTES + mlen:-4])
    at = 40 + len(cfg.to_bytes())  # first code row in the sketch file
    sketch[at + 1] = 0xFF
    sketch[-4:] = struct.pack("<I", zlib.crc32(bytes(sketch[:-4])))
    with pytest.raises(SyncProtocolError, match="padding"):
        decode(_reseal(body[:HEADER_BYTES + mlen] + bytes(sketch) + b"\0\0\0\0"), expect_config=cfg)


def test_split_for_push_stays_under_the_budget():
    puts = puts_for(COSINE, 300)
    dels = [Delete(f"d{i}" * 20, i + 1) for i in range(200)]
    chunks = split_for_push(puts, dels, COSINE.code_bytes, 8192)
    assert len(chunks) > 3
    assert [p for c in chunks for p in c[0]] == puts and [d for c in chunks for d in c[1]] == dels
    for k, (cp, cd) in enumerate(chunks):
        assert len(encode_push(COSINE, "p", "d", cp, cd, k, len(chunks))) <= 8192


# -- fuzzing: the decoder raises only SyncProtocolError on untrusted bytes ------------------

VALID = [_push(COSINE, n=3)[0], _push(DOT, n=2)[0],
         encode_pull(COSINE, [Put("a", 1, puts_for(COSINE, 1)[0].code, None, "x", 1)],
                     [Delete("b", 2, "y", 2)], 2, False, 2)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    with pytest.raises(SyncProtocolError):
        decode(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)),
                                        min_size=1, max_size=6), st.booleans())
def test_fuzz_mutated_messages(body, edits, reseal):
    bad = bytearray(body)
    for pos, val in edits:
        bad[pos % len(bad)] = val
    bad = bytes(bad)
    if reseal:  # get past the CRC so the inner decoders see the garbage
        bad = _reseal(bad)
    try:
        msg = decode(bad)
    except (SyncProtocolError, ConfigMismatchError):
        return
    assert msg.kind in (KIND_PUSH, KIND_PULL)  # an edit that kept the message valid


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20))
def test_fuzz_meta_json(meta):
    body, _ = _push(COSINE, n=2)
    base = _meta(body)
    for candidate in (meta, dict(base, deletes=meta), dict(base, put_clocks=meta),
                      dict(base, chunk=meta), dict(base, device=meta)):
        try:
            decode(_with_meta(body, candidate))
        except SyncProtocolError:
            pass


# -- payload sections (envelope v2) and v1 envelopes ---------------------------------------------

def _payload_push():
    puts = puts_for(COSINE, 4, clock=3)
    pls = [b"\x00secret", None, b"y" * 65536, b"z"]
    puts = [Put(p.id, p.clock, p.code, None, "", 0, pl) for p, pl in zip(puts, pls)]
    return encode_push(COSINE, "push-1", "dev-a", puts, []), pls


def test_payloads_round_trip_and_are_bounded():
    body, pls = _payload_push()
    assert struct.unpack_from("<H", body, 8)[0] == 2 and struct.unpack_from("<I", body, 20)[0] > 0
    assert [p.payload for p in decode(body, expect_config=COSINE).puts] == pls
    seqd = [Put(p.id, p.clock, p.code, None, p.device, k + 1, p.payload)
            for k, p in enumerate(decode(body).puts)]
    pull = encode_pull(COSINE, seqd, [], 4, False, 4)
    assert [p.payload for p in decode(pull, expect_kind=KIND_PULL).puts] == pls
    big = Put("big", 1, puts_for(COSINE, 1)[0].code, None, "", 0, b"x" * 65537)
    with pytest.raises(SyncProtocolError, match="at most 65536"):
        encode_push(COSINE, "p", "d", [big], [])


def test_bad_payload_sections_name_their_offset():
    body, _ = _payload_push()
    (mlen, slen, plen) = struct.unpack_from("<III", body, 12)
    at = HEADER_BYTES + mlen + slen
    for where, value in ((0, 1), (4, 70000)):  # the first offset must be 0; past the end
        bad = bytearray(body)
        struct.pack_into("<I", bad, at + where, value)
        with pytest.raises(SyncProtocolError, match=f"offset {at}"):
            decode(_reseal(bytes(bad)))
    v1 = bytearray(body)
    struct.pack_into("<H", v1, 8, 1)  # a v1 envelope has no payload section: its field is reserved
    with pytest.raises(SyncProtocolError, match="reserved"):
        decode(_reseal(bytes(v1)))


def test_v1_envelopes_without_payloads_still_decode():
    body, puts = _push()
    v1 = bytearray(body)
    struct.pack_into("<H", v1, 8, 1)
    msg = decode(_reseal(bytes(v1)), expect_config=COSINE)
    assert [(p.id, p.code) for p in msg.puts] == [(p.id, p.code) for p in puts]
