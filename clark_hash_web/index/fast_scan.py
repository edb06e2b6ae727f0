"""Fast approximate scan with proven error bounds (numpy only).

The exact crate score of a code is a sequential float32 sum over m
coordinates: m dependent steps per row. To scan millions of codes quickly,
:func:`approximate_scores` evaluates the same real-valued score with 16-bit
lookup tables (one table per pair of code bytes), and :func:`score_bounds`
gives, per row, a bound on ``|exact - approximate|``. Every row whose upper
bound is below the k-th largest lower bound provably cannot be in the exact
top k, so exact scoring of the few remaining candidates yields exactly the
crate's top k (ties included).

Why lookup tables work for any ``bits``: ``deq(level) = level * 2c/L - c`` is
affine in the level's bits, so a row's score is a constant plus a sum of
per-bit weights ``q[k] * 2c/L * 2**t``; a table over the 65,536 values of two
code bytes sums the weights of their 16 bits.

Error bound (u = 2**-24, S = sum |q_k| * c, P = number of byte pairs):
the exact accumulator differs from the real score by at most
``S * u * (1.01 m + 9)`` (dequantization, products and sequential sum), and
the table evaluation (byte tables rounded to float32, pair tables summed in
float32, then P + 1 float32 additions) by at most ``S * u * (3.03 (P + 1) + 5)``; we use
``S * u * (2 m + 4 P + 32)``. Division by m, the query norm and the decoded
norm add three roundings (relative ``4u`` with margin).
"""

from __future__ import annotations

U = 2.0**-24
CHUNK = 1 << 15


def score_mass(query_values, config) -> float:
    """``S = c * sum |q_k|``: bounds every real accumulator's magnitude."""
    return sum(abs(float(v)) for v in query_values) * float(config.clip)


def accumulator_error_bound(query_values, config) -> float:
    """Bound on |exact accumulator - approximate accumulator| (see module docstring)."""
    s = score_mass(query_values, config)
    pairs = (config.code_bytes + 1) // 2
    return s * U * (2 * config.sketch_dim + 4 * pairs + 32)


def level_step(config) -> float:
    """Weight of one level step, ``2c / L`` (bit t of a level weighs ``step * 2**t``)."""
    return 2.0 * float(config.clip) / config.levels


def const_term(query_values, config) -> float:
    """The score constant ``-c * sum(q)`` (every level's ``-c`` part)."""
    return -float(config.clip) * sum(float(v) for v in query_values)


def byte_tables(query_values, config) -> tuple:
    """Per-byte lookup tables in pure Python: (``code_bytes * 256`` float32 values, const).

    ``tables[j * 256 + v]`` is the summed weight of the set bits of value
    ``v`` in code byte ``j``; a row's approximate accumulator is
    ``const + sum_j tables[j * 256 + code[j]]`` (any summation order in
    float32 or float64 stays within :func:`accumulator_error_bound`).
    Used by the browser runtime's JavaScript scan.
    """
    from array import array

    b, m, cb = config.bits, config.sketch_dim, config.code_bytes
    step = level_step(config)
    weights = [0.0] * (cb * 8)
    for pos in range(m * b):
        weights[pos] = float(query_values[pos // b]) * step * float(1 << (pos % b))
    tables = array("f")
    for j in range(cb):
        w = weights[8 * j:8 * j + 8]
        row = [0.0] * 256
        for v in range(1, 256):
            low = v & -v
            row[v] = row[v ^ low] + w[low.bit_length() - 1]
        tables.extend(row)
    return tables, const_term(query_values, config)


def byte_weights(query_values, config):
    """Real per-byte weights (2P, 256) float64: entry ``[j, v]`` sums the weights of
    the set bits of value ``v`` in code byte ``j`` (zero rows pad an odd count).

    A row's real accumulator is ``const_term + sum_j weights[j, code[j]]``.
    """
    import numpy as np

    q = np.asarray(query_values, dtype=np.float64)
    b, m, cb = config.bits, config.sketch_dim, config.code_bytes
    pairs = (cb + 1) // 2
    step = level_step(config)
    weights = np.zeros(pairs * 16, dtype=np.float64)
    bitpos = np.arange(m * b)
    weights[: m * b] = q[bitpos // b] * step * (2.0 ** (bitpos % b))
    bitvals = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.float64)
    return weights.reshape(pairs * 2, 8) @ bitvals.T


def pair_tables(query_values, config) -> tuple:
    """16-bit lookup tables (P, 65536) float32 and the constant term."""
    import numpy as np

    byte_tables = byte_weights(query_values, config).astype(np.float32)   # (2P, 256)
    pairs = len(byte_tables) // 2
    tables = np.empty((pairs, 256, 256), dtype=np.float32)
    np.add(byte_tables[0::2, None, :], byte_tables[1::2, :, None], out=tables)
    return tables.reshape(pairs, 65536), np.float32(const_term(query_values, config))


def quick_bound(query_values, config):
    """Integer prefilter of a cosine query: a :class:`~.table_bound.TableBound`.

    Its tables are the real byte weights (:func:`byte_weights`), so its
    bound holds the accumulator less :func:`const_term`, and its error is
    ``accumulator_error_bound + 2**-22 S + 2 m 2**-149`` (``S`` of
    :func:`score_mass` bounds every ``|acc|``): the first term covers
    ``|exact acc - real acc|`` for normal numbers, ``m 2**-149`` the
    subnormal products and sums, and the rest makes "strictly below" hold
    for the rounded score ``acc / m`` too (two accumulators more than
    ``2**-23 S + m 2**-149`` apart stay strictly ordered after each is divided
    by ``m`` and rounded), so a pruned row cannot even tie the ``k``-th score.
    ``survivors(columns, k)`` of it holds every row of the exact top ``k``.
    Queries whose accumulators could overflow float32 get no bound
    (``pairs`` is None).
    """
    from .table_bound import TableBound

    s = score_mass(query_values, config)
    error = accumulator_error_bound(query_values, config) + s * 2.0**-22 \
        + 2 * config.sketch_dim * 2.0**-149 if s < 2.0**120 else float("inf")
    return TableBound(byte_weights(query_values, config)[:config.code_bytes], error=error)


def approximate_accumulators(planes, count, tables, const):
    """Approximate crate accumulators (before the division by m) of ``count`` rows.

    ``planes`` is (P, capacity) uint16: pair p of row i is ``planes[p, i]``.
    """
    import numpy as np

    out = np.empty(count, dtype=np.float32)
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        acc = np.full(stop - start, const, dtype=np.float32)
        for p in range(tables.shape[0]):
            acc += tables[p].take(planes[p, start:stop], mode="clip")   # indices < 65536
        out[start:stop] = acc
    return out


def candidate_rows(approx_acc, query_values, query_norm, config, k, decoded_norms=None):
    """Rows that may belong to the exact top ``k`` (ascending row order)."""
    import numpy as np

    n = len(approx_acc)
    if k >= n:
        return np.arange(n)
    err_acc = accumulator_error_bound(query_values, config)
    if decoded_norms is None:
        # Cosine: score = acc / m is monotone in acc, so select in accumulator
        # units with one bound for all rows (|acc| <= amax); a superset of
        # the per-row selection below, in float32 and without float64 copies.
        amax = max(float(approx_acc.max()), -float(approx_acc.min()))
        bound = 1.5 * (err_acc + amax * 4 * U + config.sketch_dim * 1e-45)
        kth = float(np.partition(approx_acc, n - k)[n - k])
        return np.flatnonzero(approx_acc >= np.float32(kth - 2 * bound - abs(kth) * U))
    # Dot: every row has its own scale (query norm x decoded norm).
    a = approx_acc.astype(np.float64)
    m = float(config.sketch_dim)
    scale = float(query_norm) * decoded_norms.astype(np.float64)
    approx = a / m * scale
    err = 1.5 * ((err_acc / m) * scale + np.abs(approx) * 4 * U + 1e-45)
    lower = approx - err
    tau = np.partition(lower, n - k)[n - k]
    return np.flatnonzero(approx + err >= tau)
