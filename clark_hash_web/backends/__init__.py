"""Interchangeable implementations of the Clark Hash arithmetic.

``numpy_backend`` is vectorized numpy; ``python_backend`` is pure Python (no
numpy at all) and doubles as the executable specification the tests hold the
numpy path against. Both produce the same bytes and the same float32 scores.

Only elementwise float32 operations, ``cumsum`` (a sequential sum), ``trunc``,
``clip`` and gathers are used where bytes or scores must match: BLAS (``@``,
``dot``, ``einsum``) and ``np.sum`` sum in machine-dependent orders.
"""

from __future__ import annotations

from typing import Literal

BackendName = Literal["numpy", "python"]


def numpy_available() -> bool:
    """True when numpy can be imported."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def available_backends() -> list:
    """Names of the backends usable in this interpreter."""
    return (["numpy"] if numpy_available() else []) + ["python"]


def resolve_backend(name) -> str:
    """Turn ``None`` / ``"numpy"`` / ``"python"`` into an available backend name.

    ``None`` picks ``"numpy"`` when numpy is importable and ``"python"``
    otherwise; the environment variable ``CLARK_HASH_BACKEND`` can force one.
    """
    import os

    from ..errors import ConfigError

    if name is None:
        name = os.environ.get("CLARK_HASH_BACKEND") or ("numpy" if numpy_available() else "python")
    if name not in ("numpy", "python"):
        raise ConfigError(f"backend must be 'numpy', 'python' or None, got {name!r}")
    if name == "numpy" and not numpy_available():
        raise ConfigError("backend 'numpy' requested but numpy cannot be imported")
    return name


def make_backend(config, name):
    """Instantiate the backend ``name`` for ``config``."""
    if name == "numpy":
        from .numpy_backend import NumpyBackend

        return NumpyBackend(config)
    from .python_backend import PythonBackend

    return PythonBackend(config)
