"""Hulls and centroids of every cluster of a layer, on the display coordinates.

The computation is the cluster stage's (``pipeline.stages.cluster.geometry.cluster_geometry``: the outline
of each cluster's dense core), so map outlines and label outlines agree; this adapts its table to one layer.
"""

from __future__ import annotations

import numpy as np

from pipeline.stages.cluster.geometry import cluster_geometry


def layer_geometry(xy: np.ndarray, labels: np.ndarray) -> tuple[list[list[list[float]]], np.ndarray]:
    """(hull of each cluster 0..k-1 as [[x, y], ...], centroids k×2) for labels 0..k-1."""
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    frame = cluster_geometry(np.asarray(xy, dtype=np.float64), labels).set_index("cluster").reindex(range(k))
    if frame["hull"].isna().any():
        raise ValueError("cluster_geometry returned no hull for some clusters")
    hulls = [[[float(p[0]), float(p[1])] for p in hull] for hull in frame["hull"]]
    return hulls, frame[["centroid_x", "centroid_y"]].to_numpy(dtype=np.float64)
