"""Near-duplicate search over 64-bit hashes without comparing all pairs.

Multi-index hashing (Norouzi et al., 2012): split each hash into ``m`` bands. If two hashes
differ in at most ``r`` bits, then by pigeonhole at least one band differs in at most
``floor(r / m)`` bits. So for every band we look up, in a sorted array of that band's values,
each item's value and its neighbours within ``floor(r / m)`` flipped bits, then verify the
candidates on the full hash. :func:`band_plan` picks ``m`` to minimise lookups plus expected
random candidates, so bands are about ``log2(n)`` bits wide where the radius allows; identical
hashes are collapsed first so a thousand copies of one file cost one lookup.

Cost: ``m * masks`` vectorised sorted-array lookups per item, plus ``n * m * masks * n / 2**w``
random candidates (``w`` = band width). The candidate term is quadratic with a tiny constant;
it stays below the lookup term while ``n <= 2**w`` (about 2 million items at radius 4).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HASH_BITS = 64


def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << b for b in combo) for combo in itertools.combinations(range(width), k)]
    return np.array(masks, dtype=np.uint64)


def band_plan(n: int, radius: int) -> tuple[int, int]:
    """``(bands, radius per band)`` minimising lookups plus expected random candidates."""
    best, plan = math.inf, (radius + 1, 0)
    for m in range(1, min(radius + 1, HASH_BITS) + 1):
        width, sub = HASH_BITS // m, radius // m
        masks = sum(math.comb(width, k) for k in range(sub + 1))
        cost = n * m * masks * (1 + n / 2.0**width)
        if cost < best:
            best, plan = cost, (m, sub)
    return plan


def _band_values(hashes: np.ndarray, m: int) -> list[tuple[np.ndarray, int]]:
    widths = [HASH_BITS // m] * m
    widths[-1] += HASH_BITS - sum(widths)
    out, shift = [], 0
    for w in widths:
        out.append(((hashes >> np.uint64(shift)) & np.uint64((1 << w) - 1), w))
        shift += w
    return out


def _lookup(sorted_vals: np.ndarray, order: np.ndarray, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(query, match)`` index pairs where ``probe[query] == values[match]``, vectorised."""
    left = np.searchsorted(sorted_vals, probe, "left")
    counts = np.searchsorted(sorted_vals, probe, "right") - left
    queries = np.repeat(np.arange(probe.size), counts)
    starts = np.repeat(left - (np.cumsum(counts) - counts), counts)
    return queries, order[np.arange(counts.sum()) + starts]


def hamming_pairs(hashes: np.ndarray, radius: int) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of distinct hashes within ``radius`` bits.

    Args:
        hashes: ``(n,)`` unsigned 64-bit hashes, assumed distinct (collapse duplicates first).
        radius: Maximum Hamming distance.

    Returns:
        ``(P, 2)`` int64 array of pairs.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = hashes.size
    if n < 2 or radius <= 0:
        return np.empty((0, 2), dtype=np.int64)
    m, sub = band_plan(n, radius)
    found = []
    for vals, width in _band_values(hashes, m):
        order = np.argsort(vals, kind="stable")
        sorted_vals = vals[order]
        for mask in _flip_masks(width, sub):
            q, c = _lookup(sorted_vals, order, vals ^ mask)
            keep = q < c
            q, c = q[keep], c[keep]
            # Verify right away so only true pairs are kept: candidates can far outnumber them.
            close = np.bitwise_count(hashes[q] ^ hashes[c]) <= radius
            found.append(q[close].astype(np.int64) * n + c[close])
    codes = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    return np.stack([codes // n, codes % n], axis=1)


def near_groups(hashes: Sequence[int], radius: int) -> np.ndarray:
    """Component label per item, linking items whose hashes are within ``radius`` bits.

    Identical hashes share a component. Items are in a group of their own when nothing is near.
    """
    arr = np.asarray([int(h) for h in hashes], dtype=np.uint64)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    unique, inverse = np.unique(arr, return_inverse=True)
    pairs = hamming_pairs(unique, radius)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(unique.size, unique.size))
    _, labels = connected_components(graph, directed=False)
    return labels[inverse]


def exact_groups(keys: Sequence[str]) -> np.ndarray:
    """Component label per item: items with equal keys share a label."""
    index: dict[str, int] = {}
    return np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
