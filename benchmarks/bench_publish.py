"""Publish benchmark: first publish and no-op republish of one scope to a moto S3 server
(real boto3 over HTTP on 127.0.0.1) and to a file:// folder.

    .venv/bin/python benchmarks/bench_publish.py [--rows 212000]

Writes benchmarks/results/publish.json. The scope is synthetic (tests/kits/publish_kit.py):
a 212K-row ``-input.parquet`` with the serving columns, labels, links and pipeline-only files.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from kits.publish_kit import make_handmade_dataset, moto_s3, no_gate  # noqa: E402
from pipeline.core.workspace import dumps_json, library_versions, utc_now_iso  # noqa: E402
from pipeline.publish.execute import PublishConfig, execute_publish, plan_publish  # noqa: E402


def _timed_publish(dataset, target, **kw) -> dict:
    t0 = time.perf_counter()
    plan = plan_publish(dataset, "scopes-001", target, validator=no_gate, **kw)
    t_plan = time.perf_counter() - t0
    puts: list[str] = []
    client = getattr(plan.target, "client", None)
    if client is not None:  # count requests that carry object bytes
        for op in ("PutObject", "UploadPart"):
            client.meta.events.register(f"before-send.s3.{op}", lambda request, **_: puts.append(request.url))
    t1 = time.perf_counter()
    record = execute_publish(plan)
    t_exec = time.perf_counter() - t1
    return {
        "plan_seconds": round(t_plan, 3),
        "execute_seconds": round(t_exec, 3),
        "total_seconds": round(t_plan + t_exec, 3),
        "bytes_uploaded": record["bytes_uploaded"],
        "bytes_total": record["bytes_total"],
        "objects_uploaded": len(record["uploaded"]),
        "objects_unchanged": len(record["unchanged"]),
        "data_requests": len(puts) if client is not None else None,
        "manifest_requests": sum(1 for u in puts if u.split("?")[0].endswith("manifest.json")),
        "throughput_mb_s": round(record["bytes_uploaded"] / 1e6 / t_exec, 1) if record["bytes_uploaded"] else 0.0,
        "timings": record["timings"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=212_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "publish.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ds = make_handmade_dataset(tmp / "data", name="bench", n_rows=args.rows, deleted_rows=(3, 7, 11))
        build_seconds = time.perf_counter() - t0
        input_size = (ds.path / "scopes" / "scopes-001-input.parquet").stat().st_size
        result = {
            "benchmark": "publish",
            "created_at": utc_now_iso(),
            "rows": args.rows,
            "scope_input_parquet_bytes": input_size,
            "synthetic_build_seconds": round(build_seconds, 1),
            "config": PublishConfig().to_dict(),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "load_average_1m": round(os.getloadavg()[0], 1)},  # shared machine: read timings with it
            "versions": {k: v for k, v in library_versions().items() if k in ("pyarrow", "tweetscope-studio")},
        }
        with moto_s3("bench") as (endpoint, env):
            import boto3

            result["versions"]["boto3"] = boto3.__version__
            s3 = dict(endpoint_url=endpoint, env=env)
            result["s3_first_publish"] = _timed_publish(ds, "s3://bench/cdn", **s3)
            result["s3_noop_republish"] = _timed_publish(ds, "s3://bench/cdn", **s3)
        result["file_first_publish"] = _timed_publish(ds, f"file://{tmp}/cdn")
        result["file_noop_republish"] = _timed_publish(ds, f"file://{tmp}/cdn")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps_json(result) + "\n")
    print(json.dumps({k: result[k] for k in ("rows", "scope_input_parquet_bytes")}, indent=None))
    for name in ("s3_first_publish", "s3_noop_republish", "file_first_publish", "file_noop_republish"):
        r = result[name]
        print(f"{name:22s} {r['bytes_uploaded']:>11,d} B sent in {r['total_seconds']:6.2f} s "
              f"(plan {r['plan_seconds']:.2f} s, execute {r['execute_seconds']:.2f} s, "
              f"scan {r['timings'].get('privacy_scan', 0):.2f} s, data requests {r['data_requests']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
