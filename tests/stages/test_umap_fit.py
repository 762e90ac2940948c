"""UMAP building blocks shared by both manifolds: spectral init, epochs, kernel cache, cell-kNN runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import scipy.linalg

from pipeline.stages.umap.fit import (
    CLUSTER_EPOCHS_LARGE,
    CLUSTER_EPOCHS_SMALL,
    DISPLAY_EPOCHS_LARGE,
    OWN_SPECTRAL_MIN_ROWS,
    cluster_epochs,
    display_epochs,
    exact_cosine_knn,
    fuzzy_graph,
    spectral_init,
)
from pipeline.stages.umap.stage import UmapConfig, load_umap, run_umap
from support import copy_dataset

ROOT = Path(__file__).resolve().parents[2]


def curve(n: int, dims: int = 24, seed: int = 0) -> np.ndarray:
    """Points along an open curve: a connected graph whose Laplacian has well-separated eigenvalues."""
    t = np.sort(np.random.default_rng(seed).uniform(0, 1, n))
    X = np.cos(np.pi * np.outer(t, np.arange(1, dims + 1)) / 6) + 2.0
    return (X + np.random.default_rng(seed + 1).normal(0, 0.01, X.shape)).astype(np.float32)


def blobs(n: int, dims: int = 48, centers: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.normal(0, 1, (centers, dims))
    return (middle[rng.integers(0, centers, n)] + rng.normal(0, 0.6, (n, dims))).astype(np.float32)


def test_spectral_init_equals_umaps_spectral_layout():
    """Our solve (top of the normalised adjacency) spans what umap-learn's spectral_layout computes,
    even on a long chain whose eigenvalues are only ~1e-5 apart."""
    from umap.spectral import spectral_layout

    X = curve(OWN_SPECTRAL_MIN_ROWS + 904)
    graph = fuzzy_graph(len(X), exact_cosine_knn(X, 15), 15)
    for dim in (2, 10):
        ours = spectral_init(X, graph, dim, seed=1)
        theirs = spectral_layout(X, graph, dim, np.random.RandomState(1), metric="cosine")
        assert ours.shape == theirs.shape == (len(X), dim)
        assert scipy.linalg.subspace_angles(ours, theirs).max() < 0.01


def test_spectral_init_of_a_disconnected_graph_uses_umaps_own_layout():
    X = np.vstack([curve(OWN_SPECTRAL_MIN_ROWS, seed=2), -curve(OWN_SPECTRAL_MIN_ROWS, seed=3)])
    graph = fuzzy_graph(len(X), exact_cosine_knn(X, 10), 10)
    init = spectral_init(X, graph, 10, seed=4)
    assert init.shape == (len(X), 10) and np.isfinite(init).all()


def test_islands_are_seated_beside_their_nearest_main_component_rows():
    """One main component plus clumps of identical points (as duplicate tweets make): the main
    component gets the eigenvectors of its own graph, each clump starts next to its nearest
    main-component point."""
    import scipy.sparse.csgraph

    main = curve(OWN_SPECTRAL_MIN_ROWS + 904, seed=5)
    picks = [100, 2_000, 4_500]
    away = np.random.default_rng(6).normal(0, 0.2, (len(picks), main.shape[1])).astype(np.float32)
    clumps = np.vstack([np.repeat(main[[i]] + away[[j]], 20, axis=0) for j, i in enumerate(picks)])
    X = np.vstack([main, clumps])
    graph = fuzzy_graph(len(X), exact_cosine_knn(X, 15), 15)
    n_parts, part = scipy.sparse.csgraph.connected_components(graph)
    assert n_parts == 4 and np.bincount(part).max() == len(main)  # the clumps are islands
    for dim in (2, 10):
        init = spectral_init(X, graph, dim, seed=1)
        assert init.shape == (len(X), dim) and np.isfinite(init).all()
        own = spectral_init(main, fuzzy_graph(len(main), exact_cosine_knn(main, 15), 15), dim, seed=1)
        assert scipy.linalg.subspace_angles(init[:len(main)], own).max() < 0.01
        for j, i in enumerate(picks):
            clump = init[len(main) + 20 * j: len(main) + 20 * (j + 1)]
            gap = np.linalg.norm(clump.mean(axis=0) - init[i])
            closer = np.mean(np.linalg.norm(init[:len(main)] - init[i], axis=1) < gap)
            assert closer < 0.1  # beside its twin: few of the curve lie nearer (a random seat: ~half)
            assert clump.std(axis=0).max() > 0  # spread, not stacked on one spot


def test_epoch_defaults():
    assert display_epochs(10_000, None) == 500  # umap-learn's small-data count
    assert cluster_epochs(2_045, None) == cluster_epochs(10_000, None) == CLUSTER_EPOCHS_SMALL < 500
    assert display_epochs(50_000, None) == 200  # umap-learn's count above 10K rows
    # large maps trade a little neighbourhood quality for time; the cluster manifold needs fewer
    assert display_epochs(212_000, None) == DISPLAY_EPOCHS_LARGE < 200
    assert cluster_epochs(50_000, None) == cluster_epochs(212_000, None) == CLUSTER_EPOCHS_LARGE < 200
    assert cluster_epochs(212_000, 90) == 90 and display_epochs(50, 40) == 40


def test_library_kernels_are_cached_between_processes(tmp_path):
    """umap-learn declares these kernels without cache=True (and our epoch loop compiles its single-epoch
    function again, without the GIL): a process must still leave them in
    NUMBA_CACHE_DIR for the next one (the rest of the suite's cache is reused to keep this quick)."""
    import shutil

    wanted = {"umap_.smooth_knn_dist", "umap_.compute_membership_strengths",
              "layouts._optimize_layout_euclidean_single_epoch_nogil"}
    cache = tmp_path / "cache"
    shutil.copytree(os.environ["NUMBA_CACHE_DIR"], cache, dirs_exist_ok=True)
    for path in cache.rglob("*"):
        if path.is_file() and path.name.split("-")[0] in wanted:
            path.unlink()
    code = (
        "import numpy as np\n"
        "from pipeline.stages.umap.fit import exact_cosine_knn, fuzzy_graph, initial_layout, embed_graph, spectral_init\n"
        "X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)\n"
        "g = fuzzy_graph(300, exact_cosine_knn(X, 10), 10)\n"
        "embed_graph(g, initial_layout(spectral_init(X, g, 2, 0), 2, 0), min_dist=0.1, n_epochs=20, seed=0)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
                   check=True, timeout=600)
    assert wanted <= {p.name.split("-")[0] for p in cache.rglob("*.nbi")}


def test_cell_knn_runs_are_reproducible_and_side_by_side_changes_nothing(mapped_dataset, tmp_path, monkeypatch):
    """Above the exact-kNN size: the coarse-cell kNN search, our spectral solve, and the two fits
    in two processes still give the very same bytes for the same seed."""
    from pipeline.stages.umap import fit

    monkeypatch.setattr(fit, "EXACT_KNN_MAX_COST", 4_096 ** 2 * (48 + 128))  # cells at a test's size
    ds = copy_dataset(mapped_dataset, tmp_path)
    n = 4_096 + 1000
    assert not fit.uses_exact_knn(n, 48) and fit.uses_exact_knn(4_096, 48)
    with ds.new_artifact("embedding") as art:
        with h5py.File(art.path(".h5"), "w") as h5:
            h5.create_dataset("embeddings", data=blobs(n))
        art.write_sidecar({"provider": "local", "model_id": "synthetic", "dimensions": 48},
                          inputs={"input": "synthetic"}, rows=n)
    config = dict(n_epochs=40, cluster_n_epochs=30)
    first = run_umap(ds, UmapConfig(**config, parallel_fits="never"), embedding_id=art.id)
    again = run_umap(ds, UmapConfig(**config, parallel_fits="always"), embedding_id=art.id)
    for old, new in zip(first, again):
        assert ds.artifact_path(old, ".parquet").read_bytes() == ds.artifact_path(new, ".parquet").read_bytes()
    display, cluster = (ds.sidecar(i) for i in again)
    assert (display["n_epochs"], cluster["n_epochs"]) == (40, 30)
    assert display["fits_side_by_side"] is True and display["init"] == "spectral"
    assert (display["knn"], display["knn_probe"]) == ("cells", fit.KNN_PROBE)
    assert {"knn_s", "graph_s", "spectral_s", "fit_s"} <= set(cluster["timings"])
    xy = load_umap(ds, again[0])
    assert len(xy) == n and xy.min().tolist() == [-1.0, -1.0]
    assert cluster["params"]["cluster_n_epochs"] == 30
