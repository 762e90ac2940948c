"""The display fit's epoch loop and kNN graph, measured: umap-learn's vs ours (issue #18).

On one realistic synthetic archive (``synth_archive.py``, embedded with the default local
model) it fits the 2-D display map (spectral init, 200 epochs, n_neighbors 15) from the same
embeddings several ways, one after the other in this process:

* graph: ``nnd`` (umap-learn's NN-descent) or ``cells`` (the stage's coarse-cell search);
* loop: ``umap`` (umap-learn's single-threaded loop) or ``ours`` (two threads, reproducible,
  ``pipeline.stages.umap.epochs``) with a number of merges per epoch;
* the seed.

Each map is scored like ``bench_umap_display.py``: kNN preservation (plain, and tie-aware:
a map neighbour counts when it is as similar as the exact 24th embedding neighbour), topic
10-NN accuracy, and the share of the plot the bulk fills.

    .venv/bin/python benchmarks/bench_umap_loop.py --rows 50000   # ~4 min on 2 cores

Writes ``benchmarks/results/umap-loop-<rows>.json``.
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

RUNS = "nnd:umap:42,nnd:umap:7,cells:umap:42,cells:umap:7,cells:ours:42:1,cells:ours:42:8,cells:ours:7:8"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0, help="synthetic archive seed")
    parser.add_argument("--runs", default=RUNS, help="graph:loop:seed[:merges],... (default: %(default)s)")
    args = parser.parse_args(argv)

    import pandas as pd
    from bench_umap_display import _dataset
    from bench_umap_epochs import _display_scores
    from synth_archive import dominant_topic
    from umap.umap_ import find_ab_params, nearest_neighbors, simplicial_set_embedding

    from pipeline.stages.embed.stage import load_embeddings
    from pipeline.stages.umap import fit
    from pipeline.stages.umap.epochs import optimize_layout
    from pipeline.stages.umap.stage import scale_to_unit

    load = [round(os.getloadavg()[0], 2)]
    ds = _dataset(args.rows, args.seed)
    X = load_embeddings(ds)
    truth = np.array([dominant_topic(t) for t in pd.read_parquet(ds.path / "input.parquet", columns=["text"])["text"]])
    reference = fit.compute_knn(X, 25, 42)[0][:, 1:]
    a, b = find_ab_params(1.0, 0.1)
    graphs, inits = {}, {}
    runs = []
    for item in args.runs.split(","):
        graph_kind, loop, seed, *merges = item.split(":")
        if graph_kind not in graphs:
            started = time.perf_counter()
            if graph_kind == "nnd":
                indices, dists, _ = nearest_neighbors(X, 15, "cosine", {}, False, np.random.RandomState(42),
                                                      low_memory=True, n_jobs=2)
                knn = (indices, dists)
            else:
                knn = fit.compute_knn(X, 15, 42)
            knn_s = round(time.perf_counter() - started, 2)
            graphs[graph_kind] = fit.fuzzy_graph(len(X), knn, 15)
            inits[graph_kind] = fit.initial_layout(fit.spectral_init(X, graphs[graph_kind], 2, 42), 2, 42)
            print(f"{graph_kind}: kNN {knn_s} s", flush=True)
        graph, init = graphs[graph_kind], inits[graph_kind]
        started = time.perf_counter()
        if loop == "umap":
            coords, _ = simplicial_set_embedding(None, graph.tocoo(copy=True), 2, 1.0, a, b, 1.0, 5, 200, init,
                                                 np.random.RandomState(int(seed)), "cosine", {}, False, {}, False,
                                                 parallel=False, verbose=False, tqdm_kwds={"disable": True})
        else:
            coords = optimize_layout(graph, init, a=a, b=b, n_epochs=200, seed=int(seed), syncs=int(merges[0]))
        fit_s = round(time.perf_counter() - started, 2)
        xy = scale_to_unit(coords)[0]
        row = {"graph": graph_kind, "loop": loop, "seed": int(seed), "merges_per_epoch": int(merges[0]) if merges else None,
               "fit_s": fit_s, "load_1m": round(os.getloadavg()[0], 2), **_display_scores(coords, truth, reference, X),
               "bulk_box_share": round(float(np.prod(np.quantile(xy, 0.99, axis=0) - np.quantile(xy, 0.01, axis=0)) / 4), 3)}
        runs.append(row)
        print(json.dumps(row), flush=True)
    load.append(round(os.getloadavg()[0], 2))
    out = HERE / "results" / f"umap-loop-{args.rows}.json"
    out.write_text(json.dumps({
        "benchmark": "umap-loop", "rows": args.rows, "archive_seed": args.seed, "n_neighbors": 15, "epochs": 200,
        "reference": "24 embedding neighbours from the stage's k=25 graph (cells above ~30K rows)",
        "runs": runs, "load_1m_start_end": load, "note": "fits run one after the other",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
