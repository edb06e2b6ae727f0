"""The package's binary codecs (sign bits, hyperplane LSH, ITQ) as benchmark methods.

``quality.py`` and ``throughput_compare.py`` import this module; it wraps
``clark_hash_web.codecs.sign_bits``, ``hyperplane_lsh`` and ``itq`` (their real
encode / sketch_query / score / BinaryIndex.search paths, numpy backend) in
the harness interface of :class:`quality.Method`. Importing it raises
ImportError when those modules are absent, and the harness then says so.
"""

from __future__ import annotations

import numpy as np

from clark_hash_web.index.binary import BinaryIndex
from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
from clark_hash_web.codecs.itq import ITQ, train_itq
from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig

import quality

try:
    from clark_hash_web.codecs.e8 import E8Codes, E8Config
except ImportError:  # older checkouts without the E8 codec
    E8Codes = None
try:
    from clark_hash_web.codecs.learned_e8 import LearnedE8, train_learned_e8
    from clark_hash_web.codecs.learned_e8_stages import train_staged_e8
except ImportError:  # checkouts without the learned E8 head
    LearnedE8 = None

NO_HAMMING = ("e8", "learned e8", "learned e8 rotation")


class PackageBinaryMethod(quality.Method):
    """One package binary codec with one scoring (``"asymmetric"`` or ``"hamming"``)."""

    family = "package"

    def __init__(self, name, make_codec, n_bits, scoring="asymmetric", learned=False):
        self.name = f"{name} {n_bits} bits, {'float query' if scoring == 'asymmetric' else 'hamming'}"
        if name == "e8":
            self.name = f"e8 lattice {n_bits // 8} blocks, float query"
        if name == "learned e8":
            self.name = f"learned e8 {n_bits // 8} bytes (principal axes + E8 stages, default), float query"
        if name == "learned e8 rotation":
            self.name = f"learned e8 {n_bits // 8} blocks (rotation g=16, format 1), float query"
        self.make_codec = make_codec
        self.scoring = scoring
        self.learned = learned
        self.bytes_per_vector = -(-n_bits // 8)
        self.codec = None
        if learned:
            self.note = ("trained on the corpus itself (learned E8 head, numpy)"
                         if name.startswith("learned e8") else
                         "trained on the corpus itself (ITQ head, numpy)")

    def fit(self, train):
        self.codec = self.make_codec(train)

    def encode(self, x):
        if self.codec is None:
            self.fit(x)
        return self.codec.encode(x)

    def scores(self, state, q):
        return np.asarray(self.codec.score(self.codec.sketch_query(q), state, scoring=self.scoring))

    def pair_scores(self, a, b):
        enc = self.encode(b)
        return np.array([self.codec.score(self.codec.sketch_query(a[i]), enc, rows=[i],
                                          scoring=self.scoring)[0]
                         for i in range(len(a))], dtype=np.float64)


def _codecs(d, itq_sample_rows=20_000):
    """(label, factory(train) -> codec, n_bits, learned) for the profiles benchmarked."""
    h = 1 << (d - 1).bit_length()
    out = [("sign_bits", lambda t: SignBits(SignBitsConfig(d, d, rotation="none"), "numpy"), d, False),
           ("sign_bits hadamard", lambda t: SignBits(SignBitsConfig(d, d, rotation="hadamard"), "numpy"),
            d, False),
           ("hyperplane_lsh", lambda t: HyperplaneLSH(HyperplaneLSHConfig(d, d), "numpy"), d, False),
           ("hyperplane_lsh", lambda t: HyperplaneLSH(HyperplaneLSHConfig(d, 2 * d), "numpy"), 2 * d, False),
           ("itq", lambda t: ITQ(train_itq(t[:itq_sample_rows], d), "numpy"), d, True),
           ("itq", lambda t: ITQ(train_itq(t[:itq_sample_rows], d // 2), "numpy"), d // 2, True)]
    if E8Codes is not None:
        out.insert(0, ("e8", lambda t: E8Codes(E8Config(d), "numpy"), 8 * (-(-d // 8)), False))
    if LearnedE8 is not None:
        out.insert(1, ("learned e8", lambda t: LearnedE8(train_staged_e8(t, seed=0), "numpy"),
                       8 * (-(-d // 8)), True))
        out.insert(2, ("learned e8 rotation", lambda t: LearnedE8(train_learned_e8(t, seed=0), "numpy"),
                       8 * (-(-d // 8)), True))
    if h != d:
        out.append(("sign_bits hadamard", lambda t: SignBits(SignBitsConfig(d, h, rotation="hadamard"),
                                                             "numpy"), h, False))
    return out


def methods(d, train):
    """Every package binary codec, asymmetric and Hamming scored (Hamming only at d bits)."""
    ms = []
    for label, make, n_bits, learned in _codecs(d):
        ms.append(PackageBinaryMethod(label, make, n_bits, "asymmetric", learned))
        if n_bits == d and label not in NO_HAMMING:
            ms.append(PackageBinaryMethod(label, make, n_bits, "hamming", learned))
    return ms


def throughput(x, queries, scan_rate, best_time):
    """Encode rate and BinaryIndex.search top-10 scan rate of each codec."""
    d = x.shape[1]
    rows = []
    for label, make, n_bits, learned in _codecs(d):
        if n_bits != d:
            continue
        codec = make(x)
        t, enc = best_time(lambda: codec.encode(x))
        index = BinaryIndex(codec)
        index.add_encoded(enc)
        for scoring in ("asymmetric", "hamming")[:1 if label in NO_HAMMING else 2]:
            rows.append({"method": PackageBinaryMethod(label, make, n_bits, scoring).name,
                         "family": "package", "bytes_per_vector": codec.code_bytes,
                         "encode_vectors_per_s": len(x) / t,
                         "scan_codes_per_s": scan_rate(
                             lambda q: index.search(q, 10, scoring=scoring), queries, len(x))})
    return rows


def package_two_stage(corpus, queries, exact_top, workdir, multiplier=10):
    """recall@10 of the package's TwoStageIndex (real VectorFile on disk, float32 and int8 rows).

    Stage 1 is a FlatIndex (Clark Hash 96x4, the crate default) or a
    BinaryIndex (sign bits, asymmetric); N = 10 * multiplier candidates.
    """
    from pathlib import Path

    from clark_hash_web import ClarkHash, ClarkHashConfig, FlatIndex
    from clark_hash_web.index.two_stage import TwoStageIndex, VectorFile

    d = corpus.shape[1]
    stage1 = {"clark_hash 96x4 h4 (FlatIndex)":
              lambda: FlatIndex(ClarkHash(ClarkHashConfig(input_dim=d), "numpy")),
              f"sign_bits {d} bits, float query (BinaryIndex)":
              lambda: BinaryIndex(SignBits(SignBitsConfig(d, d), "numpy"))}
    if E8Codes is not None:
        stage1["e8 lattice, float query (BinaryIndex)"] = lambda: BinaryIndex(E8Codes(E8Config(d), "numpy"))
    if LearnedE8 is not None:
        stage1["learned e8 (trained on the corpus), float query (BinaryIndex)"] = \
            lambda: BinaryIndex(LearnedE8(train_staged_e8(corpus, seed=0), "numpy"))
    out = []
    for name, make in stage1.items():
        for kind in ("float32", "int8"):
            path = Path(workdir) / f"two_stage_{kind}.chv"
            if path.exists():
                path.unlink()
            ts = TwoStageIndex(make(), VectorFile(path, dim=d, kind=kind, backend="numpy"),
                               rescore_multiplier=multiplier)
            ts.add(corpus)
            rec = 0.0
            for qi, q in enumerate(queries):
                ids, _ = ts.search(q, 10)
                rec += len(set(ids) & set(exact_top[qi][:10].tolist())) / 10
            out.append({"stage1": name, "rescore_from": kind, "candidates": 10 * multiplier,
                        "recall@10": round(rec / len(queries), 4)})
            path.unlink()
    return out
