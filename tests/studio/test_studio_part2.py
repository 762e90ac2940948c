"""Studio part 2 without a browser: labels, row deletion, publish and jobs view models.

They run on the small synthetic dataset of ``kits.scope_fakes`` (a complete artifact chain
written through the workspace API) with the real pipeline calls: label edits, scope, links,
tombstones, validate, plan/execute publish to a local folder.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from kits.scope_fakes import make_fake_dataset


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
    runner = JobRunner(tmp_path / "data" / ".jobs")
    state = StudioState(tmp_path / "data", runner=runner)
    return state


def finish(state, job, timeout=120):
    state.runner.wait(job, timeout)
    state.poll_jobs()
    return job


# --------------------------------------------------------------------------- labels

def test_labels_edit_undo_and_status_steps(studio):
    from studio.views.labels import LabelEditError, LabelsModel

    m = LabelsModel(studio)
    assert m.base_id == "toponymy-001" and not m.dirty
    assert list(m.view_frame()["cluster"]) == ["0_0", "0_1", "0_2", "0_3", "1_0", "1_1"]
    m.edit("0_1", "label", "  Coffee   and rain ")
    assert m.value("0_1", "label") == "Coffee and rain"  # whitespace collapsed
    assert m.value("0_1", "status") == "edited"
    assert m.set_status(["0_2", "0_3"], "approved") == 2
    assert len(m.undo_stack) == 2
    changes = m.changes()
    assert set(zip(changes["cluster"], changes["field"])) == {
        ("0_1", "label"), ("0_1", "status"), ("0_2", "status"), ("0_3", "status")}
    assert m.undo()  # the two approvals are one step
    assert m.value("0_2", "status") == "auto" and m.value("0_3", "status") == "auto"
    assert m.undo()
    assert m.value("0_1", "label") == "Topic 1" and m.value("0_1", "status") == "auto"
    assert not m.dirty and not m.undo()
    with pytest.raises(LabelEditError, match="cannot be empty"):
        m.edit("0_1", "label", "   ")
    with pytest.raises(LabelEditError, match="cannot be edited"):
        m.edit("0_1", "count", 3)
    with pytest.raises(LabelEditError, match="unknown cluster"):
        m.edit("9_9", "label", "x")
    with pytest.raises(LabelEditError, match="tick"):
        m.set_status([], "flagged")
    assert not m.dirty


def test_labels_filters(studio):
    from studio.views.labels import LabelsModel

    m = LabelsModel(studio)
    m.layer_filter = "1"
    assert list(m.view_frame()["cluster"]) == ["1_0", "1_1"]
    m.layer_filter = "all"
    m.set_status(["0_3"], "flagged")
    m.status_filter = "flagged"
    assert list(m.view_frame()["cluster"]) == ["0_3"]
    m.status_filter = "all"
    m.text_filter = "THEME"
    assert list(m.view_frame()["cluster"]) == ["1_0", "1_1"]


def test_labels_save_writes_new_artifact_and_diff(studio):
    from pipeline.stages.labels import load_labels
    from studio.views.labels import LabelsModel

    ds = studio.current_dataset()
    m = LabelsModel(studio)
    m.edit("0_2", "label", "Edited topic two")
    m.edit("0_2", "description", "what topic two is about")
    m.set_status(["0_0"], "approved")
    new_id = m.save()
    assert new_id == "toponymy-002"
    assert studio.toponymy_id == new_id and m.base_id == new_id and not m.dirty and not m.undo_stack
    side = ds.sidecar(new_id)
    assert side["edited_from"] == "toponymy-001"
    assert side["statuses"]["0_2"] == "edited" and side["statuses"]["0_0"] == "approved"
    saved = load_labels(ds, new_id).set_index("cluster")
    assert saved.at["0_2", "label"] == "Edited topic two"
    assert saved.at["0_2", "description"] == "what topic two is about"
    assert load_labels(ds, "toponymy-001").set_index("cluster").at["0_2", "label"] == "Topic 2"  # never overwritten
    assert m.previous_id() == "toponymy-001"
    diff = m.diff(m.previous_id())
    assert set(diff["cluster"]) == {"0_0", "0_2"}
    row = diff.set_index("cluster").loc["0_2"]
    assert row["label_a"] == "Topic 2" and row["label_b"] == "Edited topic two"
    assert m.save() is None and "No unsaved" in m.message


def test_labels_save_failure_keeps_edits(studio):
    from studio.views.labels import LabelBackend, LabelsModel

    class Broken(LabelBackend):
        def save(self, *args, **kwargs):
            raise OSError("disk full")

    m = LabelsModel(studio, backend=Broken())
    m.edit("0_1", "label", "kept")
    assert m.save() is None
    assert "disk full" in m.error and "nothing was written" in m.error
    assert m.dirty and m.value("0_1", "label") == "kept"
    assert studio.current_dataset().list_ids("toponymy") == ["toponymy-001"]


def test_labels_unsaved_edits_survive_switching_artifacts(studio):
    from pipeline.stages.labels.edits import edit_labels
    from studio.views.labels import LabelsModel

    ds = studio.current_dataset()
    other = edit_labels(ds, "toponymy-001", {"1_0": {"label": "Elsewhere"}})
    studio.refresh()
    studio.toponymy_id = "toponymy-001"
    m = LabelsModel(studio)
    m.edit("0_3", "label", "Work in progress")
    studio.toponymy_id = other
    assert m.base_id == other and not m.dirty
    studio.toponymy_id = "toponymy-001"
    assert m.value("0_3", "label") == "Work in progress" and m.dirty
    assert "Restored 1 unsaved edit" in m.message


def test_labels_samples_and_highlight(studio):
    from studio.views.labels import SAMPLE_SIZE, LabelsModel

    ds = studio.current_dataset()
    m = LabelsModel(studio)
    members = m.members("0_1")
    texts = ds.read_input(["text"])["text"]
    sample = m.sample_tweets("0_1")
    assert 0 < len(sample) <= SAMPLE_SIZE
    assert set(sample["ls_index"]) <= set(members.tolist())
    assert list(sample["text"]) == [texts.iloc[i] for i in sample["ls_index"]]
    assert sample.equals(m.sample_tweets("0_1"))  # stable between redraws
    m.highlight("0_1")
    assert studio.highlighted_cluster == "0_1"
    m.highlight(None)
    assert studio.highlighted_cluster is None


def test_rebuild_scope_uses_saved_labels(studio):
    from pipeline.stages.scope import load_scope
    from studio.views.labels import LabelEditError, LabelsModel

    ds = studio.current_dataset()
    m = LabelsModel(studio)
    m.edit("0_0", "label", "Rebuilt label")
    with pytest.raises(LabelEditError, match="save your edits"):
        m.rebuild_scope()
    with pytest.raises(LabelEditError, match="save or undo"):
        m.relabel(["0_0"])
    new_labels = m.save()
    assert "Rebuild scope to publish these labels" in m.scope_note()
    job = finish(studio, m.rebuild_scope())
    assert job.status == "done", job.error
    assert job.params == {"labels_id": new_labels}
    assert studio.scope_id == job.result == "scopes-002"
    scope = load_scope(ds, job.result)
    assert scope["labels_id"] == new_labels
    assert "Rebuilt label" in {row["label"] for row in scope["cluster_labels_lookup"]}
    assert m.scope_note() == "scopes-002 is built from these labels."


def test_relabel_runs_as_job_and_opens_result(studio):
    from pipeline.stages.labels.edits import edit_labels
    from studio.views.labels import LabelBackend, LabelsModel

    calls = []

    class FakeNamer(LabelBackend):
        def relabel(self, dataset, toponymy_id, clusters, config=None, progress=None):
            calls.append((toponymy_id, list(clusters)))
            progress.update(0, None, "naming")
            return edit_labels(dataset, toponymy_id, {c: {"label": f"renamed {c}", "status": "auto"}
                                                      for c in clusters})

    m = LabelsModel(studio, backend=FakeNamer())
    job = finish(studio, m.relabel(["0_1", "1_0"]))
    assert job.status == "done" and calls == [("toponymy-001", ["0_1", "1_0"])]
    assert job.params["clusters"] == ["0_1", "1_0"]
    assert studio.toponymy_id == job.result == m.base_id  # the state followed the new artifact
    assert m.value("0_1", "label") == "renamed 0_1"


def test_relabel_config_keeps_the_artifact_settings(studio):
    from pipeline.core.workspace import atomic_write_json
    from pipeline.stages.labels.edits import edit_labels
    from studio.views.labels import SAME_NAMER, LabelsModel

    ds = studio.current_dataset()
    params = {"provider": "openai", "model": "gpt-x", "max_keyphrases": 11, "seed": 7}
    edited = edit_labels(ds, "toponymy-001", {"0_0": {"status": "approved"}})
    side = ds.sidecar(edited)
    side["params"] = params  # as if the labels stage had run with these settings
    atomic_write_json(ds.sidecar_path(edited), side)
    studio.refresh()
    studio.toponymy_id = edited
    m = LabelsModel(studio)
    same = m.relabel_config(SAME_NAMER)
    assert (same.provider, same.model, same.max_keyphrases, same.seed) == ("openai", "gpt-x", 11, 7)
    other = m.relabel_config("offline")
    assert (other.provider, other.model, other.max_keyphrases) == ("offline", "", 11)


def test_labels_view_edit_event_and_buttons(studio):
    from studio.views.labels import LabelsView

    view = LabelsView(studio)
    frame = view.table.value
    row = int(np.flatnonzero(frame["cluster"] == "0_1")[0])
    view._on_edit(types.SimpleNamespace(row=row, column="label", value="From the table", old="Topic 1"))
    assert view.model.value("0_1", "label") == "From the table"
    assert "From the table" in view.changes.object and not view.save.disabled
    assert view.rebuild.disabled and view.relabel.disabled  # unsaved edits come first
    view._on_edit(types.SimpleNamespace(row=row, column="label", value="", old="From the table"))
    assert "cannot be empty" in view.status.object
    assert view.table.value.iloc[row]["label"] == "From the table"  # the cell got its value back
    view.table.selection = [row]
    assert studio.highlighted_cluster == "0_1"
    assert "0_1" in view.sample_title.object and len(view.samples.value) > 0
    view._status("flagged")
    assert view.model.value("0_1", "status") == "flagged"
    view._on_undo(None)
    assert view.model.value("0_1", "status") == "edited"
    view._on_save(None)
    assert studio.toponymy_id == "toponymy-002" and view.save.disabled and not view.rebuild.disabled
    view._on_diff(None)
    assert "From the table" in view.diff.object and "toponymy-001" in view.diff.object


# --------------------------------------------------------------------------- delete rows

def test_delete_selected_confirm_apply_and_undo(studio):
    from pipeline.core.tombstones import load_tombstones
    from pipeline.serving.validate import validate_scope
    from pipeline.stages.scope import load_scope_input
    from studio.views.curate import CurateModel

    ds = studio.current_dataset()
    model = CurateModel(studio)
    assert model.request_delete() == [] and "select tweets" in model.error
    studio.selection = [3, 11, 12]
    assert model.request_delete() == [3, 11, 12]
    assert "Delete 3 tweet(s)?" in model.confirmation_text()
    assert load_tombstones(ds) == set()  # nothing happens before the confirmation
    model.cancel_request()
    assert model.pending == [] and load_tombstones(ds) == set()

    model.request_delete()
    assert model.confirm_delete() == 3
    assert load_tombstones(ds) == {3, 11, 12}
    finish(studio, model.last_apply_job)
    assert model.last_apply_job.status == "done", model.last_apply_job.error
    serving = load_scope_input(ds, studio.scope_id).set_index("ls_index")
    assert serving.loc[[3, 11, 12], "deleted"].all()
    assert (serving.loc[[3, 11, 12], "text"] == "").all()
    assert validate_scope(ds, studio.scope_id) == []
    assert model.scope_state()["missing"] == [] and list(model.tombstone_frame()["ls_index"]) == [3, 11, 12]

    studio.selection = [11, 12]
    assert model.request_delete() == [] and "already deleted" in model.error

    assert model.undo() == 3
    assert load_tombstones(ds) == set()
    assert model.scope_state()["stale"] == [3, 11, 12]  # until the apply job ran
    finish(studio, model.last_apply_job)
    serving = load_scope_input(ds, studio.scope_id).set_index("ls_index")
    original = ds.read_input(["text"])["text"]
    assert serving.at[11, "text"] == original.iloc[11] and not serving.loc[[3, 11, 12], "deleted"].any()
    assert not model.can_undo()


def test_restore_some_deleted_rows(studio):
    from pipeline.core.tombstones import load_tombstones
    from studio.views.curate import CurateModel

    model = CurateModel(studio, auto_apply=False)
    studio.selection = [1, 2, 5]
    model.request_delete()
    model.confirm_delete()
    assert model.restore([2]) == 1
    assert load_tombstones(studio.current_dataset()) == {1, 5}
    info = model.scope_state()
    assert info["missing"] == [1, 5]  # not applied: auto_apply is off
    model.request_delete([999])
    assert model.confirm_delete() == 0 and "not rows" in model.error


def test_curate_panel_flow(studio):
    from pipeline.core.tombstones import load_tombstones
    from studio.views.curate import create_curate_panel

    ds = studio.current_dataset()
    panel = create_curate_panel(studio)
    parts, model = panel.parts, panel.curate_model
    assert parts["delete"].disabled
    studio.selection = [4, 6]
    assert "2</b> tweet(s) selected" in parts["selected"].object
    parts["delete"].clicks += 1
    assert model.pending == [4, 6]
    assert parts["confirm_text"].visible and "Delete 2 tweet(s)?" in parts["confirm_text"].object
    assert list(parts["preview"].value["ls_index"]) == [4, 6]
    parts["confirm"].clicks += 1
    finish(studio, model.last_apply_job)
    assert not parts["confirm"].visible and load_tombstones(ds) == {4, 6}
    assert "up to date" in parts["scope_info"].object

    # by pasted ids and links
    ids = ds.read_input(["id"])["id"]
    parts["by_id"].value = f"https://x.com/me/status/{ids.iloc[9]}, {ids.iloc[10]}"
    parts["delete_ids"].clicks += 1
    assert model.pending == [9, 10]
    parts["cancel"].clicks += 1
    assert model.pending == [] and load_tombstones(ds) == {4, 6}
    parts["by_id"].value = "12345 nope"
    parts["delete_ids"].clicks += 1
    assert model.pending == [] and "Not tweets of this dataset: 12345, nope" in parts["status"].object
    parts["undo"].clicks += 1
    finish(studio, model.last_apply_job)
    assert load_tombstones(ds) == set()


# --------------------------------------------------------------------------- publish

def test_publish_plan_confirm_publish_history(studio, tmp_path):
    from studio.views.publish import PLANNED, PUBLISHED, PublishModel

    cdn = tmp_path / "cdn"
    model = PublishModel(studio, env={})
    assert model.target.startswith("file://")  # the offline default
    model.target = f"file://{cdn}"
    assert model.publish(confirmed=True) is None and "plan first" in model.error.lower()
    finish(studio, model.request_plan())
    model.poll()
    assert model.phase == PLANNED, model.error
    assert model.plan.gate_errors == []
    frame = model.plan_frame()
    keys = list(frame["key"])
    assert "fake/scopes/scopes-001.json" in keys and set(frame["status"]) == {"new"}
    assert not any(k.endswith("input.parquet") and "scopes" not in k for k in keys)
    assert not cdn.exists() or not any(p.is_file() for p in cdn.rglob("*"))  # planning uploads nothing
    assert model.publish(confirmed=False) is None and "confirmation" in model.error
    job = finish(studio, model.publish(confirmed=True))
    model.poll()
    assert job.status == "done", job.error
    assert model.phase == PUBLISHED
    result = model.result_frame()
    assert set(result["key"]) >= set(keys) and "fake/manifest.json" in set(result["key"])
    assert all(url.startswith("file://") for url in result["url"])
    assert (cdn / "fake" / "scopes" / "scopes-001.json").is_file()
    history = model.history_frame()
    assert list(history["scope_id"]) == ["scopes-001"] and history.iloc[0]["uploaded"] == len(keys)
    assert job.params["objects_to_send"] == len(keys)
    # a second plan sees everything unchanged
    finish(studio, model.request_plan())
    model.poll()
    assert set(model.plan_frame()["status"]) == {"unchanged"}
    assert model.plan.totals["bytes_to_send"] == 0


def test_publish_plan_dropped_when_inputs_change(studio, tmp_path):
    from pipeline.core.tombstones import add_tombstones
    from pipeline.stages.scope import apply_tombstones
    from studio.views.publish import IDLE, PLANNED, PublishModel

    model = PublishModel(studio, env={})
    model.target = f"file://{tmp_path / 'cdn'}"
    finish(studio, model.request_plan())
    model.poll()
    assert model.phase == PLANNED
    studio.artifacts_version += 1  # an unrelated job ended: the plan stays
    assert model.phase == PLANNED and model.plan is not None
    ds = studio.current_dataset()
    add_tombstones(ds, [7])
    apply_tombstones(ds, studio.scope_id)
    studio.artifacts_version += 1
    assert model.phase == IDLE and model.plan is None and "plan again" in model.error
    finish(studio, model.request_plan())
    model.poll()
    model.target = f"file://{tmp_path / 'other'}"
    assert model.phase == IDLE and model.plan is None
    # a deletion that is not applied to the scope yet: the old plan must not go out
    finish(studio, model.request_plan())
    model.poll()
    assert model.phase == PLANNED
    add_tombstones(ds, [8])
    assert model.publish(confirmed=True) is None and "plan again" in model.error
    assert model.plan is None and not any(p.is_file() for p in (tmp_path / "other").rglob("*"))


def test_publish_gate_blocks(studio, tmp_path):
    from pipeline.core.tombstones import add_tombstones
    from studio.views.publish import PLANNED, PublishModel, gate_html

    add_tombstones(studio.current_dataset(), [2])  # not applied: the validator refuses the scope
    model = PublishModel(studio, env={})
    model.target = f"file://{tmp_path / 'cdn'}"
    finish(studio, model.request_plan())
    model.poll()
    assert model.phase == PLANNED and model.plan.blocked
    assert "tombstone" in " ".join(model.plan.gate_errors)
    assert "Deploy gate failed" in gate_html(model.plan)
    assert not model.can_publish()
    assert model.publish(confirmed=True) is None and "gate failed" in model.error
    assert not any(p.is_file() for p in (tmp_path / "cdn").rglob("*"))


def test_publish_failure_is_reported(studio, tmp_path):
    from studio.views.publish import FAILED, PublishModel

    model = PublishModel(studio, env={})
    model.target = "s3://"  # no bucket
    finish(studio, model.request_plan())
    model.poll()
    assert model.phase == FAILED and "bucket" in model.error


def test_targets_never_show_secrets(studio):
    from studio.views.publish import PublishModel, targets_html

    env = {"R2_BUCKET": "maps", "R2_PREFIX": "me", "R2_ACCOUNT_ID": "acc123",
           "R2_ACCESS_KEY_ID": "AKIDSECRETVALUE", "R2_SECRET_ACCESS_KEY": "sup3rs3cr3tvalue",
           "LANCEDB_URI": "db://mydb", "LANCEDB_API_KEY": "sk_lancedb_secret"}
    model = PublishModel(studio, env=env)
    assert model.target == "s3://maps/me"  # a configured bucket is the default
    assert model.lancedb_uri == "db://mydb"
    text = targets_html(model.targets())
    assert "s3://maps/me" in text and "R2_ACCESS_KEY_ID" in text and "db://mydb" in text
    for secret in ("AKIDSECRETVALUE", "sup3rs3cr3tvalue", "sk_lancedb_secret"):
        assert secret not in text


def test_publish_view_builds(studio, tmp_path):
    from studio.views.publish import PublishView

    view = PublishView(studio)
    assert "Local folder" in view.targets.object
    assert "scopes-001" in view.scope_info.object
    view.custom.value = f"file://{tmp_path / 'cdn'}"
    assert view.model.target == f"file://{tmp_path / 'cdn'}"
    view._on_plan()
    finish(studio, view.model.plan_job)
    assert view.plan_table.visible and view.confirm.visible and view.publish_button.disabled
    assert "Deploy gate passed" in view.gate.object and "new" in view.summary.object
    view.confirm.value = True
    assert not view.publish_button.disabled and view.publish_button.name.startswith("Publish ")
    view._on_publish()
    finish(studio, view.model.publish_job)
    assert "Published" in view.result.object and view.result_table.visible
    assert len(view.history.value) == 1


# --------------------------------------------------------------------------- jobs

def test_jobs_model_live_and_past(studio):
    from studio.jobs import JobRunner
    from studio.views.jobs import JobsModel, detail_html

    runner = studio.runner
    ok = runner.submit("fake", "scope", lambda p: "scopes-009", title="a good job")
    ok.params = {"labels_id": "toponymy-001"}

    def boom(progress):
        progress.update(1, 4, "halfway <b>")
        raise ValueError("broken <input>")

    bad = runner.submit("fake", "labels", boom, title="a bad job")
    runner.wait(bad, 30)
    model = JobsModel(runner)
    frame = model.frame()
    assert list(frame["id"][:2]) == [bad.id, ok.id]
    assert frame.set_index("id").at[bad.id, "status"] == "failed"
    assert "broken <input>" in frame.set_index("id").at[bad.id, "error"]
    detail = detail_html(model.record(bad.id))
    assert "broken &lt;input&gt;" in detail and "ValueError" in detail and "halfway &lt;b&gt;" in detail
    assert "toponymy-001" in detail_html(model.record(ok.id))
    assert len(model.frame(dataset="other")) == 0

    # a new process (runner) still lists what the previous one did, from the job records
    later = JobsModel(JobRunner(runner.log_dir))
    past = later.frame()
    assert {ok.id, bad.id} <= set(past["id"])
    assert later.record(bad.id)["error"] == "broken <input>"


def test_jobs_view_select_and_cancel(studio):
    import threading

    from studio.views.jobs import JobsView

    gate = threading.Event()

    def slow(progress):
        while not gate.is_set():
            progress.update(0, 10, "waiting")
            gate.wait(0.05)
        return "ok"

    job = studio.runner.submit("fake", "embed", slow, title="slow one")
    view = JobsView(studio)
    index = list(view.table.value["id"]).index(job.id)
    view.table.selection = [index]
    assert job.id in view.detail.object
    for _ in range(100):
        if job.status == "running":
            break
        gate.wait(0.02)
    view.refresh()
    assert not view.cancel_button.disabled
    view._on_cancel(None)
    studio.runner.wait(job, 10)
    gate.set()
    view.refresh()
    assert job.status == "cancelled"
    assert 'data-status="cancelled"' in view.detail.object


# --------------------------------------------------------------------------- the real sample

def test_curator_flow_on_the_sample(scoped_dataset, tmp_path):
    """Edit → save → rebuild → delete → plan → publish on a copy of the scoped sample archive."""
    import json
    import shutil

    from pipeline.core.workspace import Dataset
    from pipeline.stages.labels import load_labels
    from studio.jobs import JobRunner
    from studio.state import StudioState
    from studio.views.curate import CurateModel
    from studio.views.labels import LabelsModel
    from studio.views.publish import PUBLISHED, PublishModel, result_html

    # a private copy ("conftest.copy_dataset" is not importable by name once tests/browser is collected)
    ds = Dataset(shutil.copytree(scoped_dataset.path, tmp_path / "data" / scoped_dataset.name))
    state = StudioState(ds.path.parent, runner=JobRunner())
    labels = LabelsModel(state)
    assert len(labels.working) == len(load_labels(ds, labels.base_id))
    cluster = labels.working["cluster"].iloc[0]
    texts = ds.read_input(["text"])["text"]
    sample = labels.sample_tweets(cluster)
    assert len(sample) and set(sample["ls_index"]) <= set(labels.members(cluster).tolist())
    assert list(sample["text"]) == [texts.iloc[i] for i in sample["ls_index"]]
    labels.edit(cluster, "label", "Curated on the sample")
    new_labels = labels.save()
    job = finish(state, labels.rebuild_scope())
    assert job.status == "done", job.error
    scope_id = state.scope_id
    assert ds.sidecar(scope_id)["labels_id"] == new_labels

    curate = CurateModel(state)
    victim = int(texts.str.len().idxmax())
    state.selection = [victim]
    curate.request_delete()
    curate.confirm_delete()
    finish(state, curate.last_apply_job)
    assert curate.last_apply_job.status == "done", curate.last_apply_job.error

    publish = PublishModel(state, env={})
    publish.target = f"file://{tmp_path / 'cdn'}"
    publish.param.update(lancedb=True, lancedb_uri=str(tmp_path / "lance"))
    finish(state, publish.request_plan())
    publish.poll()
    assert publish.plan is not None and publish.plan.gate_errors == [], publish.error
    assert publish.plan.lancedb_uri == str(tmp_path / "lance")
    finish(state, publish.publish(confirmed=True))
    publish.poll()
    assert publish.phase == PUBLISHED, publish.error
    assert publish.result["lancedb"] and (tmp_path / "lance").is_dir()
    assert "LanceDB" in result_html(publish.result)
    published = tmp_path / "cdn" / ds.name / "scopes" / f"{scope_id}.json"
    lookup = json.loads(published.read_text())["cluster_labels_lookup"]
    assert "Curated on the sample" in {row["label"] for row in lookup}


# --------------------------------------------------------------------------- hooks in the map / jobs

def test_map_greys_deleted_tweets_and_offers_delete(studio):
    from pipeline.core.tombstones import load_tombstones
    from studio.mapdata import NOISE_CODE
    from studio.views.map import MapView

    ds = studio.current_dataset()
    view = MapView(studio)
    model = view.model
    before = model.points_frame()["colour"].to_numpy()
    assert (before[[3, 5]] != NOISE_CODE).all()
    studio.selection = [3, 5]
    parts = view.curate.parts  # the delete component sits under the map's selection table
    parts["delete"].clicks += 1
    version = model.colour_version
    parts["confirm"].clicks += 1
    finish(studio, view.curate.curate_model.last_apply_job)
    assert load_tombstones(ds) == {3, 5}
    assert model.colour_version > version  # the points are redrawn
    after = model.points_frame()["colour"].to_numpy()
    assert (after[[3, 5]] == NOISE_CODE).all()
    keep = np.setdiff1d(np.arange(len(after)), [3, 5])
    assert (after[keep] == before[keep]).all()


def test_job_records_keep_their_parameters(studio):
    from pipeline.stages.registry import get_stage as stage
    from studio.jobs import JobRunner
    from studio.views.jobs import JobsModel
    from studio.views.stages import StageCardModel

    card = StageCardModel(stage("scope"), studio)
    job = finish(studio, card.run())
    assert job.status == "done", job.error
    assert job.params["inputs"]["labels_id"] == "toponymy-001"
    assert "label" in job.params["config"]
    later = JobsModel(JobRunner(studio.runner.log_dir))  # a new process reads the record
    assert later.record(job.id)["params"] == job.params
