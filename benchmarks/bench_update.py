"""Archive update benchmark: ``tweetscope update`` against a full rebuild, and how well new tweets are placed.

Generates a synthetic archive of ``--rows + --new`` tweets (``synth_archive.py``), cuts the
newest ``--new`` off for the "older download", builds that through every stage (offline
providers, LanceDB left out), then times (a) ``update_dataset`` with the full archive and
(b) a full rebuild of the full archive. Placement quality compares the two: for every new
tweet, the share of its 15 nearest old tweets on the display map that are the same in both
(kNN preservation), and the adjusted Rand index of the clusters (new tweets, all tweets).
Embedding work: texts and estimated Voyage tokens sent by the update vs by a rebuild.

    .venv/bin/python benchmarks/bench_update.py --rows 20000 --new 1200

Writes ``benchmarks/results/update-<rows>.json``. Target (issue 17): update ≤ 10 % of the rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))
os.environ.setdefault("TWEETSCOPE_QUIET", "1")


def build(ws, name: str, archive: Path) -> float:
    from pipeline.stages.ingest import ingest_archive
    from pipeline.stages.registry import STAGE_NAMES
    from pipeline.stages.runner import run_pipeline

    started = time.perf_counter()
    ds = ingest_archive(archive, ws, name, overwrite=True)
    run_pipeline(ds, stages=[s for s in STAGE_NAMES if s != "lancedb"])
    return time.perf_counter() - started


def knn_preservation(a, b, rows, reference, k: int = 15) -> float:
    """Mean share of each of ``rows``' k nearest ``reference`` rows that agree between layouts a and b."""
    from scipy.spatial import cKDTree

    na = cKDTree(a[reference]).query(a[rows], k=k)[1]
    nb = cKDTree(b[reference]).query(b[rows], k=k)[1]
    return float(sum(len(set(x) & set(y)) for x, y in zip(na, nb)) / (k * len(rows)))


def main(argv=None) -> int:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score
    from synth_archive import generate_archive, older_download

    from pipeline.core.workspace import Workspace
    from pipeline.stages.cluster.stage import load_clusters
    from pipeline.stages.embed.reuse import estimate_tokens
    from pipeline.stages.umap.stage import load_umap
    from pipeline.update.run import update_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="tweets in the older download")
    parser.add_argument("--new", type=int, default=1_200, help="tweets the newer download adds")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-update-"))
    work.mkdir(parents=True, exist_ok=True)
    full = generate_archive(work / "full.zip", args.rows + args.new, seed=0)
    old, _, _ = older_download(full, work / "older.zip", args.rows)
    ws = Workspace(work / "data")
    build_old_s = build(ws, "grow", old)

    started = time.perf_counter()
    record = update_dataset(ws, "grow", full)
    update_s = time.perf_counter() - started
    rebuild_s = build(ws, "rebuilt", full)

    grown, rebuilt = ws.dataset("grow"), ws.dataset("rebuilt")
    ids_u = grown.read_input(["id"])["id"].tolist()
    ids_r = rebuilt.read_input(["id"])["id"].tolist()
    position = {tid: i for i, tid in enumerate(ids_r)}
    to_r = np.array([position[t] for t in ids_u])  # update row -> rebuild row
    xy_u = load_umap(grown, record["artifacts"]["umap"])[["x", "y"]].to_numpy()
    xy_r = load_umap(rebuilt)[["x", "y"]].to_numpy()[to_r]
    cl_u = load_clusters(grown, record["artifacts"]["cluster"])["cluster"].to_numpy()
    cl_r = load_clusters(rebuilt)["cluster"].to_numpy()[to_r]
    n_old = record["rows_before"]
    new_rows, old_rows = np.arange(n_old, len(ids_u)), np.arange(n_old)
    texts = rebuilt.read_input(["text"])["text"].tolist()
    result = {
        "rows_before": n_old, "rows_after": len(ids_u), "new": record["new"],
        "build_older_s": round(build_old_s, 1), "update_s": round(update_s, 1), "full_rebuild_s": round(rebuild_s, 1),
        "update_share_of_rebuild": round(update_s / rebuild_s, 3), "target_share": 0.10,
        "update_timings": record["timings"],
        "embedding": {"update_texts_sent": record["n_embedded"], "update_vectors_reused": record["n_reused"],
                      "update_tokens_estimate": record["tokens_estimate"], "rebuild_texts_sent": len(texts),
                      "rebuild_tokens_estimate": estimate_tokens(texts)},
        "placement": {
            "knn_preservation_new_vs_refit@15": round(knn_preservation(xy_u, xy_r, new_rows, old_rows), 4),
            "knn_preservation_old_vs_refit@15 (baseline: two fits of the old tweets)":
                round(knn_preservation(xy_u, xy_r, old_rows[::max(1, n_old // 2000)], old_rows), 4),
            "cluster_ari_new_rows": round(float(adjusted_rand_score(cl_r[new_rows], cl_u[new_rows])), 4),
            "cluster_ari_all_rows": round(float(adjusted_rand_score(cl_r, cl_u)), 4),
            "clusters_update": int(cl_u.max()) + 1, "clusters_refit": int(cl_r.max()) + 1,
            "grown_clusters": len(record.get("grown_clusters") or {}),
            "flagged_labels": len(record.get("flagged_labels") or {}),
        },
        "machine": {"cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "shared": True},
    }
    out = HERE / "results" / f"update-{args.rows}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
