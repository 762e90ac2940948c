"""Map view: every tweet rasterized by Datashader, coloured by cluster, with hulls, labels,
hover card, box/lasso selection table, search highlight and a live ``min_cluster_size`` slider.

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
from studio.mapdata import MapData
from studio.views.curate import create_curate_panel

PLOT_WIDTH, PLOT_HEIGHT = 720, 560
HOVER_RADIUS_PX = 10
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
        super().__init__(**params)
        self.n_clusters = _count_clusters(self.labels)
        self._update_highlight()

    # ---- colour / recluster
    def points_frame(self) -> pd.DataFrame:
        """x, y and the palette slot per point (what the rasterizer aggregates)."""
        frame = self.data.frame[["x", "y"]].copy()
        frame["colour"] = mapdata.colour_codes(self.labels)
        # issue 9: tweets the curator deleted (tombstones) are drawn grey, like noise
        if self.dataset is not None:
            frame.loc[tombstone_mask(self.dataset, len(frame)), "colour"] = mapdata.NOISE_CODE
        return frame

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
        self.n_clusters = _count_clusters(self.labels)
        self.recluster_seconds = time.perf_counter() - started
        # One batched change: the plot redraws points and hulls in ONE refresh, not two.
        self.param.update(colour_version=self.colour_version + 1, overlay_version=self.overlay_version + 1)

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

    def hull_paths(self) -> list[np.ndarray]:
        return mapdata.hull_arrays(self.layer_rows())

    def hull_path(self) -> np.ndarray:
        """All outlines of the current layer/preview as one NaN-separated array (what hv.Path draws)."""
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
    def hover(self, x: Optional[float], y: Optional[float], x_range=None) -> Optional[int]:
        """Point under the cursor: nearest within HOVER_RADIUS_PX at the current zoom."""
        span = (x_range[1] - x_range[0]) if x_range and None not in x_range else 2.2
        radius = abs(span) / PLOT_WIDTH * HOVER_RADIUS_PX
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

    # ---- search / highlight
    @param.depends("search", "highlighted_cluster", watch=True)
    def _update_highlight(self) -> None:
        matches = mapdata.search_points(self.data, self.search)
        self.n_matches = len(matches)
        if self.highlighted_cluster:
            matches = np.union1d(matches, mapdata.cluster_indices(self.data, self.layers, self.highlighted_cluster))
        self._highlight = matches
        self.overlay_version += 1

    def highlight_frame(self) -> pd.DataFrame:
        idx = self._highlight
        if len(idx) > HIGHLIGHT_LIMIT:  # keep the browser light; the rasterized layer shows the rest
            idx = np.sort(np.random.default_rng(0).choice(idx, HIGHLIGHT_LIMIT, replace=False))
        return pd.DataFrame({"x": self.data.xy[idx, 0], "y": self.data.xy[idx, 1]})


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
    overlay_stream = hv.streams.Params(model, ["overlay_version", "layer"], watch=False)

    def repaint(*events):
        changed = {event.name for event in events}
        streams = [stream for stream in (colour_stream, overlay_stream)
                   if changed & {p.name for p in stream.parameters}]
        if streams:
            hv.streams.Stream.trigger(streams)

    model.param.watch(repaint, ["colour_version", "overlay_version", "layer"])

    def points(colour_version):
        return hv.Points(model.points_frame(), kdims=["x", "y"], vdims=["colour"])

    dmap = hv.DynamicMap(points, streams=[colour_stream])
    # max of the palette slot: O(N) whatever the number of clusters (count_cat is O(N + C·pixels)).
    shaded = max_spread(rasterize(dmap, aggregator=ds.max("colour"), x_range=(-1.05, 1.05),
                              y_range=(-1.05, 1.05), dynamic=True), px=1, how="max")
    shaded = shaded.opts(
        cmap=mapdata.palette(), clim=(-0.5, 255.5), colorbar=False, frame_width=PLOT_WIDTH,
        frame_height=PLOT_HEIGHT, xaxis=None, yaxis=None, bgcolor="#ffffff",
        tools=["box_select", "lasso_select"], active_tools=["wheel_zoom", "pan"],
        default_tools=["pan", "wheel_zoom", "reset"], toolbar="above",
    )

    def highlight(overlay_version, layer):
        return hv.Points(model.highlight_frame(), kdims=["x", "y"])

    highlight_dmap = hv.DynamicMap(highlight, streams=[overlay_stream]).opts(
        color="#e4003a", size=4, line_color="white", line_width=0.5, tools=[])

    def hulls(overlay_version, layer):
        path = model.hull_path()
        return hv.Path([path] if len(path) else [], kdims=["x", "y"])

    hulls_dmap = hv.DynamicMap(hulls, streams=[overlay_stream]).opts(
        color="#333333", line_width=1, line_alpha=0.45, tools=[])

    def labels(overlay_version, layer):
        return hv.Labels(model.label_points(), kdims=["x", "y"], vdims=["label"])

    labels_dmap = hv.DynamicMap(labels, streams=[overlay_stream]).opts(
        text_font_size="9pt", text_color="#111111", text_alpha=0.85, tools=[])

    pointer = hv.streams.PointerXY(source=shaded, x=None, y=None)
    ranges = hv.streams.RangeX(source=shaded)
    bounds = hv.streams.BoundsXY(source=shaded, bounds=None)
    lasso = hv.streams.Lasso(source=shaded)
    plot = (shaded * hulls_dmap * labels_dmap * highlight_dmap).opts(
        hv.opts.Overlay(toolbar="above"))
    return plot, {"pointer": pointer, "range": ranges, "bounds": bounds, "lasso": lasso}


class MapView:
    """The map tab for a StudioState: rebuilt when the dataset/umap/clustering changes."""

    def __init__(self, state):
        import panel as pn

        self.state = state
        self.model: Optional[MapModel] = None
        self.container = pn.Column(sizing_mode="stretch_width", name="Map")
        self._key = None
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
        self.model.param.update(search=self.state.search, highlighted_cluster=self.state.highlighted_cluster)
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
        card = pn.pane.HTML(model.hover_html(), css_classes=["ts-hover-card"], width=280,
                            min_height=120, styles={"font-size": "13px"})

        def on_pointer(x=None, y=None):
            previous = model.hover_index
            model.hover(x, y, streams["range"].x_range)
            if model.hover_index != previous:
                card.object = model.hover_html()

        streams["pointer"].add_subscriber(on_pointer)

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
                                      placeholder="word or phrase", width=220, css_classes=["ts-search"])
        search.param.watch(lambda e: setattr(self.state, "search", e.new), "value")
        if self.state.search != search.value:
            search.value = self.state.search
        matches = pn.pane.Markdown("", css_classes=["ts-search-count"], width=140)

        layer_options = {f"layer {k}" + (" (finest)" if k == 0 else ""): k for k in sorted(model.layers)}
        layer = pn.widgets.Select(name="Label layer", options=layer_options or {"layer 0": 0},
                                  value=model.layer, width=140, disabled=len(layer_options) < 2)
        layer.param.watch(lambda e: setattr(self.state, "label_layer", e.new), "value")

        start = int(saved_mcs or 10)
        slider = pn.widgets.IntSlider(name="min_cluster_size", start=2, end=max(200, start * 4),
                                      value=start, step=1, width=260, css_classes=["ts-mcs-slider"],
                                      disabled=not self.state.cluster_id)
        slider.param.watch(lambda e: setattr(model, "min_cluster_size", int(e.new)), "value_throttled")
        count = pn.pane.HTML("", css_classes=["ts-cluster-count"], width=220)
        save = pn.widgets.Button(name="Save as new clustering", button_type="primary", disabled=True,
                                 width=200, css_classes=["ts-save-recluster"])
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
        controls = pn.Column(
            pn.Row(layer, search, matches, align="end"),
            pn.Row(slider, count, save, align="center"),
            css_classes=["ts-map-controls"])
        plot_pane = pn.pane.HoloViews(plot, css_classes=["ts-map-plot"], linked_axes=False)
        return pn.Column(
            controls, status,
            pn.Row(plot_pane, pn.Column(pn.pane.Markdown("#### Tweet under the cursor"), card, width=300)),
            selection_info, table, self.curate, sizing_mode="stretch_width",
        )


def create_view(state):
    """View factory registered in studio.app."""
    return MapView(state)


TITLE = "Map"
