"""The install-time warm-up compiles every numba kernel the UMAP and cluster stages then use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import copy_dataset

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process: warm up, note every compiled signature, run the real stages on the
# sample, and print the signatures they needed that the warm-up had not compiled.
PROBE = """
import json, sys
from numba.core.dispatcher import Dispatcher
from pipeline.core.workspace import Dataset
from pipeline.stages.cluster.stage import run_cluster
from pipeline.stages.umap.stage import UmapConfig, run_umap
from pipeline.stages.warmup import warm_up

LIBRARIES = ("umap", "pynndescent", "fast_hdbscan", "hdbscan", "pipeline")

def compiled():
    found = set()
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in LIBRARIES:
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, Dispatcher):
                found |= {f"{name}.{attr}{tuple(map(str, sig))}" for sig in value.signatures}
    return found

timings = warm_up()
before = compiled()
dataset = Dataset(sys.argv[1])
# fewer epochs than the default: the same kernels, in seconds
run_umap(dataset, UmapConfig(n_epochs=20, cluster_n_epochs=20))
run_cluster(dataset)
print(json.dumps({"timings": timings, "warmed": len(before), "missed": sorted(compiled() - before)}))
"""


def test_warm_up_compiles_what_the_map_stages_use(mapped_dataset, tmp_path):
    dataset = copy_dataset(mapped_dataset, tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE, str(dataset.path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["timings"]) == {"umap_graph_s", "umap_fit_s", "cluster_s", "knn_s"}
    assert result["warmed"] > 20  # umap's graph and epoch kernels, fast_hdbscan's tree functions
    assert result["missed"] == []


def test_warm_up_command_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pipeline.stages.warmup"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled the map's kernels in" in done.stdout and "cluster" in done.stdout
