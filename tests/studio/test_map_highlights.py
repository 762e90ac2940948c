"""What stands out on the map: the selected cluster (issue #19 item 6) and the tweets the last
update added (issue #17 item 5), driven through the map view's state and widgets."""

from __future__ import annotations

import numpy as np

from studio import mapdata
from studio.jobs import JobRunner
from studio.state import StudioState
from support import copy_dataset


def map_view(dataset):
    from studio.views.map import MapView

    state = StudioState(dataset.path.parent, runner=JobRunner())
    state.dataset = dataset.name
    view = MapView(state)
    assert view.model is not None
    return state, view


def test_selecting_a_cluster_dims_the_others_and_clearing_restores_the_map(labelled_dataset):
    state, view = map_view(labelled_dataset)
    model = view.model
    plain = model.points_frame()["colour"].to_numpy()
    rows = model.layers[0]
    cluster = rows.loc[rows["count"].idxmax(), "cluster"]
    member = np.zeros(model.data.n, dtype=bool)
    member[np.asarray(list(rows.loc[rows["cluster"] == cluster, "indices"].iloc[0]))] = True

    state.highlighted_cluster = cluster  # a label row click
    codes = model.points_frame()["colour"].to_numpy()
    assert (codes[member] >= mapdata.SELECTED_OFFSET).all() and (codes[~member] < mapdata.SELECTED_OFFSET).all()
    assert len(model.highlight_hull_path()) and model.focus is not None and not view.widgets["clear"].disabled

    view.widgets["clear"].clicks += 1
    assert state.highlighted_cluster is None and view.widgets["clear"].disabled
    assert (model.points_frame()["colour"].to_numpy() == plain).all() and not len(model.highlight_hull_path())

    # a click on a point of the cluster selects it without moving the view; empty space clears it
    focus = model.focus
    view.streams["tap"].event(x=float(model.data.xy[member][0, 0]), y=float(model.data.xy[member][0, 1]))
    assert state.highlighted_cluster == cluster and model.focus == focus
    assert (model.points_frame()["colour"].to_numpy()[member] >= mapdata.SELECTED_OFFSET).all()
    view.streams["tap"].event(x=9.0, y=9.0)
    assert state.highlighted_cluster is None and (model.points_frame()["colour"].to_numpy() == plain).all()


def test_the_map_shows_the_tweets_the_last_update_added(updated_sample, labelled_dataset, tmp_path):
    import holoviews as hv

    from studio.views.map import build_plot

    updated, record, before = updated_sample
    ds = copy_dataset(updated, tmp_path)
    state, view = map_view(ds)
    model = view.model
    first, stop = record["new_rows"]
    assert model.n_new == record["new"] == stop - first > 0 and first == len(before)

    toggle = view.widgets["new"]
    assert toggle.name == f"New since last update ({record['new']:,})" and toggle.value is False
    assert len(model.new_frame()) == 0  # off by default
    rendered = hv.renderer("bokeh").get_plot(build_plot(model)[0])
    toggle.value = True
    assert model.show_new
    new = model.new_frame()
    assert np.allclose(new[["x", "y"]].to_numpy(), model.data.xy[first:stop])
    # drawn as their own marker layer, above the points and the outlines
    markers = [p for p in rendered.traverse(lambda p: p) if type(p).__name__ == "PointPlot"
               and p.handles.get("glyph") is not None and getattr(p.handles["glyph"], "marker", None) == "diamond"]
    assert len(markers) == 1 and len(markers[0].handles["source"].data["x"]) == stop - first
    toggle.value = False
    assert len(model.new_frame()) == 0

    _, plain = map_view(labelled_dataset)  # never updated: no checkbox
    assert plain.model.n_new == 0 and "new" not in plain.widgets


def test_a_released_slider_recolours_the_map_and_shows_the_new_count(labelled_dataset):
    """The first re-cluster after the map opens: its count and time reach the page together."""
    import param

    _, view = map_view(labelled_dataset)
    model, slider, count = view.model, view.widgets["min_cluster_size"], view.widgets["count"]
    before, version = model.n_clusters, model.colour_version
    with param.edit_constant(slider):
        slider.value_throttled = model.saved_min_cluster_size * 4  # a drag, released
    assert model.is_preview and model.colour_version == version + 1 and model.n_clusters < before
    assert f">{model.n_clusters}</span> clusters" in count.object and "preview" in count.object
