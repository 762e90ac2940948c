"""HDBSCAN fit and slider re-cluster latency at scale, on a synthetic 10-D cluster manifold.

Needs no embedding or UMAP: it draws ``--rows`` points from ~``--topics`` anisotropic 10-D
blobs of uneven size plus 10 % background (what a ``min_dist=0`` UMAP manifold of tweets
looks like), fits HDBSCAN once the way ``run_cluster`` does (tree + 10-D kNN for noise),
then times :func:`pipeline.stages.cluster.stage` re-extraction (``labels_from_tree`` + noise assignment
+ renumbering — exactly what ``recluster`` does per call once the tree is cached) for
several ``min_cluster_size`` values. Writes ``benchmarks/results/recluster-<rows>.json``.

    .venv/bin/python benchmarks/bench_recluster.py --rows 212000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("NUMBA_CACHE_DIR", str(HERE.parent / ".numba-cache"))


def synthetic_manifold(rows: int, topics: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, topics) + 0.2
    weights /= weights.sum()
    n_background = rows // 10
    counts = rng.multinomial(rows - n_background, weights)
    centres = rng.uniform(-8, 8, size=(topics, 10))
    parts = [centres[i] + rng.standard_normal((c, 10)) * rng.uniform(0.1, 0.6, size=10)
             for i, c in enumerate(counts)]
    parts.append(rng.uniform(-9, 9, size=(n_background, 10)))
    X = np.vstack(parts).astype(np.float32)
    return X[rng.permutation(len(X))]


def main(argv=None) -> int:
    from pipeline.stages.cluster.stage import (
        ClusterConfig,
        auto_min_cluster_size,
        final_labels,
        hdbscan_tree,
        labels_from_tree,
        manifold_knn,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=212_000)
    parser.add_argument("--topics", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X = synthetic_manifold(args.rows, args.topics, args.seed)
    config = ClusterConfig(min_cluster_size=auto_min_cluster_size(len(X)))
    load = os.getloadavg()[0]
    t, c = time.perf_counter(), time.process_time()
    raw, tree = hdbscan_tree(X, config)
    fit = {"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2)}
    t = time.perf_counter()
    knn = manifold_knn(X)
    fit["knn_s"] = round(time.perf_counter() - t, 2)
    fit["n_clusters"] = int(raw.max()) + 1
    fit["noise_share"] = round(float((raw < 0).mean()), 3)

    t = time.perf_counter()
    labels_from_tree(tree, config.min_cluster_size)  # first call loads the compiled tree code
    fit["first_extract_s"] = round(time.perf_counter() - t, 3)
    calls = []
    for factor in (1.0, 2.0, 0.5, 1.5, 0.75, 3.0):
        size = max(2, int(config.min_cluster_size * factor))
        t, c = time.perf_counter(), time.process_time()
        labels = labels_from_tree(tree, size)
        extract = time.perf_counter() - t
        cluster, _ = final_labels(labels, knn, X)
        calls.append({"min_cluster_size": size, "s": round(time.perf_counter() - t, 4),
                      "extract_s": round(extract, 4), "cpu_s": round(time.process_time() - c, 4),
                      "n_clusters": int(cluster.max()) + 1, "noise_share": round(float((labels < 0).mean()), 3)})
        print(calls[-1], flush=True)
    agree = bool((labels_from_tree(tree, config.min_cluster_size) == raw).all())
    result = {
        "benchmark": "recluster", "rows": len(X), "topics": args.topics, "seed": args.seed,
        "min_cluster_size": config.min_cluster_size, "min_samples": config.min_samples,
        "hdbscan_fit": fit, "recluster_calls": calls,
        "max_call_s": max(c["s"] for c in calls), "median_call_s": sorted(c["s"] for c in calls)[len(calls) // 2],
        "tree_labels_equal_fit_labels": agree, "target_call_s": 0.3,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_avg_1m_before": round(load, 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / f"recluster-{args.rows}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("hdbscan_fit", "max_call_s", "median_call_s",
                                             "tree_labels_equal_fit_labels")}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
