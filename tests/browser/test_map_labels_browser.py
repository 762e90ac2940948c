"""The map at a curator's window size (issue #19 items 3, 4, 8): the plot fills the page, labels
are drawn per zoom level, coarse first, and the drawn labels never overlap or cross the edge."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from pipeline.core.workspace import Workspace
from pipeline.stages.labels import load_labels
from studio.map_labels import boxes_outside, overlapping_pairs, text_box_px, wrap_label

pytestmark = pytest.mark.browser

#: the drawn labels (text, position, font) and the figure's ranges and frame size, from Bokeh's models
DRAWN_JS = """() => {
  const out = {labels: null, figure: null};
  for (const doc of Bokeh.documents) for (const m of doc._all_models.values()) {
    // the Text glyph's source; with one font size for all, HoloViews sets it on the glyph, not per row
    if (m.type === 'GlyphRenderer' && m.glyph && m.glyph.type === 'Text' && m.data_source.data.text !== undefined) {
      const data = m.data_source.data, n = data.text.length;
      const size = m.glyph.text_font_size && m.glyph.text_font_size.value;
      out.labels = {x: Array.from(data.x), y: Array.from(data.y), text: Array.from(data.text),
                    font: data.text_font_size !== undefined ? Array.from(data.text_font_size) : Array(n).fill(size)};
    }
  }
  for (const view of Object.values(Bokeh.index)) {
    const walk = (v) => {
      if (v.model && v.model.type === 'Figure' && v.frame)
        out.figure = {x0: v.frame.x_range.start, x1: v.frame.x_range.end, y0: v.frame.y_range.start,
                      y1: v.frame.y_range.end, width: v.frame.bbox.width, height: v.frame.bbox.height};
      for (const child of (v.child_views || [])) walk(child);
    };
    walk(view);
  }
  return out;
}"""


def drawn_labels(page) -> tuple[pd.DataFrame, dict]:
    """The labels Chromium draws, with their screen boxes (same box estimate as the placement)."""
    found = page.evaluate(DRAWN_JS)
    fig, labels = found["figure"], found["labels"] or {"x": [], "y": [], "text": [], "font": []}
    assert fig is not None, "the map's figure is not rendered"
    rows = []
    for x, y, text, font in zip(labels["x"], labels["y"], labels["text"], labels["font"]):
        w, h = text_box_px(text, float(str(font).removesuffix("px")))
        cx = (x - fig["x0"]) / (fig["x1"] - fig["x0"]) * fig["width"]
        cy = (fig["y1"] - y) / (fig["y1"] - fig["y0"]) * fig["height"]
        rows.append({"text": text, "x0": cx - w / 2, "y0": cy - h / 2, "x1": cx + w / 2, "y1": cy + h / 2})
    return pd.DataFrame(rows, columns=["text", "x0", "y0", "x1", "y1"]), fig


def finest_anchor(table: pd.DataFrame) -> tuple[float, float]:
    """Where the biggest finest-layer cluster labelled apart from every coarser label sits (data units).

    A parent's label often sits on its biggest child's (same centroid): zooming there shows the parent.
    """
    import numpy as np

    finest = table[table["layer"] == table["layer"].min()]
    coarser = table[table["layer"] > table["layer"].min()][["centroid_x", "centroid_y"]].to_numpy(dtype=float)
    xy = finest[["centroid_x", "centroid_y"]].to_numpy(dtype=float)
    apart = np.sqrt(((xy[:, None] - coarser[None]) ** 2).sum(-1)).min(axis=1) if len(coarser) else np.ones(len(xy))
    rows = finest[apart > 0.1] if (apart > 0.1).any() else finest.iloc[[int(np.argmax(apart))]]
    row = rows.loc[rows["count"].idxmax()]
    return float(row["centroid_x"]), float(row["centroid_y"])


def layer_of(text: str, layers: dict[str, set[int]]) -> set[int]:
    return layers.get(text, set())


@pytest.mark.parametrize("viewport", [(1500, 1000), (1280, 800)])
def test_map_fills_the_page_and_labels_follow_the_zoom(studio_server, chromium, screenshots, viewport):
    dataset = Workspace(studio_server.data_dir).dataset(Workspace(studio_server.data_dir).dataset_names()[0])
    table = load_labels(dataset, dataset.latest("toponymy"))
    layers: dict[str, set[int]] = {}
    for label, layer in zip(table["label"], table["layer"]):
        layers.setdefault(wrap_label(label), set()).add(int(layer))  # as drawn
    coarsest = int(table["layer"].max())

    context = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        page.goto(f"{studio_server.url}?view=map")
        canvas = page.locator(".ts-map-plot canvas").first
        canvas.wait_for(timeout=180_000)
        time.sleep(4)
        box = canvas.bounding_box()
        assert box["width"] >= 0.7 * viewport[0], f"the plot is {box['width']:.0f} px wide in a {viewport[0]} px window"
        assert box["height"] >= viewport[1] - 260 and box["y"] + box["height"] <= viewport[1] + 2

        # zoom around the biggest fine cluster's label (the middle of the plot may be empty)
        frame = page.evaluate(FRAME_JS)
        ax, ay = finest_anchor(table)
        at = (float(box["x"] + frame["left"] + (ax - frame["x0"]) / (frame["x1"] - frame["x0"]) * frame["width"]),
              float(box["y"] + frame["top"] + (frame["y1"] - ay) / (frame["y1"] - frame["y0"]) * frame["height"]))
        seen = []
        for step in range(3):  # full view, then two zoom steps around that label
            if step:
                page.mouse.move(*at)  # the wheel keeps the point under the cursor in place
                for _ in range(2):
                    page.mouse.wheel(0, -240)
                    time.sleep(0.3)
                time.sleep(3)
            page.screenshot(path=screenshots / f"studio-map-{viewport[0]}x{viewport[1]}-zoom{step}.png")
            drawn, fig = drawn_labels(page)
            assert overlapping_pairs(drawn) == 0, drawn
            assert boxes_outside(drawn, fig["width"], fig["height"]) == 0, drawn
            seen.append((fig["x1"] - fig["x0"], drawn))
        (span0, full), (span1, _), (span2, zoomed) = seen
        assert span2 < span1 < span0, "the wheel zoomed in"
        assert len(full) >= 1 and all(coarsest in layer_of(t, layers) for t in full["text"]), \
            "only the coarsest layer at full view"
        finer = [t for t in zoomed["text"] if min(layer_of(t, layers) or {coarsest}) < coarsest]
        assert finer, f"finer layers appear when zoomed in: drawn {list(zoomed['text'])}, zoom {span0 / span2:.1f}x"
    finally:
        context.close()


def test_landing_run_all_judge_scores_and_a_label_row_zooms_the_map(studio_server, page, screenshots):
    page.goto(f"{studio_server.url}?view=stages")
    page.wait_for_selector(".ts-run-all", timeout=180_000)
    info = page.locator(".ts-run-all-text").first
    info.wait_for(timeout=60_000)
    assert "To run" in info.inner_text() or "up to date" in info.inner_text()

    page.goto(f"{studio_server.url}?view=labels")
    table = page.locator(".ts-labels-table")
    table.wait_for(timeout=180_000)
    page.get_by_text("judge", exact=True).first.wait_for(timeout=60_000)
    page.locator(".ts-labels-weakest input").first.check()
    time.sleep(2)
    page.screenshot(path=screenshots / "studio-labels-weakest-first.png")
    page.locator(".ts-labels-table .tabulator-row .tabulator-cell[tabulator-field='label']").first.click()
    time.sleep(2)
    page.locator(".bk-tab", has_text="Map").first.click()
    page.locator(".ts-map-plot canvas").first.wait_for(timeout=180_000)
    time.sleep(4)
    _drawn, fig = drawn_labels(page)
    page.screenshot(path=screenshots / "studio-map-zoomed-to-label.png")
    assert fig["x1"] - fig["x0"] < 2.0, "the map zoomed to the clicked label's cluster"


FRAME_JS = """() => {
  for (const view of Object.values(Bokeh.index)) {
    let out = null;
    const walk = (v) => {
      if (v.model && v.model.type === 'Figure' && v.frame)
        out = {x0: v.frame.x_range.start, x1: v.frame.x_range.end, y0: v.frame.y_range.start,
               y1: v.frame.y_range.end, left: v.frame.bbox.left, top: v.frame.bbox.top,
               width: v.frame.bbox.width, height: v.frame.bbox.height};
      for (const child of (v.child_views || [])) walk(child);
    };
    walk(view);
    if (out) return out;
  }
  return null;
}"""


def test_a_click_on_a_cluster_selects_it_and_clear_restores_the_map(studio_server, page, screenshots):
    from pipeline.stages.umap.stage import load_umap

    dataset = Workspace(studio_server.data_dir).dataset(Workspace(studio_server.data_dir).dataset_names()[0])
    rows = load_labels(dataset, dataset.latest("toponymy"))
    rows = rows[rows["layer"] == 0]
    members = list(rows.loc[rows["count"].idxmax(), "indices"])
    xy = load_umap(dataset, dataset.latest("umap", purpose="display"))[["x", "y"]].to_numpy()
    x, y = xy[members].mean(axis=0)
    x, y = xy[members][((xy[members] - (x, y)) ** 2).sum(axis=1).argmin()]  # a member near its middle

    page.goto(f"{studio_server.url}?view=map")
    canvas = page.locator(".ts-map-plot canvas").first
    canvas.wait_for(timeout=180_000)
    time.sleep(4)
    clear = page.locator(".ts-clear-cluster button").first
    assert clear.is_disabled()
    box, frame = canvas.bounding_box(), page.evaluate(FRAME_JS)
    page.mouse.click(float(box["x"] + frame["left"] + (x - frame["x0"]) / (frame["x1"] - frame["x0"]) * frame["width"]),
                     float(box["y"] + frame["top"] + (frame["y1"] - y) / (frame["y1"] - frame["y0"]) * frame["height"]))
    for _ in range(60):  # the server answers the click by enabling "Clear selection"
        if clear.is_enabled():
            break
        time.sleep(1)
    assert clear.is_enabled(), "a click on a cluster selects it"
    time.sleep(3)
    page.screenshot(path=screenshots / "studio-map-cluster-selected-by-click.png")
    after = page.evaluate(FRAME_JS)
    assert (after["x0"], after["x1"]) == (frame["x0"], frame["x1"]), "a click selects without moving the view"
    clear.click()
    for _ in range(60):
        if clear.is_disabled():
            break
        time.sleep(1)
    assert clear.is_disabled(), "Clear selection restores the map"
