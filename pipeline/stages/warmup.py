"""Compile the numba kernels a first map needs, once per install, on a few hundred random points.

On a fresh machine the sample's first map waited ~3 minutes for numba: UMAP's fuzzy graph
and epoch loop, and fast_hdbscan (compiled when imported, used to extract clusters above 20K points). All of
those kernels can be cached on disk (``pipeline.stages.umap.numba_cache``), so ``launch.py``
runs this module right after installing: the studio's first run then loads them from
``NUMBA_CACHE_DIR`` instead of compiling. It runs the same functions, with the same dtypes,
as the UMAP and cluster stages, on tiny random data; nothing is written but the cache.
The kNN kernels are warmed for both paths: the exact graph and the coarse-cell search
(archives above ~30,000 tweets), and an update's query search.

    python -m pipeline.stages.warmup
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from pipeline.core import nearest
from pipeline.stages.cluster import linkage
from pipeline.stages.cluster import stage as cluster_stage
from pipeline.stages.umap import fit
from pipeline.stages.umap import stage as umap_stage

ROWS = 300
DIMENSIONS = 16


def warm_up(seed: int = 42) -> dict:
    """Run the UMAP and cluster stages' compiled paths on random data; returns seconds per step."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    rng = np.random.RandomState(0)
    X = rng.normal(size=(ROWS, DIMENSIONS)).astype(np.float32)  # embeddings load as float32
    config = umap_stage.UmapConfig()
    k = umap_stage.effective_n_neighbors(ROWS, config.n_neighbors)
    knn = fit.compute_knn(X, k, seed)
    graph = fit.fuzzy_graph(ROWS, knn, k)
    timings["umap_graph_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for dims, min_dist in ((2, config.min_dist), (config.cluster_dimensions, umap_stage.CLUSTER_MIN_DIST)):
        init = fit.initial_layout(fit.spectral_init(X, graph, dims, seed), dims, seed)
        manifold = fit.embed_graph(graph, init, min_dist=min_dist, n_epochs=11, seed=seed)
    timings["umap_fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cluster_config = cluster_stage.effective_config(cluster_stage.ClusterConfig(), ROWS)
    _, tree = cluster_stage.hdbscan_tree(manifold, cluster_config)
    raw = cluster_stage.labels_from_tree(tree, cluster_config.min_cluster_size, cluster_config.cluster_selection_method,
                                         cluster_config.cluster_selection_epsilon)
    # the large-archive path: compiled linkage labelling and fast_hdbscan's extraction
    linkage.single_linkage_tree(tree[:, :3])
    cluster_stage.fast_hdbscan_labels(tree, cluster_config.min_cluster_size, "eom", 0.0)
    cluster_stage.final_labels(raw, cluster_stage.manifold_knn(manifold), manifold)
    timings["cluster_s"] = time.perf_counter() - t
    t = time.perf_counter()
    # exact kNN above one block (its column pass), the cell search and a query search (an update)
    blocks = rng.normal(size=(nearest.SELF_BLOCK + 8, 4)).astype(np.float32)
    nearest.query_knn(blocks[:50], blocks[50:100], 3)
    nearest.self_knn(blocks, 3)
    nearest.cell_self_knn(blocks, 3, n_probe=2)
    centres = nearest.cell_centres(blocks, 16, np.random.default_rng(0))
    nearest.cell_search(blocks, blocks[:300], 3, centres, 2)
    timings["knn_s"] = time.perf_counter() - t
    return {key: round(value, 2) for key, value in timings.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    started = time.perf_counter()
    timings = warm_up()
    steps = ", ".join(f"{key[:-2]} {value:.1f} s" for key, value in timings.items())
    print(f"compiled the map's kernels in {time.perf_counter() - started:.1f} s ({steps})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
