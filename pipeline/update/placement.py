"""Place new tweets into existing manifolds and clusters without refitting (pure functions).

UMAP models are not saved, so a new point goes where its nearest existing tweets are: its
k nearest old neighbours in embedding space (cosine; the vectors are L2-normalised), and
the similarity-weighted mean of their coordinates on each manifold. Its cluster is the
rank-weighted vote of the same neighbours' clusters, as the cluster stage assigns noise.

Small updates search exactly. Large ones (12K new against 200K old is 6e11 multiply-adds,
43 s on 2 cores) search coarse cells instead (``pipeline.core.nearest.cell_search``; 2 s,
and on the 200K + 12K benchmark 99.4 % of the returned neighbours are as similar as the
exact k-th).
"""

from __future__ import annotations

import numpy as np

from pipeline.core.nearest import DEFAULT_PROBE, cell_centres, cell_search, n_cells, query_knn

#: neighbours per new point (the cluster stage's noise vote uses 15 too)
DEFAULT_NEIGHBORS = 15
#: new x old pairs up to which the exact search is cheap enough (1.2K x 20K: 1 s on 2 cores)
EXACT_CELLS = 25_000_000


def nearest_old(old: np.ndarray, new: np.ndarray, k: int = DEFAULT_NEIGHBORS, *,
                exact_cells: int = EXACT_CELLS, n_probe: int = DEFAULT_PROBE,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities) of each new row's ``k`` nearest old rows, nearest first.

    Exact when ``len(new) * len(old) <= exact_cells``, else a coarse-cell search that probes
    ``n_probe`` cells per new row (deterministic for a given ``seed``).
    """
    old = np.ascontiguousarray(old, dtype=np.float32)
    new = np.ascontiguousarray(new, dtype=np.float32)
    k = int(min(k, len(old)))
    if len(new) * len(old) <= exact_cells:
        return exact_nearest(old, new, k)
    centres = cell_centres(old, n_cells(len(old)), np.random.default_rng(seed))
    return cell_search(old, new, k, centres, n_probe)


def exact_nearest(old: np.ndarray, new: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (``pipeline.core.nearest``: blocked products, bounded memory at any size)."""
    return query_knn(old, new, k)


def neighbour_weights(sim: np.ndarray) -> np.ndarray:
    """Weights of each row's neighbours: 1 / cosine distance (an exact duplicate dominates), rows sum to 1."""
    w = 1.0 / np.maximum(1.0 - sim.astype(np.float64), 1e-6)
    return w / w.sum(axis=1, keepdims=True)


def place(coords: np.ndarray, idx: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """New coordinates: the weighted mean of the neighbours' ``coords`` (any number of columns)."""
    w = neighbour_weights(sim)
    return np.einsum("nk,nkd->nd", w, np.asarray(coords, dtype=np.float64)[idx]).astype(np.float32)


def vote(labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Each new row's cluster: the 1/(rank+1)-weighted vote of its neighbours' labels (ties: lowest label)."""
    labels = np.asarray(labels, dtype=np.int64)
    n_clusters = int(labels.max()) + 1
    weights = 1.0 / (np.arange(idx.shape[1]) + 1.0)
    votes = labels[idx]
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])
    score = np.zeros((len(idx), n_clusters))
    np.add.at(score, (rows, votes.ravel()), np.tile(weights, len(idx)))
    return score.argmax(axis=1).astype(labels.dtype)


def grown_clusters(before: np.ndarray, after: np.ndarray, growth: float, min_new: int) -> dict[int, dict]:
    """Clusters that gained at least ``min_new`` tweets and ``growth`` × their old size: {cluster: counts}."""
    before = np.asarray(before, dtype=np.int64)
    after = np.asarray(after, dtype=np.int64)
    grown = {}
    for c in range(len(after)):
        old = int(before[c]) if c < len(before) else 0
        added = int(after[c]) - old
        if added >= max(1, min_new) and added >= growth * old:
            grown[c] = {"before": old, "after": int(after[c]), "added": added}
    return grown
