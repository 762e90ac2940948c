"""Cheaper display maps, measured (issue #18 item 4): PCA init, fewer epochs, fewer neighbours.

On one synthetic archive (``synth_archive.py``, realistic replies; embedded with the default
local model) it fits the 2-D display map several ways, one after the other in this process
(so neighbouring fits see the same machine load), from the same embeddings:

* ``init``: the stage's spectral initialisation or PCA of the embeddings (umap-learn's
  ``init="pca"``: sklearn PCA, then the same noisy rescale), both timed;
* ``epochs``: 200 (umap-learn's default above 10K rows) or 100;
* ``n_neighbors``: 25 (the stage's default) or 15 (its own kNN graph and fuzzy graph, timed).

Each map is scored: kNN preservation (share of each point's 15 map neighbours among its 24
embedding neighbours), topic 10-NN accuracy on the map, and AMI against the generator's
topics of HDBSCAN (default settings) on the 2-D map. ``n_neighbors`` also changes the
cluster manifold, so the 10-D fit is clustered and scored (AMI) for both values, at each
``--cluster-epochs`` count (epochs[:seed]; ARI against the first).

    .venv/bin/python benchmarks/bench_umap_display.py --rows 50000
    .venv/bin/python benchmarks/bench_umap_display.py --rows 212000 --runs spectral:200:25,spectral:200:15,spectral:100:15

The kNN kernels are compiled on a small array first, so both kNN timings are like for like. Writes ``benchmarks/results/umap-display-<rows>.json``. ~10 min at 50K on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))

WORK = HERE / "work" / "umap-display"
SEED = 42
DISPLAY_RUNS = (("spectral", 200, 25), ("pca", 200, 25), ("spectral", 100, 25), ("pca", 100, 25),
                ("spectral", 200, 15), ("pca", 100, 15))


def _runs(text: str) -> tuple:
    runs = []
    for item in text.split(","):
        init, epochs, k = item.split(":")
        if init not in ("spectral", "pca") or int(k) not in (25, 15):
            raise argparse.ArgumentTypeError(f"{item}: want spectral|pca:<epochs>:25|15")
        runs.append((init, int(epochs), int(k)))
    return tuple(runs)


def _dataset(rows: int, seed: int):
    """The embedded synthetic dataset of this size (built once, cached under ``work/``)."""
    from synth_archive import generate_archive

    from pipeline.core.workspace import Workspace
    from pipeline.stages.embed.stage import run_embed
    from pipeline.stages.ingest import ingest_archive

    workspace = Workspace(WORK / f"rows-{rows}-seed{seed}" / "data")
    if "bench" in workspace.dataset_names():
        ds = workspace.dataset("bench")
        if ds.latest("embedding"):
            return ds
    archive = WORK / f"synth-{rows}-seed{seed}.zip"
    if not archive.exists():
        generate_archive(archive, n_tweets=rows, seed=seed)
    ds = ingest_archive(archive, workspace, "bench", overwrite=True)
    run_embed(ds)
    return ds


def _pca_init(X: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(X).astype(np.float32)


def _timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, round(time.perf_counter() - started, 2)


def _map_ami(coords: np.ndarray, truth: np.ndarray) -> float:
    from bench_umap_epochs import _cluster_scores

    return _cluster_scores(coords, truth)[1]["ami_topics"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0, help="synthetic archive seed")
    parser.add_argument("--runs", type=_runs, default=DISPLAY_RUNS,
                        help="display fits as init:epochs:n_neighbors,... (default: all six)")
    parser.add_argument("--cluster-epochs", default="30,60",
                        help="cluster-manifold fits as epochs[:seed], e.g. 60,60:7,30 (each scored; ARI against the first)")
    args = parser.parse_args(argv)

    import pandas as pd
    from bench_umap_epochs import _cluster_scores, _display_scores
    from synth_archive import dominant_topic

    from pipeline.stages.embed.stage import load_embeddings
    from pipeline.stages.umap.fit import compute_knn, embed_graph, fuzzy_graph, initial_layout, spectral_init
    from pipeline.stages.umap.stage import _write_png, scale_to_unit

    load = [round(os.getloadavg()[0], 2)]
    ds = _dataset(args.rows, args.seed)
    X = load_embeddings(ds)
    truth = np.array([dominant_topic(t) for t in pd.read_parquet(ds.path / "input.parquet", columns=["text"])["text"]])
    graphs, shared = {}, {}
    compute_knn(X[:5_000], 15, SEED)  # the kNN kernels' compilation (or cache load), outside the timings
    for k in (25, 15):
        knn, knn_s = _timed(compute_knn, X, k, SEED)
        graph, graph_s = _timed(fuzzy_graph, len(X), knn, k)
        graphs[k] = (knn, graph)
        shared[k] = {"knn_s": knn_s, "graph_s": graph_s}
        print(f"k={k}: kNN {knn_s} s, fuzzy graph {graph_s} s", flush=True)
    reference_neighbours = graphs[25][0][0][:, 1:]  # 24 embedding neighbours, as bench_umap_epochs scores
    used = sorted({k for _, _, k in args.runs}, reverse=True)  # the k=25 kNN is always built: it scores
    inits = {}
    for k in used:
        inits[("spectral", k)], shared[k]["spectral_2d_s"] = _timed(spectral_init, X, graphs[k][1], 2, SEED)
    if any(init == "pca" for init, _, _ in args.runs):
        inits[("pca", 25)], pca_s = _timed(_pca_init, X, 2, SEED)
        inits[("pca", 15)] = inits[("pca", 25)]
        for k in (25, 15):
            shared[k]["pca_2d_s"] = pca_s

    display = []
    for init, epochs, k in args.runs:
        coords, fit_s = _timed(embed_graph, graphs[k][1], initial_layout(inits[(init, k)], 2, SEED),
                               min_dist=0.1, n_epochs=epochs, seed=SEED)
        row = {"init": init, "epochs": epochs, "n_neighbors": k, "fit_s": fit_s,
               "init_s": shared[k][f"{init}_2d_s"], "load_1m": round(os.getloadavg()[0], 2),
               **_display_scores(coords, truth, reference_neighbours, X), "map_hdbscan_ami": _map_ami(coords, truth)}
        xy = scale_to_unit(coords)[0]  # the stage's scaling, drawn as the stage draws it: look at it
        _write_png(xy, WORK / f"map-{len(X)}-{init}-{epochs}-{k}.png")
        # share of the plot the 1-99 % box of the points fills (1 = the bulk fills the plot)
        row["bulk_box_share"] = round(float(np.prod(np.quantile(xy, 0.99, axis=0) - np.quantile(xy, 0.01, axis=0)) / 4), 3)
        display.append(row)
        print("display", row, flush=True)

    from sklearn.metrics import adjusted_rand_score

    cluster = []
    for k in used:
        spectral, spectral_s = _timed(spectral_init, X, graphs[k][1], 10, SEED)
        reference = None
        for item in args.cluster_epochs.split(","):
            epochs, _, seed = item.partition(":")
            epochs, seed = int(epochs), int(seed or SEED)
            coords, fit_s = _timed(embed_graph, graphs[k][1], initial_layout(spectral, 10, seed),
                                   min_dist=0.0, n_epochs=epochs, seed=seed)
            labels, scores = _cluster_scores(coords, truth)
            reference = labels if reference is None else reference
            row = {"n_neighbors": k, "epochs": epochs, "seed": seed, "spectral_s": spectral_s, "fit_s": fit_s, **scores,
                   "ari_vs_first": round(float(adjusted_rand_score(reference, labels)), 4)}
            cluster.append(row)
            print("cluster", row, flush=True)
    load.append(round(os.getloadavg()[0], 2))

    out = HERE / "results" / f"umap-display-{args.rows}.json"
    out.write_text(json.dumps({
        "benchmark": "umap-display", "rows": len(X), "archive_seed": args.seed, "umap_seed": SEED,
        "embedding_model": ds.sidecar(ds.latest("embedding"))["model_id"],
        "rows_with_topic": round(float(np.mean(truth >= 0)), 4),
        "shared": {str(k): v for k, v in shared.items()}, "display": display, "cluster": cluster,
        "load_1m_start_end": load, "note": "fits run one after the other; the machine was shared",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
