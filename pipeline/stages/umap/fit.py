"""UMAP's building blocks, computed once and shared by both manifolds.

umap-learn's ``UMAP.fit`` runs four steps: kNN graph, fuzzy simplicial set, spectral
initialisation, epoch loop. Two fits of the same data (a 2-D map and a 10-D clustering
space) would repeat the first two; here they are computed once, and each manifold runs
only its own spectral initialisation and umap-learn's epoch loop (``simplicial_set_embedding``).

The spectral initialisation asks for the same eigenvectors as umap-learn's
``spectral_layout`` -- the smallest of the normalised Laplacian ``I - D^-1/2 W D^-1/2`` --
but as the *largest* of ``D^-1/2 W D^-1/2``, which ARPACK finds 3-6x faster on large graphs
(10 s for 2-D and 16 s for 10-D instead of ~45 s each at 212K points). A graph with one main
component and small islands gets the same solve on the main component (islands are seated
beside their nearest tweets); small graphs and graphs without a main component use umap-learn's
own function.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.nearest import cell_self_knn, self_knn
from pipeline.stages.umap.epochs import optimize_layout
from pipeline.stages.umap.numba_cache import cache_library_kernels

METRIC = "cosine"
# Exact kNN (``pipeline.core.nearest``) while rows² x (dimensions + 128) stays under this (30K
# rows of 256-d vectors, 15K of 1024-d: ~3 s); above, a coarse-cell search. The scan costs about
# as much per pair as 128 more dimensions.
EXACT_KNN_MAX_COST = 30_000 ** 2 * (256 + 128)
# Cells each point searches above the exact size. On realistic synthetic tweets (256-d), share of
# neighbours as similar as the exact 15th: 24 cells 0.995 in 16.8 s at 212K (NN-descent 0.994 in
# 28.6 s, 13 s of it compiling loops numba cannot cache, in every process); 32 cells 0.998 at 50K
# in 4.8 s (exact 8.5 s, NN-descent 0.998 in 16 s).
KNN_PROBE = 24
OWN_SPECTRAL_MIN_ROWS = 4096
# ARPACK's tolerance is relative to the eigenvalue: ~1 here, but the gaps between the wanted
# eigenvalues can be ~1e-5 (umap-learn's 1e-4 is relative to the gaps themselves).
SPECTRAL_TOLERANCE = 1e-6
# one component holding this share of the rows gets our own solve; islands are seated beside it
MAIN_COMPONENT_MIN_SHARE = 0.9
ISLAND_SPREAD = 0.005  # of the main layout's extent per axis: an island starts as a small clump
# The cluster manifold only feeds HDBSCAN. Measured (bench_umap_display.py --cluster-epochs):
# at 212K 30 epochs find the clusters 60 do (AMI vs topics 0.9068 vs 0.9069; ARI to 60 epochs
# 0.989, two seeds at 60 agree to 0.987). Up to 10K rows 200 epochs find the clusters 500 do
# (the real 2K sample over six seeds: ARI to 500-epoch runs 0.956, 500-epoch runs among
# themselves 0.957; 30 epochs there merge clusters, 0.919); synthetic 10K: AMI 0.8825 vs 0.8814.
CLUSTER_EPOCHS_SMALL = 200
CLUSTER_EPOCHS_LARGE = 30
UMAP_SMALL_DATA_ROWS = 10_000  # umap-learn uses 500 epochs up to here, 200 above
# Above DISPLAY_LARGE_ROWS the display map runs 150 epochs, not 200: the 212K stage 157 -> 136 s
# for 3.8 % fewer true neighbours kept (kNN preservation 0.0683 -> 0.0657; topic 10-NN
# accuracy 0.9545 both, map AMI 0.9071 -> 0.9068). Smaller maps keep umap-learn's 200.
DISPLAY_LARGE_ROWS = 100_000
DISPLAY_EPOCHS_LARGE = 150


def uses_exact_knn(n_rows: int, dimensions: int) -> bool:
    """Whether :func:`compute_knn` computes the exact graph rather than searching coarse cells."""
    return n_rows ** 2 * (dimensions + 128) <= EXACT_KNN_MAX_COST


def compute_knn(X: np.ndarray, n_neighbors: int, seed: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """The cosine kNN graph both manifolds share: (int32 indices, float32 distances), self first.

    Exact up to ``EXACT_KNN_MAX_COST`` (umap-learn itself goes exact below 4,096 rows); larger
    data searches ``KNN_PROBE`` coarse cells per point, seeded, the same at any thread count.
    """
    if uses_exact_knn(*np.shape(X)):
        return exact_cosine_knn(X, n_neighbors)
    indices, sims = cell_self_knn(X, n_neighbors, KNN_PROBE, seed=0 if seed is None else seed)
    return indices, _distances(sims)


def exact_cosine_knn(X: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN as UMAP expects it: (int32 indices, float32 distances), self first at 0."""
    indices, sims = self_knn(X, n_neighbors)
    return indices, _distances(sims)


def _distances(sims: np.ndarray) -> np.ndarray:
    dists = np.maximum(1.0 - sims, 0.0)
    dists[:, 0] = 0.0
    return dists


def fuzzy_graph(n_rows: int, knn: tuple[np.ndarray, np.ndarray], n_neighbors: int):
    """UMAP's fuzzy simplicial set of the kNN graph (sparse, symmetric), as ``UMAP.fit`` builds it."""
    cache_library_kernels()
    from umap.umap_ import DISCONNECTION_DISTANCES, fuzzy_simplicial_set

    indices, dists = np.array(knn[0]), np.array(knn[1])
    far = dists >= DISCONNECTION_DISTANCES[METRIC]
    indices[far], dists[far] = -1, np.inf
    graph, _, _ = fuzzy_simplicial_set(
        np.empty((n_rows, 0), dtype=np.float32), n_neighbors, None, "precomputed", {},
        indices, dists, False, 1.0, 1.0, True,
    )
    return graph.tocsr()


def spectral_init(X: np.ndarray, graph, dim: int, seed: Optional[int]) -> np.ndarray:
    """The ``dim`` leading non-trivial eigenvectors of the graph (float64, N x dim).

    A graph split into one main component and small islands (clumps of identical tweets: 136
    components at 212K, 6.8K rows outside the main one) gets the main component's eigenvectors,
    and each island sits, slightly spread, at its nearest main-component tweet in embedding
    space. umap-learn's multi-component layout took 28-49 s there (and fell back to random
    coordinates for islands whose eigensolve failed) against ~10 s.
    """
    import scipy.sparse.csgraph
    from umap.spectral import spectral_layout

    def umaps_own() -> np.ndarray:
        return spectral_layout(X, graph, dim, np.random.RandomState(seed), metric=METRIC)

    n = graph.shape[0]
    if n < OWN_SPECTRAL_MIN_ROWS:
        return umaps_own()
    n_parts, part = scipy.sparse.csgraph.connected_components(graph)
    if n_parts == 1:
        vectors = _leading_eigenvectors(graph, dim)
        return umaps_own() if vectors is None else vectors
    sizes = np.bincount(part)
    main = int(np.argmax(sizes))
    if sizes[main] < MAIN_COMPONENT_MIN_SHARE * n or sizes[main] < OWN_SPECTRAL_MIN_ROWS:
        return umaps_own()
    inside = np.flatnonzero(part == main)
    vectors = _leading_eigenvectors(graph[inside][:, inside], dim)
    if vectors is None:
        return umaps_own()
    coords = np.empty((n, dim), dtype=np.float64)
    coords[inside] = vectors
    _seat_islands(coords, X, part, main, inside, np.random.RandomState(seed))
    return coords


def _leading_eigenvectors(graph, dim: int) -> Optional[np.ndarray]:
    """Top non-trivial eigenvectors of ``D^-1/2 W D^-1/2`` of a connected graph (None if ARPACK fails)."""
    import scipy.sparse
    import scipy.sparse.linalg

    n = graph.shape[0]
    graph = graph.astype(np.float64)  # float32 loses the small eigengaps of smooth manifolds
    sqrt_deg = np.sqrt(np.asarray(graph.sum(axis=0)).ravel())
    scale = scipy.sparse.diags(1.0 / sqrt_deg)
    adjacency = (scale @ graph @ scale).tocsr()
    k = dim + 1
    try:
        values, vectors = scipy.sparse.linalg.eigsh(
            adjacency, k, which="LA", ncv=max(2 * k + 1, 32), tol=SPECTRAL_TOLERANCE, v0=np.ones(n), maxiter=5 * n)
    except scipy.sparse.linalg.ArpackError:
        return None
    order = np.argsort(-values)[1:k]  # the largest (= 1) is the trivial sqrt-degree vector
    return vectors[:, order]


def _seat_islands(coords: np.ndarray, X: np.ndarray, part: np.ndarray, main: int, inside: np.ndarray,
                  rng: np.random.RandomState) -> None:
    """Give every row outside the ``main`` component the coordinates of the main-component row
    nearest (cosine) to its component's centroid, plus a little spread (in place)."""
    outside = np.flatnonzero(part != main)
    islands, island_of = np.unique(part[outside], return_inverse=True)
    Xn = np.asarray(X, dtype=np.float32)
    Xn = Xn / np.maximum(np.linalg.norm(Xn, axis=1, keepdims=True), 1e-12)
    centroids = np.zeros((len(islands), Xn.shape[1]), dtype=np.float32)
    np.add.at(centroids, island_of, Xn[outside])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    nearest = np.empty(len(islands), dtype=np.int64)
    for start in range(0, len(islands), 256):
        nearest[start:start + 256] = inside[np.argmax(centroids[start:start + 256] @ Xn[inside].T, axis=1)]
    spread = ISLAND_SPREAD * (coords[inside].max(axis=0) - coords[inside].min(axis=0))
    coords[outside] = coords[nearest[island_of]] + rng.normal(size=(len(outside), coords.shape[1])) * spread


def initial_layout(spectral: np.ndarray, n_components: int, seed: Optional[int]) -> np.ndarray:
    """A fit's starting point: spectral coordinates scaled with a little noise, as umap-learn does."""
    from umap.umap_ import noisy_scale_coords

    return noisy_scale_coords(spectral[:, :n_components], np.random.RandomState(seed),
                              max_coord=10, noise=0.0001)


def umap_default_epochs(n_rows: int) -> int:
    """umap-learn's own epoch count: 500 up to ``UMAP_SMALL_DATA_ROWS`` rows, 200 above."""
    return 500 if n_rows <= UMAP_SMALL_DATA_ROWS else 200


def display_epochs(n_rows: int, n_epochs: Optional[int]) -> int:
    """Epochs for the display map: umap-learn's count, ``DISPLAY_EPOCHS_LARGE`` for large maps, or as set."""
    if n_epochs is not None:
        return int(n_epochs)
    return DISPLAY_EPOCHS_LARGE if n_rows > DISPLAY_LARGE_ROWS else umap_default_epochs(n_rows)


def cluster_epochs(n_rows: int, n_epochs: Optional[int]) -> int:
    """Epochs for the cluster manifold: ``CLUSTER_EPOCHS_SMALL`` up to 10K rows, ``CLUSTER_EPOCHS_LARGE`` above, or as set."""
    if n_epochs is not None:
        return int(n_epochs)
    return CLUSTER_EPOCHS_LARGE if n_rows > UMAP_SMALL_DATA_ROWS else CLUSTER_EPOCHS_SMALL


def embed_graph(graph, init: np.ndarray, *, min_dist: float, n_epochs: int, seed: Optional[int],
                tqdm_kwds: Optional[dict] = None, threads=None) -> np.ndarray:
    """umap-learn's epoch loop on a shared graph; float32 (N x n_components).

    Seeded runs go through :mod:`pipeline.stages.umap.epochs` (umap-learn's single-epoch
    function on two threads, reproducibly; ``threads`` as in ``epochs.optimize_layout``);
    unseeded ones through umap-learn's own parallel loop.
    """
    cache_library_kernels()
    from umap.umap_ import find_ab_params, simplicial_set_embedding

    a, b = find_ab_params(1.0, min_dist)
    if seed is not None:
        coords = optimize_layout(graph, init, a=a, b=b, n_epochs=int(n_epochs), seed=seed, tqdm_kwds=tqdm_kwds,
                                 threads=threads)
    else:
        coords, _ = simplicial_set_embedding(
            None, graph.tocoo(copy=True), init.shape[1], 1.0, a, b, 1.0, 5, int(n_epochs), init,
            np.random.mtrand._rand, METRIC, {}, False, {}, False,
            parallel=True, verbose=False, tqdm_kwds=tqdm_kwds or {"disable": True},
        )
    coords = np.asarray(coords, dtype=np.float32)
    if not np.isfinite(coords).all():
        raise RuntimeError("UMAP produced non-finite coordinates; check the embeddings for duplicates/NaNs")
    return coords
