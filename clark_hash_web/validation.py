"""Turning user input into float32 rows, with errors that say what and where.

Accepted inputs: numpy arrays and anything ``numpy.asarray`` understands
(when numpy is present), nested lists/tuples of numbers, ``array('f')``, and
bytes-like objects holding little-endian float32 values (their length must be
a multiple of ``4 * input_dim``).
"""

from __future__ import annotations

import math
import struct
import sys
from array import array

from .errors import DimensionError, InvalidInputError

REASON_NONFINITE = "contains NaN or inf"
REASON_ZERO = "vector norm must be positive (norm <= float32 epsilon)"
REASON_OVERFLOW = "squared norm overflows float32 (entries too large to encode)"
EPSILON = 2.0**-23


def _bytes_rows(data, input_dim):
    mv = memoryview(data).cast("B")
    row_bytes = 4 * input_dim
    if len(mv) % row_bytes:
        raise DimensionError(
            f"raw float32 input has {len(mv)} bytes, not a multiple of "
            f"4 * input_dim = {row_bytes}")
    flat = array("f")
    flat.frombytes(mv.tobytes())
    if sys.byteorder != "little":
        flat.byteswap()
    return flat


def as_numpy_rows(vectors, input_dim):
    """Float32 (n, d) numpy array and whether the input was a single vector."""
    import numpy as np

    if isinstance(vectors, (bytes, bytearray, memoryview)):
        flat = np.frombuffer(_bytes_rows(vectors, input_dim), dtype=np.float32)
        return flat.reshape(-1, input_dim), False
    try:
        arr = np.asarray(vectors)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"vectors cannot be read as a numeric array: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(
            f"vectors must have a real numeric dtype convertible to float32, got {arr.dtype}")
    single = arr.ndim == 1
    if arr.ndim not in (1, 2):
        raise InvalidInputError(f"vectors must be 1-D or 2-D, got {arr.ndim}-D shape {arr.shape}")
    if single:
        arr = arr.reshape(1, -1)
    if arr.shape[1] != input_dim:
        raise DimensionError(
            f"vectors have dimension {arr.shape[1]}, the config expects input_dim={input_dim}")
    with np.errstate(all="ignore"):
        out = arr.astype(np.float32, copy=False)
    return out, single


def as_python_rows(vectors, input_dim):
    """List of ``array('f')`` rows and whether the input was a single vector."""
    if isinstance(vectors, (bytes, bytearray, memoryview)):
        flat = _bytes_rows(vectors, input_dim)
        return [flat[i:i + input_dim] for i in range(0, len(flat), input_dim)], False
    if hasattr(vectors, "tolist") and not isinstance(vectors, array):
        vectors = vectors.tolist()
    if isinstance(vectors, array):
        vectors = list(vectors)
    if not isinstance(vectors, (list, tuple)):
        raise InvalidInputError(
            f"vectors must be a sequence of numbers or of rows, got {type(vectors).__name__}")
    single = len(vectors) > 0 and not isinstance(vectors[0], (list, tuple, array))
    rows = [vectors] if single else list(vectors)
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, (list, tuple, array)):
            for v in row:
                if isinstance(v, (list, tuple, array)):
                    raise InvalidInputError("vectors must be 1-D or 2-D, got deeper nesting")
        else:
            raise InvalidInputError(f"row {i} is not a sequence of numbers")
        if len(row) != input_dim:
            raise DimensionError(
                f"row {i} has dimension {len(row)}, the config expects input_dim={input_dim}")
        try:
            vals = [float(v) for v in row]
        except (TypeError, ValueError):
            raise InvalidInputError(f"row {i} holds a value that is not a real number") from None
        out.append(array("f", vals))  # C conversion: overflow becomes +-inf
    return out, single


def nonfinite_rows_python(rows) -> list:
    """Indices of rows holding NaN or +-inf."""
    return [i for i, r in enumerate(rows) if any(v != v or v in (math.inf, -math.inf) for v in r)]


def f32_hex(x: float) -> str:
    """8 hex digits of a float32 bit pattern (for messages and tests)."""
    return struct.pack(">f", x).hex()
