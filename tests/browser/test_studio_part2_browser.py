"""Studio part 2 in headless Chromium on the real sample: relabel → edit a label → save →
rebuild the scope → delete a tweet → plan (shown before the confirm step) → publish to a moto
S3 server; then the bucket holds the edited label and no object holds the deleted tweet's text.

One studio server for the module (the browser conftest's ``StudioServer`` on a copy of the
scoped sample, configured through environment variables like a curator's shell); each test
opens a fresh page of the shared Chromium. The tests build on each other and run in order.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

BUCKET, PREFIX = "cdn", "maps"
EDITED_LABEL = "Curated label from the browser"
TIMEOUT_MS = 120_000


def _browser_conftest():
    """The browser conftest as a module (for its StudioServer; fixtures come through pytest)."""
    import importlib.util

    path = Path(__file__).with_name("conftest.py")
    spec = importlib.util.spec_from_file_location("tweetscope_browser_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def world(tmp_path_factory, scoped_dataset):
    """A copy of the scoped sample, a moto S3 bucket, and a studio whose environment configures it."""
    from unittest import mock

    from kits.publish_kit import moto_s3
    from pipeline.core.workspace import Dataset

    data_dir = tmp_path_factory.mktemp("studio_part2") / "data"
    shutil.copytree(scoped_dataset.path, data_dir / scoped_dataset.name)
    ds = Dataset(data_dir / scoped_dataset.name)
    frame = ds.read_input(["text", "tweet_type"])
    texts = frame["text"].astype(str)
    # the tweet to delete: the longest own tweet, whose text appears nowhere else
    own = texts[frame["tweet_type"] == "tweet"]
    own = own[own.map(lambda t: sum(t in u for u in texts)) == 1]
    deleted_row = int(own.str.len().idxmax())
    with moto_s3(BUCKET) as (endpoint, s3_env):
        # only this test's S3 settings: none of the developer's R2 / LanceDB / AWS profile variables
        env = {k: v for k, v in os.environ.items() if not k.startswith(("R2_", "S3_", "AWS_", "LANCEDB_"))
               and k not in ("TWEETSCOPE_PUBLISH_TARGET", "TWEETSCOPE_PUBLIC_URL", "DATA_URL")}
        env.update(s3_env, S3_ENDPOINT_URL=endpoint, TWEETSCOPE_PUBLISH_TARGET=f"s3://{BUCKET}/{PREFIX}")
        browser_conftest = _browser_conftest()
        with mock.patch.dict(os.environ, env, clear=True):  # the server process inherits it
            server = browser_conftest.StudioServer(data_dir)
        try:
            server.wait_ready(browser_conftest.SERVER_START_TIMEOUT)
            yield types.SimpleNamespace(dataset=ds, endpoint=endpoint, env=env, url=server.url,
                                        deleted_row=deleted_row, deleted_text=texts.iloc[deleted_row])
        finally:
            server.stop()


@pytest.fixture
def studio_page(world, page):
    """The shared browser's fresh page with generous waits (the machine is shared)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    yield page
    expect.set_options(timeout=5_000)  # Playwright's default, for the other browser tests


def open_view(page, world, view: str, ready: str) -> None:
    page.goto(f"{world.url}?view={view}", timeout=180_000)
    page.wait_for_selector(ready, timeout=180_000)


def shot(page, screenshots: Path, name: str) -> Path:
    path = screenshots / f"studio_part2_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def page_html(page) -> str:
    """The page's HTML including every (Bokeh) shadow root."""
    return page.evaluate("""() => {
        const parts = [];
        const walk = (root) => {
            for (const el of root.querySelectorAll('*')) {
                if (el.shadowRoot) { parts.push(el.shadowRoot.innerHTML); walk(el.shadowRoot); }
            }
        };
        parts.push(document.documentElement.outerHTML);
        walk(document);
        return parts.join('\\n');
    }""")


def open_tab(page, title: str) -> None:
    page.locator(".bk-tab", has_text=title).first.click()


def s3(world):
    import boto3

    return boto3.client("s3", endpoint_url=world.endpoint, region_name="us-east-1",
                        aws_access_key_id=world.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=world.env["AWS_SECRET_ACCESS_KEY"])


def label_row(page, cluster: str):
    cell = page.locator('.tabulator-cell[tabulator-field="cluster"]', has_text=re.compile(rf"^\s*{cluster}\s*$"))
    return page.locator(".ts-labels-table .tabulator-row", has=cell).first


def test_relabel_selected_clusters_as_a_job(studio_page, world, screenshots):
    from playwright.sync_api import expect

    page = studio_page
    open_view(page, world, "labels", ".ts-labels-table .tabulator-row")
    expect(page.locator(".ts-labels-id")).to_have_text("toponymy-001")
    label_row(page, "0_1").locator("input[type=checkbox]").click()
    page.locator(".ts-relabel-provider select").select_option("offline")
    page.locator(".ts-relabel button").click()
    expect(page.locator(".ts-labels-job-status")).to_contain_text("relabel 1 cluster(s) of toponymy-001")
    shot(page, screenshots, "0_relabel_running")
    # the namer embeds the keyphrase vocabulary: tens of seconds, minutes on a busy machine
    expect(page.locator(".ts-labels-job-done")).to_contain_text("toponymy-002", timeout=900_000)
    expect(page.locator(".ts-labels-id")).to_have_text("toponymy-002")  # the result opens in the view
    side = world.dataset.sidecar("toponymy-002")
    assert side["edited_from"] == "toponymy-001" and "relabel" in side
    assert [e["cluster"] for e in side["edits"] if e["field"] == "label"] == ["0_1"]
    shot(page, screenshots, "0_relabelled")


def test_edit_a_label_save_and_diff(studio_page, world, screenshots):
    from playwright.sync_api import expect

    page = studio_page
    open_view(page, world, "labels", ".ts-labels-table .tabulator-row")
    expect(page.locator(".ts-labels-id")).to_have_text("toponymy-002")
    row = label_row(page, "0_2")
    cell = row.locator('.tabulator-cell[tabulator-field="label"]')
    cell.click()
    editor = cell.locator("input")
    editor.fill(EDITED_LABEL)
    editor.press("Enter")
    expect(page.locator(".ts-pending")).to_contain_text(EDITED_LABEL)
    expect(page.locator(".ts-undo button")).to_be_enabled()
    # ticking a row shows its tweets (and highlights it on the map through the shared state)
    row.locator("input[type=checkbox]").click()
    expect(page.locator(".ts-sample-cluster")).to_have_attribute("data-cluster", "0_2")
    expect(page.locator(".ts-sample-tweets .tabulator-row").first).to_be_visible()
    shot(page, screenshots, "1_label_edited")
    page.locator(".ts-save-labels button").click()
    expect(page.locator(".ts-labels-id")).to_have_text("toponymy-003")
    expect(page.locator(".ts-no-changes")).to_be_visible()
    side = world.dataset.sidecar("toponymy-003")
    assert side["edited_from"] == "toponymy-002" and side["statuses"]["0_2"] == "edited"
    page.locator(".ts-show-diff button").click()
    expect(page.locator(".ts-labels-diff")).to_contain_text(EDITED_LABEL)
    shot(page, screenshots, "2_labels_saved_diff")


def test_rebuild_scope_from_the_edited_labels(studio_page, world):
    from playwright.sync_api import expect

    page = studio_page
    open_view(page, world, "labels", ".ts-labels-table .tabulator-row")
    expect(page.locator(".ts-labels-id")).to_have_text("toponymy-003")
    page.locator(".ts-rebuild-scope button").click()
    expect(page.locator(".ts-labels-job-done")).to_contain_text("scopes-002")
    scope = world.dataset.sidecar("scopes-002")
    assert scope["labels_id"] == "toponymy-003"
    assert EDITED_LABEL in {row["label"] for row in scope["cluster_labels_lookup"]}


def test_delete_a_tweet_after_confirmation(studio_page, world, screenshots):
    from playwright.sync_api import expect

    page = studio_page
    open_view(page, world, "publish", ".ts-delete-ids input")
    tweet_id = world.dataset.read_input(["id"])["id"].iloc[world.deleted_row]
    page.locator(".ts-delete-ids input").fill(f"https://x.com/milahu104/status/{tweet_id}")
    page.locator(".ts-delete-by-id button").click()
    expect(page.locator(".ts-delete-preview .tabulator-row").first).to_contain_text(str(world.deleted_row))
    assert not (world.dataset.path / "tombstones.json").exists()  # nothing before the confirmation
    shot(page, screenshots, "3_delete_confirm")
    page.locator(".ts-delete-confirm button").click()
    expect(page.locator(".ts-tombstone-count")).to_have_text("1")
    expect(page.locator(".ts-curate-scope")).to_contain_text("scopes-002 is up to date")
    assert json.loads((world.dataset.path / "tombstones.json").read_text())["tweet_ids"] == [str(tweet_id)]


def test_plan_then_confirm_then_publish_to_s3(studio_page, world, screenshots):
    from playwright.sync_api import expect

    page = studio_page
    open_view(page, world, "publish", ".ts-publish-plan button")
    expect(page.locator(".ts-publish-scope-id")).to_have_text("scopes-002")
    expect(page.locator(".ts-targets")).to_contain_text(f"s3://{BUCKET}/{PREFIX}")
    page.locator(".ts-publish-plan button").click()
    expect(page.locator(".ts-plan-summary")).to_contain_text("new")
    expect(page.locator(".ts-gate-pass")).to_be_visible()
    expect(page.locator(".ts-plan-table .tabulator-row", has_text="scopes/scopes-002.json").first).to_be_visible()
    go = page.locator(".ts-publish-go button")
    expect(go).to_be_disabled()  # the plan is on screen; nothing is sent before the confirmation
    assert s3(world).list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    shot(page, screenshots, "4_publish_plan")
    page.locator(".ts-publish-confirm input").check()
    expect(go).to_be_enabled()
    go.click()
    expect(page.locator(".ts-publish-result")).to_contain_text("Published")
    expect(page.locator(".ts-result-table .tabulator-row").first).to_be_visible()
    expect(page.locator(".ts-publish-history .tabulator-row")).to_have_count(1)
    shot(page, screenshots, "5_published")
    html = page_html(page)
    assert world.env["AWS_SECRET_ACCESS_KEY"] not in html and world.env["AWS_ACCESS_KEY_ID"] not in html


def test_bucket_holds_the_edited_label_and_not_the_deleted_tweet(world):
    import pyarrow.parquet as pq

    client = s3(world)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")["Contents"]]
    name = world.dataset.name
    assert f"{PREFIX}/{name}/manifest.json" in keys
    scope = json.loads(client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}/scopes/scopes-002.json")["Body"].read())
    assert EDITED_LABEL in {row["label"] for row in scope["cluster_labels_lookup"]}
    assert f"{PREFIX}/{name}/clusters/toponymy-003.parquet" in keys
    for key in keys:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        if key.endswith(".parquet"):
            frame = pq.read_table(io.BytesIO(body)).to_pandas()
            for column in frame.columns:
                values = frame[column].astype(str)
                assert not values.str.contains(world.deleted_text, regex=False).any(), (key, column)
        else:
            assert world.deleted_text not in body.decode("utf-8"), key
    serving = pq.read_table(io.BytesIO(client.get_object(
        Bucket=BUCKET, Key=f"{PREFIX}/{name}/scopes/scopes-002-input.parquet")["Body"].read())).to_pandas()
    assert bool(serving.set_index("ls_index").at[world.deleted_row, "deleted"])


def test_jobs_view_lists_what_ran(studio_page, world, screenshots):
    from playwright.sync_api import expect

    page = studio_page
    open_view(page, world, "jobs", ".ts-jobs-table .tabulator-row")
    table = page.locator(".ts-jobs-table")
    for title in ("relabel 1 cluster(s) of toponymy-001", "Scope (labels_id=toponymy-003)",
                  "apply tombstones to scopes-002", "plan publish of scopes-002", "publish scopes-002 to s3://cdn/maps"):
        expect(table.locator(".tabulator-row", has_text=title).first).to_be_visible()
    table.locator(".tabulator-row", has_text="Scope (labels_id=toponymy-003)").first.click()
    expect(page.locator(".ts-job-detail")).to_have_attribute("data-status", "done")
    expect(page.locator(".ts-job-params")).to_contain_text("toponymy-003")
    shot(page, screenshots, "6_jobs")
