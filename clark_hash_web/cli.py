"""The ``clark-hash`` command: encode vectors to sketch files, inspect them, search them.

Usage::

    clark-hash encode vectors.npy out.chs --codec e8          # the recommended profile
    clark-hash encode vectors.npy out.chs [--ids ids.txt] [--metric dot] ...   # Clark Hash
    clark-hash encode vectors.f32 out.chs --raw --dim 384 --codec sign-bits
    clark-hash train --codec itq sample.npy itq.chs           # a trained config (no rows)
    clark-hash encode vectors.npy out.chs --config itq.chs
    clark-hash info out.chs [--json]
    clark-hash search out.chs queries.npy -k 10 [--json] [--vectors v.bin --rescore 100]

Every subcommand is a pair of functions, ``_add_<name>(parser)`` declaring
its arguments and ``_run_<name>(args) -> int`` doing the work, listed in
:data:`COMMANDS`; another subcommand is one more entry. ``serve`` (sync
server), ``push`` and ``pull`` (sync client) live in their own modules and
are imported only when used.

Expected failures (bad input, damaged files, missing files) print one line
``clark-hash: error: ...`` on stderr and exit with status 2; usage errors
exit with 2 as well (argparse).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import sys
import time
from array import array

from .backends import numpy_available
from .codecs import registry
from .codecs.clark_hash_config import ClarkHashConfig
from .errors import (ClarkHashError, ConfigError, ConfigMismatchError, DimensionError,
                     InvalidInputError, InvalidVectorError)
from .formats import sketch_file
from .index import load_index

EXIT_OK = 0
EXIT_INPUT_ERROR = 2
DEFAULT_CHUNK_ROWS = 16384

# ClarkHashConfig fields settable by encode's flags (--sketch-dim -> sketch_dim, ...)
_CONFIG_FLAGS = ("sketch_dim", "bits", "hashes_per_input", "clip", "seed", "metric",
                 "norm_log2_min", "norm_log2_max")


# ---------------------------------------------------------------------------
# reading vectors
# ---------------------------------------------------------------------------
def _int_auto(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r} (decimal or 0x hex)") from None


class VectorSource:
    """Rows of float vectors from a .npy file or raw little-endian float32, read in chunks.

    Parameters
    ----------
    path : str
    raw : bool
        Raw little-endian float32 (needs ``dim``); otherwise a .npy file.
    dim : int or None
        Row length for raw input; checked against the .npy shape otherwise.
    allow_1d : bool
        Accept a 1-D .npy array as a single row (queries).
    use_numpy : bool or None
        Read .npy through numpy (default when importable); without it a small
        pure-Python reader handles C-order float32/float64 arrays.
    """

    def __init__(self, path, raw=False, dim=None, allow_1d=False, use_numpy=None):
        self.path = os.fspath(path)
        self.use_numpy = numpy_available() if use_numpy is None else use_numpy
        self._array = None
        if raw:
            if dim is None:
                raise InvalidInputError("--raw input needs --dim D (floats per vector)")
            if dim <= 0:
                raise InvalidInputError(f"--dim must be positive, got {dim}")
            size = os.path.getsize(self.path)
            if size % (4 * dim):
                raise DimensionError(
                    f"{self.path}: {size} bytes is not a whole number of {dim}-float32 rows "
                    f"({4 * dim} bytes each)")
            self.rows, self.dim, self._offset, self._dtype = size // (4 * dim), dim, 0, "<f4"
        elif self.use_numpy:
            self._open_numpy(allow_1d)
        else:
            self._open_pure(allow_1d)
        if dim is not None and self.dim != dim:
            raise DimensionError(f"{self.path}: vectors have dimension {self.dim}, expected {dim}")

    def _shape_rule(self, shape, allow_1d):
        if len(shape) == 1 and allow_1d:
            return 1, shape[0]
        if len(shape) != 2:
            want = "1-D or 2-D" if allow_1d else "2-D (rows x dim)"
            raise InvalidInputError(f"{self.path}: array must be {want}, got shape {tuple(shape)}")
        return shape

    def _check_magic(self):
        with open(self.path, "rb") as f:
            head = f.read(len(self._NPY_MAGIC))
        if head != self._NPY_MAGIC:
            raise InvalidInputError(
                f"{self.path}: not a .npy file (it does not start with the .npy magic bytes); "
                "write vectors with numpy.save, or pass raw little-endian float32 with --raw --dim D")

    def _open_numpy(self, allow_1d):
        import numpy as np

        self._check_magic()
        try:
            arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise InvalidInputError(f"{self.path}: not a readable .npy file ({exc})") from None
        if not isinstance(arr, np.ndarray):
            raise InvalidInputError(f"{self.path}: expected one .npy array, got {type(arr).__name__}")
        if arr.dtype.kind != "f":
            raise InvalidInputError(f"{self.path}: dtype {arr.dtype} is not floating point "
                                    "(float32 or float64 expected)")
        self.rows, self.dim = self._shape_rule(arr.shape, allow_1d)
        self._array = arr.reshape(self.rows, self.dim)

    _NPY_MAGIC = b"\x93NUMPY"

    def _open_pure(self, allow_1d):
        import ast

        self._check_magic()
        with open(self.path, "rb") as f:
            head = f.read(12)
            if len(head) < 10:
                raise InvalidInputError(f"{self.path}: truncated .npy header")
            major = head[6]
            if major == 1:
                (hlen,) = struct.unpack("<H", head[8:10])
                start = 10
            elif major in (2, 3):
                (hlen,) = struct.unpack("<I", head[8:12])
                start = 12
            else:
                raise InvalidInputError(f"{self.path}: unsupported .npy version {major}")
            f.seek(start)
            text = f.read(hlen).decode("latin1")
        try:
            header = ast.literal_eval(text)
            descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
        except (ValueError, SyntaxError, KeyError, TypeError):
            raise InvalidInputError(f"{self.path}: malformed .npy header") from None
        if descr not in ("<f4", "<f8", ">f4", ">f8") or fortran:
            raise InvalidInputError(f"{self.path}: without numpy only C-order float32/float64 "
                                    f".npy files can be read, this one is {descr!r}"
                                    f"{' Fortran-order' if fortran else ''}")
        self.rows, self.dim = self._shape_rule(shape, allow_1d)
        self._offset, self._dtype = start + hlen, descr
        itemsize = int(descr[2])
        need = self._offset + self.rows * self.dim * itemsize
        if os.path.getsize(self.path) < need:
            raise InvalidInputError(f"{self.path}: truncated .npy file")

    def chunks(self, chunk_rows=DEFAULT_CHUNK_ROWS):
        """Yield ``(first_row, vectors)`` where ``vectors`` is a float32 (n, dim)
        numpy array or little-endian float32 bytes; ``codec.encode`` takes both."""
        if self._array is not None:
            import numpy as np

            for start in range(0, self.rows, chunk_rows):
                with np.errstate(all="ignore"):
                    chunk = np.ascontiguousarray(self._array[start:start + chunk_rows],
                                                 dtype=np.float32)
                yield start, chunk
            return
        itemsize = int(self._dtype[2])
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            for start in range(0, self.rows, chunk_rows):
                n = min(chunk_rows, self.rows - start)
                buf = f.read(n * self.dim * itemsize)
                yield start, self._to_f32_le(buf)

    def _to_f32_le(self, buf: bytes) -> bytes:
        if self._dtype == "<f4" and sys.byteorder == "little":
            return buf
        a = array("f" if self._dtype[2] == "4" else "d")
        a.frombytes(buf)
        if (self._dtype[0] == "<") != (sys.byteorder == "little"):
            a.byteswap()
        out = array("f", a) if a.typecode == "d" else a  # C conversion: overflow -> inf
        if sys.byteorder != "little":
            out.byteswap()
        return out.tobytes()

    def all_rows(self):
        """Every row at once (for small inputs such as queries)."""
        parts = [c for _, c in self.chunks(max(self.rows, 1))]
        if not parts:
            return b""
        return parts[0]


def read_ids(path, expected: int) -> list:
    """Ids from a text file, one per line: ints when every line is an integer, else strings."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    for n, line in enumerate(lines, 1):
        if line == "":
            raise InvalidInputError(f"{path}: line {n} is empty (one id per line)")
    if len(lines) != expected:
        raise InvalidInputError(f"{path}: {len(lines)} ids for {expected} input vectors")
    if all(re.fullmatch(r"[+-]?[0-9]+", line) for line in lines):
        return [int(line) for line in lines]
    return lines


# ---------------------------------------------------------------------------
# progress bar
# ---------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on a stream (stderr), redrawn at most 10 times a second."""

    def __init__(self, total: int, enabled: bool, label: str = "encode", stream=None):
        self.total, self.enabled, self.label = total, enabled, label
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, done: int, force: bool = False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        rate = done / max(now - self.t0, 1e-9)
        self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% "
                          f"{done}/{self.total} rows {rate:,.0f} rows/s")
        self.stream.flush()

    def finish(self, done: int):
        if self.enabled:
            self.update(done, force=True)
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------
def _add_codec_flags(p):
    g = p.add_argument_group("codec (default: Clark Hash with the crate's defaults; with --append: "
                             "the file's)")
    g.add_argument("--codec", metavar="SPEC",
                   help="codec spec NAME[:DIM[:KEY=VALUE,...]], e.g. e8 (recommended, 48 B at "
                        "d=384), e8:384, sign-bits:384:rotation=hadamard, hyperplane-lsh, "
                        "clark-hash; the dimension defaults to the input's")
    g.add_argument("--config", metavar="FILE",
                   help="take the codec config from a sketch file (e.g. one written by "
                        "`clark-hash train`)")


def _add_config_flags(p):
    _add_codec_flags(p)
    g = p.add_argument_group("Clark Hash config flags (the crate's defaults)")
    g.add_argument("--sketch-dim", type=int, help="sketch coordinates m (default 96)")
    g.add_argument("--bits", type=int, help="bits per coordinate, 1..8 (default 4)")
    g.add_argument("--hashes-per-input", type=int, help="buckets per input dim (default 4)")
    g.add_argument("--clip", type=float, help="clip range (default 3.0)")
    g.add_argument("--seed", type=_int_auto, help="u64 seed, decimal or 0x hex "
                   "(default 0x5EEDCAFE12345678)")
    g.add_argument("--metric", choices=("cosine", "dot"), help="default cosine")
    g.add_argument("--norm-log2-min", type=float, help="dot metric norm range (default -16)")
    g.add_argument("--norm-log2-max", type=float, help="dot metric norm range (default 16)")


def _add_encode(p):
    p.add_argument("input", help=".npy (2-D float32/float64) or raw little-endian float32 (--raw)")
    p.add_argument("output", help="sketch file to write (.chs)")
    p.add_argument("--raw", action="store_true", help="INPUT is raw little-endian float32")
    p.add_argument("--dim", type=int, help="floats per vector (required with --raw)")
    _add_config_flags(p)
    p.add_argument("--ids", metavar="FILE", help="one id per line (ints if all are ints)")
    p.add_argument("--append", action="store_true", help="add to OUTPUT (same config)")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUTPUT")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="leave out NaN/inf/zero rows (and report them) instead of failing")
    p.add_argument("--backend", choices=("numpy", "python"), help="default: numpy if importable")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                   help=f"vectors encoded per step (default {DEFAULT_CHUNK_ROWS})")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="show the progress bar even when stderr is not a terminal")
    prog.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(progress=None)


def _codec_config(args, input_dim, existing=None):
    """The config that ``encode`` writes: from --config, --codec or the Clark Hash flags.

    With ``existing`` (``--append``) the file's config is the default, and
    options that name another config are refused.
    """
    flags = {name: getattr(args, name) for name in _CONFIG_FLAGS if getattr(args, name) is not None}
    if args.config is not None:
        if args.codec is not None or flags:
            raise InvalidInputError("--config takes the whole codec config from a file: "
                                    "don't combine it with --codec or config flags")
        config = sketch_file.load(args.config).config
    elif args.codec is not None:
        spec = args.codec if ":" in args.codec else f"{args.codec}:{input_dim}"
        config = registry.config_from_spec(spec)
        if flags and not isinstance(config, ClarkHashConfig):
            raise InvalidInputError(
                f"--{next(iter(flags)).replace('_', '-')} is a Clark Hash flag; {args.codec} "
                "takes its options in the spec (NAME:DIM:KEY=VALUE,...)")
        if flags:
            config = ClarkHashConfig(**{**config.to_dict(), **flags})
    elif existing is not None and not flags:
        config = existing
    elif existing is not None:
        if not isinstance(existing, ClarkHashConfig):
            raise ConfigMismatchError(
                f"the file holds {registry.kind_of(existing).title} codes: Clark Hash flags "
                "don't apply")
        config = ClarkHashConfig(**{**existing.to_dict(), **flags})
    else:
        config = ClarkHashConfig(input_dim=input_dim, **flags)
    if config.input_dim != input_dim:
        raise DimensionError(f"the codec takes {config.input_dim}-dimensional vectors, "
                             f"the input has {input_dim}")
    return config


def _run_encode(args) -> int:
    if args.chunk_rows <= 0:
        raise InvalidInputError(f"--chunk-rows must be positive, got {args.chunk_rows}")
    existing = None
    if os.path.exists(args.output):
        if args.append:
            existing = sketch_file.load(args.output)
        elif not args.force:
            raise InvalidInputError(
                f"{args.output} exists: use --append to add to it or --force to overwrite it")
    dim = args.dim
    if args.raw and dim is None and existing is not None:
        dim = existing.config.input_dim
    source = VectorSource(args.input, raw=args.raw, dim=dim)
    config = _codec_config(args, source.dim, existing.config if existing else None)
    if existing is not None and existing.fingerprint != config.fingerprint:
        raise ConfigMismatchError(
            f"{args.output} holds codes of config {existing.fingerprint}, the options give "
            f"config {config.fingerprint} ({_config_diff(existing.config, config)})")
    ids = read_ids(args.ids, source.rows) if args.ids else None
    codec = registry.codec_from_config(config, args.backend)

    progress = Progress(source.rows, sys.stderr.isatty() if args.progress is None else args.progress)
    codes, norms, kept, skipped = bytearray(), bytearray(), [], {}
    errors = "skip" if args.skip_bad_rows else "raise"
    for start, chunk in source.chunks(args.chunk_rows):
        try:
            enc = codec.encode(chunk, errors=errors)
        except InvalidVectorError as exc:
            progress.finish(start)
            raise InvalidVectorError({start + r: why for r, why in exc.rows.items()}) from None
        codes += enc.codes_bytes()
        if config.metric == "dot":
            norms += enc.norm_codes_bytes()
        kept.extend(start + r for r in enc.rows)
        skipped.update({start + r: why for r, why in enc.skipped.items()})
        progress.update(start + len(enc.rows) + len(enc.skipped))
    progress.finish(source.rows)
    if ids is not None and skipped:
        ids = [ids[r] for r in kept]
    norm_arg = bytes(norms) if config.metric == "dot" else None
    if existing is not None:
        data = sketch_file.append(args.output, config, codes, norm_arg, ids)
        total = data.count
    else:
        sketch_file.save(args.output, config, codes, norm_arg, ids)
        total = len(kept)
    for r, why in list(skipped.items())[:10]:
        print(f"skipped row {r}: {why}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"... and {len(skipped) - 10} more skipped rows", file=sys.stderr)
    verb = "appended" if existing is not None else "wrote"
    print(f"{verb} {len(kept)} sketches ({len(skipped)} rows skipped) to {args.output}: "
          f"{total} in file, config {config.fingerprint}, "
          f"{os.path.getsize(args.output)} bytes, backend {codec.backend}")
    return EXIT_OK


def _config_diff(a, b) -> str:
    if type(a) is not type(b):
        return f"{registry.kind_of(a).title} vs {registry.kind_of(b).title}"
    da, db = a.to_dict(), b.to_dict()
    diff = [f"{k} {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k]]
    return "; ".join(diff) or "same fields"


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------
def _add_info(p):
    p.add_argument("file", help="sketch file (.chs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def file_info(path) -> dict:
    """What ``clark-hash info`` reports, as a JSON-ready dict."""
    data = sketch_file.load(path)
    cfg = data.config
    with open(path, "rb") as f:
        version = struct.unpack("<H", f.read(10)[8:10])[0]
    about = registry.describe(cfg)
    return {
        "file": os.fspath(path),
        "file_bytes": os.path.getsize(path),
        "format_version": version,
        "codec": about["title"],
        "codec_kind": about["kind"],
        "spec": about["spec"],
        "fingerprint": data.fingerprint,
        "config": _config_fields(cfg),
        "count": data.count,
        "code_bytes": cfg.code_bytes,
        "bytes_per_vector": cfg.storage_bytes_per_vector,
        "id_kind": sketch_file.ID_KIND_NAMES[data.id_kind],
        "compression_ratio_vs_f32": cfg.compression_ratio_vs_f32,
    }


def _config_fields(cfg) -> dict:
    """The config's fields for display; trained parameters are summarized, not dumped."""
    fields = cfg.to_dict()
    return {k: (f"<{len(v)} bytes>" if isinstance(v, (bytes, bytearray)) else v)
            for k, v in fields.items()}


def _run_info(args) -> int:
    info = file_info(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    rows = [("file", f"{info['file']} ({info['file_bytes']} bytes, "
                     f"format v{info['format_version']})"),
            ("codec", info["codec"] + (f" ({info['spec']})" if info["spec"] else "")),
            ("fingerprint", info["fingerprint"])]
    rows += [("  " + k, f"0x{v:016X}" if k == "seed" else v)
             for k, v in info["config"].items()]
    rows += [("count", info["count"]), ("code bytes", info["code_bytes"]),
             ("bytes per vector", info["bytes_per_vector"])]
    rows.append(("compression", f"{info['compression_ratio_vs_f32']:.2f}x vs float32"))
    rows.append(("ids", info["id_kind"]))
    for label, value in rows:
        print(f"{label:<20}{value}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------
SCORES_HELP = """\
scores: descending, ties in insertion order. Clark Hash scores estimate the
cosine from 4-bit sketches: they can pass 1 and a vector's score against its
own code is below 1 (about 0.8 with the default profile); only their order is
meaningful. E8 and sign-bit scores are the float query against the stored
code, not a cosine either. --bounded clamps scores to [-1, 1] (same ranking);
with --vectors the results are rescored exactly (cosine of the stored
vectors)."""


def _add_search(p):
    p.description = "top-k search of query vectors in a sketch file\n\n" + SCORES_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("file", help="sketch file (.chs), any codec")
    p.add_argument("queries", help=".npy (1-D or 2-D) or raw little-endian float32 (--raw)")
    p.add_argument("-k", type=int, default=10, help="results per query, >= 1 (default 10)")
    p.add_argument("--raw", action="store_true", help="QUERIES is raw float32 (dim from the file)")
    p.add_argument("--backend", choices=("numpy", "python"), help="default: numpy if importable")
    p.add_argument("--vectors", metavar="FILE",
                   help="vector file saved with the sketch file: rescore candidates exactly")
    p.add_argument("--rescore", type=int, metavar="N",
                   help="candidates rescored from --vectors (default 10 x k)")
    p.add_argument("--bounded", action="store_true",
                   help="clamp scores to [-1, 1] (the ranking does not change)")
    p.add_argument("--json", action="store_true", help="print one JSON array")


def f32_str(x: float) -> str:
    """Shortest decimal text that reads back as the same float32."""
    if not math.isfinite(x):
        return repr(x)
    want = struct.pack("<f", x)
    for digits in range(1, 10):
        text = f"{x:.{digits}g}"
        if struct.pack("<f", float(text)) == want:
            return text
    return repr(x)


def _run_search(args) -> int:
    if args.k < 1:
        raise InvalidInputError(f"-k must be at least 1, got {args.k}")
    if args.rescore is not None and args.vectors is None:
        raise InvalidInputError("--rescore needs --vectors (the vectors to rescore from)")
    index = load_index(args.file, args.backend, vectors=args.vectors)
    options = {} if args.rescore is None else {"rescore": args.rescore}
    dim = index.config.input_dim
    source = VectorSource(args.queries, raw=args.raw, dim=dim, allow_1d=True)
    rows = source.all_rows()
    if isinstance(rows, bytes):
        rows = [rows[i * 4 * dim:(i + 1) * 4 * dim] for i in range(source.rows)]
    results = []
    for qi, q in enumerate(rows):
        try:
            ids, scores = index.search(q, args.k, **options)
        except InvalidVectorError as exc:
            raise InvalidInputError(f"{args.queries}: query row {qi}: "
                                    f"{'; '.join(exc.rows.values())}") from None
        scores = [float(s) for s in scores]
        if args.bounded:
            scores = [min(1.0, max(-1.0, s)) for s in scores]
        results.append({"query": qi, "ids": list(ids), "scores": scores})
    if args.json:
        print(json.dumps(results))
        return EXIT_OK
    for r in results:
        print(f"query {r['query']}")
        for rank, (i, s) in enumerate(zip(r["ids"], r["scores"]), 1):
            print(f"  {rank:>4}  {f32_str(s):>12}  {i}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------
def _add_train(p):
    p.add_argument("input", help=".npy (2-D) sample of your own embeddings to train on")
    p.add_argument("output", help="sketch file to write: the trained config, no rows yet "
                                  "(use it with `encode --config`)")
    p.add_argument("--codec", default="itq", help="trained codec: itq (default) or learned-e8")
    p.add_argument("--options", metavar="KEY=VALUE,...", default="",
                   help="training options, e.g. n_bits=256,iterations=50 for itq, "
                        "query_weight=0.25,max_stages=2,code_bytes=48 for learned-e8 (format 2, principal axes + "
                        "E8 stages), head=rotation,group=16 for its format-1 block rotation")
    p.add_argument("--seed", type=_int_auto, default=0, help="training seed (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUTPUT")


def _run_train(args) -> int:
    entry = registry.codec_kind_named(args.codec)
    if entry.trainer is None:
        trained = ", ".join(e.name for e in registry.registered().values() if e.trainer)
        raise InvalidInputError(f"{args.codec} is not trained (trained codecs: {trained})")
    if os.path.exists(args.output) and not args.force:
        raise InvalidInputError(f"{args.output} exists: use --force to overwrite it")
    options = {}
    for item in filter(None, (s.strip() for s in args.options.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInputError(f"--options: {item!r} is not KEY=VALUE")
        options[key.strip()] = registry.parse_value(value.strip())
    source = VectorSource(args.input, use_numpy=True)
    if source.rows == 0:
        raise InvalidInputError(f"{args.input}: no rows to train on")
    sample = source.all_rows()
    t0 = time.monotonic()
    try:
        config = entry.trainer(sample, seed=args.seed, **options)
    except TypeError as exc:
        raise InvalidInputError(f"--options for {args.codec}: {exc}") from None
    sketch_file.save(args.output, config, b"")
    print(f"trained {entry.title} on {source.rows} x {source.dim} in "
          f"{time.monotonic() - t0:.1f} s: config {config.fingerprint}, "
          f"{len(config.to_bytes())} config bytes, {config.code_bytes} bytes per vector, "
          f"written to {args.output}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------
def _elsewhere(module: str, add_name: str, run_name: str):
    """``(add, run)`` for a subcommand defined in another module, imported when used,
    so that a failing import only disables that subcommand."""
    import importlib

    def load():
        return importlib.import_module(module, __package__)

    def add(p):
        try:
            getattr(load(), add_name)(p)
        except ImportError as exc:
            p.set_defaults(unavailable=f"{p.prog} is unavailable: {exc}")

    def run(args):
        return getattr(load(), run_name)(args)

    return add, run


COMMANDS = {
    # name: (help, add_arguments(parser), run(args) -> exit status)
    "encode": ("encode vectors into a sketch file", _add_encode, _run_encode),
    "info": ("describe a sketch file", _add_info, _run_info),
    "search": ("top-k search of query vectors in a sketch file", _add_search, _run_search),
    "train": ("train a codec (itq) on a sample of vectors; writes its config", _add_train,
              _run_train),
    "serve": ("serve the demo site and the sync API",
              *_elsewhere(".sync.server", "add_serve_arguments", "run_serve")),
    "push": ("push every row of a sketch file to a sync server",
             *_elsewhere(".sync.client", "add_push_arguments", "run_push")),
    "pull": ("pull a sync collection into a sketch file",
             *_elsewhere(".sync.client", "add_pull_arguments", "run_pull")),
    "user": ("manage sync users and their tokens (admin token)",
             *_elsewhere(".sync.client", "add_user_arguments", "run_user")),
}


#: other names of a subcommand (``train-itq``: ``train`` trains ITQ unless --codec says otherwise)
ALIASES = {"train": ["train-itq"]}


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``clark-hash`` with one subparser per :data:`COMMANDS` entry."""
    parser = argparse.ArgumentParser(
        prog="clark-hash",
        description="Compact sketches of embeddings: encode, train, info, search, serve, sync.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           aliases=ALIASES.get(name, []))
        p.set_defaults(run=run, unavailable=None)
        add(p)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``clark-hash`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.unavailable:
        print(f"clark-hash: error: {args.unavailable}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `clark-hash info --json f.chs | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except (ClarkHashError, OSError) as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            msg = f"{exc.filename}: {exc.strerror or exc}"
        else:
            msg = str(exc)
        print(f"clark-hash: error: {msg}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("clark-hash: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
