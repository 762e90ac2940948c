"""The map's view model on the real sample artifacts: loading, hover, selection, search, slider."""

from __future__ import annotations

import numpy as np
import pytest

from studio import mapdata
from studio.views.map import MapModel


@pytest.fixture(scope="module")
def sample_map(labelled_dataset):
    ds = labelled_dataset
    umap_id = ds.latest("umap", purpose="display")
    cluster_id = ds.latest("cluster")
    data = mapdata.load_map_data(ds, umap_id, cluster_id)
    layers = mapdata.label_layers(ds, ds.latest("toponymy"), cluster_id)
    saved = ds.sidecar(cluster_id)["params"]["min_cluster_size"]
    return ds, cluster_id, data, layers, saved


def new_model(sample_map, **params):
    ds, cluster_id, data, layers, saved = sample_map
    return MapModel(data, dataset=ds, cluster_id=cluster_id, layers=layers,
                    saved_min_cluster_size=saved, **params)


def test_map_data_is_loaded_once_per_process(sample_map):
    ds, cluster_id, data, _, _ = sample_map
    assert data.n == len(ds.read_input(columns=["id"]))
    assert mapdata.load_map_data(ds, ds.latest("umap", purpose="display"), cluster_id) is data
    assert data.frame["x"].between(-1, 1).all() and data.frame["y"].between(-1, 1).all()


def test_colours_and_clusters_match_the_artifact(sample_map):
    ds, cluster_id, data, _, _ = sample_map
    model = new_model(sample_map)
    assert model.n_clusters == ds.sidecar(cluster_id)["n_clusters"]
    codes = model.points_frame()["colour"].to_numpy()
    assert np.isfinite(codes).all() and codes.min() >= 0 and codes.max() <= 255


def test_toponymy_layers_give_labels_and_hulls(sample_map):
    _, _, data, layers, _ = sample_map
    assert 0 in layers
    model = new_model(sample_map)
    labels = model.label_points()
    assert len(labels) == len(layers[0]) and labels["label"].str.len().min() > 0
    assert len(model.hull_paths()) > 0
    if len(layers) > 1:
        model.layer = max(layers)
        assert len(model.label_points()) == len(layers[max(layers)])


def test_hover_finds_the_tweet_under_the_cursor(sample_map):
    _, _, data, _, _ = sample_map
    model = new_model(sample_map)
    i = data.n // 2
    x, y = data.xy[i]
    found = model.hover(x + 1e-4, y, x_range=(-1, 1))
    assert found is not None
    assert np.hypot(*(data.xy[found] - data.xy[i])) < 1e-3
    card = model.hover_html()
    text = str(data.frame.iloc[found]["text"])[:20]
    import html

    assert html.escape(text)[:10] in card and "ts-card-text" in card
    assert model.hover(5.0, 5.0, x_range=(-1, 1)) is None  # far from every point
    assert "Hover over a point" in model.hover_html()


def test_box_and_lasso_selection_fill_the_table(sample_map):
    _, _, data, _, _ = sample_map
    model = new_model(sample_map)
    idx = model.select_bounds((-0.3, -0.3, 0.3, 0.3))
    inside = (np.abs(data.xy) <= 0.3).all(axis=1)
    assert set(idx) == set(np.flatnonzero(inside))
    table = model.selection_frame()
    assert len(table) == inside.sum() and list(table.columns)[:2] == ["ls_index", "created_at"]
    square = model.select_polygon([-0.3, 0.3, 0.3, -0.3], [-0.3, -0.3, 0.3, 0.3])
    assert abs(len(square) - inside.sum()) <= 2  # edges may differ by a point


def test_search_highlights_matching_tweets(sample_map):
    _, _, data, _, _ = sample_map
    word = data.frame["text"].str.split().explode().value_counts().index[0]
    model = new_model(sample_map, search=word)
    expected = data.frame["text"].str.lower().str.contains(word.lower(), regex=False).sum()
    assert model.n_matches == expected > 0
    assert len(model.highlight_frame()) == expected
    model.search = "zzz-no-tweet-says-this"
    assert model.n_matches == 0 and len(model.highlight_frame()) == 0


def test_highlighted_cluster_comes_from_the_labels(sample_map):
    _, _, data, layers, _ = sample_map
    first = layers[0].iloc[0]
    model = new_model(sample_map, highlighted_cluster=first["cluster"])
    assert sorted(model.selected_indices()) == sorted(first["indices"])
    assert len(model.highlight_frame()) == 0  # its points keep their colour: no red dots over them


def test_a_selected_cluster_stands_out_and_clearing_restores_the_map(sample_map):
    _, _, data, layers, _ = sample_map
    top = max(layers)
    model = new_model(sample_map, layer=top)
    plain = model.points_frame()["colour"].to_numpy()
    assert set(np.unique(plain)) <= set(range(mapdata.N_COLOURS)) | {mapdata.NOISE_CODE}
    rows = layers[top]
    chosen = rows.loc[rows["count"].idxmax()]
    member = np.zeros(data.n, dtype=bool)
    member[np.asarray(list(chosen["indices"]))] = True
    version = model.colour_version
    model.highlighted_cluster = chosen["cluster"]
    assert model.colour_version == version + 1
    codes = model.points_frame()["colour"].to_numpy()
    noise = plain == mapdata.NOISE_CODE
    assert (codes[member & ~noise] == plain[member & ~noise] + mapdata.SELECTED_OFFSET).all()
    assert (codes[~member & ~noise] == plain[~member & ~noise] + mapdata.DIM_OFFSET).all()
    assert (codes[noise] == mapdata.DIM_NOISE_CODE).all() and (~member).any()
    # the rasterizer keeps the highest slot: the selected colours sit above every dimmed one
    assert codes[member & ~noise].min() > codes[~member].max()
    colours = mapdata.palette()
    for slot in np.unique(plain[~noise]).astype(int):
        full, dim = colours[slot], colours[mapdata.DIM_OFFSET + slot]
        assert colours[mapdata.SELECTED_OFFSET + slot] == full
        assert sum(int(dim[i:i + 2], 16) for i in (1, 3, 5)) > sum(int(full[i:i + 2], 16) for i in (1, 3, 5))
    assert len(model.highlight_hull_path()) > 0  # its outline, drawn bold

    model.highlighted_cluster = None
    assert (model.points_frame()["colour"].to_numpy() == plain).all() and len(model.highlight_hull_path()) == 0
    # a search naming a label selects that cluster too (case and spacing ignored)
    model.search = "  " + chosen["label"].upper() + " "
    assert model.selected_cluster() == chosen["cluster"]
    assert (model.points_frame()["colour"].to_numpy()[member & ~noise] >= mapdata.SELECTED_OFFSET).all()
    model.search = ""
    assert (model.points_frame()["colour"].to_numpy() == plain).all()


def test_a_click_on_the_map_picks_the_cluster_of_the_drawn_layer(sample_map):
    _, _, data, layers, _ = sample_map
    model = new_model(sample_map, layer=max(layers))
    rows = layers[max(layers)]
    chosen = rows.loc[rows["count"].idxmax()]
    inside = int(list(chosen["indices"])[0])
    assert model.tap(*data.xy[inside]) == chosen["cluster"]
    assert model.tap(5.0, 5.0) is None  # empty space clears the selection


def test_slider_reclusters_and_changes_the_count(sample_map):
    ds, cluster_id, data, _, saved = sample_map
    model = new_model(sample_map)
    before, version = model.n_clusters, model.colour_version
    model.min_cluster_size = saved * 4
    assert model.is_preview and model.colour_version == version + 1
    assert model.n_clusters < before
    assert model.recluster_seconds is not None
    assert len(model.label_points()) == model.n_clusters  # preview labels at the new centroids
    model.min_cluster_size = saved
    assert not model.is_preview and model.n_clusters == before


def test_synthetic_frame_builds_a_map():
    data = mapdata.build_map_data(mapdata.synthetic_frame(2000, k=5))
    model = MapModel(data)
    assert model.n_clusters == 5
    assert len(model.label_points()) == 5  # no labels artifact: cluster k at the centroids


# ---- slider repaint path (issue #8 item 7): vectorized preview geometry, one refresh per move

def assert_same_geometry(shapes, reference):
    """cluster_shapes() against pipeline.stages.cluster.geometry.cluster_geometry(): same rule, same outlines."""
    import shapely

    assert list(shapes["cluster"]) == list(reference["cluster"])
    assert list(shapes["count"]) == list(reference["count"])
    np.testing.assert_allclose(shapes["centroid_x"], reference["centroid_x"], atol=1e-6)
    np.testing.assert_allclose(shapes["centroid_y"], reference["centroid_y"], atol=1e-6)
    for hull, ref in zip(shapes["hull"], reference["hull"]):
        if len(ref) < 3:  # a point or a segment: nothing to outline
            assert hull == []
            continue
        ours, theirs = shapely.Polygon(hull), shapely.Polygon(ref)
        assert shapely.LinearRing(hull).is_ccw
        # the cluster stage rounds its vertices to 6 decimals
        assert ours.hausdorff_distance(theirs) < 1e-5


def test_preview_geometry_matches_the_cluster_stage_on_the_sample(sample_map):
    from pipeline.stages.cluster.geometry import cluster_geometry, cluster_shapes
    from pipeline.stages.cluster.stage import recluster

    ds, cluster_id, data, _, saved = sample_map
    for labels in (data.clusters, recluster(ds, cluster_id, saved * 2), recluster(ds, cluster_id, saved, raw=True)):
        assert_same_geometry(cluster_shapes(data.xy, labels), cluster_geometry(data.xy, labels))


def test_preview_geometry_matches_the_cluster_stage_on_odd_shapes():
    from pipeline.stages.cluster.geometry import cluster_geometry, cluster_shapes

    rng = np.random.default_rng(5)
    angle = rng.uniform(0, 2 * np.pi, 3000)
    parts = [
        np.c_[np.cos(angle), np.sin(angle)] * 0.3 + rng.normal(0, 0.01, (3000, 2)),       # ring
        np.c_[rng.uniform(-1, 1, 2000), rng.normal(0, 0.003, 2000)],                        # thin strip
        np.vstack([rng.normal(-0.5, 0.05, (1500, 2)), rng.normal(0.5, 0.05, (1500, 2))]),   # two blobs, one label
        np.round(rng.normal(0, 0.2, (500, 2)), 1),                                          # grid: many ties
        rng.normal(0, 1, (4000, 2)),                                                        # many tiny clusters
        np.zeros((5, 2)),                                                                   # one repeated point
    ]
    labels = np.concatenate([np.full(3000, 0), np.full(2000, 1), np.full(3000, 2), np.full(500, 3),
                             rng.integers(10, 900, 4000), np.full(5, 4)])
    labels[rng.random(len(labels)) < 0.1] = -1  # noise has no shape
    xy = np.vstack(parts)
    assert_same_geometry(cluster_shapes(xy, labels), cluster_geometry(xy, labels))
    assert len(cluster_shapes(xy, np.full(len(xy), -1))) == 0


def test_outlines_are_one_nan_separated_path():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 0]], dtype=float)
    joined = mapdata.joined_path([square, square + 2])
    assert joined.shape == (9, 2) and np.isnan(joined[4]).all()
    assert mapdata.joined_path([]).shape == (0, 2)


def test_a_slider_move_redraws_points_and_hulls_in_one_refresh(sample_map):
    import holoviews as hv

    from studio.views.map import build_plot

    ds, cluster_id, data, layers, saved = sample_map
    model = new_model(sample_map)
    calls = {"points_frame": 0, "hull_path": 0}
    for name in calls:
        method = getattr(model, name)

        def counted(*args, _name=name, _method=method, **kwargs):
            calls[_name] += 1
            return _method(*args, **kwargs)
        setattr(model, name, counted)
    plot, _ = build_plot(model)
    rendered = hv.renderer("bokeh").get_plot(plot)
    calls.update(points_frame=0, hull_path=0)
    model.min_cluster_size = saved * 3
    assert calls == {"points_frame": 1, "hull_path": 1}  # colours and hulls: one refresh, not two
    sources = [p.handles["source"] for p in rendered.traverse(lambda p: p)
               if type(p).__name__ == "PathPlot" and "source" in p.handles]
    xs = sources[0].data["xs"]
    assert len(xs) == 1  # every outline in one NaN-separated line
    n_outlines = int(np.isnan(xs[0]).sum()) + 1
    assert n_outlines == len(mapdata.hull_arrays(model.layer_rows())) > 0
    assert len(model.layer_rows()) == model.n_clusters  # preview hulls/labels of the new clustering
    model.search = "the"  # highlight only: the points are not re-rasterized
    assert calls["points_frame"] == 1


def test_max_spread_matches_datashader_spread():
    import datashader.transfer_functions as tf
    import xarray as xr

    from studio.views.map import max_spread_3x3

    rng = np.random.default_rng(0)
    values = rng.uniform(0, 255, (56, 72)).astype(np.float32)
    values[rng.random(values.shape) < 0.8] = np.nan  # empty pixels of a max aggregate
    image = xr.DataArray(values, dims=["y", "x"], coords={"y": np.arange(56), "x": np.arange(72)})
    expected = np.asarray(tf.spread(image, px=1, how="max"))
    assert np.array_equal(max_spread_3x3(values), expected, equal_nan=True)


def test_zooming_to_a_cluster_redraws_points_and_labels_for_that_view(sample_map):
    """The browser reports only ranges the curator changed; a zoom set by the server is passed on."""
    import holoviews as hv

    from studio.views.map import build_plot

    _, _, data, layers, _ = sample_map
    model = new_model(sample_map)
    plot, streams = build_plot(model)
    rendered = hv.renderer("bokeh").get_plot(plot)
    rows = layers[0]
    cluster = rows.loc[rows["count"].idxmax(), "cluster"]
    x0, y0, x1, y1 = model.cluster_bounds(cluster)
    model.focus = (x0, y0, x1, y1)
    assert (rendered.state.x_range.start, rendered.state.x_range.end) == (x0, x1)
    raster = [p for p in rendered.traverse(lambda p: p) if type(p).__name__ == "RasterPlot"][0]
    assert np.allclose([raster.handles["source"].data["x"][0], raster.handles["source"].data["dw"][0]],
                       [x0, x1 - x0])  # the image of the zoomed view, not the full one stretched
    assert streams["view"].x_range == (x0, x1) and streams["view"].y_range == (y0, y1)
    assert model._placed[0][1:3] == ((x0, x1), (y0, y1))  # labels placed for the zoomed view
