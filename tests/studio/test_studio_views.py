"""Server-side view models of the studio: state, loading archives, stage cards, sidebar, app."""

from __future__ import annotations

import zipfile

import pytest

from studio.jobs import DONE, FAILED, JobRunner
from studio.state import StudioState
from studio.views.load import LoadModel, dataset_name_from_filename


def zip_slip_archive(path):
    """An X-archive-looking zip with a member that escapes the extraction folder."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/manifest.js", "window.__THAR_CONFIG = {};")
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
        zf.writestr("../../evil.txt", "pwned")
    return path


def wait_for(state, job):
    state.runner.wait(job, timeout=120)
    state.poll_jobs()
    return job


@pytest.fixture
def state(tmp_path):
    return StudioState(tmp_path / "data", runner=JobRunner())


def test_dataset_name_from_filename():
    assert dataset_name_from_filename("twitter-2024-01-01 (1).zip") == "twitter-2024-01-01-1"
    assert dataset_name_from_filename("../../x.json") == "x"
    assert dataset_name_from_filename(".zip") == "archive"


def test_upload_of_the_sample_archive_creates_and_selects_the_dataset(state, sample_zip):
    load = LoadModel(state)
    job = load.submit_upload("my archive.zip", sample_zip.read_bytes())
    wait_for(state, job)
    assert job.status == DONE, job.error
    assert state.workspace.dataset_names() == ["my-archive"]
    assert state.dataset == "my-archive"
    assert "ready" in load.info and load.error == ""
    assert not list((state.workspace.data_dir / ".uploads").iterdir())  # temp upload removed


def test_hostile_upload_shows_the_ingest_error_and_creates_nothing(state, tmp_path):
    archive = zip_slip_archive(tmp_path / "evil.zip")
    load = LoadModel(state)
    job = wait_for(state, load.submit_upload("evil.zip", archive.read_bytes()))
    assert job.status == FAILED and job.error_type == "IngestError"
    assert "zip slip" in load.error and "evil" in load.error
    assert "Nothing was created" in load.info
    data_dir = state.workspace.data_dir
    assert state.workspace.dataset_names() == []
    assert [p.name for p in data_dir.iterdir() if not p.name.startswith(".")] == []
    assert not list((data_dir / ".uploads").iterdir())
    assert not (tmp_path / "evil.txt").exists() and not (data_dir.parent / "evil.txt").exists()


def test_load_path_checks_before_submitting(state, tmp_path, sample_zip):
    load = LoadModel(state)
    load.path = str(tmp_path / "missing.zip")
    assert load.submit_path() is None and "no such file" in load.error
    load.path, load.dataset_name = str(sample_zip), "bad name!"
    assert load.submit_path() is None and "not allowed" in load.error
    load.dataset_name = "fine"
    job = wait_for(state, load.submit_path())
    assert job.status == DONE
    load.dataset_name = "fine"
    assert load.submit_path() is None and "already exists" in load.error


def test_stage_cards_and_sidebar_follow_the_dataset(state, sample_dataset):
    import shutil

    from pipeline.stages.registry import STAGES
    from studio.views.sidebar import stage_list_html, stage_rows
    from studio.views.stages import StageCardModel

    shutil.copytree(sample_dataset.path, state.workspace.data_dir / "sample")
    state.refresh()
    assert state.dataset == "sample"
    rows = stage_rows(state)
    assert [r["stage"] for r in rows] == [s.name for s in STAGES]
    assert all(r["status"] in ("missing", "done", "stale") for r in rows)
    html = stage_list_html(rows)
    assert "ts-stage-row-embed" in html
    embed = StageCardModel(STAGES[0], state)
    assert embed.config is not None and "provider" in embed.config.param


def test_running_a_stage_from_its_card(state, sample_dataset):
    """The links card runs the real stage in the background; status and log follow it."""
    import shutil

    from pipeline.stages.registry import get_stage as stage
    from studio.views.stages import StageCardModel

    copy = state.workspace.data_dir / "sample"
    shutil.copytree(sample_dataset.path, copy)
    # the session dataset may already carry links from later fixtures in the chain
    shutil.rmtree(copy / "links", ignore_errors=True)
    state.refresh()
    card = StageCardModel(stage("links"), state)
    assert card.status()["status"] == "missing"
    job = card.run()
    with pytest.raises(ValueError, match="already queued or running"):
        card.run()
    wait_for(state, job)
    assert job.status == DONE, job.error
    assert card.status()["status"] == "done"
    assert (state.current_dataset().links_dir / "edges.parquet").is_file()
    assert job.log[0].endswith("queued: " + job.title) and "done in" in job.log[-1]


def test_app_builds_every_registered_view(tmp_path, sample_dataset):
    import shutil

    from studio.app import VIEWS, create_app, load_builtin_views, register_view

    shutil.copytree(sample_dataset.path, tmp_path / "data" / "sample")
    views = load_builtin_views()
    assert {"stages", "map"} <= set(views)
    register_view("extra", lambda state: f"dataset {state.dataset}", title="Extra")
    try:
        template = create_app(tmp_path / "data", runner=JobRunner())
        assert template.studio_state.dataset == "sample"
        tabs = template.main[0]
        titles = [tabs._names[i] for i in range(len(tabs))]
        assert "Stages" in titles and "Map" in titles and "Extra" in titles
        # Every part must serialise into a Bokeh document (what a browser session pulls).
        import panel as pn
        from bokeh.document import Document

        for part in [template.sidebar[0], *tabs.objects]:
            doc = Document()
            doc.add_root(pn.panel(part).get_root(doc))
            doc.to_json()
    finally:
        VIEWS.pop("extra", None)
