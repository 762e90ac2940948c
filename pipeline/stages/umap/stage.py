"""UMAP stage: one cosine kNN graph -> a 2-D display manifold and a 10-D cluster manifold.

The kNN graph and UMAP's fuzzy graph are computed once and shared by both fits
(``pipeline.stages.umap.fit``); each manifold then gets its spectral initialisation and its epochs. The
display manifold (``purpose=display``) has ``x, y`` scaled per axis to [-1, 1]; the cluster
manifold (``purpose=cluster``, ``min_dist=0``) keeps raw ``dim_0..dim_9`` for HDBSCAN. Each
is a ``umap-NNN`` artifact whose sidecar names its sibling. A seed makes the output
reproducible (each epoch loop runs on two threads in a way that gives the same bytes on any
machine, ``pipeline.stages.umap.epochs``, and the two fits run side by side in two
processes); ``seed=None`` uses umap-learn's own parallel loop.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

# Before numba is imported anywhere: compile UMAP's kernels once per machine, not per process.
# isort: off
import pipeline.core.numba_env  # noqa: F401
# isort: on

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import param  # noqa: E402

from pipeline.core.config import StageConfig  # noqa: E402
from pipeline.core.errors import LineageError  # noqa: E402
from pipeline.core.machine import available_cores  # noqa: E402
from pipeline.core.nearest import n_cells  # noqa: E402
from pipeline.core.progress import Progress, null_progress  # noqa: E402
from pipeline.core.workspace import Dataset  # noqa: E402
from pipeline.stages import lineage  # noqa: E402
from pipeline.stages.embed.stage import load_embeddings  # noqa: E402
from pipeline.stages.umap.artifact import load_umap  # noqa: E402,F401  (re-exported: the stage's reader)
from pipeline.stages.umap.fit import (  # noqa: E402
    CLUSTER_EPOCHS_LARGE,
    CLUSTER_EPOCHS_SMALL,
    DISPLAY_EPOCHS_LARGE,
    DISPLAY_LARGE_ROWS,
    KNN_PROBE,
    METRIC,
    cluster_epochs,
    compute_knn,
    display_epochs,
    embed_graph,
    fuzzy_graph,
    initial_layout,
    spectral_init,
    uses_exact_knn,
)

MIN_ROWS = 15
PARALLEL_FITS_MIN_ROWS = 5_000  # below this a second process costs more than it saves
CLUSTER_MIN_DIST = 0.0


class UmapConfig(StageConfig):
    """How the embeddings are laid out: one kNN graph, a 2-D map and a 10-D clustering space."""

    # 15 (umap-learn's default) rather than 25: at 50K and 212K every step is faster (212K: kNN
    # 30 -> 13 s, 2-D spectral 46 -> 28 s, display fit 107 -> 88 s) and the map keeps more of each
    # tweet's neighbours, with the same topic scores (benchmarks/README.md, bench_umap_display.py)
    n_neighbors = param.Integer(
        default=15, bounds=(2, 200),
        doc="neighbours per point in the shared kNN graph: larger = more global structure "
            "(clamped for very small datasets)")
    min_dist = param.Number(
        default=0.1, bounds=(0.0, 1.0),
        doc="display map: how tightly points may pack (the cluster manifold always uses 0)")
    cluster_dimensions = param.Integer(
        default=lineage.CLUSTER_DIMENSIONS, bounds=lineage.CLUSTER_DIMENSIONS_RANGE,
        doc="dimensions of the manifold HDBSCAN clusters on")
    n_epochs = param.Integer(
        default=None, allow_None=True, bounds=(10, 2000),
        doc="display map: optimisation epochs; none = UMAP's default (500 up to 10K rows, 200 above), "
            f"{DISPLAY_EPOCHS_LARGE} above {DISPLAY_LARGE_ROWS:,} rows (3.8 % fewer true neighbours kept at 212K, "
            "13 % less stage time)")
    cluster_n_epochs = param.Integer(
        default=None, allow_None=True, bounds=(10, 2000),
        doc=f"cluster manifold: optimisation epochs; none = {CLUSTER_EPOCHS_SMALL} up to 10K rows, "
            f"{CLUSTER_EPOCHS_LARGE} above (the same HDBSCAN clusters as 500 epochs, or 60 at 212K)")
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
        raise LineageError(
            f"UMAP needs at least {MIN_ROWS} rows, the embedding has {n_rows}; "
            "ingest a larger archive (include likes with --include-likes)"
        )
    return int(max(2, min(n_neighbors, (n_rows - 1) // 3 if n_rows < 100 else n_rows - 1)))


def scale_to_unit(values: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    """Scale each column to [-1, 1]; returns (scaled float32, raw mins, raw maxs).

    UMAP flings small, weakly linked groups (a handful of near-identical tweets) far from the
    rest; scaled by min and max, the sample's map then used 60 % of the plot for 99 % of its
    tweets. So each axis finds its bulk: within the outer ``TAIL_SHARE`` of points on a side,
    the innermost gap wider than ``GAP_SHARE`` of the 1-99 % range cuts the tail off. The bulk maps
    linearly; points cut off get a rim of ``RIM`` where their distance is log-compressed. The
    order of points is kept, the farthest still lands on exactly ±1, and an axis without such
    a gap is a plain min-max scale.
    """
    values = np.asarray(values, dtype=np.float64)
    scaled = np.empty_like(values)
    for j in range(values.shape[1]):
        scaled[:, j] = _scale_axis(values[:, j])
    lo, hi = values.min(axis=0), values.max(axis=0)
    return scaled.astype(np.float32), lo.astype(float).tolist(), hi.astype(float).tolist()


RIM = 0.08  # share of each half-axis given to points cut off from the bulk
TAIL_SHARE = 0.02  # at most this share of points on a side can be cut off
GAP_SHARE = 0.3  # a gap wider than this share of the 1-99 % range cuts (a normal tail: ~0.5 % chance)


def bulk_edges(v: np.ndarray) -> tuple[float, float]:
    """(low, high) ends of the bulk of ``v``: min and max unless a wide gap cuts a far tail off."""
    s = np.sort(np.asarray(v, dtype=np.float64))
    n = len(s)
    spread = float(np.quantile(s, 0.99) - np.quantile(s, 0.01))
    tail = int(TAIL_SHARE * n)
    if n < 3 or spread <= 0 or tail < 1:
        return float(s[0]), float(s[-1])
    wide = np.diff(s) > GAP_SHARE * spread
    low = np.flatnonzero(wide[:tail])
    high = np.flatnonzero(wide[n - 1 - tail:])
    return (float(s[low[-1] + 1]) if len(low) else float(s[0]),
            float(s[n - 1 - tail + high[0]]) if len(high) else float(s[-1]))


def _scale_axis(v: np.ndarray) -> np.ndarray:
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return np.zeros_like(v)
    edge_lo, edge_hi = bulk_edges(v)
    if edge_hi <= edge_lo:
        edge_lo, edge_hi = lo, hi
    low_tail, high_tail = lo < edge_lo, hi > edge_hi
    inner_lo, inner_hi = -1.0 + RIM * low_tail, 1.0 - RIM * high_tail
    out = inner_lo + (v - edge_lo) / (edge_hi - edge_lo) * (inner_hi - inner_lo)
    bulk = edge_hi - edge_lo  # distances beyond the bulk in units of its width: scale-free
    if high_tail:
        far = v > edge_hi
        out[far] = inner_hi + RIM * np.log1p((v[far] - edge_hi) / bulk) / np.log1p((hi - edge_hi) / bulk)
    if low_tail:
        far = v < edge_lo
        out[far] = inner_lo - RIM * np.log1p((edge_lo - v[far]) / bulk) / np.log1p((edge_lo - lo) / bulk)
    return np.clip(out, -1.0, 1.0)


def _release_tqdm_write_lock() -> None:
    """Release tqdm's write lock that this thread acquired in ``tqdm.refresh`` (thread lock, then process lock)."""
    from tqdm import tqdm

    for lock in reversed(getattr(tqdm.get_lock(), "locks", [])):
        with contextlib.suppress(AssertionError, RuntimeError, ValueError):  # not held: nothing to undo
            lock.release()


class _EpochReporter(io.TextIOBase):
    """A tqdm ``file`` that turns UMAP's epoch counter into progress updates (and cancels)."""

    _COUNT = re.compile(r"(\d+)/(\d+)")

    def __init__(self, progress: Progress, start: float, span: float, label: str):
        self.progress, self.start, self.span, self.label = progress, start, span, label
        self.stopped = False

    def write(self, text: str) -> int:
        found = self._COUNT.findall(text)
        if found and not self.stopped:
            n, total = (int(x) for x in found[-1])
            if total and n < total:
                try:
                    self.progress.update(self.start + self.span * n / total, 100,
                                         f"{self.label}: epoch {n}/{total}")
                except BaseException:
                    # We raise from inside tqdm.refresh(), which holds tqdm's process-wide write lock
                    # and does not release it on an exception: left held, every later progress bar
                    # in another thread (the studio's next job) would wait forever.
                    self.stopped = True
                    _release_tqdm_write_lock()
                    raise
        return len(text)

    def flush(self) -> None:
        pass


def _fit_side_by_side(n_rows: int, seed: Optional[int], setting: str) -> bool:
    """Whether to fit the two manifolds in two processes at once.

    The display fit can go to a second process while this one fits the cluster manifold:
    the same two deterministic fits in less wall time (each fit's two threads do not keep
    two cores fully busy). Unseeded fits use umap-learn's parallel loop in one process.
    Small data is not worth the second process's start-up.
    """
    if setting == "never" or seed is None:
        return False
    if setting == "always":
        return True
    return available_cores() >= 2 and n_rows >= PARALLEL_FITS_MIN_ROWS


def _warm_up() -> None:
    """Load the compiled epoch loop in the worker while the parent solves the 2-D spectral layout."""
    import scipy.sparse

    ring = scipy.sparse.diags([np.ones(19), np.ones(19)], [1, -1], shape=(20, 20), format="csr")
    init = np.random.RandomState(0).normal(size=(20, 2)).astype(np.float32)
    embed_graph(ring, init, min_dist=0.1, n_epochs=11, seed=0)


class _CoresWhenSiblingDone:
    """Threads for a fit running beside its sibling: one core each, both once the sibling is done.

    The sibling says so with a flag file (the two fits are two processes). Results do not depend
    on the thread count, only the wall time does.
    """

    def __init__(self, sibling_done: str, cores: int):
        self.sibling_done, self.cores = sibling_done, cores

    def __call__(self) -> int:
        return self.cores if os.path.exists(self.sibling_done) else 1


def _timed_embed(graph, init: np.ndarray, kwargs: dict, done_flag: Optional[str] = None) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    try:
        coords = embed_graph(graph, init, **kwargs)
    finally:
        if done_flag:
            Path(done_flag).touch()
    return coords, time.perf_counter() - started


@contextlib.contextmanager
def _display_worker(enabled: bool):
    """A spawned one-process pool for the display fit (or None).

    Leaving the block normally lets the worker exit; an error or a cancel kills it at once.
    """
    if not enabled:
        yield None
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply_async(_warm_up)
        yield pool
        pool.close()  # a killed worker leaves a semaphore for the resource tracker to complain about
        pool.join()


def _tqdm(progress: Progress, start: float, span: float, label: str) -> dict:
    return {"disable": False, "bar_format": "{n}/{total}", "mininterval": 0.5,
            "file": _EpochReporter(progress, start, span, label)}


def run_umap(
    dataset: Dataset,
    config: Optional[UmapConfig] = None,
    progress: Optional[Progress] = None,
    embedding_id: Optional[str] = None,
) -> tuple[str, str]:
    """Fit both manifolds from ``embedding_id`` (latest when None); returns (display_id, cluster_id)."""
    config = config or UmapConfig()
    progress = progress or null_progress("umap")
    started = time.perf_counter()
    embedding_id = dataset.require("embedding", embedding_id)
    X = load_embeddings(dataset, embedding_id)
    if not np.isfinite(X).all():
        raise LineageError(f"{embedding_id} contains NaN/inf values; embed again")
    n = len(X)
    k = effective_n_neighbors(n, config.n_neighbors)
    exact_knn = uses_exact_knn(n, X.shape[1])
    seed = config.seed
    dims = config.cluster_dimensions
    epochs = {"display": display_epochs(n, config.n_epochs),
              "cluster": cluster_epochs(n, config.cluster_n_epochs)}
    side_by_side = _fit_side_by_side(n, seed, config.parallel_fits)
    timings: dict[str, float] = {}

    note = "" if exact_knn else f", searching {KNN_PROBE} cells of {n_cells(n)} per point"
    progress.update(0, 100, f"kNN graph ({n:,} points, k={k}{note})")
    t = time.perf_counter()
    knn = compute_knn(X, k, seed)
    timings["knn_s"] = round(time.perf_counter() - t, 3)

    progress.update(25, 100, "fuzzy graph (shared by both manifolds)")
    t = time.perf_counter()
    graph = fuzzy_graph(n, knn, k)
    del knn
    timings["graph_s"] = round(time.perf_counter() - t, 3)
    # the display worker starts only now: its start-up (imports, kernels) would slow the kNN
    # and graph steps, which use both cores, more than it saves
    with _display_worker(side_by_side) as worker:
        display_args = dict(min_dist=config.min_dist, n_epochs=epochs["display"], seed=seed)
        cluster_args = dict(min_dist=CLUSTER_MIN_DIST, n_epochs=epochs["cluster"], seed=seed)
        # Each manifold starts from its own spectral layout, as in umap-learn. The 2-D one is
        # solved first so the display fit (the longer one) starts while the 10-D one is solved.
        progress.update(30, 100, "spectral initialisation")
        t = time.perf_counter()
        display_init = initial_layout(spectral_init(X, graph, 2, seed), 2, seed)
        timings["display_spectral_s"] = round(time.perf_counter() - t, 3)
        if worker is not None:
            flags = tempfile.mkdtemp(prefix="tweetscope-umap-")
            display_flag, cluster_flag = os.path.join(flags, "display.done"), os.path.join(flags, "cluster.done")
            pending = worker.apply_async(_timed_embed, (graph, display_init, {
                **display_args, "threads": _CoresWhenSiblingDone(cluster_flag, available_cores())}, display_flag))
        t = time.perf_counter()
        # one BLAS thread: beside the display fit, ARPACK's second thread only contended for its
        # core (212K: 10-D solve 29.5 -> 18.8 s, stage 169 -> 163 s). Fits one after the other
        # use one thread too, so the two ways give the same bytes.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            cluster_init = initial_layout(spectral_init(X, graph, dims, seed), dims, seed)
        timings["cluster_spectral_s"] = round(time.perf_counter() - t, 3)
        del X

        if worker is not None:
            try:
                cluster, cluster_s = _timed_embed(graph, cluster_init, {
                    **cluster_args, "threads": _CoresWhenSiblingDone(display_flag, available_cores()),
                    "tqdm_kwds": _tqdm(progress, 35, 55, f"cluster {dims}-D (display 2-D alongside)")}, cluster_flag)
                while not pending.ready():
                    progress.update(92, 100, "waiting for the display manifold")
                    pending.wait(0.5)
                display, display_s = pending.get()
            finally:
                shutil.rmtree(flags, ignore_errors=True)
        else:
            display, display_s = _timed_embed(graph, display_init, {
                **display_args, "threads": available_cores(), "tqdm_kwds": _tqdm(progress, 35, 25, "display 2-D")})
            cluster, cluster_s = _timed_embed(graph, cluster_init, {
                **cluster_args, "threads": available_cores(),
                "tqdm_kwds": _tqdm(progress, 60, 35, f"cluster {dims}-D")})
        timings["display_fit_s"], timings["cluster_fit_s"] = round(display_s, 3), round(cluster_s, 3)
    progress.update(95, 100, "writing")
    del graph

    xy, lo, hi = scale_to_unit(display)
    display_df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})
    cluster_df = pd.DataFrame({f"dim_{i}": cluster[:, i] for i in range(cluster.shape[1])})
    common = {
        "embedding_id": embedding_id,
        "metric": METRIC,
        "n_neighbors": k,
        "n_neighbors_requested": config.n_neighbors,
        "seed": seed,
        "shared_knn": True,
        "init": "spectral",
        "knn": "exact" if exact_knn else "cells",
        "knn_probe": None if exact_knn else KNN_PROBE,
        "fits_side_by_side": side_by_side,
    }
    # what ran, not what was asked for (epoch defaults and 'auto' resolved)
    params = {**config.to_dict(), "n_epochs": epochs["display"], "cluster_n_epochs": epochs["cluster"],
              "parallel_fits": "always" if side_by_side else "never"}
    inputs = {"embedding_id": embedding_id}
    timings["total_s"] = round(time.perf_counter() - started, 3)
    shared_timings = {key: timings[key] for key in ("knn_s", "graph_s")}

    with dataset.new_artifact("umap") as disp, dataset.new_artifact("umap") as clus:
        disp.write_parquet(display_df)
        _write_png(xy, disp.path(".png"))
        disp.write_sidecar(
            {**common, "purpose": lineage.DISPLAY, "n_components": lineage.DISPLAY_DIMENSIONS,
             "min_dist": config.min_dist, "n_epochs": epochs["display"],
             "scaled": f"per-axis [-1, 1]; points cut off from the bulk by a wide gap in a log-compressed rim of {RIM}",
             "columns": ["x", "y"], "min_values": lo, "max_values": hi,
             "cluster_umap_id": clus.id},
            params=params, inputs=inputs, rows=n,
            timings={**shared_timings, "spectral_s": timings["display_spectral_s"], "fit_s": timings["display_fit_s"],
                     "total_s": timings["total_s"]},
        )
        clus.write_parquet(cluster_df)
        clus.write_sidecar(
            {**common, "purpose": lineage.CLUSTER, "n_components": int(cluster.shape[1]), "min_dist": CLUSTER_MIN_DIST,
             "n_epochs": epochs["cluster"], "columns": list(cluster_df.columns),
             "min_values": cluster.min(axis=0).astype(float).tolist(),
             "max_values": cluster.max(axis=0).astype(float).tolist(),
             "display_umap_id": disp.id},
            params=params, inputs=inputs, rows=n,
            timings={**shared_timings, "spectral_s": timings["cluster_spectral_s"], "fit_s": timings["cluster_fit_s"],
                     "total_s": timings["total_s"]},
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


def run(dataset: Dataset, config: UmapConfig, inputs: dict, progress: Progress) -> str:
    """The stage contract: both manifolds; returns the display ``umap-NNN`` (its sidecar names the sibling)."""
    display_id, _cluster_id = run_umap(dataset, config, progress, **inputs)
    return display_id
