"""Studio publish view without a browser: the serving check after a publish, unpublish behind a
typed confirmation, and rollback — through the Panel view objects and the real pipeline calls.

The serving check reads a local folder target through a static HTTP server (``kits.static_server``);
unpublish runs on a copy of the scoped sample with a local LanceDB folder; rollback on the small
synthetic dataset of ``kits.scope_fakes`` with the real deploy gate.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from kits.scope_fakes import make_fake_dataset
from kits.static_server import static_server

ORIGIN = "https://app.example.org"


@pytest.fixture
def studio(tmp_path):
    """A StudioState on a fresh fake dataset with a scope and links, and its own job runner."""
    from pipeline.stages.links import run_links
    from pipeline.stages.scope import run_scope
    from studio.jobs import JobRunner
    from studio.state import StudioState

    ds = make_fake_dataset(tmp_path)
    run_scope(ds)
    run_links(ds)
    return StudioState(tmp_path / "data", runner=JobRunner(tmp_path / "data" / ".jobs"))


def finish(state, job, timeout=120):
    state.runner.wait(job, timeout)
    state.poll_jobs()
    return job


def view_of(state, env=None):
    from studio.views.publish import PublishModel, PublishView

    return PublishView(state, PublishModel(state, env=env or {}))


def plan_and_publish(state, view):
    view._on_plan()
    finish(state, view.model.plan_job)
    assert view.model.can_publish(), view.model.error
    view.confirm.value = True
    view._on_publish()
    finish(state, view.model.publish_job)
    return view.model.publish_job


def bucket_headers(rel: str) -> dict:
    """What a bucket answers for an object: the content type and cache header the publish set."""
    from pipeline.publish.execute import PublishConfig
    from pipeline.publish.plan import cache_control_for, content_type_for

    config = PublishConfig()
    name = rel.split("/", 1)[1] if "/" in rel else rel
    cache = config.manifest_cache_control if name == "manifest.json" else cache_control_for(name, config)
    return {"Content-Type": content_type_for(name), "Cache-Control": cache}


# --------------------------------------------------------------------------- serving check

def test_public_url_and_cors_origin_default_from_the_environment(studio):
    view = view_of(studio, env={"R2_PUBLIC_URL": "https://pub-abc.r2.dev",
                                "TWEETSCOPE_CORS_ORIGIN": ORIGIN, "R2_SECRET_ACCESS_KEY": "sup3rs3cr3t"})
    assert view.public_url.value == "https://pub-abc.r2.dev" and view.cors_origin.value == ORIGIN
    assert view.model.public_url == "https://pub-abc.r2.dev"
    assert "sup3rs3cr3t" not in json.dumps(view.model.param.values(), default=str)


def test_publish_runs_the_serving_check_and_shows_each_failure_with_its_fix(studio, tmp_path):
    from studio.views.publish import PUBLISHED

    site = tmp_path / "site"
    view = view_of(studio)
    view.custom.value = f"file://{site}"
    view._on_plan()
    finish(studio, view.model.plan_job)
    view.confirm.value = True
    view.public_url.value = "pub.example.org"  # no scheme: refused before anything is sent
    view._on_publish()
    assert view.model.publish_job is None and "http(s) URL" in view.errors.object
    assert not site.exists() or not any(p.is_file() for p in site.rglob("*"))

    # a bucket that serves Range reads and the right headers, but has no CORS rule
    with static_server(site, cors_origin=None, headers_for=bucket_headers) as url:
        view.public_url.value = url
        view.cors_origin.value = ORIGIN
        view.confirm.value = True
        view._on_publish()
        job = finish(studio, view.model.publish_job)
    assert job.status == "done", job.error
    assert view.model.phase == PUBLISHED and "Published" in view.result.object
    report = view.model.result["serving_check"]
    failed = [c["name"] for c in report["checks"] if not c["ok"]]
    assert failed == ["CORS preflight", "CORS on the ranged GET"], report
    assert any(c["name"] == "parquet Range GET" and c["ok"] for c in report["checks"])
    html = view.serving.object
    assert "2 of" in html and "failed" in html and html.count("ts-serving-fix") == 2
    assert "CORSRules" in html and ORIGIN in html and "put-bucket-cors" in html
    assert job.params["public_url"] == url


def test_serving_check_passes_with_cors(studio, tmp_path):
    site = tmp_path / "site"
    view = view_of(studio)
    view.custom.value = f"file://{site}"
    with static_server(site, cors_origin="*", headers_for=bucket_headers) as url:
        view.public_url.value = url
        job = plan_and_publish(studio, view)
    assert job.status == "done", job.error
    assert view.model.result["serving_check"]["ok"], view.model.result["serving_check"]
    assert "Serving check passed" in view.serving.object and "ts-serving-fix" not in view.serving.object


# --------------------------------------------------------------------------- unpublish

def test_unpublish_needs_the_typed_name_then_removes_objects_and_tables(scoped_dataset, tmp_path):
    import lancedb

    from pipeline.core.workspace import Dataset
    from studio.jobs import JobRunner
    from studio.state import StudioState

    ds = Dataset(shutil.copytree(scoped_dataset.path, tmp_path / "data" / scoped_dataset.name))
    state = StudioState(ds.path.parent, runner=JobRunner())
    cdn, lance = tmp_path / "cdn", tmp_path / "lance"
    view = view_of(state)
    view.custom.value = f"file://{cdn}"
    view.model.param.update(lancedb=True, lancedb_uri=str(lance))
    job = plan_and_publish(state, view)
    assert job.status == "done", job.error
    table = view.model.result["lancedb_table_id"]
    assert table in lancedb.connect(str(lance)).list_tables().tables
    published = sorted(p for p in (cdn / ds.name).rglob("*") if p.is_file())
    assert any(p.name == "manifest.json" for p in published)

    scope_id = state.scope_id
    assert scope_id in view.unpublish_typed.name  # the label says what to type
    for wrong in ("", "scopes", ds.name, f" {scope_id}x"):  # the dataset name confirms only a dataset unpublish
        view.unpublish_typed.value = wrong
        view.unpublish_button.clicks += 1
        assert view.model.unpublish_job is None
        assert f"Type {scope_id} exactly" in view.errors.object
    assert sorted(p for p in (cdn / ds.name).rglob("*") if p.is_file()) == published
    assert table in lancedb.connect(str(lance)).list_tables().tables

    view.unpublish_typed.value = scope_id
    view.unpublish_button.clicks += 1
    job = finish(state, view.model.unpublish_job)
    assert job.status == "done", job.error
    assert view.unpublish_typed.value == ""  # the confirmation is not kept for a second click
    assert not any(p.is_file() for p in cdn.rglob("*"))
    assert table not in lancedb.connect(str(lance)).list_tables().tables
    result = view.model.unpublished
    assert result["verified_by_listing"] and result["left"] == [] and result["meta_rows_deleted"] >= 1
    assert "Unpublished" in view.unpublish_result.object and not view.errors.object


# --------------------------------------------------------------------------- rollback

def _remote_rows(cdn, name, scope_id) -> pd.DataFrame:
    return pd.read_parquet(cdn / name / "scopes" / f"{scope_id}-input.parquet")


def test_rollback_republishes_the_previous_publish_and_keeps_a_new_deletion(studio, tmp_path):
    from pipeline.core.tombstones import add_tombstones
    from pipeline.stages.scope import apply_tombstones, run_scope
    from studio.views.publish import FAILED, PUBLISHED

    ds = studio.current_dataset()
    cdn = tmp_path / "cdn"
    view = view_of(studio)
    view.custom.value = f"file://{cdn}"
    first = plan_and_publish(studio, view)
    assert first.status == "done", first.error
    view.rollback_button.clicks += 1  # one publish: nothing to go back to
    finish(studio, view.model.publish_job)
    assert view.model.phase == FAILED and "nothing to roll back to" in view.errors.object

    run_scope(ds)
    studio.follow_latest("scope_id")
    assert studio.scope_id == "scopes-002"
    second = plan_and_publish(studio, view)
    assert second.status == "done", second.error
    manifest = json.loads((cdn / ds.name / "manifest.json").read_text())
    assert manifest["active_scope"] == "scopes-002"

    victim = 7
    text = ds.read_input(["text"])["text"].iat[victim]
    add_tombstones(ds, [victim])  # deleted after both publishes: scopes-001's local files still hold it
    apply_tombstones(ds, "scopes-002")
    view.rollback_button.clicks += 1
    job = finish(studio, view.model.publish_job)
    assert job.status == "done", job.error
    assert view.model.phase == PUBLISHED and "Published" in view.result.object
    record = view.model.result
    assert record["scope_id"] == "scopes-001" and record["rollback_of"] == second.result["id"]
    manifest = json.loads((cdn / ds.name / "manifest.json").read_text())
    assert set(manifest["scopes"]) == {"scopes-001"} and manifest["active_scope"] == "scopes-001"
    served = _remote_rows(cdn, ds.name, "scopes-001")
    row = served.loc[served["ls_index"] == victim].iloc[0]
    assert bool(row["deleted"]) and row["text"] == ""
    assert not (served["text"] == text).any()
    for path in cdn.rglob("*"):  # the dropped scope's objects were sent before the delete: swept too
        if path.suffix == ".parquet" and "text" in (frame := pd.read_parquet(path)).columns:
            assert not (frame["text"] == text).any(), path
        elif path.is_file():
            assert text not in path.read_text(errors="replace"), path
    assert list(view.history.value["scope_id"]) == ["scopes-001", "scopes-002", "scopes-001"]
