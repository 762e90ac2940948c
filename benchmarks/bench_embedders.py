"""Local embedding models on real tweets: speed and a label-free quality probe.

Ingests the bundled sample archive (2,045 real tweets, mostly replies) into a scratch
folder and, for every registered local model plus a TF-IDF+SVD baseline, measures

* speed — texts per wall second and per CPU second, embedding the sample's texts
  repeated to at least ``--min-texts`` in the stage's own chunk size;
* quality — replies to the same parent tweet are about the same thing, so a good model
  puts them near each other: for each reply with a sibling, the share of its nearest
  ``k`` neighbours that are siblings (precision@1, @10), and how much more similar
  sibling pairs are than all pairs (cosine margin).

Writes ``benchmarks/results/embedders.json``.

    .venv/bin/python benchmarks/bench_embedders.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def sibling_probe(vectors: np.ndarray, parents: np.ndarray) -> dict:
    """Nearest-neighbour agreement with the reply structure (no labels needed)."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    same = (parents[:, None] == parents[None, :]) & (parents[:, None] != "")
    np.fill_diagonal(same, False)
    rows = np.flatnonzero(same.any(axis=1))
    ranked = np.argsort(-sims[rows], axis=1)
    hits = same[rows[:, None], ranked[:, :10]]
    off_diagonal = ~np.eye(len(vectors), dtype=bool)
    return {
        "replies_with_siblings": int(len(rows)),
        "precision_at_1": round(float(hits[:, 0].mean()), 3),
        "precision_at_10": round(float(hits.mean()), 3),
        "sibling_cosine_margin": round(float(sims[same].mean() - sims[off_diagonal].mean()), 3),
    }


def time_embedder(embed, texts: list[str], chunk: int) -> dict:
    embed(texts[:8])  # loading and session start-up are not throughput
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), chunk):
        embed(texts[start:start + chunk])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"texts": len(texts), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "texts_per_s": round(len(texts) / wall, 1), "texts_per_cpu_s": round(len(texts) / cpu, 1),
            "projected_212k_s": round(212_000 * wall / len(texts), 1)}


def tfidf_baseline(texts: list[str]):
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.stages.embed.embedders import l2_normalise

    def embed(batch):
        matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(batch)
        k = max(2, min(256, matrix.shape[1] - 1, len(batch) - 1))
        return l2_normalise(TruncatedSVD(k, random_state=0).fit_transform(matrix))
    return embed


def main(argv=None) -> int:
    from pipeline.core.workspace import Workspace
    from pipeline.stages.embed.embedders import get_embedder
    from pipeline.stages.embed.embedders.local import LOCAL_MODELS
    from pipeline.stages.ingest import ingest_archive

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=ROOT / "assets" / "sample" / "twitter-archive.zip")
    parser.add_argument("--min-texts", type=int, default=2_000,
                        help="texts timed per model (fast models get the sample repeated; slow ones its first rows)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time budget per model's speed run")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "embedders.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        ds = ingest_archive(args.archive, Workspace(scratch), "sample")
        frame = ds.read_input(["text", "in_reply_to_status_id"])
    texts = frame["text"].fillna("").tolist()
    parents = frame["in_reply_to_status_id"].fillna("").astype(str).to_numpy()

    candidates = {name: (lambda name=name: get_embedder("local", name)) for name in LOCAL_MODELS}
    results = {}
    for name, build in [*candidates.items(), ("tfidf-svd-256 (baseline)", None)]:
        if build is None:
            embed, chunk = tfidf_baseline(texts), len(texts)
            quality = sibling_probe(embed(texts), parents)
        else:
            embedder = build()
            embed, chunk = embedder.embed, embedder.chunk_size
            quality = sibling_probe(embed(texts), parents)
        # a quick rate estimate picks how many texts fit the time budget
        probe = time_embedder(embed, texts[:256], chunk)
        n = int(max(256, min(max(args.min_texts, len(texts)), probe["texts_per_s"] * args.max_seconds)))
        timed = (texts * (n // len(texts) + 1))[:n]
        speed = time_embedder(embed, timed, chunk)
        results[name] = {"speed": speed, "quality": quality,
                         "dimensions": int(embed(texts[:4]).shape[1])}
        print(f"{name:28s} {speed['texts_per_s']:9.1f} texts/s  P@1 {quality['precision_at_1']:.3f}  "
              f"P@10 {quality['precision_at_10']:.3f}  margin {quality['sibling_cosine_margin']:.3f}", flush=True)

    result = {
        "benchmark": "embedders", "archive": str(args.archive.relative_to(ROOT)) if args.archive.is_relative_to(ROOT)
        else str(args.archive), "rows": len(texts), "models": results,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "platform": platform.platform()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
