"""The studio driven in headless Chromium on the real sample artifacts.

Order matters a little: the map tests run before the test that runs a stage (which adds a
clustering the map then follows); each test opens its own page.
"""

from __future__ import annotations

import re
import time
import urllib.request
import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.browser

EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["']((?:https?:)?//(?!127\.0\.0\.1)[^"']+)""", re.I)


def open_view(page, server, view: str):
    page.goto(f"{server.url}?view={view}")
    page.wait_for_selector(".ts-sidebar", timeout=180_000)


def open_map(page, server):
    open_view(page, server, "map")
    page.wait_for_selector(".ts-map-controls", timeout=180_000)
    canvas = page.locator(".ts-map-plot canvas").first
    canvas.wait_for(timeout=120_000)
    time.sleep(2.5)  # the first rasterized frame arrives after the plot is laid out
    return canvas


def coloured_pixels(png_path) -> np.ndarray:
    """(row, col) of pixels that are clearly not the white background or grey hull lines."""
    from PIL import Image

    rgb = np.asarray(Image.open(png_path).convert("RGB")).astype(int)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    return np.argwhere(saturation > 40)


def test_page_uses_only_local_resources(studio_server, page, screenshots):
    html = urllib.request.urlopen(studio_server.url, timeout=120).read().decode("utf-8")
    assert EXTERNAL_URL.findall(html) == []
    open_view(page, studio_server, "stages")
    page.wait_for_selector(".ts-stage-card", timeout=120_000)
    page.screenshot(path=screenshots / "studio-stages.png", full_page=True)
    assert page.external_requests == []


def test_map_renders_every_point_and_hover_shows_the_tweet(studio_server, page, screenshots):
    canvas = open_map(page, studio_server)
    shot = screenshots / "studio-map.png"
    canvas.screenshot(path=shot)
    pixels = coloured_pixels(shot)
    assert len(pixels) > 1500, f"the map looks blank ({len(pixels)} coloured pixels)"
    page.screenshot(path=screenshots / "studio-map-page.png", full_page=True)

    # Hover over coloured pixels (= points) until the card shows a tweet.
    box = canvas.bounding_box()
    card = page.locator(".ts-hover-card")
    rng = np.random.default_rng(0)
    for row, col in pixels[rng.choice(len(pixels), size=min(25, len(pixels)), replace=False)]:
        page.mouse.move(float(box["x"] + col), float(box["y"] + row))
        try:
            page.wait_for_selector(".ts-card-text", timeout=2500)
            break
        except Exception:  # noqa: BLE001 - try the next point
            continue
    text = card.locator(".ts-card-text").inner_text(timeout=5000)
    assert text.strip(), "the hover card has no tweet text"
    assert card.locator(".ts-card-meta").inner_text()  # date / type line
    page.screenshot(path=screenshots / "studio-hover.png", full_page=True)


def test_min_cluster_size_slider_changes_the_cluster_count(studio_server, page, screenshots):
    open_map(page, studio_server)
    count = page.locator(".ts-cluster-count-value")
    before = int(count.inner_text(timeout=60_000))
    handle = page.locator(".ts-mcs-slider .noUi-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()

    deadline, after = time.monotonic() + 30, before  # a re-cluster of the sample takes well under a second
    while time.monotonic() < deadline and after == before:
        time.sleep(0.25)
        after = int(count.inner_text())
    assert after != before, ("dragging min_cluster_size did not change the cluster count; server says:\n"
                             + "".join(studio_server.output[-30:]))
    assert "preview" in page.locator(".ts-cluster-count i").inner_text()
    time.sleep(2)
    page.screenshot(path=screenshots / "studio-recluster.png", full_page=True)


def test_hostile_upload_shows_a_clear_error_and_creates_nothing(studio_server, page, screenshots, tmp_path):
    evil = tmp_path / "evil-archive.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("data/manifest.js", "window.__THAR_CONFIG = {};")
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
        zf.writestr("../../escaped.txt", "zip slip")
    before = sorted(p.name for p in studio_server.data_dir.iterdir())
    open_view(page, studio_server, "stages")
    page.locator(".ts-upload input[type=file]").first.set_input_files(str(evil))
    error = page.locator(".ts-load-error-text")
    error.wait_for(timeout=180_000)
    message = error.inner_text()
    assert "zip slip" in message and "evil-archive" in message, message
    page.wait_for_selector(".ts-load-info-text:has-text('Nothing was created')", timeout=30_000)
    page.screenshot(path=screenshots / "studio-hostile-upload.png", full_page=True)
    after = sorted(p.name for p in studio_server.data_dir.iterdir())
    assert [n for n in after if not n.startswith(".")] == [n for n in before if not n.startswith(".")]
    assert not (studio_server.data_dir.parent / "escaped.txt").exists()
    uploads = studio_server.data_dir / ".uploads"
    assert not uploads.exists() or not list(uploads.iterdir())


def test_run_a_stage_from_the_ui(studio_server, page, screenshots):
    from pipeline.core.workspace import Workspace

    dataset = Workspace(studio_server.data_dir).datasets()[0]
    clusters_before = dataset.list_ids("cluster")
    open_view(page, studio_server, "stages")
    page.locator(".ts-run-cluster button").click()
    page.wait_for_selector(".ts-message-cluster .ts-done, .ts-message-cluster .ts-error", timeout=400_000)
    assert page.locator(".ts-message-cluster .ts-done").count() == 1, (
        page.locator(".ts-message-cluster .ts-error").all_inner_texts(), "".join(studio_server.output[-30:]))
    clusters_after = dataset.list_ids("cluster")
    assert len(clusters_after) == len(clusters_before) + 1
    new_id = clusters_after[-1]
    page.wait_for_selector(f".ts-artifact-cluster .ts-artifact-text:has-text('{new_id}')", timeout=60_000)
    page.screenshot(path=screenshots / "studio-stage-run.png", full_page=True)
