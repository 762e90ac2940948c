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
    assert len(model.highlight_frame()) == len(first["indices"])


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
