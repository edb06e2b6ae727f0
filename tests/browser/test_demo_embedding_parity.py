"""Browser embeddings (static/embedder.js: onnxruntime-web + @lenml/tokenizers on the
int8 all-MiniLM-L6-v2 of the site's model/) against desktop embeddings of the same
sentences: onnxruntime on the same files (build_scripts/minilm_onnx.py), and the
float32 model's recorded ones (tests/data/minilm_float32_reference.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from demo_fixtures import desktop_reference

#: same int8 model, same float32 arithmetic, different kernels (wasm vs native)
MIN_COSINE_SAME_MODEL = 0.9999
#: int8 vs the float32 original (measured minimum 0.9992 on the desktop)
MIN_COSINE_FLOAT32 = 0.998
FLOAT32_REFERENCE = Path(__file__).resolve().parents[1] / "data" / "minilm_float32_reference.json"


def test_browser_embeddings_match_desktop(page, base_url, site_dir):
    assert (site_dir / "model" / "model.onnx").is_file(), (
        "the site has no model/: build_scripts/setup.sh fetches it (build_scripts/fetch_model.py -> .cache/model)")
    ref = desktop_reference(site_dir / "model")
    page.set_default_timeout(120_000)
    page.goto(base_url + "build-info.json")
    got = page.evaluate(
        """async (sentences) => {
             const { Embedder } = await import('/static/embedder.js');
             const emb = await Embedder.load();
             const vectors = await emb.embed(sentences);
             return { info: emb.info,
                      tokens: sentences.map((s) => emb.tokenize(s)),
                      vectors: vectors.map((v) => Array.from(v)) };
           }""",
        ref["sentences"])
    vectors = np.asarray(got["vectors"], dtype=np.float64)
    desktop = np.asarray(ref["embeddings"], dtype=np.float64)
    assert vectors.shape == desktop.shape == (len(ref["sentences"]), 384)
    assert got["info"]["modelBytes"] == (site_dir / "model" / "model.onnx").stat().st_size
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for sentence, tokens, want in zip(ref["sentences"], got["tokens"], ref["token_ids"]):
        assert tokens == want, f"tokenization differs from the desktop for {sentence[:60]!r}"
    cos = np.sum(vectors * desktop, axis=1) / np.linalg.norm(desktop, axis=1)
    f32 = np.asarray(json.loads(FLOAT32_REFERENCE.read_text(encoding="utf-8"))["embeddings"])
    cos32 = np.sum(vectors * f32, axis=1) / np.linalg.norm(f32, axis=1)
    print(f"\nbrowser vs desktop (same int8 model): min cosine {cos.min():.7f}, mean {cos.mean():.7f}; "
          f"vs float32 model: min {cos32.min():.5f}; model {got['info']['modelBytes'] / 1e6:.1f} MB "
          f"loaded in {got['info']['modelMs']:.0f} ms ({got['info']['backend']})")
    bad = [(ref["sentences"][i][:60], float(c)) for i, c in enumerate(cos) if c < MIN_COSINE_SAME_MODEL]
    assert not bad, f"cosine < {MIN_COSINE_SAME_MODEL} against the desktop: {bad}"
    assert cos32.min() >= MIN_COSINE_FLOAT32, cos32
    # and the vectors carry meaning: each is closest to its own desktop twin
    assert list(np.argmax(vectors @ desktop.T, axis=1)) == list(range(len(cos)))
