"""Shared builders for the binary-codec tests (hyperplane LSH, sign bits, ITQ)."""

from __future__ import annotations

import functools

import numpy as np

from clark_hash_web.codecs.hyperplane_lsh import HyperplaneLSH, HyperplaneLSHConfig
from clark_hash_web.codecs.itq import ITQ, train_itq
from clark_hash_web.codecs.sign_bits import SignBits, SignBitsConfig


def clustered(n, d, clusters=20, spread=0.35, seed=0):
    """Unit-norm float32 vectors around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def make_codec(name, d, n_bits, backend, seed=7):
    """A codec of each kind with the given sizes (ITQ trained on clustered data)."""
    if name == "lsh":
        return HyperplaneLSH(HyperplaneLSHConfig(input_dim=d, n_bits=n_bits, seed=seed), backend)
    if name == "sign":
        return SignBits(SignBitsConfig(input_dim=d, n_bits=min(n_bits, d)), backend)
    if name == "sign_hadamard":
        return SignBits(SignBitsConfig(input_dim=d, n_bits=n_bits, rotation="hadamard",
                                       seed=seed), backend)
    if name == "itq":
        return ITQ(_itq_config(d, min(n_bits, d), seed), backend)
    raise ValueError(name)


@functools.lru_cache(maxsize=None)
def _itq_config(d, n_bits, seed):
    return train_itq(clustered(400, d, seed=seed), n_bits, iterations=10)


CODECS = ["lsh", "sign", "sign_hadamard", "itq"]
