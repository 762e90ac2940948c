"""Cold start: how long a fresh machine takes from the studio's start to the sample's map.

Each mode gets an empty ``NUMBA_CACHE_DIR`` and data dir in a temp folder, then one child
process does what the studio does on a first ``python3 launch.py``: ingest the bundled
sample, run every stage in the registry's order in one process (the studio's job threads),
and draw the map once through the studio's own path (``load_map_data`` -> HoloViews
``rasterize``). Modes:

- ``cold``: nothing compiled; every numba kernel compiles on first use (today's first start).
- ``warmed``: ``python -m pipeline.stages.warmup`` (what ``launch.py`` runs after installing) fills
  the empty cache first; its own time is reported as an install-step cost.

The studio's UI libraries are imported before the clock starts (the studio has them loaded
before its page can open); the pipeline's own imports are inside the clock.
``map_s`` = ingest -> embed -> UMAP -> cluster -> first map frame, the goal being <= 60 s.

    python benchmarks/bench_cold_start.py [--modes cold warmed] [--out results/cold-start.json]
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE = ROOT / "assets" / "sample" / "twitter-archive.zip"
MAP_STAGES = ("embed", "umap", "cluster")  # what the first coloured map needs after ingest


def _numba_files(cache: Path) -> int:
    return sum(1 for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")) if cache.exists() else 0


def child(data_dir: Path, out: Path) -> None:
    """Runs in the fresh child: the studio's first start, timed stage by stage."""
    import holoviews as hv  # loaded by the studio before its page opens
    import panel  # noqa: F401

    hv.extension("bokeh", logo=False)

    t0 = time.perf_counter()
    from pipeline.core.workspace import Workspace
    from pipeline.stages.ingest import ingest_archive
    from pipeline.stages.registry import STAGE_NAMES, get_stage

    marks = {"imports": time.perf_counter() - t0}
    stages: dict[str, float] = {}
    workspace = Workspace(data_dir)
    t = time.perf_counter()
    dataset = ingest_archive(SAMPLE, workspace, "sample")
    stages["ingest"] = time.perf_counter() - t
    rest = [s for s in STAGE_NAMES if s not in MAP_STAGES]
    for name in MAP_STAGES:
        t = time.perf_counter()
        get_stage(name).execute(dataset)
        stages[name] = time.perf_counter() - t
    t = time.perf_counter()
    stages["map_frame"] = _draw_map(dataset)
    marks["map_s"] = time.perf_counter() - t0
    for name in rest:
        t = time.perf_counter()
        get_stage(name).execute(dataset)
        stages[name] = time.perf_counter() - t
    marks["all_stages_s"] = time.perf_counter() - t0
    umap_side = dataset.sidecar(dataset.latest("umap", purpose="display"))
    cluster_side = dataset.sidecar(dataset.latest("cluster"))
    out.write_text(json.dumps({
        **{k: round(v, 2) for k, v in marks.items()},
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "umap_timings": umap_side.get("timings"), "cluster_timings": cluster_side.get("timings"),
        "n_clusters": cluster_side.get("n_clusters"), "rows": cluster_side.get("rows"),
    }))


def _draw_map(dataset) -> float:
    """One full-extent frame through the studio map's path (as ``peers/ours_stages.rasterize``); seconds."""
    import datashader as dsh
    import holoviews as hv
    from holoviews.operation.datashader import rasterize, spread

    from studio import mapdata
    from studio.views import map as map_view

    t = time.perf_counter()
    cluster_id = dataset.latest("cluster")
    data = mapdata.load_map_data(dataset, dataset.latest("umap", purpose="display"), cluster_id)
    model = map_view.MapModel(data, dataset=dataset, cluster_id=cluster_id,
                              saved_min_cluster_size=dataset.sidecar(cluster_id)["params"]["min_cluster_size"])
    points = hv.Points(model.points_frame(), kdims=["x", "y"], vdims=["colour"])
    img = rasterize(points, aggregator=dsh.max("colour"), x_range=(-1.05, 1.05), y_range=(-1.05, 1.05),
                    width=map_view.PLOT_WIDTH, height=map_view.PLOT_HEIGHT, dynamic=False)
    spread(img, px=1, how="max", dynamic=False)
    return time.perf_counter() - t


def _env(cache: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), TWEETSCOPE_QUIET="1",
               VOYAGE_API_KEY="", OPENAI_API_KEY="", ANTHROPIC_API_KEY="", PYTHONPATH=str(ROOT))
    env.pop("LANCEDB_URI", None)
    return env


def run_mode(mode: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"cold-start-{mode}-") as tmp:
        cache, out = Path(tmp) / "numba", Path(tmp) / "result.json"
        record: dict = {"mode": mode, "load_before": os.getloadavg()[0]}
        if mode == "warmed":
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipeline.stages.warmup"], cwd=ROOT, env=_env(cache), check=True)
            record["warmup_s"] = round(time.perf_counter() - t, 1)
            record["warmup_cache_files"] = _numba_files(cache)
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "data"), str(out)],
                       cwd=ROOT, env=_env(cache), check=True)
        record["child_wall_s"] = round(time.perf_counter() - t, 1)
        record.update(json.loads(out.read_text()))
        record["load_after"] = os.getloadavg()[0]
        return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=("cold", "warmed"), default=["cold", "warmed"])
    parser.add_argument("--out", type=Path, default=RESULTS / "cold-start.json")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    runs = []
    for mode in args.modes:
        runs.append(run_mode(mode))
        print(json.dumps(runs[-1]), flush=True)
    result = {"benchmark": "cold_start", "cores": os.cpu_count(), "python": platform.python_version(),
              "machine": platform.machine(), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
