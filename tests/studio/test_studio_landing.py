"""The curator's landing (issue #19 item 7): build the map in one job, open on the map,
the audit's judge scores in the Labels table, a label row zooms the map."""

from __future__ import annotations

import numpy as np

from pipeline.stages.runner import plan_pipeline
from studio.build import RUN_ALL, map_is_built, pending_stages, submit_build
from studio.jobs import DONE, JobRunner
from studio.label_audit import audit_summary, with_audit
from studio.state import StudioState
from support import copy_dataset


def without_labels(dataset, dest):
    """A copy of a session dataset without its labels artifacts (the map is not built)."""
    ds = copy_dataset(dataset, dest)
    for toponymy_id in ds.list_ids("toponymy"):
        ds.artifact_path(toponymy_id, ".parquet").unlink()
        ds.artifact_path(toponymy_id, ".json").unlink()
    return ds


def test_build_runs_every_missing_stage_as_one_job(tmp_path, mapped_dataset):
    ds = without_labels(mapped_dataset, tmp_path)
    assert "labels" in pending_stages(ds) and not map_is_built(ds)
    state = StudioState(tmp_path / "data", runner=JobRunner())
    job = submit_build(state.runner, state.workspace, ds.name)
    state.runner.wait(job, timeout=900)
    assert job.status == DONE and job.stage == RUN_ALL, job.error
    assert plan_pipeline(ds) == [] and map_is_built(ds)
    assert any(str(r).startswith("toponymy-") for r in job.result)
    state.poll_jobs()  # the session follows the new artifacts
    assert state.toponymy_id == ds.latest("toponymy")


def test_a_failed_ingest_stops_the_queued_build(tmp_path, mapped_dataset):
    from studio.views.load import LoadModel

    state = StudioState(tmp_path / "data", runner=JobRunner())
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a zip")
    model = LoadModel(state, path=str(bad), build=True)
    ingest = model.submit_path()
    build = state.runner.get(model.build_job_id)
    state.runner.wait(build, timeout=120)
    assert ingest.status == "failed" and build.status == "failed" and "not run because ingest" in build.error
    assert state.workspace.dataset_names() == []


def test_the_app_opens_on_the_map_when_the_map_is_built(tmp_path, labelled_dataset):
    from studio.app import create_app

    built = create_app(copy_dataset(labelled_dataset, tmp_path / "a").path.parent, runner=JobRunner())
    assert built.studio_state.active_view == "map"
    not_built = create_app(without_labels(labelled_dataset, tmp_path / "b").path.parent, runner=JobRunner())
    assert not_built.studio_state.active_view == "stages"


def test_labels_table_shows_the_judge_scores_weakest_first(labelled_dataset):
    from studio.views.labels import LabelsModel

    ds = labelled_dataset
    sidecar = ds.sidecar(ds.latest("toponymy"))
    summary = audit_summary(sidecar)
    judged = set(sidecar["rounds"][0]["scores"])
    assert set(summary["cluster"]) == judged and summary["judge_score"].between(0, 1).all()
    for change in (c for r in sidecar["rounds"] for c in r["changes"] if c["applied"]):
        row = summary[summary["cluster"] == change["cluster"]].iloc[0]
        assert change["old_label"] in row["audit"]

    state = StudioState(ds.path.parent, runner=JobRunner())
    state.dataset = ds.name
    model = LabelsModel(state)
    assert {"judge_score", "audit"} <= set(model.view_frame().columns)
    model.weakest_first = True
    scores = model.view_frame()["judge_score"].to_numpy()
    finite = scores[np.isfinite(scores)]
    assert len(finite) and (np.diff(finite) >= 0).all() and np.isfinite(scores[: len(finite)]).all()


def test_audit_summary_reads_renames_and_kept_labels():
    sidecar = {"rounds": [
        {"scores": {"0_0": 0.1, "0_1": 0.2, "0_2": 0.9},
         "changes": [{"cluster": "0_0", "old_label": "58", "old_score": 0.1, "new_label": "Sourdough baking",
                      "new_score": 0.7, "applied": True},
                     {"cluster": "0_1", "old_label": "x", "old_score": 0.2, "new_label": "y", "new_score": 0.1,
                      "applied": False}]}]}
    table = with_audit(__import__("pandas").DataFrame({"cluster": ["0_0", "0_1", "0_2", "1_0"]}), sidecar)
    assert table["judge_score"].tolist()[:3] == [0.7, 0.2, 0.9] and np.isnan(table["judge_score"].iloc[3])
    assert "renamed from “58”" in table["audit"].iloc[0] and table["audit"].iloc[1].startswith("kept")
    assert table["audit"].iloc[2] == "" and table["audit"].iloc[3] == ""


def test_a_label_row_zooms_the_map_to_its_cluster(labelled_dataset):
    from studio.views.map import MapView

    ds = labelled_dataset
    state = StudioState(ds.path.parent, runner=JobRunner())
    state.dataset = ds.name
    view = MapView(state)
    assert view.model is not None and view.model.focus is None
    rows = view.model.layers[0]
    cluster = rows.loc[rows["count"].idxmax(), "cluster"]
    state.highlighted_cluster = cluster
    x0, y0, x1, y1 = view.model.focus
    idx = np.asarray(list(rows.loc[rows["cluster"] == cluster, "indices"].iloc[0]))
    inside = ((view.model.data.xy[idx, 0] >= x0) & (view.model.data.xy[idx, 0] <= x1)
              & (view.model.data.xy[idx, 1] >= y0) & (view.model.data.xy[idx, 1] <= y1))
    assert inside.mean() >= 0.95 and (x1 - x0) < 2.1
