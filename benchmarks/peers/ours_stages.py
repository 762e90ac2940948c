"""Tweetscope Studio's pipeline, one stage per process (run by /work/main/.venv/bin/python).

    python ours_stages.py STAGE --result R.json --data-dir D --dataset NAME [stage options]

Each stage calls the project's real stage function (the ones ``tweetscope run`` chains) with
offline providers, so nothing leaves the machine:

ingest (X archive ZIP) · embed (local model) · export_for_peer (not a stage: writes the
vectors and the input table latentscope is given) · umap (shared kNN → 2-D + 10-D) ·
cluster (HDBSCAN on 10-D) · labels (toponymy, offline namer) · scope · lance (local LanceDB
table) · links · recluster (slider latency) · rasterize (map render latency) · publish
(first + no-op republish to a moto S3 server).
"""

from __future__ import annotations

import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from harness import Timer, child_main  # noqa: E402


def _dataset(data_dir: str, dataset: str):
    from pipeline.core.workspace import Workspace

    return Workspace(data_dir).dataset(dataset)


def ingest(data_dir: str, dataset: str, archive: str) -> dict:
    from pipeline.core.workspace import Workspace
    from pipeline.stages.ingest import ingest_archive

    with Timer() as t:
        ds = ingest_archive(archive, Workspace(data_dir), dataset, overwrite=True)
    return {"work_s": t.seconds, "rows": ds.meta().get("length"),
            "input_parquet_bytes": ds.input_path.stat().st_size}


def embed(data_dir: str, dataset: str, model: str = "") -> dict:
    """``run_embed`` with a local model (empty = the default local model)."""
    from pipeline.stages.embed.stage import EmbedConfig, run_embed

    ds = _dataset(data_dir, dataset)
    with Timer() as t:
        eid = run_embed(ds, EmbedConfig(provider="local", model=model))
    side = ds.sidecar(eid)
    return {"work_s": t.seconds, "embedding_id": eid, "model_id": side.get("model_id"), "provider": side.get("provider"),
            "dimensions": side.get("dimensions"), "timings": side.get("timings")}


def export_for_peer(data_dir: str, dataset: str, out_dir: str) -> dict:
    """The embedding as .npy and the ingested table, for latentscope's importer and ingest."""
    import numpy as np

    from pipeline.stages.embed.stage import load_embeddings

    ds = _dataset(data_dir, dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vectors = load_embeddings(ds)
    np.save(out / "embeddings.npy", vectors)
    shutil.copyfile(ds.input_path, out / "input.parquet")
    return {"shape": list(vectors.shape)}


def umap(data_dir: str, dataset: str, neighbors: str = "default", min_dist: str = "0.1", seed: str = "42") -> dict:
    from pipeline.stages.umap.stage import UmapConfig, run_umap

    ds = _dataset(data_dir, dataset)
    config = UmapConfig(min_dist=float(min_dist), seed=None if seed == "none" else int(seed))
    if neighbors != "default":
        config.n_neighbors = int(neighbors)
    with Timer() as t:
        display_id, cluster_id = run_umap(ds, config)
    disp, clus = ds.sidecar(display_id), ds.sidecar(cluster_id)
    return {"work_s": t.seconds, "display_umap_id": display_id, "cluster_umap_id": cluster_id,
            "knn_s": disp["timings"].get("knn_s"), "display_fit_s": disp["timings"].get("fit_s"),
            "cluster_fit_s": clus["timings"].get("fit_s"), "cluster_dimensions": clus.get("n_components"),
            "params": config.to_dict()}


def cluster(data_dir: str, dataset: str) -> dict:
    from pipeline.stages.cluster.stage import run_cluster

    ds = _dataset(data_dir, dataset)
    with Timer() as t:
        cid = run_cluster(ds)
    side = ds.sidecar(cid)
    return {"work_s": t.seconds, "cluster_id": cid, "n_clusters": side.get("n_clusters"),
            "n_noise": side.get("n_noise"), "params": side.get("params", {}), "timings": side.get("timings")}


def labels(data_dir: str, dataset: str) -> dict:
    from pipeline.stages.labels import LabelConfig, run_labels

    ds = _dataset(data_dir, dataset)
    with Timer() as t:
        tid = run_labels(ds, LabelConfig(provider="offline"))
    side = ds.sidecar(tid)
    return {"work_s": t.seconds, "labels_id": tid, "num_layers": side.get("num_layers"),
            "rows": side.get("rows"), "timings": side.get("timings")}


def scope(data_dir: str, dataset: str) -> dict:
    from pipeline.stages.scope import run_scope

    ds = _dataset(data_dir, dataset)
    with Timer() as t:
        sid = run_scope(ds)
    sizes = {p.name: p.stat().st_size for p in (ds.path / "scopes").glob(f"{sid}*.parquet")}
    return {"work_s": t.seconds, "scope_id": sid, "scope_files_bytes": sizes}


def lance(data_dir: str, dataset: str) -> dict:
    from pipeline.serving.lance_export import export_lance

    ds = _dataset(data_dir, dataset)
    with Timer() as t:
        result = export_lance(ds, ds.latest("scopes"))
    return {"work_s": t.seconds, "result": {k: v for k, v in result.items()
                                            if k in ("rows", "table", "indices", "timings")}}


def links(data_dir: str, dataset: str) -> dict:
    from pipeline.stages.links import run_links

    ds = _dataset(data_dir, dataset)
    with Timer() as t:
        result = run_links(ds)
    return {"work_s": t.seconds, "result": {k: v for k, v in result.items() if not isinstance(v, (list, dict))}}


def recluster(data_dir: str, dataset: str, repeats: str = "3") -> dict:
    """The studio slider: labels for a new min_cluster_size from the cached tree."""
    import numpy as np

    from pipeline.stages.cluster.stage import recluster as recluster_fn

    ds = _dataset(data_dir, dataset)
    cid = ds.latest("cluster")
    base = int(ds.sidecar(cid).get("params", {}).get("min_cluster_size") or 25)
    sizes = sorted({max(2, int(base * f)) for f in (0.5, 0.75, 1.25, 1.5, 2.0, 3.0)})
    with Timer() as cold:
        first = recluster_fn(ds, cid, sizes[0])
    runs = {}
    for size in sizes:
        times = []
        for _ in range(int(repeats)):
            with Timer() as t:
                labels_ = recluster_fn(ds, cid, size)
            times.append(t.seconds)
        runs[size] = {"median_s": round(statistics.median(times), 4),
                      "n_clusters": int(len(np.unique(labels_[labels_ >= 0])))}
    warm = statistics.median(r["median_s"] for r in runs.values())
    return {"work_s": warm, "first_call_s": round(cold.seconds, 4), "warm_median_s": round(warm, 4),
            "by_min_cluster_size": runs, "rows": int(len(first))}


def rasterize(data_dir: str, dataset: str, repeats: str = "7") -> dict:
    """Map render latency: the studio map's server-side work for one frame at full extent.

    Same path as the studio (``studio.mapdata.load_map_data`` → ``MapModel.points_frame`` →
    HoloViews ``rasterize`` with datashader ``max("colour")`` at the plot's size, then ``spread``),
    as ``bench_studio.py`` times it on synthetic points; here on the real display x, y and clusters.
    """
    import datashader as dsh
    import holoviews as hv
    from holoviews.operation.datashader import rasterize as hv_rasterize
    from holoviews.operation.datashader import spread

    from studio import mapdata
    from studio.views import map as map_view

    hv.extension("bokeh", logo=False)
    ds = _dataset(data_dir, dataset)
    cid = ds.latest("cluster")
    side = ds.sidecar(cid)
    with Timer() as load:
        data = mapdata.load_map_data(ds, side.get("umap_id") or ds.latest("umap", purpose="display"), cid)
    model = map_view.MapModel(data, dataset=ds, cluster_id=cid,
                              saved_min_cluster_size=side.get("params", {}).get("min_cluster_size"))
    points = hv.Points(model.points_frame(), kdims=["x", "y"], vdims=["colour"])

    def render():
        img = hv_rasterize(points, aggregator=dsh.max("colour"), x_range=(-1.05, 1.05), y_range=(-1.05, 1.05),
                           width=map_view.PLOT_WIDTH, height=map_view.PLOT_HEIGHT, dynamic=False)
        return spread(img, px=1, how="max", dynamic=False)

    with Timer() as cold:
        render()  # numba compile on a cold process
    times = []
    for _ in range(int(repeats)):
        with Timer() as t:
            render()
        times.append(t.seconds)
    warm = statistics.median(times)
    return {"work_s": warm, "first_call_s": round(cold.seconds, 4), "warm_median_s": round(warm, 4),
            "load_map_data_s": round(load.seconds, 3), "points": data.n,
            "plot_px": [map_view.PLOT_WIDTH, map_view.PLOT_HEIGHT]}


def publish(data_dir: str, dataset: str) -> dict:
    """First publish and no-op republish of the scope to a moto S3 server on 127.0.0.1."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "tests"))
    from bench_publish import _timed_publish  # noqa: E402 - reuse the publish benchmark's timing

    from kits.publish_kit import moto_s3
    from pipeline.serving.validate import validate_scope

    ds = _dataset(data_dir, dataset)
    sid = ds.latest("scopes")
    with Timer() as gate:
        errors = validate_scope(ds, sid)
    with moto_s3("bench") as (endpoint, env):
        first = _timed_publish(ds, "s3://bench/cdn", endpoint_url=endpoint, env=env)
        noop = _timed_publish(ds, "s3://bench/cdn", endpoint_url=endpoint, env=env)
    return {"work_s": first["total_seconds"] + noop["total_seconds"], "scope_id": sid,
            "gate_s": round(gate.seconds, 3), "gate_errors": errors[:5],
            "first": first, "noop": noop}


STAGES = {f.__name__: f for f in (ingest, embed, export_for_peer, umap, cluster, labels, scope, lance,
                                  links, recluster, rasterize, publish)}

if __name__ == "__main__":
    child_main(STAGES)
