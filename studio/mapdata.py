"""Data behind the map view: points, tweets, a KD-tree, cluster layers — loaded once per process.

Pure functions over arrays and frames; reading artifacts goes through the workspace and
``pipeline`` loaders. ``pn.state.cache`` keeps one copy per (dataset, umap, clustering), so a
second browser session (or a page reload) does not read 212K tweets again.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from pipeline.stages.cluster.geometry import cluster_shapes
from pipeline.stages.labels import load_labels
from pipeline.stages.lineage import default_labels_id
from pipeline.stages.umap.artifact import load_umap

TWEET_COLUMNS = ["id", "text", "created_at", "favorites", "retweets", "replies", "tweet_type", "username"]
NOISE_CODE = 255  # palette slot for unassigned points (raw HDBSCAN noise in a re-cluster preview)

_CACHE_LOCK = threading.Lock()


def _cache() -> dict:
    import panel as pn

    return pn.state.cache


#: distinct colours handed out to clusters; neighbouring clusters never share one (see colour_slots)
N_COLOURS = 20
# While a cluster is selected the other points take dimmed slots and the selected cluster's
# points take copies of the full colours placed ABOVE them: the rasterizer keeps the maximum
# slot per pixel, so where they overlap the selected cluster is the one drawn.
DIM_OFFSET = N_COLOURS  # dimmed cluster colours: DIM_OFFSET + slot
DIM_NOISE_CODE = 2 * N_COLOURS  # dimmed grey (noise and deleted tweets while a cluster is selected)
SELECTED_OFFSET = 2 * N_COLOURS + 1  # the selected cluster's full colours: SELECTED_OFFSET + slot
DIM_ALPHA = 0.22  # share of the colour kept when dimmed (blended with the white background)


def _dimmed(colour: str, alpha: float = DIM_ALPHA) -> str:
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * alpha):02x}" for c in rgb)


def palette() -> list[str]:
    """256 palette slots: cluster colours, their dimmed and selected copies, slot 255 grey noise."""
    import colorcet

    colours = list(colorcet.palette["glasbey_category10"][:N_COLOURS])
    slots = colours + [_dimmed(c) for c in colours] + [_dimmed("#c8c8c8", 0.45)] + colours
    return slots + ["#c8c8c8"] * (256 - len(slots))


def selection_codes(codes: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Palette slots with one cluster selected: its points (``member`` mask) full colour, every other dimmed."""
    codes = np.asarray(codes, dtype=np.float32)
    noise = codes == NOISE_CODE
    out = np.where(member, SELECTED_OFFSET + codes, DIM_OFFSET + codes)
    out[noise] = DIM_NOISE_CODE
    return out.astype(np.float32)


def cluster_neighbours(centroids: np.ndarray) -> list[set[int]]:
    """Adjacent clusters: edges of the Delaunay triangulation of their centroids (kNN when degenerate)."""
    centroids = np.asarray(centroids, dtype=float)
    n = len(centroids)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    if n < 2:
        return neighbours
    from scipy.spatial import Delaunay, QhullError, cKDTree

    try:
        simplices = Delaunay(centroids).simplices if n >= 4 else np.array([list(range(n))])
    except (QhullError, ValueError):  # collinear or repeated centroids
        _, nearest = cKDTree(centroids).query(centroids, k=min(n, 5))
        simplices = nearest
    for simplex in simplices:
        for a in simplex:
            neighbours[a].update(int(b) for b in simplex if b != a)
    return neighbours


def colour_slots(centroids: np.ndarray, sizes: np.ndarray, n_colours: int = N_COLOURS) -> np.ndarray:
    """A palette slot per cluster such that adjacent clusters differ (greedy graph colouring).

    Biggest clusters first; each takes the least-used colour that no neighbour (nor, if
    possible, a neighbour's neighbour) has, so colours also stay spread over the map.
    """
    neighbours = cluster_neighbours(centroids)
    slots = np.full(len(neighbours), -1, dtype=np.int64)
    used = np.zeros(n_colours, dtype=np.int64)
    for i in np.argsort(-np.asarray(sizes, dtype=float), kind="stable"):
        near = {slots[j] for j in neighbours[i]} - {-1}
        far = {slots[k] for j in neighbours[i] for k in neighbours[j] if k != i} - {-1}
        for banned in (near | far, near, set()):
            free = [c for c in range(n_colours) if c not in banned]
            if free:
                break
        slots[i] = min(free, key=lambda c: (used[c], c))
        used[slots[i]] += 1
    return slots


def label_slots(xy: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Palette slot per cluster label 0..max (unused labels: 0), from the points' centroids."""
    labels = np.asarray(labels).astype(np.int64, copy=False)
    member = labels >= 0
    if not member.any():
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(labels[member])
    present = np.flatnonzero(counts)
    cx = np.bincount(labels[member], xy[member, 0], len(counts))[present] / counts[present]
    cy = np.bincount(labels[member], xy[member, 1], len(counts))[present] / counts[present]
    slots = np.zeros(len(counts), dtype=np.int64)
    slots[present] = colour_slots(np.column_stack([cx, cy]), counts[present])
    return slots


def colour_codes(labels: np.ndarray, slots: Optional[np.ndarray] = None) -> np.ndarray:
    """Cluster labels -> float32 palette slots (NaN-free; noise -> NOISE_CODE).

    ``slots``: the palette slot of each label (:func:`label_slots`); without it label k -> k % N_COLOURS.
    """
    labels = np.asarray(labels)
    if slots is None or not len(slots):
        codes = np.where(labels < 0, NOISE_CODE, labels % N_COLOURS)
    else:
        codes = np.where(labels < 0, NOISE_CODE, np.asarray(slots)[np.clip(labels, 0, len(slots) - 1)])
    return codes.astype(np.float32)


@dataclass
class MapData:
    """Everything the map draws and looks up, for one (dataset, umap, clustering)."""

    key: tuple
    frame: pd.DataFrame          # row i = ls_index i: x, y, cluster + TWEET_COLUMNS
    xy: np.ndarray = field(repr=False)
    tree: object = field(repr=False)  # scipy.spatial.cKDTree over xy
    _text_lower: Optional[pd.Series] = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def clusters(self) -> np.ndarray:
        return self.frame["cluster"].to_numpy()

    def text_lower(self) -> pd.Series:
        if self._text_lower is None:
            self._text_lower = self.frame["text"].fillna("").astype(str).str.lower()
        return self._text_lower


def build_map_data(frame: pd.DataFrame, key: tuple = ("frame",)) -> MapData:
    """MapData from a frame with x, y, cluster (and optional tweet columns)."""
    from scipy.spatial import cKDTree

    frame = frame.reset_index(drop=True).copy()
    for col in TWEET_COLUMNS:
        if col not in frame.columns:
            frame[col] = "" if col in ("id", "text", "tweet_type", "username", "created_at") else 0
    frame["x"] = frame["x"].astype(np.float32)
    frame["y"] = frame["y"].astype(np.float32)
    frame["cluster"] = frame["cluster"].astype(np.int64)
    xy = frame[["x", "y"]].to_numpy(dtype=np.float64)
    return MapData(key=key, frame=frame, xy=xy, tree=cKDTree(xy))


def load_map_data(dataset, umap_id: str, cluster_id: Optional[str]) -> MapData:
    """The map's data for a dataset, from the process cache or read once from its artifacts."""
    key = ("map", str(dataset.path), umap_id, cluster_id, dataset.input_fingerprint())
    cache = _cache()
    with _CACHE_LOCK:
        if key in cache:
            return cache[key]

    xy = load_umap(dataset, umap_id)
    columns = [c for c in TWEET_COLUMNS]
    tweets = dataset.read_input(columns=columns)
    frame = pd.DataFrame({"x": xy["x"].to_numpy(), "y": xy["y"].to_numpy()})
    if cluster_id:
        from pipeline.stages.cluster.stage import load_clusters

        frame["cluster"] = load_clusters(dataset, cluster_id)["cluster"].to_numpy()
    else:
        frame["cluster"] = 0
    for col in TWEET_COLUMNS:
        frame[col] = tweets[col].to_numpy()
    data = build_map_data(frame, key)
    with _CACHE_LOCK:
        # Keep only a few maps per process: an old clustering is rarely revisited.
        stale = [k for k in cache if isinstance(k, tuple) and k[:1] == ("map",)]
        for k in stale[:-3]:
            cache.pop(k, None)
        cache[key] = data
    return data


def synthetic_frame(n: int = 20_000, k: int = 24, seed: int = 0) -> pd.DataFrame:
    """Gaussian blobs in [-1, 1]² with tweet-like columns (benchmarks and view tests)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.8, 0.8, size=(k, 2))
    labels = rng.integers(0, k, size=n)
    xy = centres[labels] + rng.normal(0, 0.06, size=(n, 2))
    xy = np.clip(xy, -1, 1)
    words = np.array(["data", "map", "idea", "python", "music", "coffee", "city", "rain", "code", "book"])
    texts = [" ".join(words[rng.integers(0, len(words), 6)]) + f" #{i}" for i in range(n)]
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1], "cluster": labels,
        "id": [str(10**17 + i) for i in range(n)], "text": texts,
        "created_at": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 600, unit="s"),
        "favorites": rng.integers(0, 50, n), "retweets": rng.integers(0, 10, n),
        "replies": rng.integers(0, 5, n), "tweet_type": rng.choice(["tweet", "reply", "quote"], n),
        "username": "sample",
    })


# --------------------------------------------------------------------------- lookups

def nearest_point(data: MapData, x: float, y: float, radius: float) -> Optional[int]:
    """ls_index of the point nearest (x, y) within ``radius`` (data units), else None."""
    if x is None or y is None or data.n == 0:
        return None
    dist, idx = data.tree.query([x, y], k=1, distance_upper_bound=radius)
    if not np.isfinite(dist):
        return None
    return int(idx)


def points_in_bounds(data: MapData, bounds) -> np.ndarray:
    x0, y0, x1, y1 = bounds
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    xy = data.xy
    mask = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return np.flatnonzero(mask)


def points_in_polygon(data: MapData, polygon) -> np.ndarray:
    from matplotlib.path import Path as MplPath

    polygon = np.asarray(polygon, dtype=float)
    if polygon.ndim != 2 or len(polygon) < 3:
        return np.array([], dtype=np.int64)
    candidates = points_in_bounds(data, (*polygon.min(0), *polygon.max(0)))
    inside = MplPath(polygon).contains_points(data.xy[candidates])
    return candidates[inside]


def search_points(data: MapData, query: str) -> np.ndarray:
    """ls_index of tweets whose text contains ``query`` (case-insensitive, literal)."""
    query = (query or "").strip().lower()
    if not query:
        return np.array([], dtype=np.int64)
    mask = data.text_lower().str.contains(query, regex=False).to_numpy(dtype=bool)
    return np.flatnonzero(mask)


def _fmt_int(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "0"


def tweet_card_html(data: MapData, index: Optional[int], cluster_label: str = "") -> str:
    """An HTML card for one tweet: text, date, engagement, type (all values escaped)."""
    if index is None:
        return '<div class="ts-card ts-card-empty">Hover over a point to read the tweet.</div>'
    row = data.frame.iloc[index]
    created = row["created_at"]
    date = pd.Timestamp(created).strftime("%Y-%m-%d %H:%M") if pd.notna(created) and created != "" else ""
    label = f'<div class="ts-card-cluster">{html.escape(cluster_label)}</div>' if cluster_label else ""
    return (
        f'<div class="ts-card" data-ls-index="{index}">'
        f'<div class="ts-card-meta">@{html.escape(str(row["username"] or ""))} · {html.escape(date)}'
        f' · <b>{html.escape(str(row["tweet_type"] or ""))}</b></div>'
        f'<div class="ts-card-text">{html.escape(str(row["text"] or ""))}</div>'
        f'<div class="ts-card-stats">♥ {_fmt_int(row["favorites"])} · ⟲ {_fmt_int(row["retweets"])}'
        f' · ↩ {_fmt_int(row["replies"])}</div>{label}</div>'
    )


# --------------------------------------------------------------------------- cluster layers

def preview_layer(data: MapData, labels: np.ndarray) -> pd.DataFrame:
    """Label/hull rows for an unsaved re-clustering: 'cluster k' at each centroid, trimmed hulls."""
    shapes = cluster_shapes(data.xy, labels)
    clusters = shapes["cluster"].to_numpy()
    return pd.DataFrame({
        "cluster": [f"0_{k}" for k in clusters],
        "label": [f"cluster {k}" for k in clusters],
        "description": "",
        "count": shapes["count"].to_numpy(),
        "centroid_x": shapes["centroid_x"].to_numpy(),
        "centroid_y": shapes["centroid_y"].to_numpy(),
        "hull": shapes["hull"].to_list(),
    })


def label_layers(dataset, toponymy_id: Optional[str], cluster_id: Optional[str]) -> dict[int, pd.DataFrame]:
    """Hierarchy layer -> rows (cluster, label, hull, centroid_x, centroid_y, count, indices).

    From the toponymy artifact when there is one, else layer 0 from the cluster's default labels.
    """
    key = ("layers", str(dataset.path), toponymy_id, cluster_id)
    cache = _cache()
    with _CACHE_LOCK:
        if key in cache:
            return cache[key]
    layers: dict[int, pd.DataFrame] = {}
    if toponymy_id:
        frame = load_labels(dataset, toponymy_id)
        for layer, rows in frame.groupby("layer"):
            layers[int(layer)] = rows.reset_index(drop=True)
    elif cluster_id:
        path = dataset.label_file(default_labels_id(cluster_id), ".parquet")
        if path.is_file():
            frame = pd.read_parquet(path)
            frame = frame.reset_index(drop=True)
            frame["cluster"] = [f"0_{i}" for i in range(len(frame))]
            frame["layer"] = 0
            if "count" not in frame.columns:
                frame["count"] = frame["indices"].map(len)
            if "centroid_x" not in frame.columns:
                frame["centroid_x"] = frame["hull"].map(lambda h: _mean_xy(h, 0))
                frame["centroid_y"] = frame["hull"].map(lambda h: _mean_xy(h, 1))
            layers[0] = frame
    with _CACHE_LOCK:
        cache[key] = layers
    return layers


def _mean_xy(hull, axis: int) -> float:
    arr = np.asarray(list(hull) if hull is not None else [], dtype=float)
    if arr.ndim != 2 or not len(arr):
        return float("nan")
    return float(arr[:, axis].mean())


def hull_arrays(rows: pd.DataFrame) -> list[np.ndarray]:
    """Closed outlines (N×2 arrays) for hv.Path from a labels frame's ``hull`` column."""
    paths = []
    for hull in rows.get("hull", []):
        if hull is None:
            continue
        arr = np.asarray([list(p) for p in hull], dtype=float)
        if arr.ndim == 2 and len(arr) >= 3:
            paths.append(np.vstack([arr, arr[:1]]))
    return paths


def joined_path(paths: list[np.ndarray]) -> np.ndarray:
    """Outlines as ONE N×2 array with NaN rows between them (Bokeh breaks the line at NaN).

    HoloViews turns a list of 150 paths into 150 Datasets on every redraw (~1 s at 212K);
    a single NaN-separated path is one array (~10 ms).
    """
    if not paths:
        return np.empty((0, 2))
    gap = np.full((1, 2), np.nan)
    parts = []
    for path in paths:
        parts.extend((path, gap))
    return np.vstack(parts[:-1])


def cluster_indices(data: MapData, layers: dict[int, pd.DataFrame], cluster: str) -> np.ndarray:
    """ls_index of a cluster id like "1_4" (from its layer's ``indices``; layer 0 from the map)."""
    layer_text, _, number = (cluster or "").partition("_")
    try:
        layer, k = int(layer_text), int(number)
    except ValueError:
        return np.array([], dtype=np.int64)
    rows = layers.get(layer)
    if rows is not None and "indices" in rows.columns:
        match = rows[rows["cluster"] == cluster]
        if len(match):
            return np.asarray(list(match.iloc[0]["indices"]), dtype=np.int64)
    if layer == 0:
        return np.flatnonzero(data.clusters == k)
    return np.array([], dtype=np.int64)


def last_update_rows(meta: dict, n: int) -> Optional[tuple[int, int]]:
    """(first, stop) ls_index of the tweets the dataset's last update added, within a map of ``n`` points."""
    updates = (meta or {}).get("updates") or []
    rows = updates[-1].get("new_rows") if updates else None
    if not rows or len(rows) != 2:
        return None
    first, stop = max(0, int(rows[0])), min(int(n), int(rows[1]))
    return (first, stop) if stop > first else None


def cluster_at(data: MapData, layers: dict[int, pd.DataFrame], layer: int, index: int) -> Optional[str]:
    """The id ("layer_k") of the cluster of ``layer`` holding point ``index``, or None (noise)."""
    rows = layers.get(layer)
    if rows is not None and "indices" in rows.columns and "cluster" in rows.columns:
        for cluster, members in zip(rows["cluster"], rows["indices"]):
            if members is not None and np.any(np.asarray(members) == index):
                return str(cluster)
        return None
    k = int(data.clusters[index])
    return f"0_{k}" if layer == 0 and k >= 0 else None


def cluster_named(layers: dict[int, pd.DataFrame], query: str, prefer_layer: int = 0) -> Optional[str]:
    """The cluster a search names: its id ("1_4") or its whole label (case and spacing ignored), or None.

    A label found in several layers resolves to ``prefer_layer`` (the drawn one), else the coarsest.
    """
    text = " ".join((query or "").split()).lower()
    if not text:
        return None
    found: dict[int, str] = {}
    for layer, rows in layers.items():
        if "cluster" not in rows.columns:
            continue
        clusters = rows["cluster"].astype(str)
        if text in set(clusters.str.lower()):
            return clusters[clusters.str.lower() == text].iloc[0]
        labels = rows.get("label", pd.Series("", index=rows.index)).fillna("").astype(str)
        hits = clusters[labels.map(lambda s: " ".join(s.split()).lower()) == text]
        if len(hits):
            found[int(layer)] = hits.iloc[0]
    if not found:
        return None
    return found.get(prefer_layer, found[max(found)])
