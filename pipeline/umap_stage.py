"""UMAP stage: one cosine kNN graph -> a 2-D display manifold and a 10-D cluster manifold.

The kNN graph is the expensive shared part, so it is computed once and handed to both
fits (``precomputed_knn``). The display manifold (``purpose=display``) has ``x, y``
scaled per axis to [-1, 1]; the cluster manifold (``purpose=cluster``, ``min_dist=0``)
keeps raw ``dim_0..dim_9`` for HDBSCAN. Each is a ``umap-NNN`` artifact whose sidecar
names its sibling. A seed makes the output reproducible (UMAP then optimises on one
thread); ``seed=None`` lets it use every core.
"""

from __future__ import annotations

import io
import os
import re
import time
import warnings
from pathlib import Path
from typing import Optional

# Before numba is imported anywhere: compile UMAP's kernels once per machine, not per process.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tweetscope" / "numba"),
)

if "numba" in __import__("sys").modules:  # imported earlier (e.g. by datashader): re-read the env
    from numba.core import config as _numba_config

    _numba_config.reload_config()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import param  # noqa: E402

from pipeline.config import StageConfig  # noqa: E402
from pipeline.progress import Progress, null_progress  # noqa: E402
from pipeline.workspace import Dataset, WorkspaceError  # noqa: E402

MIN_ROWS = 15
PARALLEL_FITS_MIN_ROWS = 20_000  # below this a second process costs more than it saves
CLUSTER_MIN_DIST = 0.0
METRIC = "cosine"


class UmapConfig(StageConfig):
    """How the embeddings are laid out: one kNN graph, a 2-D map and a 10-D clustering space."""

    n_neighbors = param.Integer(
        default=25, bounds=(2, 200),
        doc="neighbours per point in the shared kNN graph: larger = more global structure "
            "(clamped for very small datasets)")
    min_dist = param.Number(
        default=0.1, bounds=(0.0, 1.0),
        doc="display map: how tightly points may pack (the cluster manifold always uses 0)")
    cluster_dimensions = param.Integer(
        default=10, bounds=(3, 50), doc="dimensions of the manifold HDBSCAN clusters on")
    n_epochs = param.Integer(
        default=None, allow_None=True, bounds=(10, 2000),
        doc="optimisation epochs; none = UMAP's default (200 for large data, 500 for small)")
    seed = param.Integer(
        default=42, allow_None=True, bounds=(0, 2**31 - 1),
        doc="random seed: same inputs + seed give identical maps (each fit single-threaded); "
            "none = faster, parallel, not reproducible")
    parallel_fits = param.Selector(
        default="auto", objects=["auto", "always", "never"],
        doc="seeded runs: fit the display and cluster manifolds in two processes at once "
            f"(auto = with 2+ cores and {PARALLEL_FITS_MIN_ROWS:,}+ rows); same output, less wall time")


def effective_n_neighbors(n_rows: int, n_neighbors: int) -> int:
    """``n_neighbors`` clamped so tiny datasets still get a meaningful graph."""
    if n_rows < MIN_ROWS:
        raise ValueError(
            f"UMAP needs at least {MIN_ROWS} rows, the embedding has {n_rows}; "
            "ingest a larger archive (include likes with --include-likes)"
        )
    return int(max(2, min(n_neighbors, (n_rows - 1) // 3 if n_rows < 100 else n_rows - 1)))


def scale_to_unit(values: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    """Scale each column to [-1, 1]; returns (scaled float32, raw mins, raw maxs)."""
    lo = values.min(axis=0)
    hi = values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = (values - lo) / span * 2.0 - 1.0
    return scaled.astype(np.float32), lo.astype(float).tolist(), hi.astype(float).tolist()


class _EpochReporter(io.TextIOBase):
    """A tqdm ``file`` that turns UMAP's epoch counter into progress updates (and cancels)."""

    _COUNT = re.compile(r"(\d+)/(\d+)")

    def __init__(self, progress: Progress, start: float, span: float, label: str):
        self.progress, self.start, self.span, self.label = progress, start, span, label

    def write(self, text: str) -> int:
        found = self._COUNT.findall(text)
        if found:
            n, total = (int(x) for x in found[-1])
            if total:
                self.progress.update(self.start + self.span * n / total, 100,
                                     f"{self.label}: epoch {n}/{total}")
        return len(text)

    def flush(self) -> None:
        pass


EXACT_KNN_MAX_ROWS = 4096


def exact_cosine_knn(X: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN (self first, as UMAP expects) by blocked matrix products."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = X / np.where(norms > 0, norms, 1.0)
    n = len(Xn)
    indices = np.empty((n, n_neighbors), dtype=np.int32)
    dists = np.empty((n, n_neighbors), dtype=np.float32)
    for start in range(0, n, 1024):
        sims = Xn[start:start + 1024] @ Xn.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = np.inf  # a point is its own nearest neighbour
        top = np.argpartition(-sims, n_neighbors - 1, axis=1)[:, :n_neighbors]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        d = 1.0 - np.take_along_axis(sims, top, axis=1)
        d[:, 0] = 0.0
        indices[start:start + len(rows)] = top
        dists[start:start + len(rows)] = np.maximum(d, 0.0)
    return indices, dists


def compute_knn(X: np.ndarray, n_neighbors: int, seed: Optional[int]):
    """The cosine kNN graph both manifolds share: (indices, distances, search index or None).

    Small data gets the exact graph (as UMAP itself does below 4096 rows), which also
    spares pynndescent's long first-use compilation; larger data uses NN-descent.
    """
    if len(X) <= EXACT_KNN_MAX_ROWS:
        indices, dists = exact_cosine_knn(X, n_neighbors)
        return indices, dists, None
    from umap.umap_ import nearest_neighbors

    random_state = np.random.RandomState(seed) if seed is not None else None
    return nearest_neighbors(X, n_neighbors, METRIC, {}, False, random_state, low_memory=True,
                             n_jobs=1 if seed is not None else -1)


def fit_manifold(X: np.ndarray, knn, *, n_components: int, min_dist: float, n_neighbors: int,
                 seed: Optional[int], n_epochs: Optional[int] = None,
                 reporter: Optional[_EpochReporter] = None) -> np.ndarray:
    """One UMAP fit on the shared kNN graph; returns float32 (N × n_components)."""
    import umap

    tqdm_kwds = {"disable": reporter is None, "bar_format": "{n}/{total}", "mininterval": 0.5}
    if reporter is not None:
        tqdm_kwds["file"] = reporter
    model = umap.UMAP(
        n_neighbors=n_neighbors, n_components=n_components, min_dist=min_dist, metric=METRIC,
        random_state=seed, n_epochs=n_epochs, precomputed_knn=knn, low_memory=True,
        tqdm_kwds=tqdm_kwds, verbose=False,
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by random_state" and small-data spectral fallbacks are expected.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        coords = model.fit_transform(X)
    coords = np.asarray(coords, dtype=np.float32)
    if not np.isfinite(coords).all():
        raise RuntimeError("UMAP produced non-finite coordinates; check the embeddings for duplicates/NaNs")
    return coords


def _fit_side_by_side(n_rows: int, seed: Optional[int], setting: str) -> bool:
    """Whether to fit the two manifolds in two processes at once.

    A seeded fit runs on one thread, so on a multi-core machine the display fit can go
    to a second process while this one fits the cluster manifold: the same two
    deterministic fits, about half the wall time. Unseeded fits already use every core.
    Small data is not worth the second process's start-up.
    """
    if setting == "never" or seed is None:
        return False
    if setting == "always":
        return True
    from pipeline.embedders.onnx import available_cores

    return available_cores() >= 2 and n_rows >= PARALLEL_FITS_MIN_ROWS


def _timed_fit(X: np.ndarray, knn, kwargs: dict) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    coords = fit_manifold(X, knn, **kwargs)
    return coords, time.perf_counter() - started


def _fit_both_side_by_side(X, knn, display_args: dict, cluster_args: dict, progress: Progress,
                           timings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Display fit in a spawned worker, cluster fit here; the worker dies with a cancel or error."""
    import multiprocessing

    # the search index is not needed for fitting and is costly to pickle
    graph = (knn[0], knn[1], None)
    progress.update(20, 100, "fitting the 2-D display and the cluster manifold side by side")
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # leaving the block terminates the worker
        pending = pool.apply_async(_timed_fit, (X, graph, display_args))
        t = time.perf_counter()
        cluster = fit_manifold(X, knn, **cluster_args, reporter=_EpochReporter(
            progress, 20, 70, f"cluster {cluster_args['n_components']}-D (display 2-D alongside)"))
        timings["cluster_fit_s"] = round(time.perf_counter() - t, 3)
        while not pending.ready():
            progress.update(92, 100, "waiting for the display manifold")
            pending.wait(0.5)
        display, seconds = pending.get()
    timings["display_fit_s"] = round(seconds, 3)
    return display, cluster


def run_umap(
    dataset: Dataset,
    config: Optional[UmapConfig] = None,
    progress: Optional[Progress] = None,
    embedding_id: Optional[str] = None,
) -> tuple[str, str]:
    """Fit both manifolds from ``embedding_id`` (latest when None); returns (display_id, cluster_id)."""
    from pipeline.embed import load_embeddings

    config = config or UmapConfig()
    progress = progress or null_progress("umap")
    started = time.perf_counter()
    embedding_id = dataset.require("embedding", embedding_id)
    X = load_embeddings(dataset, embedding_id)
    if not np.isfinite(X).all():
        raise ValueError(f"{embedding_id} contains NaN/inf values; embed again")
    n = len(X)
    k = effective_n_neighbors(n, config.n_neighbors)
    seed = config.seed
    timings: dict[str, float] = {}

    progress.update(0, 100, f"kNN graph ({n} points, k={k})")
    t = time.perf_counter()
    knn = compute_knn(X, k, seed)
    timings["knn_s"] = round(time.perf_counter() - t, 3)

    display_args = dict(n_components=2, min_dist=config.min_dist, n_neighbors=k, seed=seed,
                        n_epochs=config.n_epochs)
    cluster_args = dict(n_components=config.cluster_dimensions, min_dist=CLUSTER_MIN_DIST, n_neighbors=k,
                        seed=seed, n_epochs=config.n_epochs)
    side_by_side = _fit_side_by_side(n, seed, config.parallel_fits)
    if side_by_side:
        display, cluster = _fit_both_side_by_side(X, knn, display_args, cluster_args, progress, timings)
    else:
        progress.update(20, 100, "display manifold (2-D)")
        t = time.perf_counter()
        display = fit_manifold(X, knn, **display_args, reporter=_EpochReporter(progress, 20, 30, "display 2-D"))
        timings["display_fit_s"] = round(time.perf_counter() - t, 3)
        progress.update(50, 100, f"cluster manifold ({config.cluster_dimensions}-D)")
        t = time.perf_counter()
        cluster = fit_manifold(X, knn, **cluster_args, reporter=_EpochReporter(
            progress, 50, 45, f"cluster {config.cluster_dimensions}-D"))
        timings["cluster_fit_s"] = round(time.perf_counter() - t, 3)
    progress.update(95, 100, "writing")
    del X, knn

    xy, lo, hi = scale_to_unit(display)
    display_df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})
    cluster_df = pd.DataFrame({f"dim_{i}": cluster[:, i] for i in range(cluster.shape[1])})
    common = {
        "embedding_id": embedding_id,
        "metric": METRIC,
        "n_neighbors": k,
        "n_neighbors_requested": config.n_neighbors,
        "seed": seed,
        "n_epochs": config.n_epochs,
        "shared_knn": True,
        "fits_side_by_side": side_by_side,
    }
    params = config.to_dict()
    inputs = {"embedding_id": embedding_id}
    timings["total_s"] = round(time.perf_counter() - started, 3)

    with dataset.new_artifact("umap") as disp, dataset.new_artifact("umap") as clus:
        disp.write_parquet(display_df)
        _write_png(xy, disp.path(".png"))
        disp.write_sidecar(
            {**common, "purpose": "display", "n_components": 2, "min_dist": config.min_dist,
             "scaled": "per-axis [-1, 1]", "columns": ["x", "y"], "min_values": lo, "max_values": hi,
             "cluster_umap_id": clus.id},
            params=params, inputs=inputs, rows=n,
            timings={"knn_s": timings["knn_s"], "fit_s": timings["display_fit_s"], "total_s": timings["total_s"]},
        )
        clus.write_parquet(cluster_df)
        clus.write_sidecar(
            {**common, "purpose": "cluster", "n_components": int(cluster.shape[1]), "min_dist": CLUSTER_MIN_DIST,
             "columns": list(cluster_df.columns),
             "min_values": cluster.min(axis=0).astype(float).tolist(),
             "max_values": cluster.max(axis=0).astype(float).tolist(),
             "display_umap_id": disp.id},
            params=params, inputs=inputs, rows=n,
            timings={"knn_s": timings["knn_s"], "fit_s": timings["cluster_fit_s"], "total_s": timings["total_s"]},
        )
    progress.update(100, 100, f"{disp.id} (display), {clus.id} (cluster)")
    return disp.id, clus.id


def _write_png(xy: np.ndarray, path: Path) -> None:
    """A small scatter of the display manifold for eyeballing (never published)."""

    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.scatter(xy[:, 0], xy[:, 1], s=0.5 if len(xy) > 20_000 else 2, c="#1f4e79",
               alpha=0.4 if len(xy) > 20_000 else 0.7, linewidths=0, rasterized=True)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_axis_off()
    fig.savefig(path, format="png")


def load_umap(dataset: Dataset, umap_id: Optional[str] = None, purpose: str = "display") -> pd.DataFrame:
    """The coordinates of ``umap_id`` (latest of ``purpose`` when None): x,y or dim_0..dim_k."""
    umap_id = dataset.require("umap", umap_id, purpose=purpose)
    path = dataset.artifact_path(umap_id, ".parquet")
    if not path.is_file():
        raise WorkspaceError(f"{umap_id} of dataset '{dataset.name}' has no {path.name}; run umap again")
    return pd.read_parquet(path)
