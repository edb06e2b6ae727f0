"""Compact-code search in ClickHouse (chdb) equals in-process search."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

pytest.importorskip("chdb")
pytest.importorskip("pyarrow")

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex  # noqa: E402
from clark_hash_web.errors import ConfigMismatchError, InvalidInputError  # noqa: E402
from clark_hash_web.integrations.clickhouse import (SQL, ChdbClient, CodeTable, HttpClient)  # noqa: E402

N, D = 1500, 32


def clustered(seed, n=N, d=D, clusters=12):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d))
    lab = rng.integers(0, clusters, n)
    return (centers[lab] + 0.35 * rng.standard_normal((n, d))).astype(np.float32)


def sign_codes(X, n_bits, seed=7):
    """A minimal hyperplane sign code, bit j = bit j % 8 of byte j // 8 (as bitpack)."""
    planes = np.random.default_rng(seed).standard_normal((X.shape[1], n_bits)).astype(np.float32)
    proj = X.astype(np.float64) @ planes
    return np.packbits(proj > 0, axis=1, bitorder="little"), proj


def hamming(codes, q):
    return np.unpackbits(codes ^ q[None, :], axis=1).sum(axis=1)


def ranked(keys_primary, ids):
    """Ascending by key, ties by id (the ClickHouse tie rule)."""
    return np.lexsort((ids, keys_primary))


@pytest.fixture(scope="module")
def client():
    c = ChdbClient()
    yield c
    c.close()


@pytest.fixture(scope="module")
def world(client):
    X = clustered(1)
    cfg = ClarkHashConfig(input_dim=D, sketch_dim=24, bits=4)
    codec = ClarkHash(cfg)
    enc = codec.encode(X)
    tables = {}
    for n_bits in (128, 256, 40, 12):  # UInt128, UInt256, FixedString(5), FixedString(2)
        codes, _ = sign_codes(X, n_bits)
        t = CodeTable(client, f"t{n_bits}", n_bits=n_bits, dim=D, clark_config=cfg, granularity=128)
        t.create(replace=True)
        t.insert(np.arange(N), codes, vectors=X, clark=enc)
        tables[n_bits] = (t, codes)
    queries = clustered(2, n=6) + 0.1
    return X, codec, enc, tables, queries


@pytest.mark.parametrize("n_bits", [128, 256, 40, 12])
def test_hamming_top_equals_in_process(world, n_bits):
    X, _, _, tables, queries = world
    t, codes = tables[n_bits]
    assert t.bits_type == {128: "UInt128", 256: "UInt256"}.get(n_bits, f"FixedString({(n_bits + 7) // 8})")
    for q in queries:
        qb, _ = sign_codes(q[None], n_bits)
        d = hamming(codes, qb[0])
        order = ranked(d, np.arange(N))[:25]
        got = t.hamming_top(qb[0].tobytes(), k=25)
        assert [i for i, _ in got] == order.tolist()
        assert [h for _, h in got] == d[order].tolist()
    if n_bits == 12:  # 1500 rows on 12 bits: many exact ties, all broken by id
        assert len(set(h for _, h in got)) < len(got)


@pytest.mark.parametrize("n_bits", [128, 40])
def test_hamming_within_equals_in_process(world, n_bits):
    X, _, _, tables, queries = world
    t, codes = tables[n_bits]
    qb, _ = sign_codes(queries[0][None], n_bits)
    d = hamming(codes, qb[0])
    limit = int(np.sort(d)[60])
    keep = np.flatnonzero(d <= limit)
    order = keep[ranked(d[keep], keep)]
    assert [i for i, _ in t.hamming_within(qb[0].tobytes(), limit)] == order.tolist()


def cosine_distance(X, q):
    X64, q64 = X.astype(np.float64), q.astype(np.float64)
    return 1 - X64 @ q64 / (np.linalg.norm(X64, axis=1) * np.linalg.norm(q64))


def assert_same_ranking(got, ids_ref, vals_ref, tol=1e-5):
    """Equal ids, except inside groups of reference values closer than tol."""
    got_ids = [i for i, _ in got]
    got_vals = np.array([v for _, v in got], dtype=np.float64)
    assert np.allclose(got_vals, vals_ref, atol=tol)
    for a, b, v in zip(got_ids, ids_ref, vals_ref):
        if a != b:
            near = np.abs(vals_ref - v) < tol
            assert a in np.asarray(ids_ref)[near] or abs(got_vals[got_ids.index(a)] - v) < tol


def test_exact_and_prefilter_rescoring(world):
    X, _, _, tables, queries = world
    t, codes = tables[128]
    for q in queries:
        dist = cosine_distance(X, q)
        ref = ranked(dist, np.arange(N))[:10]
        assert_same_ranking(t.exact(q, 10), ref, dist[ref])
        qb, _ = sign_codes(q[None], 128)
        h = hamming(codes, qb[0])
        cand = ranked(h, np.arange(N))[:200]
        ref = cand[ranked(dist[cand], cand)][:10]
        assert_same_ranking(t.prefilter_exact(qb[0].tobytes(), q, 10, candidates=200), ref, dist[ref])
        limit = int(np.sort(h)[150])
        keep = np.flatnonzero(h <= limit)
        ref = keep[ranked(dist[keep], keep)][:10]
        assert_same_ranking(t.prefilter_exact(qb[0].tobytes(), q, 10, max_distance=limit), ref, dist[ref])


def test_asymmetric_clark_rescoring_equals_codec_score(world):
    X, codec, enc, tables, queries = world
    t, codes = tables[128]
    index = FlatIndex(codec)
    index.add_encoded(enc)
    for q in queries:
        qs = codec.sketch_query(q)
        scores = np.asarray(codec.score(qs, enc), dtype=np.float64)
        ids, vals = index.search_prepared(qs, 10)
        assert_same_ranking(t.all_clark(qs, 10), list(ids), np.asarray(vals, dtype=np.float64), tol=1e-6)
        qb, _ = sign_codes(q[None], 128)
        cand = ranked(hamming(codes, qb[0]), np.arange(N))[:300]
        ref = cand[ranked(-scores[cand], cand)][:10]
        assert_same_ranking(t.prefilter_clark(qb[0].tobytes(), qs, 10, candidates=300), ref,
                            scores[ref], tol=1e-6)


def test_asymmetric_bit_rescoring(world):
    X, _, _, tables, queries = world
    for n_bits in (128, 40):
        t, codes = tables[n_bits]
        bits = np.unpackbits(codes, axis=1, bitorder="little")[:, :n_bits].astype(np.float64) * 2 - 1
        for q in queries[:3]:
            qb, proj = sign_codes(q[None], n_bits)
            p32 = proj[0].astype(np.float32)
            scores = bits @ p32.astype(np.float64)
            cand = ranked(hamming(codes, qb[0]), np.arange(N))[:250]
            ref = cand[ranked(-scores[cand], cand)][:10]
            assert_same_ranking(t.prefilter_bits(qb[0].tobytes(), p32, 10, candidates=250), ref,
                                scores[ref], tol=1e-4)


def test_binary_codec_of_the_package(client):
    lsh_mod = pytest.importorskip("clark_hash_web.codecs.hyperplane_lsh")
    from clark_hash_web.index.binary import BinaryIndex

    X = clustered(3, n=800)
    lsh = lsh_mod.HyperplaneLSH(lsh_mod.HyperplaneLSHConfig(input_dim=D, n_bits=128))
    enc = lsh.encode(X)
    t = CodeTable(client, "lsh", n_bits=128)
    t.create(replace=True)
    t.insert(range(800), enc.codes_bytes())
    index = BinaryIndex(lsh)
    index.add_encoded(enc)
    for q in clustered(4, n=3):
        bq = lsh.sketch_query(q)
        d = np.asarray(lsh.hamming(bq, enc))
        rows = index.hamming_candidates(bq, candidates=30)  # insertion order
        got = t.hamming_top(bq.code, k=30)
        assert sorted(i for i, _ in got) == sorted(rows)
        assert [i for i, _ in got] == ranked(d, np.arange(800))[:30].tolist()
        # asymmetric bit scores from ClickHouse vs the codec's float32 scores
        s = np.asarray(lsh.score(bq, enc), dtype=np.float64)
        ref = np.asarray(rows)[ranked(-s[rows], np.asarray(rows))][:5]
        assert_same_ranking(t.prefilter_bits(bq.code, bq.values, 5, candidates=30), ref, s[ref], tol=1e-4)


def test_bad_arguments(client, world):
    X, codec, enc, tables, _ = world
    with pytest.raises(InvalidInputError, match="table name"):
        CodeTable(client, "x; DROP TABLE t128", n_bits=128)
    t = CodeTable(client, "nofloats", n_bits=128)
    with pytest.raises(InvalidInputError, match="lacks"):
        t.sql("top_clark")
    with pytest.raises(InvalidInputError, match="bytes"):
        t.insert([1, 2], b"\x00" * 31)
    t2 = CodeTable(client, "other", n_bits=128, clark_config=ClarkHashConfig(input_dim=D, seed=1))
    t2.create(replace=True)
    with pytest.raises(ConfigMismatchError):
        t2.insert(range(N), sign_codes(X, 128)[0], clark=enc)
    assert len(t2) == 0
    with pytest.raises(InvalidInputError, match="exactly one"):
        tables[128][0].prefilter_exact(b"\x00" * 16, X[0], 10)


def test_same_sql_over_http():
    """HttpClient sends the very same statement text, parameters as param_*."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((parse_qs(urlparse(self.path).query), body))
            out = json.dumps({"data": [[3, 7]]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        t = CodeTable(HttpClient(f"http://127.0.0.1:{server.server_port}"), "docs", n_bits=128)
        assert t.hamming_top(b"\x01" * 16, k=5) == [(3, 7)]
        params, body = seen[0]
        assert body.decode() == t.sql("hamming_top") + "\nFORMAT JSONCompact"
        assert params == {"param_table": ["docs"], "param_q_bits": ["01" * 16], "param_k": ["5"]}
        assert "{q_bits:String}" in SQL["hamming_top"].replace("<QBITS>", "{q_bits:String}")
    finally:
        server.shutdown()
