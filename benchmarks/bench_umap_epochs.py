"""How many UMAP epochs each manifold needs: quality against epochs on a synthetic archive.

Reuses the dataset ``bench_stages.py`` built (its embeddings), computes the kNN graph, the
fuzzy graph and the spectral initialisation once, then fits each manifold for several
(epochs, seed) pairs, two fits at a time:

* cluster manifold (10-D) -> HDBSCAN with the default settings -> agreement with the
  generator's topics (AMI) and with the 200-epoch reference (ARI). A second seed at 200
  epochs gives the seed-to-seed variation, the floor no epoch count can beat.
* display manifold (2-D) -> kNN preservation (share of each point's 15 map neighbours that
  are among its 24 embedding neighbours) and topic 10-NN accuracy on the map.

    .venv/bin/python benchmarks/bench_umap_epochs.py --rows 212000

writes ``benchmarks/results/umap-epochs-<rows>.json``. ~15 min at 212K on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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

SHARED = HERE / "work" / "umap-epochs"


def _runs(text: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in item.split(":")) for item in text.split(",") if item]


def _fit(job: tuple[str, int, int]) -> tuple[str, int, int, float]:
    """One manifold from the shared graph and initialisation (runs in a pool worker)."""
    import scipy.sparse

    from pipeline.stages.umap.fit import embed_graph, initial_layout

    purpose, epochs, seed = job
    graph = scipy.sparse.load_npz(SHARED / "graph.npz")
    spectral = np.load(SHARED / "spectral.npy")
    dims, min_dist = (2, 0.1) if purpose == "display" else (spectral.shape[1], 0.0)
    started = time.perf_counter()
    coords = embed_graph(graph, initial_layout(spectral, dims, seed), min_dist=min_dist, n_epochs=epochs, seed=seed)
    np.save(SHARED / f"{purpose}-e{epochs}-s{seed}.npy", coords)
    return purpose, epochs, seed, round(time.perf_counter() - started, 1)


def _cluster_scores(coords: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, dict]:
    from sklearn.metrics import adjusted_mutual_info_score

    from pipeline.stages.cluster.stage import ClusterConfig, effective_config, final_labels, hdbscan_tree, manifold_knn

    raw, _ = hdbscan_tree(coords, effective_config(ClusterConfig(), len(coords)))
    labels, _ = final_labels(raw, manifold_knn(coords), coords)
    known = truth >= 0
    return labels, {"n_clusters": int(raw.max()) + 1, "noise_share": round(float(np.mean(raw < 0)), 4),
                    "ami_topics": round(float(adjusted_mutual_info_score(truth[known], labels[known])), 4)}


def _display_scores(coords: np.ndarray, truth: np.ndarray, neighbours: np.ndarray,
                    X: np.ndarray | None = None) -> dict:
    """kNN preservation (map's 15 among the 24 embedding neighbours), topic 10-NN accuracy, and
    with ``X`` a tie-aware preservation: a map neighbour counts when it is as similar as the
    exact 24th embedding neighbour (repeated tweets make whole groups of exact ties, and which
    24 of a group a kNN graph lists is arbitrary)."""
    from sklearn.neighbors import NearestNeighbors

    sample = np.random.default_rng(0).choice(len(coords), min(20_000, len(coords)), replace=False)
    _, near = NearestNeighbors(n_neighbors=16).fit(coords).kneighbors(coords[sample])
    near = near[:, 1:]
    kept = np.mean([len(set(near[i]) & set(neighbours[s])) / near.shape[1] for i, s in enumerate(sample)])
    known = truth[sample] >= 0
    votes = truth[near[known, :10]]
    predicted = [np.bincount(v[v >= 0]).argmax() if (v >= 0).any() else -1 for v in votes]
    scores = {"knn_preservation_15": round(float(kept), 4),
              "topic_10nn_accuracy": round(float(np.mean(np.array(predicted) == truth[sample][known])), 4)}
    if X is not None:
        from pipeline.core.nearest import query_knn, unit_rows

        Xn = unit_rows(X)
        few = sample[:5_000]
        bar = query_knn(Xn, Xn[few], 25)[1][:, -1]  # itself first, then 24
        sims = np.einsum("nd,nkd->nk", Xn[few], Xn[near[:5_000]])
        scores["knn_preservation_15_ties"] = round(float(np.mean(sims >= bar[:, None] - 1e-6)), 4)
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=212_000)
    parser.add_argument("--cluster-runs", default="200:42,200:7,100:42,60:42,30:42", help="epochs:seed,...")
    parser.add_argument("--display-runs", default="200:42,200:7,150:42,100:42", help="epochs:seed,...")
    args = parser.parse_args(argv)

    import pandas as pd
    import scipy.sparse
    from synth_archive import dominant_topic

    from pipeline.core.workspace import Workspace
    from pipeline.stages.umap.fit import compute_knn, fuzzy_graph, spectral_init

    data_dir = HERE / "work" / "stages" / f"rows-{args.rows}" / "data"
    if not (data_dir / "bench").is_dir():
        raise SystemExit(f"no dataset in {data_dir}: run benchmarks/bench_stages.py --rows {args.rows} first")
    from pipeline.stages.embed.stage import load_embeddings

    ds = Workspace(data_dir).dataset("bench")
    X = load_embeddings(ds)
    truth = np.array([dominant_topic(t) for t in pd.read_parquet(ds.path / "input.parquet", columns=["text"])["text"]])
    SHARED.mkdir(parents=True, exist_ok=True)
    for old in SHARED.glob("*.npy"):
        old.unlink()
    t = time.perf_counter()
    knn = compute_knn(X, 25, 42)
    graph = fuzzy_graph(len(X), knn, 25)
    spectral = spectral_init(X, graph, 10, 42)
    scipy.sparse.save_npz(SHARED / "graph.npz", graph)
    np.save(SHARED / "spectral.npy", spectral)
    shared_s = round(time.perf_counter() - t, 1)
    print(f"shared kNN, graph and spectral init: {shared_s} s", flush=True)

    jobs = [("cluster", e, s) for e, s in _runs(args.cluster_runs)] + \
           [("display", e, s) for e, s in _runs(args.display_runs)]
    fit_s = {}
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for purpose, epochs, seed, seconds in pool.imap_unordered(_fit, jobs):
            fit_s[(purpose, epochs, seed)] = seconds
            print(f"fit {purpose} {epochs} epochs seed {seed}: {seconds} s (two fits at a time)", flush=True)

    from sklearn.metrics import adjusted_rand_score

    results = {"cluster": [], "display": []}
    reference = None
    for epochs, seed in _runs(args.cluster_runs):
        labels, scores = _cluster_scores(np.load(SHARED / f"cluster-e{epochs}-s{seed}.npy"), truth)
        reference = labels if reference is None else reference
        scores.update(epochs=epochs, seed=seed, fit_s=fit_s[("cluster", epochs, seed)],
                      ari_vs_first=round(float(adjusted_rand_score(reference, labels)), 4))
        results["cluster"].append(scores)
        print("cluster", scores, flush=True)
    for epochs, seed in _runs(args.display_runs):
        scores = _display_scores(np.load(SHARED / f"display-e{epochs}-s{seed}.npy"), truth, knn[0][:, 1:])
        scores.update(epochs=epochs, seed=seed, fit_s=fit_s[("display", epochs, seed)])
        results["display"].append(scores)
        print("display", scores, flush=True)

    out = HERE / "results" / f"umap-epochs-{args.rows}.json"
    out.write_text(json.dumps({
        "benchmark": "umap-epochs", "rows": len(X), "embedding_model": ds.sidecar(ds.latest("embedding"))["model_id"],
        "rows_with_topic": round(float(np.mean(truth >= 0)), 4), "shared_s": shared_s, **results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
