"""The sparse sign/bucket table of the Clark Hash projection.

Every (input dimension ``i``, repetition ``r``) pair is sent to one bucket
``bucket(i, r)`` in ``0..m`` with a sign of +1 or -1, both derived from a
SplitMix64 hash of ``seed ^ (i * GOLDEN) ^ (r * MIX)`` in wrapping u64
arithmetic (NUMERICS.md, "Bucket and sign"). The table depends only on
``(input_dim, sketch_dim, hashes_per_input, seed)``.
"""

from __future__ import annotations

MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
MIX_R = 0xD1B54A32D192ED03


def splitmix64(key: int) -> int:
    """SplitMix64 finaliser of a u64 key (wrapping arithmetic)."""
    z = (key + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def bucket_sign_table(input_dim: int, sketch_dim: int, hashes_per_input: int, seed: int):
    """Buckets and signs for every (i, r), in (i, r) order.

    Returns
    -------
    buckets : list[int]
        ``buckets[i * s + r]`` is the bucket of (i, r).
    negative : list[bool]
        ``negative[i * s + r]`` is True where the sign is -1.
    """
    buckets = []
    negative = []
    seed &= MASK64
    for i in range(input_dim):
        ki = seed ^ ((i * GOLDEN) & MASK64)
        for r in range(hashes_per_input):
            h = splitmix64(ki ^ ((r * MIX_R) & MASK64))
            buckets.append(h % sketch_dim)
            negative.append(bool(h >> 63))
    return buckets, negative


def bucket_schedule(buckets, sketch_dim: int):
    """Group the (i, r) contributions by bucket, keeping (i, r) order.

    The projection adds each bucket's contributions in (i, r) order, and the
    buckets are independent, so a vectorized implementation can add "the
    p-th contribution of every bucket" in one step. Buckets are ordered by
    descending number of contributions so that the buckets still active at
    step ``p`` are a prefix.

    Returns
    -------
    order : list[int]
        Bucket numbers, most contributions first (ties by bucket number).
    steps : list[list[int]]
        ``steps[p][j]`` is the flat (i * s + r) index of the p-th contribution
        of bucket ``order[j]``; ``len(steps[p])`` shrinks as buckets run out.
    """
    per_bucket = [[] for _ in range(sketch_dim)]
    for flat, b in enumerate(buckets):
        per_bucket[b].append(flat)
    order = sorted(range(sketch_dim), key=lambda b: (-len(per_bucket[b]), b))
    depth = len(per_bucket[order[0]]) if sketch_dim else 0
    steps = []
    for p in range(depth):
        row = [per_bucket[b][p] for b in order if len(per_bucket[b]) > p]
        steps.append(row)
    return order, steps
