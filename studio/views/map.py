"""Map view: every tweet rasterized by Datashader, coloured by cluster, with hulls, labels,
hover card, box/lasso selection table, search highlight and a live ``min_cluster_size`` slider.

The plot fills the main area (width and window height); labels of every hierarchy layer are
placed per view by :func:`studio.map_labels.place_labels` (coarse at full view, finer when
zoomed, never overlapping); neighbouring clusters get different colours. A selected cluster
(label row, a search naming its label, or a click on the map) keeps its colour and gets a bold
outline while every other point is dimmed; after an archive update, "New since last update"
draws the tweets it added on top.

``MapModel`` holds the view state and does the lookups (testable without a browser);
``MapView`` turns it into HoloViews/Panel objects. Rasterization happens outside the
DynamicMap callbacks (HoloViews cannot nest it), so callbacks only choose the data.
"""

from __future__ import annotations

import functools
import time
from typing import Optional

import numpy as np
import pandas as pd
import param

from pipeline.core.tombstones import tombstone_mask
from studio import mapdata
from studio.map_labels import place_labels
from studio.mapdata import MapData
from studio.views.curate import create_curate_panel

PLOT_WIDTH, PLOT_HEIGHT = 720, 560  # the plot's size until the browser reports its real one
FULL_RANGE = (-1.05, 1.05)  # the display UMAP is scaled to [-1, 1]
PLOT_CSS_HEIGHT = "calc(100vh - 240px)"  # window height less the header, tabs and (wrapped) controls
HOVER_RADIUS_PX = 10
MIN_FOCUS_SPAN = 0.25  # data units (the full view is 2.1): zooming to a cluster stops at ~8x
HIGHLIGHT_LIMIT = 20_000
SELECTION_COLUMNS = ["ls_index", "created_at", "tweet_type", "cluster", "favorites", "retweets", "text"]


class MapModel(param.Parameterized):
    """State and lookups of the map for one dataset/umap/clustering."""

    layer = param.Integer(default=0, bounds=(0, None), doc="Hierarchy layer whose hulls/labels are drawn.")
    min_cluster_size = param.Integer(default=None, allow_None=True, bounds=(2, None),
                                     doc="Re-cluster preview; None shows the saved clustering.")
    search = param.String(default="", doc="Tweets containing this text are highlighted.")
    highlighted_cluster = param.String(default=None, allow_None=True)
    selection = param.Array(default=np.array([], dtype=np.int64), doc="Selected ls_index values.")
    hover_index = param.Integer(default=None, allow_None=True)
    focus = param.Tuple(default=None, allow_None=True, length=4,
                        doc="(x0, y0, x1, y1) the map zooms to (the highlighted cluster).")
    show_hulls = param.Boolean(default=True, doc="Outline each cluster's dense core.")
    show_new = param.Boolean(default=False, doc="Draw the tweets the dataset's last update added on top.")

    n_clusters = param.Integer(default=0, doc="Clusters currently coloured.")
    n_matches = param.Integer(default=0)
    recluster_seconds = param.Number(default=None, allow_None=True)
    colour_version = param.Integer(default=0, doc="Bumped when the point colours change.")
    overlay_version = param.Integer(default=0, doc="Bumped when hulls/labels/highlights change.")
    message = param.String(default="")

    def __init__(self, data: MapData, dataset=None, cluster_id: Optional[str] = None,
                 layers: Optional[dict[int, pd.DataFrame]] = None, saved_min_cluster_size: Optional[int] = None,
                 **params):
        self.data = data
        self.dataset = dataset
        self.cluster_id = cluster_id
        self.layers = layers or {}
        self.saved_min_cluster_size = saved_min_cluster_size
        self.labels = data.clusters.copy()
        self._preview_layer: Optional[pd.DataFrame] = None
        self._hull_paths: dict = {}  # layer (or "preview") -> joined outline array
        self._highlight = np.array([], dtype=np.int64)
        self._slots = mapdata.label_slots(data.xy, self.labels)
        self._anchors: Optional[pd.DataFrame] = None
        self._placed: Optional[tuple] = None  # (view key, placed labels) of the last view
        self._selected: Optional[str] = None  # the cluster that stands out (see selected_cluster)
        self.new_rows = mapdata.last_update_rows(dataset.meta(), data.n) if dataset is not None else None
        super().__init__(**params)
        self.n_clusters = _count_clusters(self.labels)
        self._update_highlight()

    # ---- colour / recluster
    def points_frame(self) -> pd.DataFrame:
        """x, y and the palette slot per point (what the rasterizer aggregates)."""
        frame = self.data.frame[["x", "y"]].copy()
        frame["colour"] = mapdata.colour_codes(self.labels, self._slots)
        # issue 9: tweets the curator deleted (tombstones) are drawn grey, like noise
        if self.dataset is not None:
            frame.loc[tombstone_mask(self.dataset, len(frame)), "colour"] = mapdata.NOISE_CODE
        if self._selected:  # issue 19: the selected cluster keeps its colour, the rest is dimmed
            member = np.zeros(len(frame), dtype=bool)
            member[self.selected_indices()] = True
            frame["colour"] = mapdata.selection_codes(frame["colour"].to_numpy(), member)
        return frame

    def selected_cluster(self) -> Optional[str]:
        """The cluster that stands out: the highlighted one (label row, map tap), else the one the search names."""
        return self.highlighted_cluster or mapdata.cluster_named(self.layers, self.search, self.layer)

    def selected_indices(self) -> np.ndarray:
        """ls_index of the selected cluster's points (empty when none)."""
        if not self._selected:
            return np.array([], dtype=np.int64)
        idx = mapdata.cluster_indices(self.data, self.layers, self._selected)
        return idx[(idx >= 0) & (idx < self.data.n)]

    @param.depends("min_cluster_size", watch=True)
    def _recluster(self) -> None:
        started = time.perf_counter()
        if self.min_cluster_size is None or self.min_cluster_size == self.saved_min_cluster_size:
            self.labels = self.data.clusters.copy()
            self._preview_layer = None
        else:
            if self.dataset is None or not self.cluster_id:
                self.message = "re-clustering needs a saved cluster artifact"
                return
            from pipeline.stages.cluster.stage import recluster

            self.labels = np.asarray(recluster(self.dataset, self.cluster_id, int(self.min_cluster_size)))
            self._preview_layer = None  # built lazily: only if hulls/labels are drawn
        self._hull_paths.pop("preview", None)
        self._slots = mapdata.label_slots(self.data.xy, self.labels)
        self._anchors = None
        # One batched change: the plot redraws points and hulls in ONE refresh, not two, and
        # the count's watchers see the new count together with its time (set one by one, the
        # first re-cluster's count watcher read a time still None, and raised)
        self.param.update(n_clusters=_count_clusters(self.labels), recluster_seconds=time.perf_counter() - started,
                          colour_version=self.colour_version + 1, overlay_version=self.overlay_version + 1)

    @property
    def is_preview(self) -> bool:
        return self.min_cluster_size is not None and self.min_cluster_size != self.saved_min_cluster_size

    # ---- hulls and labels
    def layer_rows(self) -> pd.DataFrame:
        """Rows (label, hull, centroid) drawn on the map for the current layer or preview."""
        if self.is_preview:
            if self._preview_layer is None:
                self._preview_layer = mapdata.preview_layer(self.data, self.labels)
            return self._preview_layer
        rows = self.layers.get(self.layer)
        if rows is None:
            if not self.layers:
                if self._preview_layer is None:
                    self._preview_layer = mapdata.preview_layer(self.data, self.labels)
                return self._preview_layer
            return pd.DataFrame(columns=["label", "hull", "centroid_x", "centroid_y"])
        return rows

    def label_points(self) -> pd.DataFrame:
        rows = self.layer_rows()
        frame = pd.DataFrame({
            "x": pd.to_numeric(rows.get("centroid_x", pd.Series(dtype=float)), errors="coerce"),
            "y": pd.to_numeric(rows.get("centroid_y", pd.Series(dtype=float)), errors="coerce"),
            "label": rows.get("label", pd.Series(dtype=str)).astype(str),
        })
        return frame.dropna(subset=["x", "y"]).reset_index(drop=True)

    def label_anchors(self) -> pd.DataFrame:
        """Every label the map may draw: x, y, label, layer, count, cluster (all layers; a preview: its own)."""
        if self._anchors is None:
            if self.is_preview or not self.layers:
                frames = [self.layer_rows().assign(layer=0)]
            else:
                frames = [rows.assign(layer=layer) for layer, rows in self.layers.items()]
            parts = []
            for rows in frames:
                parts.append(pd.DataFrame({
                    "x": pd.to_numeric(rows.get("centroid_x", pd.Series(dtype=float)), errors="coerce"),
                    "y": pd.to_numeric(rows.get("centroid_y", pd.Series(dtype=float)), errors="coerce"),
                    "label": rows.get("label", pd.Series(dtype=str)).astype(str),
                    "layer": rows["layer"].astype(int),
                    "count": pd.to_numeric(rows.get("count", pd.Series(1, index=rows.index)), errors="coerce"),
                    "cluster": rows.get("cluster", pd.Series("", index=rows.index)).astype(str),
                }))
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
                columns=["x", "y", "label", "layer", "count", "cluster"])
            self._anchors = frame.dropna(subset=["x", "y"]).fillna({"count": 1}).reset_index(drop=True)
        return self._anchors

    def placed_labels(self, x_range=None, y_range=None, width=None, height=None) -> pd.DataFrame:
        """The labels drawn in this view (zoom-aware, non-overlapping; see studio.map_labels)."""
        x_range = tuple(x_range) if x_range and None not in x_range else FULL_RANGE
        y_range = tuple(y_range) if y_range and None not in y_range else FULL_RANGE
        key = (id(self.label_anchors()), x_range, y_range, width, height)
        if self._placed is not None and self._placed[0] == key:
            return self._placed[1]
        placed = place_labels(self.label_anchors(), x_range, y_range, width or PLOT_WIDTH,
                              height or PLOT_HEIGHT, full_span=FULL_RANGE[1] - FULL_RANGE[0])
        placed["font"] = [f"{size:g}px" for size in placed["font_px"]]
        self._placed = (key, placed)
        return placed

    def cluster_bounds(self, cluster: str, margin: float = 0.25) -> Optional[tuple[float, float, float, float]]:
        """(x0, y0, x1, y1) framing a cluster like "1_4" (its 2–98 % extent plus a margin), or None."""
        idx = mapdata.cluster_indices(self.data, self.layers, cluster)
        if not len(idx):
            return None
        lo, hi = np.quantile(self.data.xy[idx], [0.02, 0.98], axis=0)
        # at least MIN_FOCUS_SPAN wide: a cluster of a few tweets in one spot is shown with its surroundings
        pad = np.maximum(np.maximum((hi - lo) * margin, 0.02), (MIN_FOCUS_SPAN - (hi - lo)) / 2)
        return float(lo[0] - pad[0]), float(lo[1] - pad[1]), float(hi[0] + pad[0]), float(hi[1] + pad[1])

    def highlight_hull_path(self) -> np.ndarray:
        """The outline of the selected cluster (drawn bold), empty when none."""
        cluster = self._selected
        layer_text, _, _ = (cluster or "").partition("_")
        if not cluster or not layer_text.isdigit() or self.is_preview:
            return np.empty((0, 2))
        rows = self.layers.get(int(layer_text))
        if rows is None or "cluster" not in rows.columns:
            return np.empty((0, 2))
        return mapdata.joined_path(mapdata.hull_arrays(rows[rows["cluster"] == cluster]))

    def hull_paths(self) -> list[np.ndarray]:
        return mapdata.hull_arrays(self.layer_rows())

    def hull_path(self) -> np.ndarray:
        """All outlines of the current layer/preview as one NaN-separated array (what hv.Path draws)."""
        if not self.show_hulls:
            return np.empty((0, 2))
        key = "preview" if self.is_preview or not self.layers else self.layer
        if key not in self._hull_paths:
            self._hull_paths[key] = mapdata.joined_path(self.hull_paths())
        return self._hull_paths[key]

    def cluster_label_of(self, index: int) -> str:
        k = int(self.labels[index])
        if k < 0:
            return "noise"
        if not self.is_preview:
            rows = self.layers.get(0)
            if rows is not None:
                match = rows[rows["cluster"] == f"0_{k}"]
                if len(match):
                    return f"cluster 0_{k}: {match.iloc[0]['label']}"
        return f"cluster {k}"

    # ---- hover
    def hover(self, x: Optional[float], y: Optional[float], x_range=None, width_px=None) -> Optional[int]:
        """Point under the cursor: nearest within HOVER_RADIUS_PX at the current zoom."""
        span = (x_range[1] - x_range[0]) if x_range and None not in x_range else 2.2
        radius = abs(span) / (width_px or PLOT_WIDTH) * HOVER_RADIUS_PX
        index = mapdata.nearest_point(self.data, x, y, radius)
        self.hover_index = index
        return index

    def hover_html(self) -> str:
        label = self.cluster_label_of(self.hover_index) if self.hover_index is not None else ""
        return mapdata.tweet_card_html(self.data, self.hover_index, label)

    # ---- selection
    def select_bounds(self, bounds) -> np.ndarray:
        self.selection = mapdata.points_in_bounds(self.data, bounds)
        return self.selection

    def select_polygon(self, xs, ys) -> np.ndarray:
        self.selection = mapdata.points_in_polygon(self.data, np.column_stack([xs, ys]))
        return self.selection

    def selection_frame(self) -> pd.DataFrame:
        idx = np.asarray(self.selection, dtype=np.int64)
        frame = self.data.frame.iloc[idx]
        out = pd.DataFrame({
            "ls_index": idx,
            "created_at": pd.to_datetime(frame["created_at"], errors="coerce", utc=True)
            .dt.strftime("%Y-%m-%d").to_numpy() if len(idx) else [],
            "tweet_type": frame["tweet_type"].astype(str).to_numpy(),
            "cluster": self.labels[idx],
            "favorites": frame["favorites"].to_numpy(),
            "retweets": frame["retweets"].to_numpy(),
            "text": frame["text"].astype(str).to_numpy(),
        })
        return out[SELECTION_COLUMNS]

    # ---- search / highlight / selected cluster
    @param.depends("search", "highlighted_cluster", watch=True)
    def _update_highlight(self) -> None:
        matches = mapdata.search_points(self.data, self.search)
        self.n_matches = len(matches)
        self._highlight = matches
        selected = self.selected_cluster()
        if selected != self._selected:  # the points are re-coloured only when the selection changes
            self._selected = selected
            self.param.update(colour_version=self.colour_version + 1, overlay_version=self.overlay_version + 1)
        else:  # a search keystroke only redraws the highlight layer
            self.overlay_version += 1

    def highlight_frame(self) -> pd.DataFrame:
        """The tweets the search matches (drawn on top in red)."""
        return self._points_of(self._highlight)

    def _points_of(self, idx: np.ndarray) -> pd.DataFrame:
        if len(idx) > HIGHLIGHT_LIMIT:  # keep the browser light; the rasterized layer shows the rest
            idx = np.sort(np.random.default_rng(0).choice(idx, HIGHLIGHT_LIMIT, replace=False))
        return pd.DataFrame({"x": self.data.xy[idx, 0], "y": self.data.xy[idx, 1]})

    def tap(self, x: Optional[float], y: Optional[float], x_range=None, width_px=None) -> Optional[str]:
        """The cluster of the drawn layer under a click (None: empty space, noise or a preview)."""
        if self.is_preview or x is None or y is None:
            return None
        span = (x_range[1] - x_range[0]) if x_range and None not in x_range else 2.2
        index = mapdata.nearest_point(self.data, x, y, abs(span) / (width_px or PLOT_WIDTH) * HOVER_RADIUS_PX)
        return None if index is None else mapdata.cluster_at(self.data, self.layers, self.layer, index)

    # ---- what the last update brought (issue 17)
    @property
    def n_new(self) -> int:
        """Tweets the dataset's last update added (0 before any update)."""
        return 0 if self.new_rows is None else self.new_rows[1] - self.new_rows[0]

    @param.depends("show_new", watch=True)
    def _on_show_new(self) -> None:
        self.overlay_version += 1

    def new_frame(self) -> pd.DataFrame:
        """The new tweets' positions while "New since last update" is on, else empty."""
        if not self.show_new or not self.n_new:
            return pd.DataFrame({"x": np.array([], dtype=float), "y": np.array([], dtype=float)})
        return self._points_of(np.arange(*self.new_rows))


def _count_clusters(labels: np.ndarray) -> int:
    labels = np.asarray(labels)
    labels = labels[labels >= 0]
    return int(np.count_nonzero(np.bincount(labels))) if len(labels) else 0


def max_spread_3x3(values: np.ndarray) -> np.ndarray:
    """Datashader's ``spread(px=1, how="max")`` of a float aggregate (NaN = empty pixel), in numpy.

    The 3×3 circle mask of px=1 is the full square, so this is a NaN-ignoring 3×3 maximum:
    ~3 ms at 720×560 where datashader's per-pixel kernel takes ~40 ms (on every repaint and pan).
    """
    rows, cols = values.shape
    padded = np.full((rows + 2, cols + 2), np.nan, dtype=values.dtype)
    padded[1:-1, 1:-1] = values
    out = values.copy()
    for dy in range(3):
        for dx in range(3):
            np.fmax(out, padded[dy:dy + rows, dx:dx + cols], out=out)
    return out


# --------------------------------------------------------------------------- rendering

@functools.cache
def _max_spread_operation():
    """HoloViews' ``spread`` operation with ``max_spread_3x3`` for its px=1 "max" float case."""
    from holoviews.operation.datashader import spread

    class max_spread(spread):
        def _apply_spreading(self, array, how=None):
            if ((how or self.p.how) != "max" or self.p.px != 1 or getattr(array, "ndim", 0) != 2
                    or array.dtype.kind != "f"):
                return super()._apply_spreading(array, how)
            return array.copy(data=max_spread_3x3(np.asarray(array.data)))

    return max_spread


def build_plot(model: MapModel):
    """The HoloViews overlay: rasterized points, highlight, hulls, labels (+ streams for the view)."""
    import datashader as ds
    import holoviews as hv
    from holoviews.operation.datashader import rasterize

    hv.extension("bokeh", logo=False)
    max_spread = _max_spread_operation()
    # The streams do not watch the model themselves: one watcher triggers the streams whose
    # parameters changed together, so a re-cluster (new colours + new hulls) is ONE plot refresh.
    colour_stream = hv.streams.Params(model, ["colour_version"], watch=False)
    overlay_stream = hv.streams.Params(model, ["overlay_version", "layer", "show_hulls"], watch=False)

    def repaint(*events):
        changed = {event.name for event in events}
        streams = [stream for stream in (colour_stream, overlay_stream)
                   if changed & {p.name for p in stream.parameters}]
        if streams:
            hv.streams.Stream.trigger(streams)

    model.param.watch(repaint, ["colour_version", "overlay_version", "layer", "show_hulls"])

    def points(colour_version):
        return hv.Points(model.points_frame(), kdims=["x", "y"], vdims=["colour"])

    dmap = hv.DynamicMap(points, streams=[colour_stream])
    # max of the palette slot: O(N) whatever the number of clusters (count_cat is O(N + C·pixels)).
    shaded = max_spread(rasterize(dmap, aggregator=ds.max("colour"), x_range=FULL_RANGE,
                              y_range=FULL_RANGE, dynamic=True), px=1, how="max")
    figures: list = []  # the Bokeh figure of each render, so the view can zoom it

    def keep_figure(plot, element):
        if plot.state not in figures:  # first render of this figure: show the focused cluster
            figures.append(plot.state)
            if model.focus is not None:
                zoom_figures([plot.state], model.focus)

    shaded = shaded.opts(
        cmap=mapdata.palette(), clim=(-0.5, 255.5), colorbar=False, responsive=True,
        min_height=420, xaxis=None, yaxis=None, bgcolor="#ffffff",
        tools=["box_select", "lasso_select"], active_tools=["wheel_zoom", "pan"],
        default_tools=["pan", "wheel_zoom", "reset"], toolbar="above", hooks=[keep_figure],
    )

    def highlight(overlay_version, layer, show_hulls):
        return hv.Points(model.highlight_frame(), kdims=["x", "y"])

    highlight_dmap = hv.DynamicMap(highlight, streams=[overlay_stream]).opts(
        color="#e4003a", size=4, line_color="white", line_width=0.5, tools=[])

    def new_points(overlay_version, layer, show_hulls):
        return hv.Points(model.new_frame(), kdims=["x", "y"])

    # the tweets of the last update: a marker no other layer uses, black with a white rim
    new_dmap = hv.DynamicMap(new_points, streams=[overlay_stream]).opts(
        marker="diamond", color="#111111", size=7, line_color="white", line_width=0.8, tools=[])

    def hulls(overlay_version, layer, show_hulls):
        path = model.hull_path()
        return hv.Path([path] if len(path) else [], kdims=["x", "y"])

    hulls_dmap = hv.DynamicMap(hulls, streams=[overlay_stream]).opts(
        color="#333333", line_width=1, line_alpha=0.45, tools=[])

    def highlight_hull(overlay_version, layer, show_hulls):
        path = model.highlight_hull_path()
        return hv.Path([path] if len(path) else [], kdims=["x", "y"])

    highlight_hull_dmap = hv.DynamicMap(highlight_hull, streams=[overlay_stream]).opts(
        color="#e4003a", line_width=3, line_alpha=0.9, tools=[])

    # Sourced from the points layer: its ranges are the drawn ones (a stream on the labels' own
    # DynamicMap would start from the labels' extents, and place them for the wrong view).
    view = hv.streams.RangeXY(x_range=FULL_RANGE, y_range=FULL_RANGE, source=shaded)
    size = hv.streams.PlotSize(width=PLOT_WIDTH, height=PLOT_HEIGHT, source=shaded)

    def labels(overlay_version, layer, show_hulls, x_range, y_range, width, height, scale=1.0):
        placed = model.placed_labels(x_range, y_range, width, height)
        return hv.Labels(placed, kdims=["x", "y"], vdims=["text", "font", "cluster", "layer",
                                                          "x0", "y0", "x1", "y1"])

    # The halo is a translucent white box behind the text: a second, white-outlined text layer
    # reads a little better but doubles the pan/zoom refresh (0.26 s vs 0.10 s at 212K, see benchmarks/).
    labels_dmap = hv.DynamicMap(labels, streams=[overlay_stream, view, size]).opts(
        text_font_size="font", text_font_style="bold", text_align="center", text_baseline="middle",
        text_color="#111111", background_fill_color="white", background_fill_alpha=0.7, border_radius=4,
        tools=[])

    pointer = hv.streams.PointerXY(source=shaded, x=None, y=None)
    tap = hv.streams.Tap(source=shaded, x=None, y=None)
    ranges = hv.streams.RangeX(source=shaded)
    bounds = hv.streams.BoundsXY(source=shaded, bounds=None)
    lasso = hv.streams.Lasso(source=shaded)
    plot = (shaded * hulls_dmap * new_dmap * highlight_dmap * highlight_hull_dmap * labels_dmap).opts(
        # Fixed limits: the view starts at FULL_RANGE, so the label placement's RangeXY agrees with
        # the drawn ranges (by default HoloViews would start from the labels' own extents).
        hv.opts.Overlay(toolbar="above", responsive=True, xlim=FULL_RANGE, ylim=FULL_RANGE))
    range_streams = _range_streams(plot)

    def on_focus(event):
        # A range set from the server is not reported back by the browser (Bokeh sends RangesUpdate
        # only on user interaction): the rasterizer and the label placement are told directly,
        # else they would keep drawing the previous view's image and labels.
        if event.new is None:
            return
        x0, y0, x1, y1 = event.new
        for stream in range_streams:
            stream.update(x_range=(x0, x1), y_range=(y0, y1))
        if figures:
            zoom_figures(figures, event.new)
            hv.streams.Stream.trigger(range_streams)

    model.param.watch(on_focus, "focus")
    return plot, {"pointer": pointer, "tap": tap, "range": ranges, "bounds": bounds, "lasso": lasso,
                  "view": view, "size": size, "figures": figures}


def _range_streams(dmap) -> list:
    """Every RangeXY stream feeding ``dmap`` (the rasterizer's and the label placement's)."""
    import holoviews as hv

    found, seen, todo = [], set(), [dmap]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        found.extend(s for s in getattr(obj, "streams", []) if isinstance(s, hv.streams.RangeXY) and s not in found)
        todo.extend(getattr(getattr(obj, "callback", None), "inputs", None) or [])
    return found


def zoom_figures(figures: list, bounds) -> None:
    """Show ``bounds`` (x0, y0, x1, y1) in every rendered figure (Bokeh syncs the ranges to the browser)."""
    x0, y0, x1, y1 = bounds
    for figure in figures:
        figure.x_range.update(start=x0, end=x1)
        figure.y_range.update(start=y0, end=y1)


class MapView:
    """The map tab for a StudioState: rebuilt when the dataset/umap/clustering changes."""

    def __init__(self, state):
        import panel as pn

        self.state = state
        self.model: Optional[MapModel] = None
        self.container = pn.Column(sizing_mode="stretch_width", name="Map")
        self._key = None
        self._tapped: Optional[str] = None  # a cluster chosen by a click on the map (not zoomed to)
        # controls the tests drive: "clear", "search", "min_cluster_size", "count", "new" (only after an update)
        self.widgets: dict = {}
        self.streams: dict = {}  # the plot's streams (pointer, tap, box, lasso, view range, size)
        self.curate = create_curate_panel(state)  # issue 9: delete the selected tweets (one per session)
        state.param.watch(self._rebuild, ["dataset", "umap_id", "cluster_id", "toponymy_id"])
        state.param.watch(self._sync_state, ["search", "highlighted_cluster", "label_layer"])
        state.param.watch(self._recolour, ["artifacts_version"])  # issue 9: tombstones changed
        self._rebuild()

    def __panel__(self):
        return self.container

    def _recolour(self, *events) -> None:
        """Redraw the points when the tombstones changed (deleted tweets are grey)."""
        ds = self.state.current_dataset()
        if self.model is None or ds is None:
            return
        path = ds.tombstones_path
        stamp = (ds.name, path.stat().st_mtime_ns if path.exists() else None)
        if stamp != getattr(self, "_tombstones_stamp", None):
            self._tombstones_stamp = stamp
            self.model.colour_version += 1

    def _sync_state(self, *events) -> None:
        if self.model is None:
            return
        cluster = self.state.highlighted_cluster
        changed = cluster != self.model.highlighted_cluster
        self.model.param.update(search=self.state.search, highlighted_cluster=cluster)
        if "search" in self.widgets and self.widgets["search"].value != self.state.search:
            self.widgets["search"].value = self.state.search  # cleared by "Clear selection"
        if changed and cluster and cluster != self._tapped:  # a label row was clicked: zoom to its cluster
            self.model.focus = self.model.cluster_bounds(cluster)
        self._tapped = None
        if self.state.label_layer in self.model.layers or not self.model.layers:
            self.model.layer = self.state.label_layer

    def _rebuild(self, *events) -> None:
        import panel as pn

        ds = self.state.current_dataset()
        key = (self.state.dataset, self.state.umap_id, self.state.cluster_id, self.state.toponymy_id)
        if key == self._key and self.model is not None:
            return
        self._key = key
        if ds is None or not self.state.umap_id:
            self.model = None
            self.container[:] = [pn.pane.Alert(
                "No map yet: run <b>Embed</b>, <b>UMAP</b> and <b>Cluster</b> in the Stages view "
                "(or pick a dataset that has them).", alert_type="info", css_classes=["ts-map-empty"])]
            return
        try:
            data = mapdata.load_map_data(ds, self.state.umap_id, self.state.cluster_id)
            toponymy_id = self.state.toponymy_id
            if toponymy_id and ds.sidecar(toponymy_id).get("cluster_id") not in (None, self.state.cluster_id):
                toponymy_id = None  # labels of another clustering: show this clustering's default names
            layers = mapdata.label_layers(ds, toponymy_id, self.state.cluster_id)
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self.model = None
            self.container[:] = [pn.pane.Alert(f"Could not load the map: {type(exc).__name__}: {exc}",
                                               alert_type="danger")]
            return
        saved_mcs = None
        if self.state.cluster_id:
            saved_mcs = (ds.sidecar(self.state.cluster_id).get("params") or {}).get("min_cluster_size")
        self.model = MapModel(data, dataset=ds, cluster_id=self.state.cluster_id, layers=layers,
                              saved_min_cluster_size=saved_mcs, search=self.state.search,
                              highlighted_cluster=self.state.highlighted_cluster,
                              layer=self.state.label_layer if self.state.label_layer in layers else 0)
        self.container[:] = [self._layout(self.model, saved_mcs)]

    def _layout(self, model: MapModel, saved_mcs: Optional[int]):
        import panel as pn

        plot, streams = build_plot(model)
        self.streams = streams
        card = pn.pane.HTML(model.hover_html(), css_classes=["ts-hover-card"], width=280,
                            min_height=120, styles={"font-size": "13px"})

        def on_pointer(x=None, y=None):
            previous = model.hover_index
            model.hover(x, y, streams["range"].x_range, streams["size"].width)
            if model.hover_index != previous:
                card.object = model.hover_html()

        streams["pointer"].add_subscriber(on_pointer)

        def on_tap(x=None, y=None):
            # a click on a cluster selects it (the rest is dimmed); a click on empty space clears it
            cluster = model.tap(x, y, streams["range"].x_range, streams["size"].width)
            self._tapped = cluster
            self.state.highlighted_cluster = cluster

        streams["tap"].add_subscriber(on_tap)

        table = pn.widgets.Tabulator(model.selection_frame(), pagination="remote", page_size=15,
                                     disabled=True, show_index=False, sizing_mode="stretch_width",
                                     layout="fit_data_stretch", name="selection",
                                     widths={"text": 520}, css_classes=["ts-selection-table"])
        selection_info = pn.pane.Markdown("Select tweets with the box or lasso tool.",
                                          css_classes=["ts-selection-info"])

        def show_selection(idx):
            table.value = model.selection_frame()
            selection_info.object = f"**{len(idx):,} tweets selected**"
            self.state.selection = [int(i) for i in idx[:100_000]]

        def on_bounds(bounds=None):
            if bounds is not None:
                show_selection(model.select_bounds(bounds))

        def on_lasso(geometry=None):
            if geometry is not None and len(geometry) >= 3:
                geometry = np.asarray(geometry)
                show_selection(model.select_polygon(geometry[:, 0], geometry[:, 1]))

        streams["bounds"].add_subscriber(on_bounds)
        streams["lasso"].add_subscriber(on_lasso)

        search = pn.widgets.TextInput(name="Search tweets", value=self.state.search,
                                      placeholder="word or phrase", width=170, css_classes=["ts-search"])
        search.param.watch(lambda e: setattr(self.state, "search", e.new), "value")
        if self.state.search != search.value:
            search.value = self.state.search
        matches = pn.pane.Markdown("", css_classes=["ts-search-count"], width=70)

        layer_options = {f"layer {k}" + (" (finest)" if k == 0 else ""): k for k in sorted(model.layers)}
        layer = pn.widgets.Select(name="Outline layer", options=layer_options or {"layer 0": 0},
                                  value=model.layer, width=130, disabled=len(layer_options) < 2)
        hulls = pn.widgets.Checkbox(name="Outlines", value=model.show_hulls, css_classes=["ts-hulls-toggle"],
                                    width=90, align="end")
        hulls.link(model, value="show_hulls")
        # always there (enabled while a cluster is selected): showing/hiding it would shift the map
        clear = pn.widgets.Button(name="Clear selection", width=120, align="end", css_classes=["ts-clear-cluster"],
                                  disabled=model.selected_cluster() is None)

        def on_clear(_):  # the highlighted cluster first; a cluster the search names goes with the search
            if self.state.highlighted_cluster:
                self.state.highlighted_cluster = None
            else:
                self.state.search = ""

        clear.on_click(on_clear)
        model.param.watch(lambda _: setattr(clear, "disabled", model.selected_cluster() is None), "overlay_version")
        extra = []
        if model.n_new:  # only after an update: its new tweets drawn on top
            new = pn.widgets.Checkbox(name=f"New since last update ({model.n_new:,})", value=model.show_new,
                                      css_classes=["ts-new-toggle"], width=200, align="end")
            new.link(model, value="show_new")
            extra.append(new)
        layer.param.watch(lambda e: setattr(self.state, "label_layer", e.new), "value")

        start = int(saved_mcs or 10)
        slider = pn.widgets.IntSlider(name="min_cluster_size", start=2, end=max(200, start * 4),
                                      value=start, step=1, width=240, css_classes=["ts-mcs-slider"],
                                      disabled=not self.state.cluster_id)
        slider.param.watch(lambda e: setattr(model, "min_cluster_size", int(e.new)), "value_throttled")
        count = pn.pane.HTML("", css_classes=["ts-cluster-count"], width=105)
        self.widgets = {"clear": clear, "search": search, "min_cluster_size": slider, "count": count,
                        **({"new": extra[0]} if extra else {})}
        save = pn.widgets.Button(name="Save clustering", button_type="primary", disabled=True,
                                 width=130, css_classes=["ts-save-recluster"])
        status = pn.pane.Markdown("", width=380, css_classes=["ts-map-status"])

        def refresh_labels(*_):
            text = f'<span class="ts-cluster-count-value">{model.n_clusters}</span> clusters'
            if model.is_preview:
                text += f" <i>(preview, {model.recluster_seconds * 1000:.0f} ms)</i>"
            count.object = text
            matches.object = f"{model.n_matches:,} matches" if model.search else ""
            save.disabled = not model.is_preview

        model.param.watch(refresh_labels, ["n_clusters", "n_matches", "overlay_version"])
        refresh_labels()

        def on_save(_):
            from pipeline.stages.cluster.stage import save_recluster

            ds, cluster_id, mcs = model.dataset, model.cluster_id, int(model.min_cluster_size)
            job = self.state.runner.submit(
                ds.name, "cluster", lambda progress: save_recluster(ds, cluster_id, mcs, progress),
                title=f"save re-clustering of {cluster_id} (min_cluster_size={mcs})")
            status.object = f"Saving as a new clustering… ({job.id}); it appears in the sidebar when done."

        save.on_click(on_save)
        # one row at 1500 px even after an update (the Save button sits under the slider, beside the count)
        controls = pn.FlexBox(layer, hulls, *extra, search, matches, clear,
                              pn.Column(slider, pn.Row(count, save), width=250),
                              flex_wrap="wrap", align_items="flex-end", css_classes=["ts-map-controls"],
                              sizing_mode="stretch_width")
        # The plot takes the main area's width and the window's height (less header and controls);
        # the tweet card and the selection sit below it, never beside it, so they never shrink it.
        plot_pane = pn.pane.HoloViews(plot, css_classes=["ts-map-plot"], linked_axes=False,
                                      sizing_mode="stretch_width", min_height=420,
                                      stylesheets=[f":host {{ height: {PLOT_CSS_HEIGHT} !important; }}"])
        plot_box = plot_pane
        return pn.Column(
            controls, status, plot_box,
            pn.Row(pn.Column(pn.pane.Markdown("#### Tweet under the cursor"), card, width=320),
                   pn.Column(selection_info, table, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            self.curate, sizing_mode="stretch_width",
        )


def create_view(state):
    """View factory registered in studio.app."""
    return MapView(state)


TITLE = "Map"
