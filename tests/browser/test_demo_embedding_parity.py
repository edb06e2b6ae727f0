"""Browser embeddings (static/embedder.js: onnxruntime-web + @lenml/tokenizers)
against desktop embeddings (the PyPI package's SentenceTransformer pipeline)
of the same sentences, recorded by build_scripts/export_onnx.py in
model/reference_embeddings.json.
"""

from __future__ import annotations

import json

import numpy as np

MIN_COSINE = 0.99


def test_browser_embeddings_match_desktop(page, base_url, site_dir):
    ref_path = site_dir / "model" / "reference_embeddings.json"
    assert ref_path.is_file(), ("the site has no model/: build_scripts/setup.sh exports it "
                                "(build_scripts/export_onnx.py -> .cache/model)")
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
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
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = np.sum(vectors * desktop, axis=1) / np.linalg.norm(desktop, axis=1)
    print(f"\nbrowser vs desktop embeddings: {len(cos)} sentences, min cosine {cos.min():.7f}, "
          f"mean {cos.mean():.7f}; model load {got['info']['modelMs']:.0f} ms ({got['info']['backend']})")
    for sentence, tokens, want in zip(ref["sentences"], got["tokens"], ref["token_ids"]):
        assert tokens == want, f"tokenization differs from the desktop for {sentence[:60]!r}"
    bad = [(ref["sentences"][i][:60], float(c)) for i, c in enumerate(cos) if c < MIN_COSINE]
    assert not bad, f"cosine < {MIN_COSINE}: {bad}"
    # and the vectors carry meaning: each is closest to its own desktop twin
    assert list(np.argmax(vectors @ desktop.T, axis=1)) == list(range(len(cos)))
