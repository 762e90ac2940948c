"""A display map fitted on a subsample, the rest placed: faster, and how much worse (issue #18 item 4)?

On a dataset the UMAP stage has run on (by default the 212K compare dataset in
``work/compare``), it fits the 2-D display map the stage's way (own kNN graph, fuzzy graph,
spectral init, the stage's epoch count) on a random subsample of ``--sizes`` rows, then places
every other tweet where its 15 nearest subsample tweets are (``pipeline.update.placement``:
the similarity-weighted mean of their coordinates, what an archive update does). Each map is
scored as ``bench_umap_display.py`` scores (kNN preservation, tie-aware, topic 10-NN accuracy,
HDBSCAN AMI on the map against the generator's topics), next to the stage's own full map of
the same dataset. The cluster manifold is untouched: it needs the full kNN graph anyway.

    .venv/bin/python benchmarks/bench_umap_subsample.py [--sizes 50000,100000]

Writes ``benchmarks/results/umap-subsample-<rows>.json``. ~10 min at 212K on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))

SEED = 42


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(HERE / "work" / "compare" / "ours"))
    parser.add_argument("--dataset", default="synth-212000")
    parser.add_argument("--sizes", default="50000,100000", help="subsample sizes to fit the map on")
    args = parser.parse_args(argv)

    import pandas as pd
    from bench_umap_display import _map_ami, _timed
    from bench_umap_epochs import _display_scores
    from result_file import write_result
    from synth_archive import dominant_topic

    from pipeline.core.workspace import Workspace
    from pipeline.stages.embed.stage import load_embeddings
    from pipeline.stages.lineage import resolve_manifolds
    from pipeline.stages.umap.artifact import load_umap
    from pipeline.stages.umap.fit import (
        compute_knn,
        display_epochs,
        embed_graph,
        fuzzy_graph,
        initial_layout,
        spectral_init,
    )
    from pipeline.update.placement import nearest_old, place

    load = [round(os.getloadavg()[0], 2)]
    ds = Workspace(args.data_dir).dataset(args.dataset)
    X = load_embeddings(ds)
    truth = np.array([dominant_topic(t) for t in pd.read_parquet(ds.input_path, columns=["text"])["text"]])
    compute_knn(X[:5_000], 15, SEED)  # compile or load the kNN kernels outside the timings
    reference = compute_knn(X, 25, SEED)[0][:, 1:]  # 24 embedding neighbours, as the other benchmarks score

    display_id, _ = resolve_manifolds(ds)
    side = ds.sidecar(display_id)
    full = load_umap(ds, display_id)[["x", "y"]].to_numpy(np.float64)
    rows = [{"fit_on": len(X), "display_id": display_id, "fit_s": side.get("timings", {}).get("fit_s"),
             "epochs": display_epochs(len(X), side.get("params", {}).get("n_epochs")),
             **_display_scores(full, truth, reference, X), "map_hdbscan_ami": _map_ami(full, truth)}]
    print(rows[0], flush=True)

    rng = np.random.default_rng(SEED)
    for m in (int(s) for s in args.sizes.split(",")):
        chosen = np.sort(rng.choice(len(X), m, replace=False))
        rest = np.setdiff1d(np.arange(len(X)), chosen)
        knn, knn_s = _timed(compute_knn, X[chosen], 15, SEED)
        graph, graph_s = _timed(fuzzy_graph, m, knn, 15)
        init, init_s = _timed(spectral_init, X[chosen], graph, 2, SEED)
        epochs = display_epochs(m, None)
        sub, fit_s = _timed(embed_graph, graph, initial_layout(init, 2, SEED), min_dist=0.1, n_epochs=epochs, seed=SEED)
        (idx, sim), search_s = _timed(nearest_old, X[chosen], X[rest], 15, seed=SEED)
        placed, place_s = _timed(place, sub.astype(np.float64), idx, sim)
        coords = np.empty((len(X), 2))
        coords[chosen], coords[rest] = sub, placed
        row = {"fit_on": m, "epochs": epochs, "knn_s": knn_s, "graph_s": graph_s, "spectral_s": init_s,
               "fit_s": fit_s, "search_s": search_s, "place_s": place_s,
               "total_s": round(knn_s + graph_s + init_s + fit_s + search_s + place_s, 2),
               **_display_scores(coords, truth, reference, X), "map_hdbscan_ami": _map_ami(coords, truth)}
        rows.append(row)
        print(row, flush=True)
    load.append(round(os.getloadavg()[0], 2))

    write_result(f"umap-subsample-{len(X)}", {
        "benchmark": "umap-subsample", "dataset": f"{args.data_dir}/{args.dataset}", "rows": len(X), "seed": SEED,
        "runs": rows, "load_1m_start_end": load,
        "note": "the first run is the UMAP stage's own full display map (its fit_s from the stage's sidecar, "
                "fitted beside the cluster manifold); the others fit a subsample and place the rest",
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
