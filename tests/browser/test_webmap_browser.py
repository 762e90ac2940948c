"""The published map page in headless Chromium, offline: points and labels drawn, search works,
deleted tweets absent. The page's CDN scripts are served from the pinned npm packages."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from kits.cdn_mirror import CdnMirror, npm_tarballs
from kits.static_server import static_server
from pipeline.core.tombstones import add_tombstones
from pipeline.serving.webmap import JS_PINS, write_webmap
from pipeline.stages.scope import run_scope
from support import copy_dataset

pytestmark = pytest.mark.browser
SHOTS_EXTRA = Path("/tmp/team/shots")  # the team's review folder, when it exists


@pytest.fixture(scope="module")
def published_page(scoped_dataset, tmp_path_factory):
    """``<site>/sample/index.html`` of the sample with two deleted tweets (one re-scoped, one only tombstoned)."""
    ds = copy_dataset(scoped_dataset, tmp_path_factory.mktemp("webmap-browser"))
    texts = ds.read_input(["text"])["text"].fillna("").str.strip()
    counts = texts.value_counts()
    rows = [i for i, t in enumerate(texts) if len(t) >= 60 and counts[t] == 1][:2]
    add_tombstones(ds, rows[:1])
    scope_id = run_scope(ds)
    add_tombstones(ds, rows[1:])
    site = tmp_path_factory.mktemp("site")
    (site / ds.name).mkdir()
    shutil.copy(write_webmap(ds, scope_id), site / ds.name / "index.html")
    kept = [t for i, t in enumerate(texts) if i not in rows and t]
    return site, ds, [texts[i] for i in rows], kept, len(texts) - len(rows)


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def test_published_map_draws_points_and_labels_offline(chromium, published_page, screenshots):
    site, ds, deleted, kept, n_points = published_page
    mirror = CdnMirror(npm_tarballs())
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    try:
        context.route("**/*", mirror)
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        with static_server(site) as url:
            page.goto(f"{url}/{ds.name}/index.html")
            page.wait_for_function("window.datamap && window.datamap.metaData && window.datamap.labelData"
                                   " && window.datamap.pointLayer")
            page.wait_for_timeout(2500)  # let deck.gl finish the label collision pass
            shot = page.screenshot()
            (screenshots / "webmap.png").write_bytes(shot)
            if SHOTS_EXTRA.is_dir():
                (SHOTS_EXTRA / "webmap.png").write_bytes(shot)
            data = page.evaluate("""() => ({
                hover: window.datamap.metaData.hover_text,
                labels: window.datamap.labelData.map(d => d.label),
                layers: window.datamap.layers.map(l => l.id),
            })""")
            # labels are drawn on the canvas: hiding the label layer changes many pixels
            page.evaluate("""() => window.datamap.deckgl.setProps(
                {layers: window.datamap.layers.filter(l => l.id !== 'labelLayer')})""")
            page.wait_for_timeout(1000)
            no_labels = page.screenshot()
            page.evaluate("() => window.datamap.deckgl.setProps({layers: [...window.datamap.layers]})")
            # search: a word of one kept tweet selects some points, not all
            word = next(w for t in kept for w in t.split() if len(w) >= 7 and w.isalpha())
            page.fill("#text-search", word)
            page.dispatch_event("#text-search", "input")
            page.wait_for_timeout(500)
            selected = page.evaluate("() => window.datamap.dataSelectionManager.getSelectedIndices().size"
                                     " ?? window.datamap.dataSelectionManager.getSelectedIndices().length")
    finally:
        context.close()

    assert not errors, errors
    assert sorted(set(mirror.served)) == sorted(
        f"https://unpkg.com/{n}@{v}/{f}" for n, v, f in [("deck.gl", JS_PINS["deck.gl"], "dist.min.js"),
                                                          ("apache-arrow", JS_PINS["apache-arrow"],
                                                           "Arrow.es2015.min.js")])
    assert {"dataPointLayer", "labelLayer"} <= set(data["layers"])
    # every kept tweet is a point, no deleted one is
    assert len(data["hover"]) == n_points
    hover = "\n".join(data["hover"])
    assert all(t not in hover and t[:40] not in hover for t in deleted)
    assert sum(t in hover for t in kept[:200] if len(t) < 150) > 100
    assert len(data["labels"]) >= 5
    # points: a good share of the canvas is coloured, in many colours
    img = _pixels(shot)
    background = np.median(img.reshape(-1, 3), axis=0)
    drawn = np.abs(img - background).sum(axis=2) > 30
    assert drawn.mean() > 0.02, drawn.mean()
    assert len(np.unique(img[drawn][:, :3] // 32, axis=0)) >= 8
    # labels: removing the label layer changes a visible number of pixels
    diff = np.abs(_pixels(no_labels) - img).sum(axis=2) > 60
    assert diff.sum() > 2000, diff.sum()
    assert 0 < selected < len(data["hover"])
