"""Zoom-aware, non-overlapping map labels (issue #19 item 4) on the sample and a 212K/500-cluster map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studio import mapdata
from studio.map_labels import boxes_outside, overlapping_pairs, place_labels, visible_layers, wrap_label

FULL = (-1.05, 1.05)
SIZES = [(1100, 760), (900, 560)]  # plot pixels at a 1500×1000 and a 1280×800 window


def zoom_views(centre, steps=(1, 4, 16)):
    """The full view and two zoom steps (4× and 16×) around ``centre``."""
    half = (FULL[1] - FULL[0]) / 2
    return [((centre[0] - half / z, centre[0] + half / z), (centre[1] - half / z, centre[1] + half / z))
            for z in steps]


def check_views(anchors, centre):
    drawn = []
    for width, height in SIZES:
        for x_range, y_range in zoom_views(centre):
            placed = place_labels(anchors, x_range, y_range, width, height, full_span=FULL[1] - FULL[0])
            assert overlapping_pairs(placed) == 0
            assert boxes_outside(placed, width, height) == 0
            drawn.append(placed)
    return drawn


def synthetic_hierarchy(n_points=212_000, n_clusters=500, seed=0) -> pd.DataFrame:
    """Anchors of a 3-layer hierarchy over a synthetic map: 500 fine clusters, 60 and 8 coarser."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.95, 0.95, size=(n_clusters, 2))
    labels = rng.zipf(1.6, n_points) % n_clusters  # skewed sizes, like real topics
    xy = np.clip(centres[labels] + rng.normal(0, 0.02, (n_points, 2)), -1, 1)
    words = np.array(["open", "source", "coffee", "running", "jazz", "climate", "python", "garden",
                      "election", "bread", "chess", "cinema", "rust", "cats", "photography"])
    rows = []
    parents = {0: labels}
    for layer, k in ((1, 60), (2, 8)):  # coarser layers: k-means-like grouping of the centres
        seeds = centres[rng.choice(n_clusters, k, replace=False)]
        parents[layer] = np.argmin(((centres[:, None] - seeds[None]) ** 2).sum(-1), axis=1)[labels]
    for layer, assignment in parents.items():
        counts = np.bincount(assignment)
        for c in np.flatnonzero(counts):
            member = assignment == c
            rows.append({"x": xy[member, 0].mean(), "y": xy[member, 1].mean(), "layer": layer,
                         "count": int(counts[c]), "cluster": f"{layer}_{c}",
                         "label": " ".join(rng.choice(words, rng.integers(1, 6)))})
    return pd.DataFrame(rows)


def test_layers_appear_as_the_curator_zooms():
    assert visible_layers([0, 1, 2], 1.0) == [2]
    assert visible_layers([0, 1, 2], 2.0) == [1, 2]
    assert visible_layers([0, 1, 2], 16.0) == [0, 1, 2]
    assert wrap_label("a " * 80).count("\n") == 2 and wrap_label("a " * 80).endswith("…")


def test_labels_never_overlap_on_a_212k_500_cluster_map():
    anchors = synthetic_hierarchy()
    assert (anchors["layer"] == 0).sum() >= 490
    for centre in ((0.0, 0.0), (0.6, -0.4)):
        full, zoom1, zoom2 = check_views(anchors, centre)[:3]
        assert set(full["layer"]) == {2}, "only the coarsest layer at full view"
        assert 1 in set(zoom1["layer"]) and 0 in set(zoom2["layer"]), "finer layers appear when zoomed"
        assert len(full) >= 5 and len(zoom1) >= 10
    # a bigger cluster gets a bigger font
    placed = place_labels(anchors, FULL, FULL, 1100, 760)
    merged = placed.merge(anchors[["cluster", "count"]], on="cluster")
    assert np.corrcoef(merged["count"].rank(), merged["font_px"].rank())[0, 1] > 0.9


def test_labels_never_overlap_on_the_sample(labelled_dataset):
    ds = labelled_dataset
    layers = mapdata.label_layers(ds, ds.latest("toponymy"), ds.latest("cluster"))
    anchors = pd.concat([pd.DataFrame({"x": rows["centroid_x"], "y": rows["centroid_y"], "label": rows["label"],
                                       "layer": layer, "count": rows["count"], "cluster": rows["cluster"]})
                         for layer, rows in layers.items()], ignore_index=True)
    centre = anchors.loc[anchors["count"].idxmax(), ["x", "y"]].to_numpy(dtype=float)
    drawn = check_views(anchors, centre)
    assert len(drawn[0]) >= 1 and set(drawn[0]["layer"]) == {max(layers)}
    assert any(min(layers) in set(d["layer"]) for d in drawn[1:]), "the finest layer appears when zoomed"


@pytest.mark.parametrize("label", ["", "   "])
def test_blank_labels_are_not_drawn(label):
    anchors = pd.DataFrame({"x": [0.0], "y": [0.0], "label": [label], "layer": [0], "count": [5], "cluster": ["0_0"]})
    assert len(place_labels(anchors, FULL, FULL, 800, 600)) == 0



def test_a_parent_named_like_its_child_gives_way_when_zoomed():
    anchors = pd.DataFrame({"x": [0.0, 0.01, 0.5], "y": [0.0, 0.0, 0.5], "label": ["cats", "cats", "dogs"],
                            "layer": [1, 0, 1], "count": [120, 100, 30], "cluster": ["1_0", "0_0", "1_1"]})
    full = place_labels(anchors, FULL, FULL, 800, 600)
    assert full["cluster"].tolist() == ["1_0", "1_1"]  # full view: the coarse layer only
    zoomed = place_labels(anchors, (-0.2, 0.2), (-0.2, 0.2), 800, 600, full_span=FULL[1] - FULL[0])
    assert zoomed["cluster"].tolist() == ["0_0"]  # the same text once, from the finer layer
