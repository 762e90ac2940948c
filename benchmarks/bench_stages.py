"""Compute-stage benchmark: wall time, CPU time and peak RSS of embed, UMAP, HDBSCAN, re-cluster.

Generates a synthetic archive (``synth_archive.py``), ingests it, then runs each stage in a
fresh child process (so peak RSS is that stage's own) and writes
``benchmarks/results/stages-<rows>.json``.

Every row is embedded with the default local model (``--embed-model`` picks another);
``--probe-model M --embed-probe N`` also times model M on N random rows and extrapolates —
the way to price the ~200x slower MiniLM option at 212K without spending an hour on it.

    .venv/bin/python benchmarks/bench_stages.py --rows 212000 [--also-parallel]

Targets on 2 cores at 212K (issue 4): local embed ≤ 6 min, both UMAPs ≤ 4 min together,
HDBSCAN ≤ 60 s, re-cluster ≤ 0.3 s a call. On a shared machine wall time mostly measures
the other load: CPU seconds and the load average are recorded next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = {"embed_local_s": 360.0, "umap_both_s": 240.0, "hdbscan_s": 60.0, "recluster_s": 0.3}


# --------------------------------------------------------------------------- child stages

def child(stage: str, data_dir: str, dataset_name: str, opts: dict) -> dict:
    import numpy as np

    from pipeline.core.workspace import Workspace

    ws = Workspace(data_dir)
    out: dict = {}
    if stage == "ingest":
        from pipeline.stages.ingest import ingest_archive

        ds = ingest_archive(opts["archive"], ws, dataset_name, overwrite=True)
        out["rows"] = len(ds.read_input(["id"]))
        return out
    ds = ws.dataset(dataset_name)
    if stage == "embed-probe":
        from pipeline.stages.embed.embedders import get_embedder

        texts = ds.read_input(["text"])["text"].tolist()
        rng = np.random.default_rng(0)
        sample = [texts[i] for i in rng.choice(len(texts), min(opts["probe"], len(texts)), replace=False)]
        sample.sort(key=len)  # as run_embed does
        embedder = get_embedder("local", opts["model"])
        embedder.embed(sample[:8])  # session start-up is not throughput
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(sample), embedder.chunk_size):
            embedder.embed(sample[i:i + embedder.chunk_size])
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        out.update(model=embedder.model_id, probe_rows=len(sample), wall_s=round(wall, 2), cpu_s=round(cpu, 2),
                   texts_per_s=round(len(sample) / wall, 1), texts_per_cpu_s=round(len(sample) / cpu, 1),
                   extrapolated_full_s=round(len(texts) / (len(sample) / wall), 1))
    elif stage == "embed":
        from pipeline.stages.embed.stage import EmbedConfig, run_embed

        emb_id = run_embed(ds, EmbedConfig(provider="local", model=opts.get("model") or ""))
        side = ds.sidecar(emb_id)
        out.update(id=emb_id, model=side["model_id"], dimensions=side["dimensions"], **side["timings"])
    elif stage == "umap":
        from pipeline.stages.umap.stage import UmapConfig, run_umap

        disp, clus = run_umap(ds, UmapConfig(seed=opts.get("seed", 42)))
        shown, clustered = ds.sidecar(disp), ds.sidecar(clus)
        out.update(ids=[disp, clus], seed=opts.get("seed", 42), **{
            key: shown["timings"][key] for key in ("knn_s", "graph_s", "spectral_s", "total_s")},
            display_fit_s=shown["timings"]["fit_s"], cluster_fit_s=clustered["timings"]["fit_s"],
            cluster_spectral_s=clustered["timings"]["spectral_s"],
            display_epochs=shown["n_epochs"], cluster_epochs=clustered["n_epochs"],
            fits_side_by_side=shown["fits_side_by_side"], knn=shown.get("knn"), knn_probe=shown.get("knn_probe"))
    elif stage == "cluster":
        from pipeline.stages.cluster.stage import run_cluster

        cid = run_cluster(ds)
        side = ds.sidecar(cid)
        out.update(id=cid, n_clusters=side["n_clusters"], n_noise=side["n_noise"],
                   min_cluster_size=side["params"]["min_cluster_size"], **side["timings"])
    elif stage == "recluster":
        from pipeline.stages.cluster.stage import recluster

        cid = ds.latest("cluster")
        base = ds.sidecar(cid)["params"]["min_cluster_size"]
        sizes = [max(2, int(base * f)) for f in (2.0, 0.5, 1.5, 0.75, 1.25, 3.0)]
        t = time.perf_counter()
        recluster(ds, cid, sizes[0])
        out["first_call_s"] = round(time.perf_counter() - t, 4)  # includes loading the tree
        calls = []
        for size in sizes[1:]:
            t = time.perf_counter()
            labels = recluster(ds, cid, size)
            calls.append({"min_cluster_size": size, "s": round(time.perf_counter() - t, 4),
                          "n_clusters": int(labels.max()) + 1})
        out.update(calls=calls, max_warm_s=max(c["s"] for c in calls),
                   median_warm_s=sorted(c["s"] for c in calls)[len(calls) // 2])
    else:
        raise SystemExit(f"unknown stage {stage}")
    return out


# --------------------------------------------------------------------------- parent

def run_child(stage: str, data_dir: Path, name: str, opts: dict) -> dict:
    env = dict(os.environ, TWEETSCOPE_QUIET="1")
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", stage, "--data-dir", str(data_dir), "--dataset", name,
         "--opts", json.dumps(opts)], stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"stage {stage} failed (exit {proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(stage=stage, wall_s=round(wall, 2), cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
                  peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
                  load_avg_1m_before=round(load_before, 2), load_avg_1m_after=round(os.getloadavg()[0], 2))
    print(f"{stage:14s} wall {wall:8.1f} s  cpu {result['cpu_s']:8.1f} s  rss {result['peak_rss_mb']:7.0f} MB"
          f"  load {load_before:.1f}", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=212_000, help="tweets in the synthetic archive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=HERE / "work" / "stages")
    parser.add_argument("--embed-model", default="", help="local model for the embed stage (default: the default)")
    parser.add_argument("--probe-model", default="", help="also time this local model on --embed-probe rows")
    parser.add_argument("--embed-probe", type=int, default=3000, help="rows the probe model embeds")
    parser.add_argument("--also-parallel", action="store_true", help="also time UMAP with seed=None")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--opts", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.child:
        print(json.dumps(child(args.child, args.data_dir, args.dataset, json.loads(args.opts))))
        return 0

    sys.path.insert(0, str(HERE))
    from synth_archive import generate_archive

    work = args.work_dir / f"rows-{args.rows}"
    data_dir = work / "data"
    archive = work / f"synth-{args.rows}-{args.seed}.zip"
    if not archive.exists():
        t = time.perf_counter()
        generate_archive(archive, n_tweets=args.rows, seed=args.seed)
        print(f"generated {archive} in {time.perf_counter() - t:.1f} s", flush=True)
    name = "bench"
    stages = {"ingest": run_child("ingest", data_dir, name, {"archive": str(archive)})}
    stages["embed"] = run_child("embed", data_dir, name, {"model": args.embed_model})
    if args.probe_model:
        stages["embed_probe"] = run_child("embed-probe", data_dir, name,
                                          {"probe": args.embed_probe, "model": args.probe_model})
    stages["umap"] = run_child("umap", data_dir, name, {"seed": 42})
    if args.also_parallel:
        stages["umap_parallel"] = run_child("umap", data_dir, name, {"seed": None})
    stages["cluster"] = run_child("cluster", data_dir, name, {})
    stages["recluster"] = run_child("recluster", data_dir, name, {})

    summary = {
        "embed_local_s": stages["embed"]["wall_s"],
        "embed_model": stages["embed"]["model"],
        # the whole child process (start-up, imports, kNN, both fits, writing): the fits overlap
        "umap_both_s": stages["umap"]["wall_s"],
        "hdbscan_s": stages["cluster"]["hdbscan_s"],
        "recluster_s": stages["recluster"]["max_warm_s"],
    }
    summary["meets_target"] = {k: summary[k] <= v for k, v in TARGETS.items()}
    result = {
        "benchmark": "stages", "rows": stages["ingest"]["rows"], "tweets_generated": args.rows,
        "seed": args.seed, "targets": TARGETS, "summary": summary, "stages": stages,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / f"stages-{args.rows}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
