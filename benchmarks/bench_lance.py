"""LanceDB export benchmark: write + index time for a synthetic scope of N rows x D dims.

    .venv/bin/python benchmarks/bench_lance.py --rows 50000 212000 --dims 384
    .venv/bin/python benchmarks/bench_lance.py --rows 212000 --vectors X.npy [--lance-training]

Builds a synthetic scope folder (SERVING_COLUMNS ``-input.parquet`` + clustered, L2-normalised
vectors), runs the real :func:`pipeline.serving.lance_export.export_lance` into a temp folder, then times
a few queries. Results are merged into ``benchmarks/results/lance.json`` (one entry per size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lancedb  # noqa: E402,F401  (imported up front: its ~6 s import is not export time)

from pipeline.core.workspace import Dataset, atomic_write_json, library_versions, write_parquet  # noqa: E402
from pipeline.serving import lance_export as lx  # noqa: E402
from pipeline.serving.contracts import arrow_schema_for, normalize_serving_types  # noqa: E402
from pipeline.serving.control_plane import sql_literal  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lance.json"


def synthetic_scope(root: Path, n: int, dim: int, n_clusters: int = 60, seed: int = 0,
                    vectors: np.ndarray | None = None):
    """A dataset folder with scope ``scopes-001`` of ``n`` rows; returns (dataset, vectors, frame).

    ``vectors`` (n x dim) replaces the clustered random ones, e.g. real embeddings of a
    realistic synthetic archive (its repeated tweets give exact duplicates, as real archives do).
    """
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, n_clusters, n)
    if vectors is None:
        centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
        vectors = centres[cluster] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    vocab = np.array([f"w{i:05d}" for i in range(20_000)])
    words = vocab[rng.zipf(1.3, size=(n, 16)) % len(vocab)]
    text = [" ".join(row) for row in words]
    deleted = rng.random(n) < 0.01
    df = pd.DataFrame({
        "id": [str(1_500_000_000_000_000_000 + i) for i in range(n)], "ls_index": np.arange(n),
        "x": rng.uniform(-1, 1, n).astype(np.float32), "y": rng.uniform(-1, 1, n).astype(np.float32),
        "cluster": [f"0_{c}" for c in cluster], "raw_cluster": [str(c) for c in cluster],
        "label": [f"topic {c}" for c in cluster],
        "deleted": deleted, "tile_index_64": 0, "tile_index_128": 0,
        "text": np.where(deleted, "", text), "created_at": "2024-01-01T00:00:00Z",
        "username": "someone", "display_name": "Some One", "tweet_type": "tweet",
        "favorites": 0, "retweets": 0, "replies": 0, "is_reply": False, "is_retweet": False, "is_like": False,
        "urls_json": "[]", "media_urls_json": "[]", "archive_source": "synthetic",
    })
    path = root / "bench"
    (path / "scopes").mkdir(parents=True)
    write_parquet(pa.Table.from_pandas(normalize_serving_types(df), schema=arrow_schema_for(), preserve_index=False),
                  path / "scopes" / "scopes-001-input.parquet")
    atomic_write_json(path / "meta.json", {"id": "bench", "length": n})
    uid = str(uuid.uuid4())
    atomic_write_json(path / "scopes" / "scopes-001.json", {
        "id": "scopes-001", "embedding_id": "embedding-001", "scope_uid": uid,
        "lancedb_table_id": f"bench__{uid}", "rows": n})
    return Dataset(path), vectors, df


def _median_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(float(np.median(times)), 2)


def top10_recall(table, vectors: np.ndarray, live: np.ndarray, probes: np.ndarray) -> float:
    """Share of vector-search top-10 results as similar as the exact 10th of the exported (live)
    rows; ties count as hits."""
    hits = []
    for probe in probes:
        sims = vectors @ vectors[probe]
        tenth = np.partition(sims[live], -10)[-10]
        got = table.search(vectors[probe]).distance_type("cosine").limit(10).to_arrow()["ls_index"].to_numpy()
        hits.append(np.mean(sims[got] >= tenth - 1e-6))
    return round(float(np.mean(hits)), 3)


def run(n: int, dim: int, vector_index_min_rows: int = 0, vectors: np.ndarray | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-lance-") as tmp:
        t0 = time.perf_counter()
        dataset, vectors, df = synthetic_scope(Path(tmp), n, dim, vectors=vectors)
        generate_s = time.perf_counter() - t0
        lx._load_vectors = lambda ds, embedding_id: vectors  # the synthetic folder has no h5
        os.environ.pop("LANCEDB_URI", None)
        record = lx.export_lance(dataset, "scopes-001", register=False, vector_index_min_rows=vector_index_min_rows)
        live = df.index[~df["deleted"]]
        probe = int(live[len(live) // 2])
        k = sql_literal(df.loc[probe, "cluster"])  # the string lookup id, quoted
        word = df.loc[probe, "text"].split()[-1]
        table = lx.open_scope_table(dataset, "scopes-001")
        queries = {
            "vector_top10_ms": _median_ms(lambda: table.search(vectors[probe]).distance_type("cosine")
                                          .limit(10).to_arrow()),
            "vector_top10_cluster_filter_ms": _median_ms(lambda: table.search(vectors[probe])
                                                         .distance_type("cosine").where(f"cluster = {k}")
                                                         .limit(10).to_arrow()),
            "fts_top10_ms": _median_ms(lambda: table.search(word, query_type="fts").limit(10).to_arrow()),
        }
        hit = table.search(vectors[probe]).distance_type("cosine").limit(10).to_pandas()
        recall = top10_recall(table, vectors, live.to_numpy(), np.random.default_rng(1).choice(live.to_numpy(), 200, replace=False))
        size = sum(f.stat().st_size for f in (dataset.lancedb_dir).rglob("*") if f.is_file())
    return {
        "rows": n, "exported_rows": record["rows"], "dimensions": dim,
        "generate_s": round(generate_s, 2),
        "timings_s": record["timings"],
        "indices": [{k: v for k, v in i.items()} for i in record["indices"]],
        "skipped_indices": record["skipped_indices"],
        "queries": queries,
        "self_hit_top1": bool(hit["ls_index"].iloc[0] == probe),
        "top10_recall": recall,
        "table_bytes": size,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000])
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--no-ivf", action="store_true",
                        help="skip the IVF_PQ build (write + BTREE + FTS only; for a busy machine)")
    parser.add_argument("--vectors", type=Path,
                        help="an .npy of real embeddings (first --rows rows; --dims taken from it)")
    parser.add_argument("--lance-training", action="store_true",
                        help="train the IVF partitions with LanceDB's defaults (50 iterations, 256 rows "
                             "per partition) instead of ours, to compare")
    args = parser.parse_args(argv)
    if args.lance_training:
        lx.IVF_MAX_ITERATIONS, lx.IVF_SAMPLE_RATE = 50, 256
    source = np.load(args.vectors, mmap_mode="r") if args.vectors else None
    if source is not None:
        args.dims = source.shape[1]
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"runs": {}}
    for n in args.rows:
        print(f"exporting {n} x {args.dims} ...", flush=True)
        vectors = None if source is None else np.array(source[:n])
        # the IVF_PQ index at every size, or never
        entry = run(n, args.dims, 10**12 if args.no_ivf else 0, vectors)
        entry.update(vectors=str(args.vectors) if args.vectors else "clustered random",
                     ivf_training="lancedb defaults" if args.lance_training else "ours")
        entry.update(measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), cpu_count=os.cpu_count(),
                     machine=platform.machine(), python=platform.python_version(),
                     lancedb=library_versions().get("lancedb"), load_average=os.getloadavg()[0])
        key = f"{n}x{args.dims}" + ("-no-ivf" if args.no_ivf else "") + ("-real" if args.vectors else "")
        results["runs"][key + ("-lance-training" if args.lance_training else "")] = entry
        print(json.dumps(entry, indent=1), flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(RESULTS, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
