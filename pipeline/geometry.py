"""Cluster shapes on the display map: trimmed convex hulls and centroids.

Pure functions of (x, y) and labels, shared by the cluster stage (default labels) and
the labels stage (toponymy layers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: points farther from the centroid than this quantile of their cluster are left out of
#: the hull, so one stray tweet does not stretch a cluster's outline across the map
HULL_TRIM_QUANTILE = 0.9
MIN_POINTS_TO_TRIM = 10


def trimmed_hull(points: np.ndarray, quantile: float = HULL_TRIM_QUANTILE) -> tuple[list[list[float]], float, float]:
    """(hull as a list of [x, y] counter-clockwise, centroid x, centroid y) of one cluster."""
    import shapely

    points = np.asarray(points, dtype=np.float64)
    centre = points.mean(axis=0)
    if len(points) >= MIN_POINTS_TO_TRIM and quantile < 1.0:
        dist = np.linalg.norm(points - centre, axis=1)
        kept = points[dist <= np.quantile(dist, quantile)]
        if len(kept) >= 3:
            points = kept
            centre = points.mean(axis=0)
    shape = shapely.MultiPoint(points).convex_hull
    if shape.geom_type == "Polygon":
        shape = shapely.orient_polygons(shape) if hasattr(shapely, "orient_polygons") else shape
        coords = np.asarray(shape.exterior.coords)[:-1]  # open ring: the last point repeats the first
    else:  # a point or a segment: too few distinct points for an area
        coords = np.asarray(shape.coords)
    return np.round(coords, 6).tolist(), float(centre[0]), float(centre[1])


def cluster_geometry(xy: np.ndarray, labels: np.ndarray, quantile: float = HULL_TRIM_QUANTILE) -> pd.DataFrame:
    """One row per cluster label ≥ 0, in label order: cluster, count, indices, hull, centroid_x, centroid_y.

    ``indices`` are row numbers (ls_index); noise (label < 0) is left out.
    """
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    if len(xy) != len(labels):
        raise ValueError(f"cluster_geometry: {len(xy)} points but {len(labels)} labels")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    rows = []
    for label in np.unique(labels[labels >= 0]):
        lo, hi = np.searchsorted(sorted_labels, [label, label + 1])
        idx = order[lo:hi]
        hull, cx, cy = trimmed_hull(xy[idx], quantile)
        rows.append({"cluster": int(label), "count": int(len(idx)), "indices": idx.astype(np.int64).tolist(),
                     "hull": hull, "centroid_x": cx, "centroid_y": cy})
    return pd.DataFrame(rows, columns=["cluster", "count", "indices", "hull", "centroid_x", "centroid_y"])
