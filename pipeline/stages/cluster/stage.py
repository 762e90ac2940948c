"""Cluster stage: HDBSCAN on the 10-D cluster manifold, shapes on the 2-D display map.

Writes ``clusters/cluster-NNN.parquet`` (``cluster``: every row in a cluster, noise given
to the cluster its nearest 10-D neighbours vote for; ``raw_cluster``: HDBSCAN's label,
−1 = noise), clusters numbered 0..k−1 by size (largest first); placeholder labels with
trimmed hulls and centroids (id ``lineage.default_labels_id(cluster-NNN)``, ``.parquet`` + ``.json``); and
``cluster-NNN-tree.npz`` (HDBSCAN's single-linkage tree + the 10-D kNN graph, never
published) so :func:`recluster` re-extracts clusters for a new ``min_cluster_size`` in a
fraction of a second without recomputing the minimum spanning tree.
"""

from __future__ import annotations

# Before fast_hdbscan imports numba: its compiled tree code loads from the shared cache.
# isort: off
import pipeline.core.numba_env  # noqa: F401
# isort: on

import math
import os
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
import param

from pipeline.core.config import StageConfig
from pipeline.core.errors import ConfigError
from pipeline.core.machine import available_cores
from pipeline.core.progress import Progress, null_progress
from pipeline.core.workspace import Dataset, WorkspaceError
from pipeline.stages.cluster.geometry import cluster_geometry
from pipeline.stages.lineage import DEFAULT_LABELS_SUFFIX, default_labels_id, resolve_manifolds
from pipeline.stages.umap.artifact import load_umap

__all__ = [
    "ClusterConfig", "run_cluster", "load_clusters", "recluster", "save_recluster",
    "cluster_geometry", "assign_noise", "order_by_size",
]

NOISE_NEIGHBORS = 15
NOISE_ROUNDS = 5
TREE_SUFFIX = "-tree.npz"
# Up to this many points the tree is labelled and cut with hdbscan's own code (nothing to load);
# above, with compiled numba code (ours and fast_hdbscan's): ~1 s to load, seconds saved at 200K.
SMALL_TREE_POINTS = 20_000
LABELS_SUFFIX = DEFAULT_LABELS_SUFFIX


class ClusterConfig(StageConfig):
    """HDBSCAN on the cluster manifold."""

    min_cluster_size = param.Integer(
        default=None, allow_None=True, bounds=(2, 100_000),
        doc="smallest group of tweets that counts as a cluster; none = auto, max(10, rows/400) "
            "(the studio slider re-extracts this live)")
    min_samples = param.Integer(
        default=10, bounds=(1, 1_000),
        doc="how conservative clustering is: larger = more points called noise (needs a full rerun)")
    cluster_selection_method = param.Selector(
        default="eom", objects=["eom", "leaf"],
        doc="'eom' = most persistent clusters (fewer, larger), 'leaf' = finest clusters")
    cluster_selection_epsilon = param.Number(
        default=0.0, bounds=(0.0, 100.0),
        doc="merge clusters closer than this distance on the cluster manifold (0 = off)")


# --------------------------------------------------------------------------- pure compute

def auto_min_cluster_size(n_rows: int) -> int:
    """A size that gives tens of clusters for a few thousand tweets and a few hundred at 200K."""
    return int(max(10, round(n_rows / 400)))


def effective_config(config: ClusterConfig, n_rows: int) -> ClusterConfig:
    """A copy of ``config`` with ``min_cluster_size`` resolved (what the sidecar records)."""
    values = config.to_dict()
    if values["min_cluster_size"] is None:
        values["min_cluster_size"] = auto_min_cluster_size(n_rows)
    return ClusterConfig(**values)


def hdbscan_tree(X: np.ndarray, config: ClusterConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``hdbscan.HDBSCAN``; returns (its labels, single-linkage tree) — the reference for :func:`mst_tree`."""
    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=config.min_cluster_size, min_samples=config.min_samples,
        cluster_selection_method=config.cluster_selection_method,
        cluster_selection_epsilon=float(config.cluster_selection_epsilon),
        core_dist_n_jobs=available_cores(),
    )
    model.fit(np.ascontiguousarray(X, dtype=np.float64))
    return np.asarray(model.labels_, dtype=np.int64), np.asarray(model._single_linkage_tree)


def manifold_neighbours(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each point's k nearest points, itself included (N×k, nearest first).

    One scipy ``cKDTree`` query on every core serves both HDBSCAN's core distances and the noise
    vote. hdbscan's own (sklearn, dual tree) holds the GIL, so it splits the points over loky
    worker processes, ~3 s just to start them; on one core it took 18.6 s at 212K, this 2.6 s.
    """
    from scipy.spatial import cKDTree

    X = np.ascontiguousarray(X, dtype=np.float64)
    k = int(min(k, len(X)))
    tree = cKDTree(X)
    # Asked in the tree's own point order, consecutive queries walk the same nodes: 2x faster
    # at 212K (5.0 -> 2.6 s) than in row order, and each point's answer is the same.
    order = tree.indices
    found_dist, found_idx = tree.query(X[order], k=k, workers=available_cores())
    dist, idx = np.empty((len(X), k)), np.empty((len(X), k), dtype=np.intp)
    dist[order], idx[order] = found_dist.reshape(len(X), k), found_idx.reshape(len(X), k)
    return dist, idx


def _euclidean(X: np.ndarray, others: np.ndarray) -> np.ndarray:
    """|X[i] − X[others[i]]| per row, summed dimension by dimension as sklearn's KDTree does (same bits)."""
    total = np.zeros(len(X))
    for j in range(X.shape[1]):
        diff = X[others, j] - X[:, j]
        total += diff * diff
    return np.sqrt(total)


class _KnownNeighbours:
    """Stands in for the sklearn KDTree hdbscan asks for core distances: answers from a kNN made once.

    hdbscan reads ``.data`` and calls ``.query(data, k=min_samples + 1, ...)`` once, keeping the
    indices and only the k-th distance; that distance is recomputed in sklearn's summation order
    so the tree is bit for bit the one ``hdbscan.HDBSCAN`` builds.
    """

    def __init__(self, X: np.ndarray, dist: np.ndarray, idx: np.ndarray):
        self.data, self._dist, self._idx = X, dist, idx

    def query(self, points, k, **_):
        if len(points) != len(self.data) or k > self._idx.shape[1]:
            raise ValueError(f"precomputed neighbours answer k <= {self._idx.shape[1]} for all "
                             f"{len(self.data)} points, not k={k} for {len(points)}")
        dist = self._dist[:, :k].copy()
        dist[:, k - 1] = _euclidean(self.data, self._idx[:, k - 1])
        return dist, np.ascontiguousarray(self._idx[:, :k])


def _import_tree_code(n_points: int) -> None:
    """Import the code :func:`mst_tree` and :func:`labels_from_tree` run for ``n_points``.

    Run beside :func:`manifold_neighbours`, whose query leaves the GIL: importing hdbscan
    (scikit-learn, scipy.stats) is ~1 s of single-threaded Python in every stage process.
    A failure is left for the real import to raise, with its own traceback.
    """
    try:
        import hdbscan._hdbscan_boruvka  # noqa: F401
        import hdbscan._hdbscan_linkage  # noqa: F401
        if n_points > SMALL_TREE_POINTS:
            import fast_hdbscan.cluster_trees  # noqa: F401

            import pipeline.stages.cluster.linkage  # noqa: F401
    except Exception:  # noqa: BLE001 - re-raised by the caller's own import
        pass


def mst_tree(X: np.ndarray, min_samples: int, dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """HDBSCAN's single-linkage tree from :func:`manifold_neighbours` output (≥ min_samples + 1 columns).

    The same Borůvka KD-tree MST (approximate=True, leaf size 40) and labelling that
    ``hdbscan.HDBSCAN`` runs for ≤ 60 dimensions, minus its one-core neighbour query and its
    label extraction (:func:`labels_from_tree` does that): identical to :func:`hdbscan_tree`'s tree.
    Above ``SMALL_TREE_POINTS`` the MST is labelled by a compiled copy of hdbscan's union-find
    (``pipeline.stages.cluster.linkage``: same bytes, 3 s less at 212K).
    """
    from hdbscan._hdbscan_boruvka import KDTreeBoruvkaAlgorithm
    from hdbscan._hdbscan_linkage import label
    from sklearn.neighbors import KDTree

    X = np.ascontiguousarray(X, dtype=np.float64)
    min_samples = max(1, min(int(min_samples), len(X) - 1))  # as hdbscan clamps it
    near = dist[:, :min_samples + 1]
    # Borůvka's first round reads the neighbours in order: where two are (nearly) equally far,
    # scipy and sklearn may order them differently (duplicate points do), so then let hdbscan
    # query sklearn's KD-tree itself, exactly as hdbscan.HDBSCAN does
    ties = bool((np.diff(near, axis=1) <= 1e-12 * near[:, 1:]).any())
    if ties:
        neighbours, jobs = KDTree(X, metric="euclidean", leaf_size=40), available_cores()
    else:
        neighbours, jobs = _KnownNeighbours(X, dist, idx), 1
    algorithm = KDTreeBoruvkaAlgorithm(neighbours, min_samples, metric="euclidean",
                                       leaf_size=40 // 3, approx_min_span_tree=True, n_jobs=jobs)
    edges = algorithm.spanning_tree()
    edges = edges[np.argsort(edges.T[2]), :]
    if len(X) <= SMALL_TREE_POINTS:
        return np.asarray(label(edges))
    from pipeline.stages.cluster.linkage import single_linkage_tree  # numba: loaded only for large trees

    return single_linkage_tree(edges)


def labels_from_tree(tree: np.ndarray, min_cluster_size: int, method: str = "eom",
                     epsilon: float = 0.0) -> np.ndarray:
    """HDBSCAN labels for ``min_cluster_size`` from a single-linkage tree (−1 = noise).

    The full run and the studio slider both label through here, and the choice of code
    depends only on the tree's size, so a re-extraction equals a full run by construction:
    up to ``SMALL_TREE_POINTS`` points :func:`hdbscan_labels`, above that
    :func:`fast_hdbscan_labels` (the same clusters, tested).
    """
    if method not in ("eom", "leaf"):
        raise ConfigError(f"cluster_selection_method must be 'eom' or 'leaf', not {method!r}")
    extract = hdbscan_labels if len(tree) + 1 <= SMALL_TREE_POINTS else fast_hdbscan_labels
    return extract(np.ascontiguousarray(tree, dtype=np.float64), int(min_cluster_size), method, float(epsilon))


def hdbscan_labels(tree: np.ndarray, min_cluster_size: int, method: str, epsilon: float) -> np.ndarray:
    """hdbscan's own condense + select (``hdbscan.HDBSCAN``'s labels): ~0.1 s at 10K, nothing to load."""
    from hdbscan.hdbscan_ import _tree_to_labels

    labels = _tree_to_labels(None, tree, min_cluster_size, method, cluster_selection_epsilon=epsilon)[0]
    return np.asarray(labels, dtype=np.int64)


def fast_hdbscan_labels(tree: np.ndarray, min_cluster_size: int, method: str, epsilon: float) -> np.ndarray:
    """fast_hdbscan's compiled condense + select: ~10× faster than hdbscan's at 200K, which keeps
    the studio slider interactive there; loading its compiled code costs ~1.3 s per process."""
    from fast_hdbscan.cluster_trees import (
        cluster_epsilon_search,
        cluster_tree_from_condensed_tree,
        cluster_tree_leaves,
        condense_tree,
        extract_eom_clusters,
        get_cluster_label_vector,
    )

    n_points = tree.shape[0] + 1
    condensed = condense_tree(tree, min_cluster_size=min_cluster_size)
    cluster_tree = cluster_tree_from_condensed_tree(condensed)
    if method == "eom":
        selected = extract_eom_clusters(condensed, cluster_tree, max_cluster_size=np.inf,
                                        allow_single_cluster=False)
    else:
        selected = (cluster_tree_leaves(cluster_tree, n_points) if cluster_tree.parent.shape[0]
                    else np.empty(0, dtype=np.int64))
    if len(selected) > 1 and epsilon > 0.0:
        selected = cluster_epsilon_search(selected, cluster_tree, min_epsilon=epsilon)
    labels = get_cluster_label_vector(condensed, selected, epsilon, n_samples=n_points)
    return np.asarray(labels, dtype=np.int64)


def manifold_knn(X: np.ndarray, k: int = NOISE_NEIGHBORS,
                 idx: Optional[np.ndarray] = None) -> np.ndarray:
    """Each point's k nearest other points on the cluster manifold (int32 N×k, nearest first).

    ``idx``: a :func:`manifold_neighbours` index array with more than k columns, reused as is.
    """
    k = int(min(k, len(X) - 1))
    if idx is None or idx.shape[1] < k + 1:
        _, idx = manifold_neighbours(X, k + 1)
    return np.asarray(idx[:, 1:k + 1], dtype=np.int32)


VOTE_CELLS = 4_000_000  # (rows x clusters) score cells per block: ~32 MB


def _rank_weights(k: int) -> np.ndarray:
    """1/(rank+1) scaled by lcm(1..k) to integers, so equal sums are exactly equal (ties are real)."""
    if k > 30:  # lcm(1..30)·30 still fits float64's exact-integer range; larger k is not used
        raise ValueError(f"noise vote over {k} neighbours: at most 30")
    scale = math.lcm(*range(1, k + 1))
    return np.array([scale // (r + 1) for r in range(k)], dtype=np.float64)


def _weighted_vote(votes: np.ndarray, weights: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per row of neighbour labels (−1 = noise), the label with the highest summed weight.

    Ties go to the lowest label (``argmax`` takes the first); a row with no clustered
    neighbour gets −1. One ``bincount`` over (row, label) cells per block of rows.
    """
    m = len(votes)
    winners = np.full(m, -1, dtype=np.int64)
    step = max(1, VOTE_CELLS // n_clusters)
    for start in range(0, m, step):
        block = votes[start:start + step]
        valid = block >= 0
        rows = np.broadcast_to(np.arange(len(block))[:, None], block.shape)[valid]
        score = np.bincount(rows * n_clusters + block[valid], weights=np.broadcast_to(weights, block.shape)[valid],
                            minlength=len(block) * n_clusters).reshape(len(block), n_clusters)
        best = score.argmax(axis=1)
        best[~valid.any(axis=1)] = -1
        winners[start:start + step] = best
    return winners


def _nearest_centroid(X: np.ndarray, labels: np.ndarray, rows: np.ndarray, n_clusters: int) -> np.ndarray:
    """For ``rows``, the cluster whose centroid (mean of its labelled points) is nearest.

    Centroids from one bincount per dimension and distances as |x|² − 2x·c + |c|²: the
    slider hits this with ~100K isolated points, where per-cluster masks and an
    (m, k, d) difference array took ~0.2 s.
    """
    member = labels >= 0
    counts = np.bincount(labels[member], minlength=n_clusters).astype(np.float64)
    sums = np.column_stack([np.bincount(labels[member], weights=X[member, j], minlength=n_clusters)
                            for j in range(X.shape[1])])
    centroids = sums / np.maximum(counts, 1)[:, None]
    points = X[rows]
    d = (points ** 2).sum(axis=1)[:, None] - 2.0 * points @ centroids.T + (centroids ** 2).sum(axis=1)[None, :]
    d[:, counts == 0] = np.inf  # a cluster with no members yet cannot attract points
    return d.argmin(axis=1)


def assign_noise(raw: np.ndarray, knn: np.ndarray, X: Optional[np.ndarray] = None,
                 rounds: int = NOISE_ROUNDS) -> np.ndarray:
    """Give every noise point (−1) the cluster its nearest clustered neighbours vote for.

    Votes are weighted 1/(rank+1), so closer neighbours count more and ties are rare.
    Rounds run synchronously (order-independent); a point whose neighbourhood is all
    noise after ``rounds`` goes to the nearest cluster centroid on ``X``.
    """
    labels = np.asarray(raw, dtype=np.int64).copy()
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    if n_clusters == 0:
        return np.zeros_like(labels)  # nothing to vote for: one cluster holds everything
    weights = _rank_weights(knn.shape[1])
    for _ in range(rounds):
        noise = np.flatnonzero(labels < 0)
        if len(noise) == 0:
            return labels
        winners = _weighted_vote(labels[knn[noise]], weights, n_clusters)
        if (winners < 0).all():
            break
        labels[noise] = winners  # synchronous: every vote above saw the same labels
    noise = np.flatnonzero(labels < 0)
    if len(noise):
        if X is None:
            raise ValueError("assign_noise: isolated noise points need the manifold coordinates")
        labels[noise] = _nearest_centroid(np.asarray(X, dtype=np.float64), labels, noise, n_clusters)
    return labels


def order_by_size(raw: np.ndarray, assigned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters 0..k−1 by final size, largest first; returns (cluster, raw_cluster)."""
    k = int(max(assigned.max(), raw.max())) + 1
    sizes = np.bincount(assigned, minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.lexsort((np.arange(k), -sizes))] = np.arange(k)
    cluster = rank[assigned].astype(np.int32)
    raw_cluster = np.where(raw >= 0, rank[np.maximum(raw, 0)], -1).astype(np.int32)
    return cluster, raw_cluster


def final_labels(raw: np.ndarray, knn: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster, raw_cluster) from HDBSCAN's labels: noise assigned, numbered by size.

    Rows past the tree's points (placed by ``tweetscope update``) start as noise and take their neighbours' vote.
    """
    raw = np.concatenate([raw, np.full(len(knn) - len(raw), -1, dtype=raw.dtype)])
    return order_by_size(raw, assign_noise(raw, knn, X))


# --------------------------------------------------------------------------- reading the manifolds

def _read_umap(dataset: Dataset, umap_id: str, columns=None) -> np.ndarray:
    frame = load_umap(dataset, umap_id)
    return frame[columns].to_numpy(np.float32) if columns else frame.to_numpy(np.float32)


# --------------------------------------------------------------------------- writing

def _write_cluster_artifact(dataset: Dataset, *, cluster: np.ndarray, raw_cluster: np.ndarray,
                            xy: np.ndarray, tree_writer, fields: dict, params: dict, inputs: dict,
                            timings: dict, progress: Progress) -> str:
    geometry = cluster_geometry(xy, cluster)
    n_clusters = int(len(geometry))
    labels = pd.DataFrame({
        "label": [f"Cluster {c}" for c in geometry["cluster"]],
        "description": ["Placeholder name (no labels yet): run the labels stage" for _ in range(n_clusters)],
        "indices": geometry["indices"],
        "hull": geometry["hull"],
        "count": geometry["count"].astype(np.int64),
        "centroid_x": geometry["centroid_x"].astype(np.float32),
        "centroid_y": geometry["centroid_y"].astype(np.float32),
    })
    progress.check()
    with dataset.new_artifact("cluster") as art:
        art.write_parquet(pd.DataFrame({"cluster": cluster, "raw_cluster": raw_cluster}))
        art.write_parquet(labels, LABELS_SUFFIX + ".parquet")
        art.write_json({
            "id": default_labels_id(art.id), "cluster_id": art.id, "type": "default", "placeholder": True,
            "umap_id": fields["umap_id"], "n_clusters": n_clusters,
            "labels": [{"cluster": int(r.cluster), "label": f"Cluster {r.cluster}", "count": int(r.count),
                        "centroid": [round(r.centroid_x, 6), round(r.centroid_y, 6)]}
                       for r in geometry.itertuples()],
        }, LABELS_SUFFIX + ".json")
        tree_writer(art.path(TREE_SUFFIX))
        art.write_sidecar(
            {**fields, "n_clusters": n_clusters, "n_noise": int((raw_cluster < 0).sum()),
             "cluster_sizes": np.bincount(cluster, minlength=n_clusters).astype(int).tolist(),
             "labels_default": default_labels_id(art.id), "tree": f"{art.id}{TREE_SUFFIX}"},
            params=params, inputs=inputs, rows=len(cluster), timings=timings,
        )
    return art.id


def run_cluster(
    dataset: Dataset,
    config: Optional[ClusterConfig] = None,
    progress: Optional[Progress] = None,
    display_umap_id: Optional[str] = None,
    clustering_umap_id: Optional[str] = None,
) -> str:
    """HDBSCAN on the cluster manifold (latest when ids are None); returns the new ``cluster-NNN``."""
    config = config or ClusterConfig()
    progress = progress or null_progress("cluster")
    started = time.perf_counter()
    display_umap_id, clustering_umap_id = resolve_manifolds(dataset, display_umap_id, clustering_umap_id)
    clus = dataset.sidecar(clustering_umap_id)
    X = _read_umap(dataset, clustering_umap_id)
    xy = _read_umap(dataset, display_umap_id, ["x", "y"])
    config = effective_config(config, len(X))
    if len(X) <= config.min_cluster_size:
        raise ConfigError(f"min_cluster_size {config.min_cluster_size} is not smaller than the "
                         f"{len(X)} rows of {clustering_umap_id}; choose a smaller one")
    timings = {}
    progress.update(5, 100, f"HDBSCAN on {len(X)} × {X.shape[1]}-D")
    t = time.perf_counter()
    importing = threading.Thread(target=_import_tree_code, args=(len(X),), name="cluster-imports", daemon=True)
    importing.start()
    dist, idx = manifold_neighbours(X, max(config.min_samples, NOISE_NEIGHBORS) + 1)
    timings["knn_s"] = round(time.perf_counter() - t, 3)
    importing.join()
    progress.update(25, 100, "minimum spanning tree")
    t = time.perf_counter()
    tree = mst_tree(X, config.min_samples, dist, idx)
    raw = labels_from_tree(tree, config.min_cluster_size, config.cluster_selection_method,
                           config.cluster_selection_epsilon)
    timings["hdbscan_s"] = round(time.perf_counter() - t, 3)
    progress.update(70, 100, "noise to its neighbours' clusters")
    t = time.perf_counter()
    knn = manifold_knn(X, idx=idx)
    del dist, idx
    cluster, raw_cluster = final_labels(raw, knn, X)
    timings["noise_s"] = round(time.perf_counter() - t, 3)
    progress.update(85, 100, "hulls and centroids")

    def write_tree(path):
        with open(path, "wb") as fh:
            np.savez(fh, single_linkage_tree=tree, knn=knn, min_samples=np.int64(config.min_samples))

    timings["total_s"] = round(time.perf_counter() - started, 3)
    cluster_id = _write_cluster_artifact(
        dataset, cluster=cluster, raw_cluster=raw_cluster, xy=xy, tree_writer=write_tree,
        fields={"umap_id": display_umap_id, "clustering_umap_id": clustering_umap_id,
                "embedding_id": clus.get("embedding_id"), "algorithm": "hdbscan",
                "noise_assignment": f"weighted vote of {knn.shape[1]} nearest neighbours on the cluster manifold"},
        params=config.to_dict(),
        inputs={"umap_id": display_umap_id, "clustering_umap_id": clustering_umap_id},
        timings=timings, progress=progress,
    )
    progress.update(100, 100, cluster_id)
    return cluster_id


def load_clusters(dataset: Dataset, cluster_id: Optional[str] = None) -> pd.DataFrame:
    """``cluster, raw_cluster`` per row of a cluster artifact (the latest when None)."""
    cluster_id = dataset.require("cluster", cluster_id)
    return pd.read_parquet(dataset.artifact_path(cluster_id, ".parquet"))


# --------------------------------------------------------------------------- re-clustering

@dataclass
class _SavedTree:
    tree: np.ndarray
    knn: np.ndarray
    X: np.ndarray  # cluster manifold, for isolated noise points
    method: str
    epsilon: float


_TREES: "OrderedDict[tuple, _SavedTree]" = OrderedDict()
_TREES_LOCK = threading.Lock()
_TREES_MAX = 4


def _saved_tree(dataset: Dataset, cluster_id: str) -> _SavedTree:
    side = dataset.sidecar(cluster_id)
    path = dataset.artifact_path(cluster_id, TREE_SUFFIX)
    if not path.is_file():
        raise WorkspaceError(f"{cluster_id} has no saved tree ({path.name}); run the cluster stage again")
    key = (str(path), os.stat(path).st_mtime_ns)
    with _TREES_LOCK:
        if key in _TREES:
            _TREES.move_to_end(key)
            return _TREES[key]
    with np.load(path) as data:
        tree, knn = data["single_linkage_tree"], data["knn"]
    params = side.get("params") or {}
    saved = _SavedTree(tree, knn, _read_umap(dataset, side["clustering_umap_id"]),
                       params.get("cluster_selection_method", "eom"),
                       float(params.get("cluster_selection_epsilon", 0.0)))
    with _TREES_LOCK:
        _TREES[key] = saved
        while len(_TREES) > _TREES_MAX:
            _TREES.popitem(last=False)
    return saved


def recluster(dataset: Dataset, cluster_id: str, min_cluster_size: int, *, raw: bool = False) -> np.ndarray:
    """Labels for a new ``min_cluster_size`` from ``cluster_id``'s saved tree (no new MST).

    Returns the ``cluster`` column a full run at that size would write (noise assigned,
    numbered by size); ``raw=True`` returns ``raw_cluster`` instead. The tree stays
    cached in memory, so slider moves cost only the re-extraction.
    """
    saved = _saved_tree(dataset, cluster_id)
    if not 2 <= int(min_cluster_size) < len(saved.knn):
        raise ConfigError(f"min_cluster_size must be between 2 and {len(saved.knn) - 1}, got {min_cluster_size}")
    labels = labels_from_tree(saved.tree, min_cluster_size, saved.method, saved.epsilon)
    cluster, raw_cluster = final_labels(labels, saved.knn, saved.X)
    return raw_cluster if raw else cluster


def save_recluster(dataset: Dataset, cluster_id: str, min_cluster_size: int,
                   progress: Optional[Progress] = None) -> str:
    """Write the re-extraction at ``min_cluster_size`` as a new cluster artifact; returns its id."""
    progress = progress or null_progress("recluster")
    started = time.perf_counter()
    side = dataset.sidecar(cluster_id)
    params = dict(side.get("params") or {})
    params["min_cluster_size"] = int(min_cluster_size)
    ClusterConfig.from_dict(params)  # validates the new value against the config bounds
    progress.update(10, 100, f"re-extracting {cluster_id} at min_cluster_size={min_cluster_size}")
    saved = _saved_tree(dataset, cluster_id)
    labels = labels_from_tree(saved.tree, min_cluster_size, saved.method, saved.epsilon)
    cluster, raw_cluster = final_labels(labels, saved.knn, saved.X)
    xy = _read_umap(dataset, side["umap_id"], ["x", "y"])
    progress.update(50, 100, "hulls and centroids")
    source_tree = dataset.artifact_path(cluster_id, TREE_SUFFIX)
    fields = {k: side[k] for k in ("umap_id", "clustering_umap_id", "embedding_id", "algorithm",
                                   "noise_assignment") if k in side}
    fields["reclustered_from"] = cluster_id
    new_id = _write_cluster_artifact(
        dataset, cluster=cluster, raw_cluster=raw_cluster, xy=xy,
        tree_writer=lambda path: shutil.copyfile(source_tree, path),
        fields=fields, params=params, inputs=dict(side.get("inputs") or {}),
        timings={"total_s": round(time.perf_counter() - started, 3)}, progress=progress,
    )
    progress.update(100, 100, new_id)
    return new_id


def run(dataset: Dataset, config: ClusterConfig, inputs: dict, progress: Progress) -> str:
    """The stage contract: HDBSCAN on the chosen (or latest) manifolds -> ``cluster-NNN``."""
    return run_cluster(dataset, config, progress, **inputs)
