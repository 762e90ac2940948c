"""Cluster shapes on the display map: the outline of each cluster's dense core, and a centroid.

Pure functions of (x, y) and labels, shared by the cluster stage (default labels), the
labels stage (toponymy layers) and the studio's slider preview (:func:`cluster_shapes`).

A convex hull of a cluster's points spans the map as soon as the cluster has two lobes or a
few far-off members (issue #19). The outline here is a density contour instead: each
cluster's points are binned on its own small grid, smoothed, and cut at the density level
above which ``CORE_MASS`` of its points lie; the outline is the contour of the connected
region holding the most points (the main lobe). That lobe is then outlined again on a grid of
its own (``LOBE_MASS`` of its points inside), so a few far-off members, which stretch the first
grid, do not blur the outline. The centroid is the mean of the lobe's points, so a label sits
on the cluster's body, not between its lobes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

CORE_MASS = 0.85  # share of a cluster's points above the first pass's density level (finds the main lobe)
LOBE_MASS = 0.95  # share of the main lobe's points inside its outline (second pass)
MIN_LOBE_POINTS = 10  # a smaller main lobe keeps the first pass's outline
GRID_CELLS = 40  # at most this many grid cells across the longer side of a cluster's box (1–99 % quantiles)…
CELLS_PER_SQRT_N = 1.2  # …and fewer for small clusters, so a sparse cluster is not cut into islands
MARGIN_CELLS = 4  # empty cells around the box, so smoothing has room and contours close
SMOOTH_CELLS = 1.2  # Gaussian smoothing of the counts, in cells
BOX_QUANTILE = 0.01  # points outside a cluster's [q, 1 - q] box count as outliers
MIN_CELL = 1e-4  # a cluster of identical points still gets a (tiny) outline
SIMPLIFY_CELLS = 0.25  # outline simplification tolerance, in cells


def cluster_geometry(xy: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per cluster label ≥ 0, in label order: cluster, count, indices, hull, centroid_x, centroid_y.

    ``indices`` are row numbers (ls_index); noise (label < 0) is left out. ``hull`` is the
    dense core's outline as [[x, y], ...] counter-clockwise (open ring, 6 decimals).
    """
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    if len(xy) != len(labels):
        raise ValueError(f"cluster_geometry: {len(xy)} points but {len(labels)} labels")
    shapes = cluster_shapes(xy, labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    indices = [order[lo:hi].astype(np.int64).tolist()
               for lo, hi in zip(np.searchsorted(sorted_labels, shapes["cluster"].to_numpy()),
                                 np.searchsorted(sorted_labels, shapes["cluster"].to_numpy() + 1))]
    shapes["indices"] = indices
    shapes["hull"] = [np.round(np.asarray(h, dtype=float), 6).tolist() if len(h) else [] for h in shapes["hull"]]
    return shapes[["cluster", "count", "indices", "hull", "centroid_x", "centroid_y"]]


def _group_quantile(values: np.ndarray, group: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                    q: float, upper: bool = False) -> np.ndarray:
    """The ``q`` quantile of ``values`` within each group 0..k-1 (counts/starts of the groups);
    the lower order statistic, or the upper one with ``upper`` (so a 2-point box spans both)."""
    lo, hi = values.min(), values.max()
    order = np.argsort(group + 0.5 * (values - lo) / ((hi - lo) or 1.0))  # by group, then value
    rank = np.ceil((counts - 1) * q) if upper else np.floor((counts - 1) * q)
    # a group with no values (left out of a pass) reads any value: clip its index into range
    return values[order][np.clip(starts + rank.astype(np.int64), 0, len(values) - 1)]


def cluster_shapes(xy: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """cluster, count, centroid_x, centroid_y, hull for every label ≥ 0, in label order.

    Two passes over every cluster at once (one histogram pass into a stack of per-cluster grids,
    one smoothing, one connected-component labelling each; only the contours are traced per
    cluster, ~0.5 s at 212K points / 500 clusters). The first finds each cluster's main lobe on
    a grid over its whole 1–99 % box; the second draws that lobe's outline on a grid over the
    lobe alone. A cluster whose few far-off members stretch its box (repeated-text islands at
    212K) otherwise got a coarse grid and an outline up to 6× the area of its visible body.
    """
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    columns = ["cluster", "count", "centroid_x", "centroid_y", "hull"]
    px, py = xy[:, 0], xy[:, 1]
    if len(labels) and labels.min() < 0:  # noise has no shape
        member = labels >= 0
        px, py, labels = px[member], py[member], labels[member]
    if not len(labels):
        return pd.DataFrame(columns=columns)
    label_counts = np.bincount(labels)
    clusters = np.flatnonzero(label_counts)
    k = len(clusters)
    counts = label_counts[clusters]
    group_of_label = np.zeros(len(label_counts), dtype=np.int64)
    group_of_label[clusters] = np.arange(k)
    group = group_of_label[labels]

    whole = _main_lobes(px, py, group, k, CORE_MASS)
    # the second pass: each main lobe with enough points, on its own grid
    refined = whole.lobe_counts >= MIN_LOBE_POINTS
    lobe = _main_lobes(px, py, group, k, LOBE_MASS, points=whole.in_lobe, groups=np.flatnonzero(refined))
    rings, use_lobe = [], np.zeros(k, dtype=bool)
    for g in range(k):
        ring = lobe.ring(g) if refined[g] else np.empty((0, 2))
        use_lobe[g] = len(ring) >= 4
        rings.append(ring if use_lobe[g] else whole.ring(g))  # no closed outline on the finer grid: the first's

    def pick(name: str) -> np.ndarray:
        first, second = getattr(whole, name), getattr(lobe, name)
        return np.where(use_lobe.reshape((-1,) + (1,) * (first.ndim - 1)), second, first)

    hulls = _rings_to_data(rings, pick("x0"), pick("y0"), pick("cell"), pick("bounds"))
    centroid = pick("centroid")
    return pd.DataFrame({"cluster": clusters, "count": counts.astype(np.int64), "centroid_x": centroid[:, 0],
                         "centroid_y": centroid[:, 1], "hull": hulls}, columns=columns)


@dataclass
class _Lobes:
    """One pass of :func:`_main_lobes`: per cluster (k of them) unless said otherwise."""

    x0: np.ndarray  # the grid: lower-left corner and square cell size
    y0: np.ndarray
    cell: np.ndarray
    density: np.ndarray  # k × side × side smoothed counts
    regions: np.ndarray  # k × side × side connected dense regions (0 = none)
    best: np.ndarray  # the main lobe: the region holding the most points
    level: np.ndarray  # the outline's density level
    bounds: np.ndarray  # k × 4 box of the pass's points (x0, y0, x1, y1)
    centroid: np.ndarray  # k × 2 mean of the main lobe's points
    lobe_counts: np.ndarray  # points in the main lobe
    in_lobe: np.ndarray  # per point: in its cluster's main lobe

    def ring(self, g: int) -> np.ndarray:
        """Cluster ``g``'s main-lobe outline in its grid's (column, row) coordinates."""
        return _outer_ring(np.where(self.regions[g] == self.best[g], self.density[g], 0.0), self.level[g])


def _main_lobes(px: np.ndarray, py: np.ndarray, group: np.ndarray, k: int, mass: float,
                points: Optional[np.ndarray] = None, groups: Optional[np.ndarray] = None) -> _Lobes:
    """Each cluster's main lobe at density level ``mass``: the connected dense region of its
    grid holding the most points. ``points`` (mask) and ``groups`` (cluster numbers) restrict
    the pass; clusters left out get empty grids and are meant to be taken from another pass."""
    from scipy import ndimage

    chosen = np.ones(len(px), dtype=bool) if points is None else points.copy()
    if groups is not None:
        wanted = np.zeros(k, dtype=bool)
        wanted[groups] = True
        chosen &= wanted[group]
    px, py, group = px[chosen], py[chosen], group[chosen]
    counts = np.bincount(group, minlength=k)
    present = counts > 0
    safe = np.maximum(counts, 1)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    side = GRID_CELLS + 2 * MARGIN_CELLS + 1
    x0, y0, cell = np.zeros(k), np.zeros(k), np.full(k, MIN_CELL)
    if present.any():
        # each cluster's grid: square cells over its 1–99 % box, with a margin
        x_lo = _group_quantile(px, group, starts, counts, BOX_QUANTILE)
        x_hi = _group_quantile(px, group, starts, counts, 1 - BOX_QUANTILE, upper=True)
        y_lo = _group_quantile(py, group, starts, counts, BOX_QUANTILE)
        y_hi = _group_quantile(py, group, starts, counts, 1 - BOX_QUANTILE, upper=True)
        across = np.clip(CELLS_PER_SQRT_N * np.sqrt(safe), 4, GRID_CELLS)
        cell = np.maximum(np.maximum(x_hi - x_lo, y_hi - y_lo) / across, MIN_CELL)
        x0 = (x_lo + x_hi) / 2 - cell * side / 2  # the grid is centred on the box
        y0 = (y_lo + y_hi) / 2 - cell * side / 2
    ix = np.floor((px - x0[group]) / cell[group]).astype(np.int64)
    iy = np.floor((py - y0[group]) / cell[group]).astype(np.int64)
    inside = (ix >= 0) & (ix < side) & (iy >= 0) & (iy < side)
    flat = np.where(inside, group * side * side + np.clip(iy, 0, side - 1) * side + np.clip(ix, 0, side - 1), -1)
    hist = np.bincount(flat[inside], minlength=k * side * side).astype(np.float64).reshape(k, side, side)
    density = ndimage.gaussian_filter(hist, sigma=(0, SMOOTH_CELLS, SMOOTH_CELLS), mode="constant")

    # The level above which ``mass`` of each cluster's points lie (outliers off the grid: 0).
    point_density = np.where(inside, density.ravel()[np.maximum(flat, 0)], 0.0)
    level = np.zeros(k)
    if present.any():
        level = _group_quantile(point_density, group, starts, counts, 1 - mass)
    # Between 2 % and half of the peak: a cluster of (nearly) identical points still gets a ring
    # around its peak, and a ring never reaches the grid's edge (it would not close).
    peak = density.max(axis=(1, 2))
    level = np.clip(level, 0.02 * peak, 0.5 * peak)
    core = (density >= level[:, None, None]) & present[:, None, None]
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)  # never connect two clusters' grids
    regions, n_regions = ndimage.label(core, structure=structure)
    region_mass = np.bincount(regions.ravel(), weights=hist.ravel(), minlength=n_regions + 1)
    region_mass[0] = -1
    # The main lobe of each cluster: its region holding the most points.
    region_group = np.full(n_regions + 1, -1, dtype=np.int64)
    _, first = np.unique(regions.ravel(), return_index=True)
    region_group[np.unique(regions.ravel())] = first // (side * side)
    region_group[0] = -1
    best = np.zeros(k, dtype=np.int64)
    by_mass = np.lexsort((region_mass, region_group))
    valid = by_mass[region_group[by_mass] >= 0]
    last = np.r_[region_group[valid][1:] != region_group[valid][:-1], True]
    best[region_group[valid][last]] = valid[last]

    point_region = np.where(inside, regions.ravel()[np.maximum(flat, 0)], 0)
    in_core = (point_region == best[group]) & (point_region > 0)
    core_n = np.bincount(group, in_core, k)
    centroid = np.column_stack([
        np.where(core_n > 0, np.bincount(group, px * in_core, k) / np.maximum(core_n, 1),
                 np.bincount(group, px, k) / safe),
        np.where(core_n > 0, np.bincount(group, py * in_core, k) / np.maximum(core_n, 1),
                 np.bincount(group, py, k) / safe)])
    # Smoothing lets a contour pass a little beyond the outermost points: clip it to their box.
    bounds = np.full((k, 4), [np.inf, np.inf, -np.inf, -np.inf])
    np.minimum.at(bounds[:, 0], group, px)
    np.minimum.at(bounds[:, 1], group, py)
    np.maximum.at(bounds[:, 2], group, px)
    np.maximum.at(bounds[:, 3], group, py)
    in_lobe = np.zeros(len(chosen), dtype=bool)
    in_lobe[np.flatnonzero(chosen)[in_core]] = True
    return _Lobes(x0=x0, y0=y0, cell=cell, level=level, best=best, bounds=bounds, centroid=centroid,
                  density=density, regions=regions, in_lobe=in_lobe, lobe_counts=core_n.astype(np.int64))


def _outer_ring(field: np.ndarray, level: float) -> np.ndarray:
    """The largest closed contour of ``field`` at ``level``, in grid (column, row) coordinates."""
    import contourpy

    best, best_area = np.empty((0, 2)), 0.0
    for line in contourpy.contour_generator(z=field, line_type="Separate").lines(level):
        if len(line) < 4:
            continue
        x, y = line[:, 0], line[:, 1]
        area = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
        if area > best_area:  # the outer ring: holes are smaller
            best, best_area = line, area
    return best


def _rings_to_data(rings: list, x0: np.ndarray, y0: np.ndarray, cell: np.ndarray, bounds: np.ndarray) -> list:
    """Grid rings -> simplified counter-clockwise open rings [[x, y], ...] in data coordinates,
    each within its cluster's ``bounds`` (x0, y0, x1, y1 of its points)."""
    import shapely

    hulls: list = [[] for _ in rings]
    keep = [g for g, ring in enumerate(rings) if len(ring) >= 4]
    if not keep:
        return hulls
    coords = np.vstack([rings[g] for g in keep])
    which = np.repeat(np.arange(len(keep)), [len(rings[g]) for g in keep])
    g = np.asarray(keep)[which]
    # grid index (column, row) -> data: cell i spans [x0 + i·cell, x0 + (i+1)·cell]
    data = np.column_stack([x0[g] + (coords[:, 0] + 0.5) * cell[g], y0[g] + (coords[:, 1] + 0.5) * cell[g]])
    polygons = shapely.polygons(shapely.linearrings(data, indices=which))
    simplified = shapely.simplify(polygons, SIMPLIFY_CELLS * cell[keep], preserve_topology=False)
    collapsed = shapely.is_empty(simplified) | (shapely.area(simplified) <= 0)  # a tiny ring: keep it as is
    polygons = np.where(collapsed, polygons, simplified)
    b = bounds[keep]
    # a cluster whose points share an x (or y) keeps a (tiny) area across it
    px_, py_ = np.where(b[:, 2] > b[:, 0], 0.0, MIN_CELL / 2), np.where(b[:, 3] > b[:, 1], 0.0, MIN_CELL / 2)
    polygons = shapely.intersection(polygons, shapely.box(b[:, 0] - px_, b[:, 1] - py_, b[:, 2] + px_, b[:, 3] + py_))
    if hasattr(shapely, "orient_polygons"):
        polygons = shapely.orient_polygons(polygons)
    for slot, polygon in zip(keep, polygons):
        if polygon is not None and polygon.geom_type in ("MultiPolygon", "GeometryCollection"):
            parts = [g for g in polygon.geoms if g.geom_type == "Polygon"]
            polygon = max(parts, key=lambda g: g.area) if parts else None
        if polygon is None or polygon.is_empty or polygon.geom_type != "Polygon" or polygon.area <= 0:
            continue
        ring = np.asarray(polygon.exterior.coords)[:-1]  # open ring: the last point repeats the first
        if len(ring) >= 3:
            hulls[slot] = ring.tolist()
    return hulls
