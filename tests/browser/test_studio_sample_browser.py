"""First start with ``--sample`` on an empty data dir: the studio ingests the bundled archive,
runs the whole pipeline offline as jobs, and the map ends up drawn (issue #8 items 6/1)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.workspace import Workspace

pytestmark = pytest.mark.browser

FIRST_START_TIMEOUT = 600  # s: ingest, embed, UMAP, cluster, labels, scope, links on 2 busy cores


def _browser_module(name: str):
    """A sibling module of this folder (the browser conftest's StudioServer, a test helper)."""
    spec = importlib.util.spec_from_file_location(f"tweetscope_browser_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coloured_pixel_count(png_path) -> int:
    """Pixels clearly not the white background or the grey hull lines."""
    from PIL import Image

    rgb = np.asarray(Image.open(png_path).convert("RGB")).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).sum())


@pytest.fixture(scope="module")
def first_start_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("first-start") / "data"
    browser = _browser_module("conftest")
    server = browser.StudioServer(data_dir, extra_args=("--sample",))
    try:
        server.wait_ready(browser.SERVER_START_TIMEOUT)
        yield server
    finally:
        server.stop()


def pipeline_finished(data_dir) -> bool:
    workspace = Workspace(data_dir)
    if "sample" not in workspace.dataset_names():
        return False
    dataset = workspace.dataset("sample")
    return bool(dataset.latest("toponymy") and dataset.latest("scopes")
                and (dataset.links_dir / "meta.json").is_file())


def test_first_start_with_the_sample_ends_with_the_map_drawn(first_start_server, page, screenshots):
    server = first_start_server
    assert "sample job(s) queued" in "".join(server.output)
    started = time.monotonic()
    page.goto(f"{server.url}?view=map")
    page.wait_for_selector(".ts-sidebar", timeout=180_000)
    # The open page follows the jobs: the map replaces the "No map yet" note once UMAP and
    # Cluster are done, without a reload.
    page.locator(".ts-map-plot canvas").first.wait_for(timeout=FIRST_START_TIMEOUT * 1000)
    map_seconds = time.monotonic() - started
    while not pipeline_finished(server.data_dir):
        assert time.monotonic() - started < FIRST_START_TIMEOUT, (
            "the first start did not finish; server says:\n" + "".join(server.output[-30:]))
        assert server.proc.poll() is None, "the studio exited:\n" + "".join(server.output[-30:])
        time.sleep(2)
    done_seconds = time.monotonic() - started
    print(f"first start: map after {map_seconds:.0f} s, every stage after {done_seconds:.0f} s")

    page.goto(f"{server.url}?view=map")  # a new session on the finished dataset: labels and hulls
    page.wait_for_selector(".ts-map-controls", timeout=180_000)
    canvas = page.locator(".ts-map-plot canvas").first
    canvas.wait_for(timeout=120_000)
    time.sleep(2.5)  # the first rasterized frame arrives after the plot is laid out
    shot = screenshots / "studio-first-start-map.png"
    canvas.screenshot(path=shot)
    assert coloured_pixel_count(shot) > 1500, "the map of the sample looks blank"
    assert int(page.locator(".ts-cluster-count-value").inner_text(timeout=60_000)) > 0
    assert page.locator(".ts-map-empty").count() == 0
    page.screenshot(path=screenshots / "studio-first-start-page.png", full_page=True)
    assert page.external_requests == []
