"""How many epochs the cluster manifold needs, judged across seeds (real sample or synthetic).

One seed per epoch count can mislead on small data: two seeds at the same count already
disagree by a few ARI points. So for each epoch count this fits the 10-D cluster manifold
with several seeds from the same kNN graph and spectral initialisation, clusters each fit
exactly as the stage does (HDBSCAN, default settings, noise assigned) and reports:

* ``ari_to_reference``: mean (and min) ARI between this count's runs and the reference
  count's runs (the first in ``--epochs``), over all pairs of different seeds;
* ``ari_within``: mean ARI among this count's own runs, the floor seed noise sets;
* clusters, HDBSCAN noise share, fit time; AMI against the generator's topics for synthetic data.

An epoch count whose ``ari_to_reference`` matches the reference's ``ari_within`` finds the
same clusters as the reference, as far as seeds can tell.

    .venv/bin/python benchmarks/bench_cluster_epochs.py                 # the bundled sample (real tweets)
    .venv/bin/python benchmarks/bench_cluster_epochs.py --rows 10000    # a synthetic archive

Writes ``benchmarks/results/cluster-epochs-<sample|rows>.json``. ~2 min on the sample, ~8 min at 10K.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))

SAMPLE = ROOT / "assets" / "sample" / "twitter-archive.zip"
WORK = HERE / "work" / "cluster-epochs"
SEEDS = (42, 7, 3, 11, 13, 17)


def _sample_dataset():
    from pipeline.core.workspace import Workspace
    from pipeline.stages.embed.stage import run_embed
    from pipeline.stages.ingest import ingest_archive

    workspace = Workspace(WORK / "sample" / "data")
    if "sample" in workspace.dataset_names():
        ds = workspace.dataset("sample")
        if ds.latest("embedding"):
            return ds
    ds = ingest_archive(SAMPLE, workspace, "sample", overwrite=True)
    run_embed(ds)
    return ds


def _clusters(coords: np.ndarray) -> tuple[np.ndarray, int, float]:
    """The stage's clustering of one manifold: (final labels, HDBSCAN clusters, noise share)."""
    from pipeline.stages.cluster.stage import ClusterConfig, effective_config, final_labels, hdbscan_tree, manifold_knn

    raw, _ = hdbscan_tree(coords, effective_config(ClusterConfig(), len(coords)))
    labels, _ = final_labels(raw, manifold_knn(coords), coords)
    return labels, int(raw.max()) + 1, float(np.mean(raw < 0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=0, help="synthetic archive size (0 = the bundled sample)")
    parser.add_argument("--epochs", default="500,200,100,30", help="epoch counts; the first is the reference")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help=f"runs per count (up to {len(SEEDS)})")
    args = parser.parse_args(argv)

    import pandas as pd
    from result_file import write_result
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    from pipeline.stages.embed.stage import load_embeddings
    from pipeline.stages.umap.fit import compute_knn, embed_graph, fuzzy_graph, initial_layout, spectral_init

    load = [round(os.getloadavg()[0], 2)]
    if args.rows:
        from bench_umap_display import _dataset
        from synth_archive import dominant_topic

        ds = _dataset(args.rows, 0)
        texts = pd.read_parquet(ds.path / "input.parquet", columns=["text"])["text"]
        truth = np.array([dominant_topic(t) for t in texts])
    else:
        ds, truth = _sample_dataset(), None
    X = load_embeddings(ds)
    k = 15
    graph = fuzzy_graph(len(X), compute_knn(X, k, SEEDS[0]), k)
    spectral = spectral_init(X, graph, 10, SEEDS[0])

    counts = [int(e) for e in args.epochs.split(",")]
    runs: dict[int, list[dict]] = {}
    for epochs in counts:
        runs[epochs] = []
        for seed in SEEDS[:args.seeds]:
            started = time.perf_counter()
            coords = embed_graph(graph, initial_layout(spectral, 10, seed), min_dist=0.0, n_epochs=epochs, seed=seed)
            fit_s = round(time.perf_counter() - started, 2)
            labels, n_clusters, noise = _clusters(coords)
            run = {"seed": seed, "fit_s": fit_s, "n_clusters": n_clusters, "noise_share": round(noise, 4),
                   "labels": labels}
            if truth is not None:
                known = truth >= 0
                run["ami_topics"] = round(float(adjusted_mutual_info_score(truth[known], labels[known])), 4)
            runs[epochs].append(run)
    load.append(round(os.getloadavg()[0], 2))

    reference = runs[counts[0]]
    summary = []
    for epochs, group in runs.items():
        across = [adjusted_rand_score(a["labels"], b["labels"]) for a in reference for b in group if a["seed"] != b["seed"]]
        within = [adjusted_rand_score(a["labels"], b["labels"]) for a, b in itertools.combinations(group, 2)]
        row = {"epochs": epochs, "ari_to_reference_mean": round(float(np.mean(across)), 4),
               "ari_to_reference_min": round(float(np.min(across)), 4),
               "ari_within_mean": round(float(np.mean(within)), 4),
               "fit_s_median": round(float(np.median([r["fit_s"] for r in group])), 2),
               "n_clusters": [r["n_clusters"] for r in group],
               "noise_share_mean": round(float(np.mean([r["noise_share"] for r in group])), 4)}
        if truth is not None:
            row["ami_topics_mean"] = round(float(np.mean([r["ami_topics"] for r in group])), 4)
        summary.append(row)
        print(row, flush=True)

    write_result(f"cluster-epochs-{args.rows or 'sample'}", {
        "benchmark": "cluster-epochs", "data": "synthetic" if args.rows else "bundled sample (real tweets)",
        "rows": len(X), "reference_epochs": counts[0], "seeds": list(SEEDS[:args.seeds]), "n_neighbors": k,
        "embedding_model": ds.sidecar(ds.latest("embedding"))["model_id"], "summary": summary,
        "load_1m_start_end": load,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
