"""Cluster-stage benchmark: HDBSCAN's tree + the noise kNN, the way ``hdbscan.HDBSCAN`` builds them vs the stage.

Needs a dataset with a cluster manifold (e.g. made by ``bench_stages.py``). Each variant runs
in a fresh child process (hdbscan's loky workers start once per process, as in a stage run):

* ``hdbscan_loky``    — ``hdbscan.HDBSCAN.fit`` as the stage called it before (:func:`hdbscan_tree`:
  loky processes for the core distances) + a separate cKDTree query for the noise vote;
* ``hdbscan_threads`` — the same with joblib's threading backend (no process start-up, but
  sklearn's query holds the GIL: one core);
* ``stage``           — what ``run_cluster`` does: one cKDTree query on every core for both,
  then hdbscan's Borůvka MST on it (:func:`manifold_neighbours` + :func:`mst_tree`).

The trees must be byte-identical (``identical`` in the result). Writes
``benchmarks/results/cluster-<rows>.json``.

    .venv/bin/python benchmarks/bench_cluster.py --data-dir benchmarks/work/stages/rows-50000/data --dataset bench
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = ("hdbscan_loky", "hdbscan_threads", "stage")


def child(variant: str, data_dir: str, dataset_name: str) -> dict:
    import numpy as np
    from scipy.spatial import cKDTree

    from pipeline.core.workspace import Workspace
    from pipeline.stages.cluster import stage as cs

    ds = Workspace(data_dir).dataset(dataset_name)
    X = cs._read_umap(ds, ds.latest("umap", purpose="cluster"))
    config = cs.effective_config(cs.ClusterConfig(), len(X))
    t = time.perf_counter()
    if variant == "stage":
        dist, idx = cs.manifold_neighbours(X, max(config.min_samples, cs.NOISE_NEIGHBORS) + 1)
        knn_s = time.perf_counter() - t
        tree = cs.mst_tree(X, config.min_samples, dist, idx)
        knn = cs.manifold_knn(X, idx=idx)
    else:
        import hdbscan
        import joblib

        model = hdbscan.HDBSCAN(min_cluster_size=config.min_cluster_size, min_samples=config.min_samples,
                                core_dist_n_jobs=cs.available_cores())
        backend = "loky" if variant == "hdbscan_loky" else "threading"
        with joblib.parallel_config(backend=backend):
            model.fit(np.ascontiguousarray(X, dtype=np.float64))
        tree = np.asarray(model._single_linkage_tree)
        k = time.perf_counter()
        _, found = cKDTree(X).query(X, k=cs.NOISE_NEIGHBORS + 1, workers=-1)  # the old manifold_knn
        knn = np.asarray(found[:, 1:], dtype=np.int32)
        knn_s = time.perf_counter() - k
    wall = time.perf_counter() - t
    digest = hashlib.sha256(tree.tobytes() + knn.tobytes()).hexdigest()
    return {"rows": len(X), "dims": int(X.shape[1]), "min_samples": config.min_samples,
            "tree_and_knn_s": round(wall, 2), "knn_s": round(knn_s, 2), "sha256": digest}


def run_child(variant: str, args) -> dict:
    env = dict(os.environ, TWEETSCOPE_QUIET="1")
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--data-dir", str(args.data_dir),
                          "--dataset", args.dataset], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(variant=variant, load_avg_1m_before=round(load, 2))
    print(f"{variant:16s} {result['tree_and_knn_s']:7.2f} s (kNN {result['knn_s']:.2f} s)  load {load:.2f}", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", default="bench")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of all variants, interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.child:
        print(json.dumps(child(args.child, str(args.data_dir), args.dataset)))
        return 0
    runs = [run_child(v, args) for _ in range(args.repeat) for v in VARIANTS]
    best = {v: min(r["tree_and_knn_s"] for r in runs if r["variant"] == v) for v in VARIANTS}
    result = {
        "benchmark": "cluster", "rows": runs[0]["rows"], "dims": runs[0]["dims"],
        "dataset": f"{args.data_dir}/{args.dataset}", "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "identical": len({r["sha256"] for r in runs}) == 1, "best_s": best,
        "speedup_vs_hdbscan_loky": round(best["hdbscan_loky"] / best["stage"], 2), "runs": runs,
        "machine": {"cpus": os.cpu_count(), "shared": True},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / f"cluster-{result['rows']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("rows", "identical", "best_s", "speedup_vs_hdbscan_loky")}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
