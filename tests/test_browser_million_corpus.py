"""benchmarks/browser_million.py's data, natively (no browser): the learned-E8 head it
trains, its stored codes and its queries (the browser run: tests/browser/test_browser_bench_smoke.py)."""

import importlib.util
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bm():
    spec = importlib.util.spec_from_file_location("browser_million", BENCH / "browser_million.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_embeddings_are_unit_rows_with_a_decaying_spectrum(bm):
    x = bm.synthetic_embeddings(4000, 64)
    assert x.dtype == np.float32 and x.shape == (4000, 64)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    ev = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    assert ev[:16].sum() / ev.sum() > 0.5 > 0.05 > ev[-16:].sum() / ev.sum()
    assert (bm.synthetic_embeddings(50, 64) == bm.synthetic_embeddings(50, 64)).all()


def test_stateless_specs_are_their_configs(bm):
    from clark_hash_web.codecs import registry

    config, sample, about = bm.million_config("e8:384")
    assert config.to_bytes() == registry.config_from_spec("e8:384").to_bytes()
    assert sample is None and about is None


def test_learned_head_is_trained_and_its_root_codes_and_input_queries_are_searchable(bm):
    from clark_hash_web.codecs.learned_e8_stages import StagedE8Config

    # no cached SOTU file has 40 columns: the synthetic rows are used
    config, sample, about = bm.million_config("learned-e8:40")
    assert isinstance(config, StagedE8Config) and config.normalized and config.input_dim == 40
    assert about["trained_on"].startswith("synthetic") and about["config_bytes"] == len(config.to_bytes())
    assert about["fingerprint"] == config.fingerprint
    codes, queries = bm.corpus(config, 500, sample)
    assert len(codes) == 500 * config.code_bytes and max(codes) < 240
    assert queries.shape == (2 * bm.QUERIES, 40) and queries.dtype == np.float32
    near = queries[bm.QUERIES:]
    cos = (near / np.linalg.norm(near, axis=1, keepdims=True)) @ sample.T
    assert (cos.max(axis=1) > 0.8).all()      # corpus-like: training rows plus noise
    ranked, _, after = bm.native_top10(config, codes, queries)
    assert len(ranked) == 2 * bm.QUERIES and all(len(ids) == 10 for ids, _ in ranked)
    assert len(after[0]) == 10
