"""ARCANE's data layout: which samples of a class are kept, in which order, in which block.

Everything here is a deterministic function of one class's own remaining data
(ids, features, optional deletion probabilities) and the seed, so a class laid
out again after a deletion is laid out exactly as a fresh fit without the
deleted samples would lay it out.

- :func:`id_keys`: a seeded pseudo-random key per id (a splitmix64 hash): the
  seeded order, and the tie-break of every ordering, without a generator whose
  draws would depend on how many samples there are.
- :func:`projection_features`: the fixed feature space of the selection: the
  flattened inputs times a seeded Gaussian matrix (``dim`` columns). Computed
  row by row (``einsum``, no BLAS blocking), so a sample's features do not depend
  on which other samples are present.
- :func:`k_center_greedy` (the selection, **a choice**): start from the sample
  with the smallest key; repeatedly add the sample farthest from the chosen
  set. Greedy k-center covers the class's feature space with few samples; its
  picks for ``k - 1`` are a prefix of those for ``k``, and removing a sample it
  did not pick leaves its picks unchanged.
- :func:`layout`: select ``k = ceil(rho * n)`` samples, sort them (ascending
  deletion probability, so likely deletions come last; else by key) and cut
  them into ``blocks`` runs (:func:`block_of_rank`); the unselected rest is a
  reserve block, stored but never trained on.
"""

from __future__ import annotations

import math

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def id_keys(ids: np.ndarray, *, seed: int) -> np.ndarray:
    """A pseudo-random uint64 per id, from the seed (splitmix64)."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.int64).astype(np.uint64) + np.uint64(seed) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def projection_features(X: np.ndarray, *, seed: int, dim: int = 32) -> np.ndarray:
    """Flattened inputs projected on ``dim`` seeded Gaussian directions (float64)."""
    flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    rng = np.random.default_rng([seed, 0xA2CA9E])
    directions = rng.standard_normal((flat.shape[1], dim)) / math.sqrt(flat.shape[1])
    return np.einsum("nd,dk->nk", flat, directions, optimize=False)


def k_center_greedy(features: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` rows chosen by greedy k-center, in the order they were picked.

    Rows must come in a fixed order (the caller sorts them by id): ties go to the
    first row.
    """
    n = len(features)
    if k >= n:
        return np.arange(n)
    first = int(np.argmin(keys))
    chosen = [first]
    nearest = ((features - features[first]) ** 2).sum(axis=1)
    for _ in range(k - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        np.minimum(nearest, ((features - features[pick]) ** 2).sum(axis=1), out=nearest)
    return np.asarray(chosen)


def sort_key(ids: np.ndarray, priorities: np.ndarray | None, *, seed: int) -> np.ndarray:
    """The order of samples inside a class: ascending priority (deletion probability),
    ties (and everything, without priorities) by the seeded id key. Returns a
    permutation of the rows."""
    keys = id_keys(ids, seed=seed)
    if priorities is None:
        return np.argsort(keys, kind="stable")
    return np.lexsort((keys, np.asarray(priorities, dtype=np.float64)))


def block_of_rank(k: int, blocks: int) -> np.ndarray:
    """The block of each of ``k`` sorted samples: runs of ``ceil(k / blocks)`` samples,
    the last block taking what is left.

    Cut this way, removing a sample changes the earlier blocks only when
    ``ceil(k / blocks)`` drops (once in ``blocks`` removals, when ``k - 1`` is a
    multiple of ``blocks``); otherwise a removal from the last block (where sorting
    puts likely deletions) changes that block alone.

    >>> block_of_rank(7, 3).tolist()
    [0, 0, 0, 1, 1, 1, 2]
    """
    size = max(1, -(-k // blocks))
    return np.minimum(np.arange(k) // size, blocks - 1).astype(np.int64)


def layout(
    ids: np.ndarray,
    X: np.ndarray,
    priorities: np.ndarray | None,
    *,
    rho: float,
    blocks: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(order, block)`` of one class: ``order`` permutes the rows into store order,
    ``block[i]`` is the 0-based block of row ``order[i]`` (``blocks`` = the reserve).

    ``ids`` must be sorted.
    """
    n = len(ids)
    k = n if rho >= 1 else min(n, math.ceil(rho * n))
    selected = np.zeros(n, dtype=bool)
    if k == n:
        selected[:] = True
    else:
        features = projection_features(X, seed=seed)
        selected[k_center_greedy(features, id_keys(ids, seed=seed), k)] = True
    order = sort_key(ids, priorities, seed=seed)
    chosen = order[selected[order]]
    rest = order[~selected[order]]
    block = np.concatenate([block_of_rank(len(chosen), blocks), np.full(len(rest), blocks)])
    return np.concatenate([chosen, rest]), block.astype(np.int64)


__all__ = [
    "block_of_rank",
    "id_keys",
    "k_center_greedy",
    "layout",
    "projection_features",
    "sort_key",
]
