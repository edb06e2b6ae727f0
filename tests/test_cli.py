"""The clark-hash CLI: encode / info / search end to end, and its error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
from clark_hash_web.formats import sketch_file as sf
from clark_hash_web.cli import VectorSource, f32_str, main, read_ids


def data(n=60, d=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x * (2.0 ** rng.uniform(-3, 3, (n, 1))).astype(np.float32)


def run(capsys, *argv):
    """main(argv) -> (status, stdout, stderr)."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = data()
    np.save("x.npy", x)
    x.tofile("x.f32")
    np.save("q.npy", data(5, seed=7))
    return tmp_path


# ---------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_encode_matches_library(work, capsys, backend, metric):
    status, out, err = run(capsys, "encode", "x.npy", "s.chs", "--metric", metric,
                           "--bits", 3, "--sketch-dim", 20, "--seed", "0x1234",
                           "--backend", backend)
    assert status == 0, err
    assert "wrote 60 sketches (0 rows skipped) to s.chs" in out and f"backend {backend}" in out
    assert err == ""  # stderr is not a terminal: no progress bar
    cfg = ClarkHashConfig(32, sketch_dim=20, bits=3, seed=0x1234, metric=metric)
    enc = ClarkHash(cfg, backend).encode(np.load("x.npy"))
    assert (work / "s.chs").read_bytes() == sf.encoded_to_bytes(enc)


def test_raw_npy_float64_chunks_and_backends_give_identical_files(work, capsys):
    np.save("x64.npy", np.load("x.npy").astype(np.float64))
    np.save("xf.npy", np.asfortranarray(np.load("x.npy")))
    runs = {
        "npy": ["x.npy"], "raw": ["x.f32", "--raw", "--dim", 32], "f64": ["x64.npy"],
        "fortran": ["xf.npy"], "chunks": ["x.npy", "--chunk-rows", 7],
        "python": ["x.npy", "--backend", "python", "--chunk-rows", 11],
    }
    files = {}
    for name, args in runs.items():
        status, _, err = run(capsys, "encode", *args, f"{name}.chs")
        assert status == 0, err
        files[name] = (work / f"{name}.chs").read_bytes()
    assert len(set(files.values())) == 1


def test_encode_with_ids(work, capsys):
    (work / "ints.txt").write_text("".join(f"{i * 3 - 50}\n" for i in range(60)))
    (work / "strs.txt").write_text("\r\n".join(f"doc {i}" for i in range(59)) + "\r\n007x")
    assert run(capsys, "encode", "x.npy", "a.chs", "--ids", "ints.txt")[0] == 0
    assert sf.load("a.chs").ids == [i * 3 - 50 for i in range(60)]
    assert run(capsys, "encode", "x.npy", "b.chs", "--ids", "strs.txt")[0] == 0
    assert sf.load("b.chs").ids == [f"doc {i}" for i in range(59)] + ["007x"]


def test_read_ids_rules(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_text("1\n+2\n-3\n")
    assert read_ids(p, 3) == [1, 2, -3]
    p.write_text("1\n2\n3x\n")
    assert read_ids(p, 3) == ["1", "2", "3x"]
    p.write_bytes(b"a\n\xff\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_ids(p, 2)


def test_skip_bad_rows(work, capsys):
    x = np.load("x.npy")
    x[3, 0], x[40] = np.nan, 0.0
    np.save("bad.npy", x)
    (work / "ids.txt").write_text("".join(f"id{i}\n" for i in range(60)))
    status, out, err = run(capsys, "encode", "bad.npy", "s.chs", "--skip-bad-rows",
                           "--ids", "ids.txt", "--chunk-rows", 16)
    assert status == 0
    assert "skipped row 3: contains NaN or inf" in err
    assert "skipped row 40: vector norm must be positive" in err
    assert "wrote 58 sketches (2 rows skipped)" in out
    d = sf.load("s.chs")
    assert d.ids == [f"id{i}" for i in range(60) if i not in (3, 40)]
    keep = np.delete(x, [3, 40], axis=0)
    assert d.codes == ClarkHash(d.config).encode(keep).codes_bytes()


def test_bad_rows_fail_by_default_and_write_nothing(work, capsys):
    x = np.load("x.npy")
    x[45, 2] = np.inf
    np.save("bad.npy", x)
    status, out, err = run(capsys, "encode", "bad.npy", "s.chs", "--chunk-rows", 16)
    assert status == 2
    assert err.strip().splitlines() == [
        "clark-hash: error: 1 vector row rejected, nothing was added: row 45: contains NaN or inf"]
    assert not (work / "s.chs").exists()


def test_append(work, capsys):
    x = np.load("x.npy")
    np.save("x1.npy", x[:25])
    np.save("x2.npy", x[25:])
    (work / "i1.txt").write_text("\n".join(str(i) for i in range(25)))
    (work / "i2.txt").write_text("\n".join(str(i) for i in range(25, 60)))
    assert run(capsys, "encode", "x.npy", "whole.chs", "--metric", "dot", "--ids", "i1.txt")[0] == 2
    (work / "all.txt").write_text("\n".join(str(i) for i in range(60)))
    assert run(capsys, "encode", "x.npy", "whole.chs", "--metric", "dot", "--ids", "all.txt")[0] == 0
    assert run(capsys, "encode", "x1.npy", "part.chs", "--metric", "dot", "--ids", "i1.txt")[0] == 0
    # --append takes the file's config when no flag is given
    status, out, _ = run(capsys, "encode", "x2.npy", "part.chs", "--append", "--ids", "i2.txt")
    assert status == 0 and "appended 35 sketches" in out and "60 in file" in out
    assert (work / "part.chs").read_bytes() == (work / "whole.chs").read_bytes()


def test_append_refusals_keep_file(work, capsys):
    assert run(capsys, "encode", "x.npy", "s.chs", "--ids", "/dev/null")[0] == 2  # 0 ids for 60
    assert run(capsys, "encode", "x.npy", "s.chs")[0] == 0
    before = (work / "s.chs").read_bytes()
    fp = sf.load("s.chs").fingerprint
    status, _, err = run(capsys, "encode", "x.npy", "s.chs", "--append", "--bits", 2)
    assert status == 2
    other = ClarkHashConfig(32, bits=2).fingerprint
    assert f"holds codes of config {fp}, the options give config {other} (bits 4 vs 2)" in err
    np.save("d16.npy", data(3, d=16))
    status, _, err = run(capsys, "encode", "d16.npy", "s.chs", "--append")
    assert status == 2 and "the codec takes 32-dimensional vectors, the input has 16" in err
    (work / "ids.txt").write_text("a\nb\n" + "\n".join(f"c{i}" for i in range(58)))
    status, _, err = run(capsys, "encode", "x.npy", "s.chs", "--append", "--ids", "ids.txt")
    assert status == 2 and "stores no ids" in err
    status, _, err = run(capsys, "encode", "x.npy", "s.chs")
    assert status == 2 and "s.chs exists: use --append" in err
    assert (work / "s.chs").read_bytes() == before
    assert sorted(os.listdir(work)) == sorted(["x.npy", "x.f32", "q.npy", "s.chs", "d16.npy",
                                               "ids.txt"])
    assert run(capsys, "encode", "x.npy", "s.chs", "--force", "--bits", 2)[0] == 0
    assert sf.load("s.chs").fingerprint == other


def test_empty_input_gives_empty_file(work, capsys):
    np.save("none.npy", np.zeros((0, 32), np.float32))
    status, out, _ = run(capsys, "encode", "none.npy", "s.chs", "--metric", "dot")
    assert status == 0 and "wrote 0 sketches" in out
    d = sf.load("s.chs")
    assert d.count == 0 and d.config.input_dim == 32 and d.norm_codes == b""
    status, out, _ = run(capsys, "search", "s.chs", "q.npy", "--json")
    assert status == 0 and json.loads(out)[0] == {"query": 0, "ids": [], "scores": []}


def test_progress_bar(work, capsys):
    status, _, err = run(capsys, "encode", "x.npy", "s.chs", "--progress", "--chunk-rows", 10)
    assert status == 0
    assert "\rencode [" in err and "100.0% 60/60 rows" in err and err.endswith("\n")


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------
def test_info(work, capsys):
    (work / "ids.txt").write_text("\n".join(f"v{i}" for i in range(60)))
    run(capsys, "encode", "x.npy", "s.chs", "--metric", "dot", "--ids", "ids.txt")
    status, out, _ = run(capsys, "info", "s.chs", "--json")
    assert status == 0
    info = json.loads(out)
    cfg = ClarkHashConfig(32, metric="dot")
    assert info["config"] == cfg.to_dict()
    assert info["fingerprint"] == cfg.fingerprint
    assert info["count"] == 60 and info["code_bytes"] == 48 and info["bytes_per_vector"] == 50
    assert info["compression_ratio_vs_f32"] == pytest.approx(128 / 50)
    assert info["id_kind"] == "utf-8" and info["file_bytes"] == os.path.getsize("s.chs")
    status, out, _ = run(capsys, "info", "s.chs")
    assert status == 0
    lines = dict(line.split(None, 1) if not line.startswith("  ") else line.split(None, 1)
                 for line in out.splitlines() if not line.startswith(("code ", "bytes ")))
    assert lines["fingerprint"] == cfg.fingerprint and lines["count"] == "60"
    assert lines["seed"] == "0x5EEDCAFE12345678" and lines["ids"] == "utf-8"
    assert "2.56x vs float32" in out


# ---------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_search_matches_flat_index(work, capsys, backend, metric):
    (work / "ids.txt").write_text("\n".join(f"v{i}" for i in range(60)))
    run(capsys, "encode", "x.npy", "s.chs", "--metric", metric, "--ids", "ids.txt")
    status, out, _ = run(capsys, "search", "s.chs", "q.npy", "-k", 7, "--json",
                         "--backend", backend)
    assert status == 0
    results = json.loads(out)
    index = FlatIndex(ClarkHash(ClarkHashConfig(32, metric=metric), backend))
    index.add(np.load("x.npy"), ids=[f"v{i}" for i in range(60)])
    assert [r["query"] for r in results] == list(range(5))
    for r, q in zip(results, np.load("q.npy")):
        ids, scores = index.search(q, 7)
        assert r["ids"] == ids
        assert np.asarray(r["scores"], np.float32).tobytes() == \
            np.asarray(scores, np.float32).tobytes()
    status, text, _ = run(capsys, "search", "s.chs", "q.npy", "-k", 7)
    lines = text.splitlines()
    assert lines[0] == "query 0" and len(lines) == 5 * 8
    rank, score, id_ = lines[1].split()
    assert rank == "1" and id_ == results[0]["ids"][0]
    assert np.float32(float(score)) == np.float32(results[0]["scores"][0])


def test_search_single_and_raw_queries(work, capsys):
    run(capsys, "encode", "x.npy", "s.chs")
    q = np.load("q.npy")
    np.save("one.npy", q[2])
    q.tofile("q.f32")
    _, one, _ = run(capsys, "search", "s.chs", "one.npy", "-k", 100, "--json")
    _, raw, _ = run(capsys, "search", "s.chs", "q.f32", "--raw", "-k", 100, "--json")
    one, raw = json.loads(one), json.loads(raw)
    assert len(one) == 1 and len(one[0]["ids"]) == 60  # k larger than the file
    assert one[0]["ids"] == raw[2]["ids"] and one[0]["scores"] == raw[2]["scores"]


def test_f32_str_is_shortest_round_trip():
    for v in np.random.default_rng(0).standard_normal(200).astype(np.float32):
        text = f32_str(float(v))
        assert np.float32(float(text)) == v and len(text) <= len(repr(v.item()))
    assert f32_str(0.5) == "0.5"


# ---------------------------------------------------------------------------
# reading vectors without numpy
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", ">f8"])
def test_pure_npy_reader(tmp_path, dtype):
    x = data(9, d=5).astype(dtype)
    np.save(tmp_path / "a.npy", x)
    src = VectorSource(tmp_path / "a.npy", use_numpy=False)
    assert (src.rows, src.dim) == (9, 5)
    got = b"".join(c for _, c in src.chunks(4))
    assert got == x.astype("<f4").tobytes()


def test_pure_npy_reader_refusals(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(data(3, d=4)))
    np.save(tmp_path / "i.npy", np.arange(12).reshape(3, 4))
    np.save(tmp_path / "t.npy", np.zeros((2, 2, 2), np.float32))
    for name, words in (("f.npy", "Fortran"), ("i.npy", "float32/float64"), ("t.npy", "2-D")):
        with pytest.raises(ValueError, match=words):
            VectorSource(tmp_path / name, use_numpy=False)
    np.save(tmp_path / "ok.npy", data(3, d=4))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "ok.npy").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        VectorSource(tmp_path / "cut.npy", use_numpy=False)


# ---------------------------------------------------------------------------
# errors: one line, status 2, no traceback
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["info", "missing.chs"], "missing.chs: No such file or directory"),
    (["info", "x.npy"], "x.npy: not a sketch file: bytes 0..7"),
    (["search", "x.npy", "q.npy"], "this is a .npy array"),
    (["encode", "x.f32", "o.chs", "--raw"], "--raw input needs --dim"),
    (["encode", "x.f32", "o.chs", "--raw", "--dim", 7], "not a whole number of 7-float32 rows"),
    (["encode", "x.npy", "o.chs", "--dim", 16], "dimension 32, expected 16"),
    (["encode", "x.f32", "o.chs"], "x.f32: not a .npy file (it does not start with the .npy magic"),
    (["encode", "notes.txt", "o.chs"], "notes.txt: not a .npy file"),
    (["encode", "x.npy", "o.chs", "--codec", "e8", "--bits", 2], "--bits is a Clark Hash flag"),
    (["encode", "x.npy", "o.chs", "--codec", "e8:64"], "takes 64-dimensional vectors, the input has 32"),
    (["encode", "x.npy", "o.chs", "--codec", "pq"], "unknown codec 'pq'"),
    (["encode", "x.npy", "o.chs", "--codec", "itq"], "ITQ is trained"),
    (["train", "x.npy", "o.chs", "--codec", "e8"], "e8 is not trained (trained codecs: itq, learned-e8)"),
    (["train", "x.npy", "o.chs", "--options", "n_bits"], "'n_bits' is not KEY=VALUE"),
    (["train", "x.npy", "o.chs", "--options", "colour=red"], "--options for itq:"),
    (["encode", "x.npy", "o.chs", "--bits", 9], "bits must be in 1..8"),
    (["encode", "q1.npy", "o.chs"], "array must be 2-D (rows x dim), got shape (32,)"),
    (["encode", "i.npy", "o.chs"], "dtype int64 is not floating point"),
    (["encode", "x.npy", "o.chs", "--chunk-rows", 0], "--chunk-rows must be positive"),
    (["encode", "x.npy", "o.chs", "--ids", "nope.txt"], "nope.txt: No such file"),
    (["encode", "x.npy", "no/such/dir/o.chs"], "No such file or directory"),
])
def test_error_messages(work, capsys, argv, words):
    np.save("q1.npy", data(1)[0])
    np.save("i.npy", np.arange(64).reshape(2, 32))
    (work / "notes.txt").write_text("not vectors\n")
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("clark-hash: error: ")
    assert words in err
    assert "Traceback" not in err and out == ""
    assert not (work / "o.chs").exists()


def test_search_errors(work, capsys):
    run(capsys, "encode", "x.npy", "s.chs")
    q = np.load("q.npy")
    q[1] = 0
    np.save("zero.npy", q)
    np.save("q16.npy", data(2, d=16))
    for argv, words in (
        (["s.chs", "zero.npy"], "zero.npy: query row 1: vector norm must be positive"),
        (["s.chs", "q16.npy"], "dimension 16, expected 32"),
        (["s.chs", "q.npy", "-k", -1], "-k must be at least 1, got -1"),
        (["s.chs", "q.npy", "-k", 0], "-k must be at least 1, got 0"),
        (["s.chs", "q.npy", "--rescore", 5], "--rescore needs --vectors"),
    ):
        status, _, err = run(capsys, "search", *argv)
        assert status == 2 and words in err, err


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["encode", "only-one-arg"], ["frobnicate"], ["encode", "a", "b", "--seed", "zz"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "not an integer: 'zz'" in capsys.readouterr().err


def test_console_entry_point_subprocess(work):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "clark_hash_web.cli"]
    done = subprocess.run(cmd + ["encode", "x.npy", "s.chs"], capture_output=True, text=True,
                          env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(cmd + ["info", "--json", "s.chs"], capture_output=True, text=True,
                          env=env, cwd=work)
    assert json.loads(done.stdout)["count"] == 60
    done = subprocess.run(cmd + ["info", "x.npy"], capture_output=True, text=True, env=env,
                          cwd=work)
    assert done.returncode == 2 and "Traceback" not in done.stderr


NO_NUMPY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("numpy blocked for this test")
sys.meta_path.insert(0, Block())
from clark_hash_web.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_without_numpy_writes_the_same_file(work, capsys):
    """Pure-Python path end to end (raw and .npy input, info, search), as in Pyodide core."""
    assert run(capsys, "encode", "x.npy", "ref.chs", "--metric", "dot")[0] == 0
    _, ref_search, _ = run(capsys, "search", "ref.chs", "q.npy", "-k", 4, "--json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-c", NO_NUMPY]
    for name, args in (("raw", ["x.f32", "--raw", "--dim", "32"]), ("npy", ["x.npy"])):
        done = subprocess.run(cmd + ["encode", *args, f"{name}.chs", "--metric", "dot"],
                              capture_output=True, text=True, env=env, cwd=work)
        assert done.returncode == 0, done.stderr
        assert "backend python" in done.stdout
        assert (work / f"{name}.chs").read_bytes() == (work / "ref.chs").read_bytes()
    done = subprocess.run(cmd + ["search", "raw.chs", "q.npy", "-k", "4", "--json"],
                          capture_output=True, text=True, env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(ref_search)


def test_subcommands_from_other_modules(capsys, monkeypatch):
    from clark_hash_web import cli

    for name, flag in (("serve", "--port"), ("push", "--collection"), ("pull", "--token-file"),
                       ("user", "revoke")):
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0 and flag in capsys.readouterr().out
    monkeypatch.setitem(cli.COMMANDS, "later", ("not written yet",
                                                *cli._elsewhere(".no_such_module", "add", "run")))
    status, _, err = run(capsys, "later")
    assert status == 2
    assert err.startswith("clark-hash: error: clark-hash later is unavailable: No module named")


# ---------------------------------------------------------------------------
# every codec kind
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["e8", "e8:32", "sign-bits:32:rotation=hadamard",
                                  "hyperplane-lsh:32:n_bits=64", "clark-hash"])
def test_encode_info_search_any_codec(work, capsys, spec):
    from clark_hash_web import make_index
    from clark_hash_web.codecs import registry

    cfg = registry.config_from_spec(spec if ":" in spec else f"{spec}:32")
    assert run(capsys, "encode", "x.npy", "s.chs", "--codec", spec)[0] == 0
    ref = make_index(cfg)
    ref.add(data())
    assert sf.load("s.chs").codes == ref.encoded().codes_bytes()
    status, out, _ = run(capsys, "info", "s.chs", "--json")
    info = json.loads(out)
    assert status == 0 and info["fingerprint"] == cfg.fingerprint
    assert info["spec"] == registry.spec_of(cfg) and info["format_version"] == 2
    assert info["codec_kind"] == cfg.to_bytes()[0]
    status, out, _ = run(capsys, "search", "s.chs", "q.npy", "-k", 3, "--json")
    got = json.loads(out)
    for qi, q in enumerate(np.load("q.npy")):
        ids, scores = ref.search(q, 3)
        assert got[qi]["ids"] == list(ids)
        assert got[qi]["scores"] == [float(s) for s in scores]
    # appending with the file's codec, and refusing another
    assert run(capsys, "encode", "x.npy", "s.chs", "--append")[0] == 0
    assert sf.load("s.chs").count == 120
    other = "clark-hash" if not spec.startswith("clark") else "e8"
    status, _, err = run(capsys, "encode", "x.npy", "s.chs", "--append", "--codec", other)
    assert status == 2 and "holds codes of config" in err and sf.load("s.chs").count == 120


def test_train_itq_then_encode_with_its_config(work, capsys):
    from clark_hash_web import ITQ

    status, out, _ = run(capsys, "train-itq", "x.npy", "itq.chs", "--options",
                         "n_bits=16,iterations=5", "--seed", 3)
    assert status == 0 and "trained ITQ on 60 x 32" in out
    cfg = sf.load("itq.chs").config
    assert sf.load("itq.chs").count == 0 and cfg.n_bits == 16
    assert run(capsys, "train", "x.npy", "itq.chs")[0] == 2           # exists: needs --force
    assert run(capsys, "encode", "x.npy", "s.chs", "--config", "itq.chs")[0] == 0
    assert sf.load("s.chs").codes == ITQ(cfg).encode(data()).codes_bytes()
    status, out, _ = run(capsys, "info", "s.chs", "--json")
    info = json.loads(out)
    assert info["codec"] == "ITQ" and info["spec"] is None
    status, _, err = run(capsys, "encode", "x.npy", "t.chs", "--config", "itq.chs", "--codec", "e8")
    assert status == 2 and "don't combine it with --codec" in err


def test_bounded_scores_keep_the_ranking(work, capsys):
    run(capsys, "encode", "x.npy", "s.chs")
    np.save("self.npy", data()[:5])
    _, plain, _ = run(capsys, "search", "s.chs", "self.npy", "-k", 5, "--json")
    _, bounded, _ = run(capsys, "search", "s.chs", "self.npy", "-k", 5, "--json", "--bounded")
    plain, bounded = json.loads(plain), json.loads(bounded)
    assert [r["ids"] for r in plain] == [r["ids"] for r in bounded]
    flat = [s for r in bounded for s in r["scores"]]
    assert all(-1.0 <= s <= 1.0 for s in flat)
    assert [min(1.0, max(-1.0, s)) for r in plain for s in r["scores"]] == flat


def test_help_explains_scores(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    assert "can pass 1" in out and "--bounded" in out


def test_search_with_vectors_rescores(work, capsys):
    from clark_hash_web import VectorFile, make_index

    two = make_index("e8:32", vectors=VectorFile(work / "v.bin", 32, "int8"))
    two.add(data(), ids=[f"r{i}" for i in range(60)])
    two.save(work / "s.chs")
    status, out, _ = run(capsys, "search", "s.chs", "q.npy", "-k", 4, "--vectors", "v.bin",
                         "--rescore", 60, "--json")
    assert status == 0
    for qi, q in enumerate(np.load("q.npy")):
        ids, scores = two.search(q, 4, rescore=60)
        assert json.loads(out)[qi]["ids"] == ids
