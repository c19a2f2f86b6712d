"""SISA planning: the epoch schedule, the assignment of samples to shards and
slices, and the cost model in sample-passes (spec/sisa.md).

Pure functions of their arguments: no files, no training. The engine
(:mod:`unlearnkit.exact.sisa`) and the benchmark both use them, so the
benchmark's predicted cost is the engine's own arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from unlearnkit.errors import ConfigError


def step_epochs(epochs: int, slices: int) -> list[int]:
    """Epochs per step: ``2·e0/(R+1)`` rounded half up, at least 1 (spec/sisa.md).

    This keeps sample-passes equal to unsliced training (``e0·D``) up to the
    rounding; :func:`expected_sample_passes` reports the exact total.

    >>> step_epochs(11, 10), step_epochs(6, 5), step_epochs(3, 10)
    ([2, 2, 2, 2, 2, 2, 2, 2, 2, 2], [2, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    """
    if epochs < 1 or slices < 1:
        raise ConfigError(f"need epochs >= 1 and slices >= 1; got epochs={epochs}, slices={slices}")
    return [max(1, math.floor(2 * epochs / (slices + 1) + 0.5))] * slices


def shard_seed(seed: int, shard: int) -> int:
    """A 32-bit seed per shard, independent across shards (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(shard)]).generate_state(1)[0])


def _cut(sequence: np.ndarray, parts: int) -> list[np.ndarray]:
    """Contiguous parts whose sizes differ by at most one."""
    return np.array_split(sequence, parts)


def assign_uniform(n: int, *, shards: int, slices: int, seed: int) -> tuple[np.ndarray, ...]:
    """Shuffle positions ``0..n-1`` with ``seed``; cut into shards, each into slices.

    Returns ``(positions, shard, slice)``: positions in store order (shard-major,
    then slice, then the shuffled order) with the 0-based shard and slice of each.

    >>> pos, sh, sl = assign_uniform(7, shards=2, slices=2, seed=0)
    >>> sorted(pos.tolist()), np.bincount(sh).tolist(), sl.tolist()
    ([0, 1, 2, 3, 4, 5, 6], [4, 3], [0, 0, 1, 1, 0, 0, 1])
    """
    order = np.random.default_rng(seed).permutation(n)
    return _slice_shards(_cut(order, shards), slices)


def _slice_shards(members: list[np.ndarray], slices: int) -> tuple[np.ndarray, ...]:
    positions, shard_of, slice_of = [], [], []
    for s, shard in enumerate(members):
        for r, part in enumerate(_cut(shard, slices)):
            positions.append(part)
            shard_of.append(np.full(len(part), s))
            slice_of.append(np.full(len(part), r))
    return tuple(np.concatenate(a).astype(np.int64) for a in (positions, shard_of, slice_of))


def assign_distribution_aware(
    probabilities: np.ndarray, *, shards: int, slices: int, seed: int, capacity: float
) -> tuple[np.ndarray, ...]:
    """Sort by deletion probability; fill shards greedily so each expects ≤ ``capacity`` requests.

    A shard closes when adding the next sample would push its summed
    probability over ``capacity`` or its size over an even share of what is
    left, so likely-deleted samples end up in the first, smaller shards and the
    rest is spread evenly. Ties are broken by a seeded shuffle; inside a shard
    the order is shuffled again so slices are not sorted by probability.

    >>> p = np.array([0.9, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    >>> pos, sh, sl = assign_distribution_aware(p, shards=3, slices=1, seed=0, capacity=1.0)
    >>> np.bincount(sh).tolist(), sorted(pos[sh == 0].tolist())
    ([1, 4, 3], [0])
    """
    n = len(probabilities)
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(n)
    order = np.lexsort((tiebreak, -probabilities))
    members: list[np.ndarray] = []
    start = 0
    for s in range(shards):
        left = n - start
        if s == shards - 1:
            end = n
        else:
            cap = math.ceil(left / (shards - s))
            end, mass = start, 0.0
            while end < n and end - start < cap:
                p = probabilities[order[end]]
                if end > start and mass + p > capacity + 1e-9:  # 20 x 0.05 must fit 1.0
                    break
                mass += p
                end += 1
        members.append(rng.permutation(order[start:end]))
        start = end
    mass = [float(probabilities[m].sum()) for m in members]
    if mass[-1] > capacity + 1e-9 or any(len(m) < slices for m in members):
        need = math.ceil(float(probabilities.sum()) / capacity)
        raise ConfigError(
            f"distribution-aware sharding cannot keep every shard under capacity {capacity} "
            f"with {shards} shards of at least {slices} samples (the probabilities sum to "
            f"{probabilities.sum():.3g}, needing about {need} shards); raise shards or capacity"
        )
    return _slice_shards(members, slices)


def retrain_sample_passes(
    slice_sizes: Sequence[int], epochs: Sequence[int], first_step: int
) -> int:
    """Sample-passes to redo steps ``first_step..R`` (1-based) of one shard.

    Step ``i`` trains ``epochs[i-1]`` epochs on slices ``1..i``.

    >>> retrain_sample_passes([10, 10, 10], [2, 2, 2], first_step=2)  # 2*20 + 2*30
    100
    """
    cumulative = np.cumsum(slice_sizes)
    return int(sum(epochs[i] * cumulative[i] for i in range(first_step - 1, len(slice_sizes))))


def expected_sample_passes(
    *, n: int, shards: int, slices: int, epochs: Sequence[int], requests: int
) -> float:
    """Expected sample-passes to serve ``requests`` uniform deletions in one batch.

    Shards of ``n/shards`` samples, slices of equal size. A shard receives
    ``m ~ Binomial(requests, 1/shards)`` requests; it restarts at the minimum of
    their slices, ``P(min ≥ j) = ((R - j + 1)/R)^m`` (spec/sisa.md, "Cost model").
    With one request and ``epochs = step_epochs(e0, R)`` this is
    ``e0·D·(2/3 + 1/(3R))`` up to the epoch rounding.

    >>> d, r = 1000, 4
    >>> round(expected_sample_passes(n=d, shards=1, slices=r, epochs=[2] * r, requests=1))
    3750
    >>> round(5 * d * (2 / 3 + 1 / (3 * r)))  # e0 = 2·(R+1)/2 = 5
    3750
    """

    d = n / shards
    cost_from = [
        sum(epochs[i] * (i + 1) * d / slices for i in range(j, slices)) for j in range(slices)
    ]
    total = 0.0
    for m in range(1, requests + 1):
        p_m = math.comb(requests, m) * (1 / shards) ** m * (1 - 1 / shards) ** (requests - m)
        if p_m == 0:
            continue
        for j in range(slices):  # 0-based restart slice
            p_j = ((slices - j) / slices) ** m - ((slices - j - 1) / slices) ** m
            total += p_m * p_j * cost_from[j]
    return shards * total
