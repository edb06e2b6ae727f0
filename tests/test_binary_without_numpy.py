"""The binary codecs and two-stage search work when numpy cannot be imported (Pyodide core)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

from binary_helpers import clustered
from clark_hash_web.codecs.e8 import E8Codes, E8Config
from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig

SCRIPT = textwrap.dedent("""
    import json, sys, tempfile, os
    sys.modules["numpy"] = None          # import numpy now raises ImportError
    from clark_hash_web.backends import available_backends
    from clark_hash_web.index.binary import BinaryIndex
    from clark_hash_web.codecs.e8 import E8Codes, E8Config
    from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
    from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig
    from clark_hash_web.index.two_stage import TwoStageIndex, VectorFile
    x = json.loads(sys.stdin.read())
    out = {"backends": available_backends()}
    for name, codec in [("lsh", HyperplaneLSH(HyperplaneLSHConfig(16, 24))),
                        ("sign", SignBits(SignBitsConfig(16, rotation="hadamard"))),
                        ("e8", E8Codes(E8Config(16)))]:
        two = TwoStageIndex(BinaryIndex(codec),
                            VectorFile(os.path.join(tempfile.mkdtemp(), "v"), 16, "int8"), 3)
        two.add(x)
        ids, scores = two.index.search(x[0], 4)
        ids2, _ = two.search(x[0], 2)
        out[name] = {"backend": codec.backend, "codes": codec.encode(x).codes_bytes().hex(),
                     "ids": ids, "scores": scores.tobytes().hex(), "two": ids2}
    print(json.dumps(out))
""")


def test_pure_python_without_numpy_gives_the_numpy_bytes():
    x = clustered(12, 16, seed=1)
    res = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps(x.tolist()),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["backends"] == ["python"]
    from clark_hash_web.index.binary import BinaryIndex

    for name, codec in [("lsh", HyperplaneLSH(HyperplaneLSHConfig(16, 24), "numpy")),
                        ("sign", SignBits(SignBitsConfig(16, rotation="hadamard"), "numpy")),
                        ("e8", E8Codes(E8Config(16), "numpy"))]:
        assert out[name]["backend"] == "python"
        assert out[name]["codes"] == codec.encode(x).codes_bytes().hex()
        index = BinaryIndex(codec)
        index.add(x)
        ids, scores = index.search(x[0], 4)
        assert out[name]["ids"] == ids and out[name]["scores"] == np.asarray(scores).tobytes().hex()
        assert out[name]["two"][0] == 0


ROWS_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["numpy"] = None
    from clark_hash_web.codecs import registry
    from clark_hash_web.formats import sketch_file
    out = {}
    x = json.loads(sys.stdin.read())
    for spec in ("e8:16", "clark-hash:16", "sign-bits:16"):
        enc = registry.codec_from_spec(spec).encode(x)
        codes = enc.codes
        rows = [codes[j].hex() for j in range(len(codes))]
        assert [r.hex() for r in codes] == rows and codes[-1] == codes[len(codes) - 1]
        assert codes[1:3].shape == (2, codes.shape[1]) and codes[1:3][0] == codes[1]
        assert codes.tobytes() == enc.codes_bytes()
        try:
            codes[len(codes)]
        except IndexError as exc:
            err = str(exc)
        out[spec] = {"shape": list(codes.shape), "rows": rows, "err": err,
                     "file": sketch_file.to_bytes(enc.config, codes).hex()}
    print(json.dumps(out))
""")


def test_codes_index_by_row_without_numpy():
    """Without numpy, EncodedBatch.codes[j] is row j's bytes (a 2-D memoryview raised)."""
    from clark_hash_web.codecs import registry
    from clark_hash_web.formats import sketch_file

    x = clustered(5, 16, seed=4)
    res = subprocess.run([sys.executable, "-c", ROWS_SCRIPT], input=json.dumps(x.tolist()),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for spec, got in out.items():
        enc = registry.codec_from_spec(spec, backend="numpy").encode(x)
        assert got["shape"] == list(enc.codes.shape)
        assert got["rows"] == [bytes(r).hex() for r in enc.codes]
        assert got["err"] == "code row 5 out of range for 5 rows"
        assert got["file"] == sketch_file.to_bytes(enc.config, enc.codes).hex()
