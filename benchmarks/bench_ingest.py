"""Ingest benchmark: wall time and peak RSS of ``ingest_archive`` on a synthetic archive.

Generates a synthetic X archive (``synth_archive.py``, default 212,000 tweets — the size of
the demo account), then ingests it in a fresh child process (so peak RSS is the ingest's
own) with likes and deleted tweets, and writes ``benchmarks/results/ingest.json``.
Targets (issue 3): ≤ 30 s and ≤ 1.5 GB at 212K tweets. CPU seconds are recorded too: on a
shared machine wall time mostly measures the other load (see ``load_average_1m``).

    .venv/bin/python benchmarks/bench_ingest.py [--tweets 212000] [--archive existing.zip]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ingest.json"
TARGET_SECONDS = 30.0
TARGET_RSS_MB = 1536.0

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from pipeline.stages.ingest import ingest_archive
from pipeline.core.workspace import Workspace
t1 = time.perf_counter()
ds = ingest_archive(sys.argv[1], Workspace(sys.argv[2]), "bench", include_likes=True, include_deleted=True)
t2 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
meta = ds.meta()
print(json.dumps({"import_seconds": t1 - t0, "ingest_seconds": t2 - t1, "rows": meta["length"],
                  "tweet_types": meta["counts"]["tweet_types"],
                  "note_tweets_applied": meta["counts"]["note_tweets_applied"],
                  "input_parquet_bytes": ds.input_path.stat().st_size,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def run(n_tweets: int, archive: Path | None, seed: int) -> dict:
    sys.path.insert(0, str(HERE))
    from synth_archive import generate_archive

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        generated_seconds = generated_cpu = None
        if archive is None:
            archive = Path(tmp) / f"synth-{n_tweets}.zip"
            t0, c0 = time.perf_counter(), time.process_time()
            generate_archive(archive, n_tweets=n_tweets, seed=seed)
            generated_seconds = time.perf_counter() - t0
            generated_cpu = time.process_time() - c0
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(archive), str(Path(tmp) / "data")],
                              capture_output=True, text=True, cwd=HERE.parent,
                              env={**os.environ, "TWEETSCOPE_QUIET": "1"})
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"ingest failed:\n{proc.stderr}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        return {
            "benchmark": "ingest",
            "n_tweets": n_tweets,
            "seed": seed,
            "archive_bytes": archive.stat().st_size,
            "generate_seconds": round(generated_seconds, 2) if generated_seconds is not None else None,
            "generate_cpu_seconds": round(generated_cpu, 2) if generated_cpu is not None else None,
            "ingest_seconds": round(child["ingest_seconds"], 2),
            "ingest_cpu_seconds_incl_imports": round(child["cpu_seconds"], 2),
            "process_wall_seconds": round(wall, 2),
            "peak_rss_mb": round(child["peak_rss_mb"], 1),
            "rows": child["rows"],
            "tweet_types": child["tweet_types"],
            "note_tweets_applied": child["note_tweets_applied"],
            "input_parquet_bytes": child["input_parquet_bytes"],
            "targets": {"ingest_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB},
            "meets_targets": child["ingest_seconds"] <= TARGET_SECONDS and child["peak_rss_mb"] <= TARGET_RSS_MB,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_1m": round(os.getloadavg()[0], 2)},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tweets", type=int, default=212_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archive", type=Path, default=None, help="ingest this archive instead of generating one")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.tweets, args.archive, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
