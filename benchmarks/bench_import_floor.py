"""How fast can a small cluster stage be? The floor set by importing the libraries it must use.

At 10K tweets both tools' cluster processes are mostly imports. This measures, alternating the
commands so they see the same machine load, the wall time of:

* a bare ``python -c pass`` and ``python -c "import hdbscan"`` in our venv and in latentscope's;
* both tools' whole cluster stage on the compare run's 10K dataset (``compare.py`` leaves it in
  ``work/compare``), each run on a fresh copy so nothing is reused between repeats.

``floor_ratio`` = our ``import hdbscan`` ÷ latentscope's whole stage: no cluster stage that loads
the hdbscan library (the design's) can have a lower compare ratio on this machine.

    .venv/bin/python benchmarks/bench_import_floor.py [--rows 10000] [--repeats 7]

Writes ``benchmarks/results/import-floor-<rows>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OURS_PY = ROOT / ".venv" / "bin" / "python"
PEER_PY = HERE / ".peers-venv" / "bin" / "python"
COMPARE = HERE / "work" / "compare"


def _wall(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _commands(rows: int, scratch: Path) -> dict[str, tuple[list[str], dict, Path | None]]:
    """name -> (command, environment, data folder to refresh from the compare run before each repeat)."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    base.update({"MPLBACKEND": "Agg", "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))})
    name = f"synth-{rows}"
    cmds: dict[str, tuple[list[str], dict, Path | None]] = {
        "ours_bare_python": ([str(OURS_PY), "-c", "pass"], base, None),
        "ours_import_hdbscan": ([str(OURS_PY), "-c", "import hdbscan"], base, None),
    }
    if PEER_PY.is_file():
        cmds["latentscope_import_hdbscan"] = ([str(PEER_PY), "-c", "import hdbscan"], base, None)
    ours_data, peer_data = COMPARE / "ours" / name, COMPARE / "latentscope" / name
    if ours_data.is_dir():
        cmds["ours_cluster_stage"] = (
            [str(OURS_PY), str(HERE / "peers" / "ours_stages.py"), "cluster", "--result", str(scratch / "ours.json"),
             "--data-dir", str(scratch / "ours"), "--dataset", name], base, ours_data)
    if PEER_PY.is_file() and peer_data.is_dir():
        umap_params = json.loads((COMPARE / "logs" / f"{name}-ours-cluster.result.json").read_text())["info"]["params"]
        cmds["latentscope_cluster_stage"] = (
            [str(PEER_PY), str(HERE / "peers" / "latentscope_stages.py"), "cluster", "--result",
             str(scratch / "theirs.json"), "--dataset", name,
             "--min-cluster-size", str(umap_params["min_cluster_size"]),
             "--min-samples", str(umap_params["min_samples"]), "--epsilon", "0.0"],
            {**base, "LATENT_SCOPE_DATA": str(scratch / "latentscope"), "LATENT_SCOPE_NO_DOTENV": "1"}, peer_data)
    return cmds


def _refresh(source: Path, scratch: Path, side: str) -> None:
    target = scratch / side / source.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="the compare run's dataset size")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    load = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="import-floor-") as tmp:
        scratch = Path(tmp)
        cmds = _commands(args.rows, scratch)
        walls: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.repeats):
            for name, (cmd, env, source) in cmds.items():
                if source is not None:
                    _refresh(source, scratch, "ours" if name.startswith("ours") else "latentscope")
                walls[name].append(round(_wall(cmd, env), 3))
        load.append(round(os.getloadavg()[0], 2))

    medians = {name: round(statistics.median(values), 3) for name, values in walls.items()}
    result = {
        "benchmark": "import-floor", "rows": args.rows, "repeats": args.repeats,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "load_1m": load},
        "median_wall_s": medians, "wall_s": walls,
    }
    if "latentscope_cluster_stage" in medians:
        theirs = medians["latentscope_cluster_stage"]
        result["floor_ratio"] = round(medians["ours_import_hdbscan"] / theirs, 3)
        if "ours_cluster_stage" in medians:
            result["stage_ratio"] = round(medians["ours_cluster_stage"] / theirs, 3)
    out = HERE / "results" / f"import-floor-{args.rows}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("median_wall_s", "floor_ratio", "stage_ratio") if k in result}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
