"""A tiny run of the retrieval-quality harness (benchmarks/quality.py) on
synthetic clustered vectors, so the harness is tested in CI without the
bench-only dependencies (torch, the MiniLM model, faiss, matplotlib)."""

import json
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import quality as Q  # noqa: E402


def clustered(n, d, clusters, rng, spread=1.0):
    centers = rng.standard_normal((clusters, d)).astype(np.float32) * 2
    return (centers[rng.integers(0, clusters, n)]
            + spread * rng.standard_normal((n, d))).astype(np.float32), centers


def test_top_k_is_descending_with_ties_in_index_order():
    s = np.array([1.0, 3.0, 3.0, 2.0, 3.0], np.float32)
    assert Q.top_k(s, 2).tolist() == [1, 2]
    assert Q.top_k(s, 4).tolist() == [1, 2, 4, 3]
    assert Q.top_k(s, 10).tolist() == [1, 2, 4, 3, 0]


def test_recall_at_counts_the_overlap_of_the_first_k():
    assert Q.recall_at(np.array([5, 1, 2]), np.array([1, 9, 5]), 2) == 0.5
    assert Q.recall_at(np.array([5, 1, 2]), np.array([1, 9, 5]), 3) == pytest.approx(2 / 3)
    assert Q.recall_at(np.array([1, 2]), np.array([3, 4]), 2) == 0.0


def test_spearman_averages_tied_ranks():
    # x ranks (1, 2.5, 2.5, 4) against y ranks (1, 2, 3, 4): Pearson by hand
    rx = np.array([1, 2.5, 2.5, 4]) - 2.5
    ry = np.array([1, 2, 3, 4]) - 2.5
    want = float(rx @ ry / np.sqrt((rx @ rx) * (ry @ ry)))
    assert Q.spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(want)
    assert Q.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert Q.pearson([1, 2, 3], [2, 4, 6.5]) < 1.0


def test_harness_orders_methods_by_what_they_keep():
    rng = np.random.default_rng(7)
    corpus, centers = clustered(2000, 32, 25, rng)
    queries = (centers[rng.integers(0, 25, 40)] + rng.standard_normal((40, 32))).astype(np.float32)
    a = corpus[:200]
    w = rng.random((len(a), 1)).astype(np.float32)  # pair similarity from ~0 to ~1
    b = (w * a + (1 - w) * rng.standard_normal(a.shape) * 2).astype(np.float32)
    dense_ab = np.einsum("ij,ij->i", Q.normalize(a), Q.normalize(b))
    sts = {"synthetic": (a, b, dense_ab + 0.05 * rng.standard_normal(len(a)))}
    methods = [Q.Dense(32), Q.Int8PerDim(32), Q.ClarkHashMethod(128, 8, 4, 3.0),
               Q.ClarkHashMethod(128, 1, 4, 3.0), Q.SignBits(32, hamming=True)]
    rows = {r["method"]: r for r in Q.run(corpus, queries, sts, methods, log=lambda s: None)}
    dense = rows["dense float32"]
    assert dense["recall@1"] == dense["recall@10"] == dense["recall@100"] == 1.0
    assert dense["sts"]["synthetic"]["pearson_vs_dense"] == pytest.approx(1.0)
    assert dense["sts"]["synthetic"]["spearman"] == pytest.approx(
        dense["sts"]["synthetic"]["dense_spearman"])
    assert rows["ref: int8 per dimension"]["recall@10"] > 0.9
    # same sketch, 8 bits vs 1 bit per coordinate (measured 0.545 vs 0.39)
    fine, coarse = rows["clark_hash 128x8 h4"], rows["clark_hash 128x1 h4"]
    assert fine["bytes_per_vector"] == 128 and coarse["bytes_per_vector"] == 16
    assert fine["recall@10"] > coarse["recall@10"] + 0.08
    i8 = rows["ref: int8 per dimension"]["sts"]["synthetic"]["pearson_vs_dense"]
    assert i8 > 0.99 and i8 > coarse["sts"]["synthetic"]["pearson_vs_dense"]
    assert 0.5 < coarse["sts"]["synthetic"]["pearson_vs_dense"] < 0.999
    for r in rows.values():
        for k in ("recall@1", "recall@10", "recall@100"):
            assert 0.0 <= r[k] <= 1.0
        # rescoring 100 candidates exactly can only help at k=10 here
        assert r["two_stage_recall@10_dense_N100"] >= r["recall@10"]
        assert r["two_stage_recall@10_dense_N100"] >= r["two_stage_recall@10_dense_N20"]


def test_main_writes_json_from_a_cache_folder(tmp_path):
    rng = np.random.default_rng(3)
    corpus, centers = clustered(600, 24, 12, rng)
    queries = (centers[rng.integers(0, 12, 30)] + rng.standard_normal((30, 24))).astype(np.float32)
    cache = tmp_path / "emb"
    cache.mkdir()
    np.save(cache / "sotu_corpus.npy", corpus)
    np.save(cache / "sotu_queries.npy", queries)
    a, b = corpus[:50], corpus[50:100]
    np.save(cache / "sts_stsb_test_a.npy", a)
    np.save(cache / "sts_stsb_test_b.npy", b)
    (cache / "sts_stsb_test.json").write_text(json.dumps({"scores": rng.random(50).tolist()}))
    out = tmp_path / "q.json"
    assert Q.main(["--quick", "--no-plot", "--cache", str(cache), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["corpus"] == 600 and data["queries"] == 30
    names = [m["method"] for m in data["methods"]]
    assert "dense float32" in names and any(n.startswith("clark_hash") for n in names)
    for m in data["methods"]:
        assert set(m["sts"]) == {"stsb_test"}
        assert m["bytes_per_vector"] > 0
    import plots  # the README table comes from the same JSON (no matplotlib needed)

    table = plots.recall_table(data).splitlines()
    assert len(table) == 2 + len(data["methods"])
    dense_row = next(r for r in table if r.startswith("| dense float32 |"))
    assert "| 1.000 | 1.000 | 1.000 |" in dense_row


def test_sentence_split_keeps_abbreviations_together():
    import embed_corpora as E

    text = "Mr. Smith came to the U.S. Senate today.  He spoke!  Did he win?\n\"Yes,\" they said. (Gen. Lee agreed.)"
    assert E.split_sentences(text) == [
        "Mr. Smith came to the U.S. Senate today.", "He spoke!", "Did he win?",
        "\"Yes,\" they said.", "(Gen. Lee agreed.)"]


def test_tables_for_sts_and_throughput_results():
    import plots

    sts = {"benchmark": "STS17 cross-lingual", "methods": [
        {"method": "dense", "bytes_per_vector": 8, "sts": {
            "en-en": {"spearman": 0.8, "dense_spearman": 0.8, "pearson_vs_dense": 1.0}}}]}
    assert plots.table(sts).splitlines()[2] == "| dense | 8 | 0.800 (0.800) / 1.000 |"
    tp = {"benchmark": "throughput (x)", "corpus": 10, "dim": 4, "vectors": "v", "threads": 1,
          "methods": [{"method": "m", "bytes_per_vector": 2, "encode_vectors_per_s": 1234,
                       "scan_codes_per_s": 5}]}
    assert plots.table(tp).splitlines()[-1] == "| m | 2 | 1,234 | 5 |"
