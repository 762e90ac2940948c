"""Studio map latency at archive scale (default 212K points); writes benchmarks/results/studio.json.

1. Pan/zoom: the server-side work per viewport change — Datashader rasterize (+spread) of every
   point for the plot's 720×560 frame, and the full HoloViews plot update that Bokeh then ships.
   Target ≤ 0.2 s.
2. Re-cluster round trip: slider value → ``pipeline.stages.cluster.stage.recluster`` on a saved HDBSCAN tree →
   new colours, hulls and labels → HoloViews/Bokeh plot update → the PATCH-DOC message a Panel
   server would send (built, binary buffers included). Target ≤ 0.5 s. Reported with a breakdown
   (recluster, preview hulls/centroids, other data callbacks, HoloViews+Datashader+Bokeh, patch)
   per move and per cluster count.

The points are synthetic Gaussian blobs on a 10-D manifold (display = its first two dimensions
scaled to [-1, 1]); a real cluster artifact is written with ``run_cluster`` so the slider path is
the studio's own. Run: ``.venv/bin/python benchmarks/bench_studio.py [--rows 212000]``.

``--clusters 500 --label-layers --plot-px 1150 810 --pan-zoom-only`` (issue #19): a 3-layer label
hierarchy (the generator's 500 blobs, then ~60 and ~8 groups of them, with dense-core outlines
from ``cluster_geometry``) so a pan/zoom also re-places the zoom-aware labels, at the plot size of
a 1500×1000 window; writes ``studio-212k-500.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_dataset(data_dir: Path, rows: int, k: int, seed: int = 0):
    """A dataset with input, display + cluster UMAPs (no embedding) for the map and the slider."""
    from pipeline.core.workspace import Workspace, atomic_write_json, write_parquet
    from studio.mapdata import synthetic_frame

    rng = np.random.default_rng(seed)
    frame = synthetic_frame(rows, k=k, seed=seed)
    centres10 = rng.normal(0, 3, size=(k, 10))
    manifold = (centres10[frame["cluster"].to_numpy()] + rng.normal(0, 0.35, (rows, 10))).astype(np.float32)
    ws = Workspace(data_dir)
    with ws.creating_dataset("bench") as ds:
        tweets = frame.drop(columns=["x", "y", "cluster"])
        write_parquet(tweets, ds.input_path)
        atomic_write_json(ds.meta_path, {"length": rows, "input_fingerprint": f"synthetic-{rows}-{seed}"})
    ds = ws.dataset("bench")
    common = {"embedding_id": "embedding-001", "rows": rows}
    with ds.new_artifact("umap") as disp, ds.new_artifact("umap") as clus:
        disp.write_parquet(frame[["x", "y"]].astype(np.float32))
        disp.write_sidecar({**common, "purpose": "display", "n_components": 2, "cluster_umap_id": clus.id},
                           inputs={"input": ds.input_fingerprint()}, rows=rows)
        clus.write_parquet(pd.DataFrame({f"dim_{i}": manifold[:, i] for i in range(10)}))
        clus.write_sidecar({**common, "purpose": "cluster", "n_components": 10, "display_umap_id": disp.id},
                           inputs={"input": ds.input_fingerprint()}, rows=rows)
    return ds, disp.id, clus.id


def time_calls(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


class PatchRecorder:
    """The rendered plot in a Bokeh Document; turns its changes into the server's PATCH-DOC message."""

    def __init__(self, root):
        from bokeh.document import Document
        from bokeh.protocol import Protocol

        self.doc = Document()
        self.doc.add_root(root)
        self.events: list = []
        self.protocol = Protocol()
        self.doc.on_change(self.events.append)

    def flush(self) -> int:
        """Build the message for the changes since the last flush; returns its size in bytes."""
        if not self.events:
            return 0
        msg = self.protocol.create("PATCH-DOC", list(self.events))
        self.events.clear()
        return len(msg.header_json) + len(msg.content_json) + sum(len(b.to_bytes()) for b in msg.buffers)


def summary(seconds: list[float]) -> dict:
    return {"median_s": round(statistics.median(seconds), 4), "max_s": round(max(seconds), 4),
            "min_s": round(min(seconds), 4), "n": len(seconds)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=212_000)
    parser.add_argument("--clusters", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--output", type=Path, default=None,
                        help="default: results/studio.json (results/studio-212k-500.json with --label-layers)")
    parser.add_argument("--label-layers", action="store_true", help="a 3-layer label hierarchy on the map")
    parser.add_argument("--plot-px", type=int, nargs=2, default=None, metavar=("W", "H"),
                        help="plot frame in pixels (default: the studio's initial 720×560)")
    parser.add_argument("--pan-zoom-only", action="store_true", help="skip the re-cluster round trips")
    args = parser.parse_args(argv)
    args.output = args.output or ROOT / "benchmarks" / "results" / (
        "studio-212k-500.json" if args.label_layers else "studio.json")

    import datashader as ds_
    import holoviews as hv
    from holoviews.operation.datashader import rasterize, spread

    from pipeline.core.workspace import library_versions  # noqa: F401 - used by finish()
    from pipeline.stages.cluster.stage import ClusterConfig, run_cluster
    from studio import mapdata
    from studio.views import map as map_view

    hv.extension("bokeh", logo=False)
    width, height = args.plot_px or (map_view.PLOT_WIDTH, map_view.PLOT_HEIGHT)
    results: dict = {"rows": args.rows, "clusters_generated": args.clusters, "plot_px": [width, height]}
    with tempfile.TemporaryDirectory(prefix="bench-studio-") as tmp:
        started = time.perf_counter()
        dataset, display_id, cluster_umap_id = synthetic_dataset(Path(tmp) / "data", args.rows, args.clusters)
        results["build_dataset_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        cluster_id = run_cluster(dataset, ClusterConfig(), None, display_umap_id=display_id,
                                 clustering_umap_id=cluster_umap_id)
        results["run_cluster_s"] = round(time.perf_counter() - started, 2)
        saved_mcs = dataset.sidecar(cluster_id)["params"]["min_cluster_size"]

        started = time.perf_counter()
        data = mapdata.load_map_data(dataset, display_id, cluster_id)
        results["load_map_data_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        mapdata.load_map_data(dataset, display_id, cluster_id)
        results["load_map_data_cached_s"] = round(time.perf_counter() - started, 6)

        layers = None
        if args.label_layers:
            started = time.perf_counter()
            layers = label_hierarchy(data.xy, mapdata.synthetic_frame(args.rows, k=args.clusters)["cluster"].to_numpy())
            results["label_layers"] = {str(k): len(v) for k, v in layers.items()}
            results["label_layers_geometry_s"] = round(time.perf_counter() - started, 2)
        model = map_view.MapModel(data, dataset=dataset, cluster_id=cluster_id, saved_min_cluster_size=saved_mcs,
                                  layers=layers)
        results["n_clusters_saved"] = model.n_clusters
        points = hv.Points(model.points_frame(), kdims=["x", "y"], vdims=["colour"])
        rng = np.random.default_rng(1)

        def viewport():
            zoom = rng.uniform(0.05, 1.0)
            cx, cy = rng.uniform(-0.8, 0.8, 2)
            return (cx - zoom, cx + zoom), (cy - zoom * 0.78, cy + zoom * 0.78)

        def rasterize_once():
            xr, yr = viewport()
            img = rasterize(points, aggregator=ds_.max("colour"), x_range=xr, y_range=yr,
                            width=width, height=height, dynamic=False)
            spread(img, px=1, how="max", dynamic=False)

        rasterize_once()  # numba compile
        results["rasterize_per_pan_zoom"] = summary(time_calls(rasterize_once, args.repeat))

        # The studio's own plot: RangeXY events on the rendered overlay (rasterize + spread + Bokeh data).
        plot, _streams = map_view.build_plot(model)
        rendered = hv.renderer("bokeh").get_plot(plot)
        patches = PatchRecorder(rendered.state)
        range_streams = [s for s in rendered.streams if isinstance(s, hv.streams.RangeXY)]
        for stream in rendered.streams:  # what the browser reports once the plot is laid out
            if isinstance(stream, hv.streams.PlotSize):
                stream.event(width=width, height=height)
        patches.flush()
        label_counts = []
        placed = model.placed_labels

        def counting_placed(*a, **kw):
            out = placed(*a, **kw)
            label_counts.append(len(out))
            return out

        model.placed_labels = counting_placed

        def pan_zoom_plot():
            xr, yr = viewport()
            # One browser range change triggers every RangeXY stream of the plot together (one
            # refresh), as HoloViews' Bokeh callback does; triggering them one by one would refresh twice.
            for stream in range_streams:
                stream.update(x_range=xr, y_range=yr)
            hv.streams.Stream.trigger(range_streams)
            patches.flush()

        pan_zoom_plot()
        results["plot_update_per_pan_zoom"] = summary(time_calls(pan_zoom_plot, args.repeat))
        results["labels_drawn_per_view"] = {"min": min(label_counts), "max": max(label_counts)} if label_counts else {}
        model.placed_labels = placed
        started = time.perf_counter()
        for _ in range(args.repeat):
            xr, yr = viewport()
            model._placed = None
            model.placed_labels(xr, yr, width, height)
        results["label_placement_per_pan_zoom_s"] = round((time.perf_counter() - started) / args.repeat, 4)
        if args.pan_zoom_only:
            return finish(results, args, hv)

        # Where a slider move's time goes: wrap the model's data callbacks (instance attributes
        # shadow the methods the DynamicMaps call) and the preview geometry.
        spent: dict[str, float] = {}
        depth: dict[str, int] = {}

        def timed(name, fn):
            def wrapper(*args, **kwargs):
                depth[name] = depth.get(name, 0) + 1
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    depth[name] -= 1
                    if not depth[name]:  # count nested calls (hull_path → hull_paths) once
                        spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
            return wrapper

        for name in ("points_frame", "hull_path", "hull_paths", "label_points", "highlight_frame"):
            if hasattr(model, name):
                setattr(model, name, timed("callbacks", getattr(model, name)))
        preview_layer = mapdata.preview_layer
        mapdata.preview_layer = timed("preview_geometry", preview_layer)

        results["load_average_before_round_trips"] = [round(v, 2) for v in os.getloadavg()]
        sizes = [int(saved_mcs * f) for f in (1.5, 2, 3, 0.75, 4, 1.25)]
        model.min_cluster_size = sizes[0]  # first call loads and caches the saved tree
        patches.flush()
        moves = []
        try:
            for size in sizes[1:] * 2:
                spent.clear()
                started = time.perf_counter()
                model.min_cluster_size = size  # recluster → one plot refresh → rasterize, hulls, labels → Bokeh
                patch_started = time.perf_counter()
                patch_bytes = patches.flush()
                ended = time.perf_counter()
                total = ended - started
                geometry = spent.get("preview_geometry", 0.0)
                callbacks = spent.get("callbacks", 0.0) - geometry  # preview_layer runs inside hull_path
                moves.append({
                    "min_cluster_size": size, "n_clusters": model.n_clusters, "total_s": total,
                    "recluster_s": model.recluster_seconds, "preview_geometry_s": geometry,
                    "other_callbacks_s": callbacks, "patch_s": ended - patch_started,
                    "holoviews_datashader_bokeh_s": (patch_started - started) - model.recluster_seconds
                    - geometry - callbacks,
                    "patch_bytes": patch_bytes,
                })
        finally:
            mapdata.preview_layer = preview_layer
        parts = ["total_s", "recluster_s", "preview_geometry_s", "other_callbacks_s",
                 "holoviews_datashader_bokeh_s", "patch_s"]
        results["recluster_round_trip"] = summary([m["total_s"] for m in moves])
        results["recluster_only"] = summary([m["recluster_s"] for m in moves])
        results["round_trip_breakdown_median_s"] = {
            k: round(statistics.median(m[k] for m in moves), 4) for k in parts[1:]}
        results["round_trip_by_n_clusters"] = {
            str(n): {k: round(statistics.median(m[k] for m in moves if m["n_clusters"] == n), 4) for k in parts}
            for n in sorted({m["n_clusters"] for m in moves})}
        results["round_trip_moves"] = [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()} for m in moves]
        results["clusters_by_min_cluster_size"] = {
            str(m["min_cluster_size"]): m["n_clusters"] for m in sorted(moves, key=lambda m: m["min_cluster_size"])}

    return finish(results, args, hv)


def label_hierarchy(xy: np.ndarray, fine: np.ndarray, seed: int = 0) -> dict:
    """Label layers like the labels stage's: ``fine`` clusters, then ~60 and ~8 groups of their centroids."""
    from pipeline.stages.cluster.geometry import cluster_geometry

    rng = np.random.default_rng(seed)
    k = int(fine.max()) + 1
    centroids = np.vstack([xy[fine == c].mean(axis=0) for c in range(k)])
    assignments = {0: fine}
    for layer, groups in ((1, 60), (2, 8)):
        seeds = centroids[rng.choice(k, min(groups, k), replace=False)]
        assignments[layer] = np.argmin(((centroids[:, None] - seeds[None]) ** 2).sum(-1), axis=1)[fine]
    layers = {}
    for layer, labels in assignments.items():
        geo = cluster_geometry(xy, labels)
        geo["cluster"] = [f"{layer}_{c}" for c in geo["cluster"]]
        geo["label"] = [f"topic {layer}.{i} " + "word " * int(rng.integers(1, 4)) for i in range(len(geo))]
        geo["layer"] = layer
        layers[layer] = geo
    return layers


def finish(results: dict, args, hv) -> int:
    from pipeline.core.workspace import atomic_write_json, library_versions

    # On a shared box the numbers scale with contention: record it next to them.
    results["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    results["cpu_count"] = os.cpu_count()
    results["targets"] = {"pan_zoom_s": 0.2, "recluster_round_trip_s": 0.5}
    results["meets_targets"] = {"pan_zoom": results["plot_update_per_pan_zoom"]["median_s"] <= 0.2}
    if "recluster_round_trip" in results:
        results["meets_targets"]["recluster"] = results["recluster_round_trip"]["median_s"] <= 0.5
    results["versions"] = {k: v for k, v in library_versions().items() if k in ("numpy", "pandas", "hdbscan")}
    import datashader
    import panel

    results["versions"].update(holoviews=hv.__version__, datashader=datashader.__version__, panel=panel.__version__)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
