"""The workspace: ids, sidecars, atomic writes, staleness."""

from __future__ import annotations

import json
import os
import threading

import pandas as pd
import pytest

from pipeline.core.workspace import (
    Dataset,
    Workspace,
    WorkspaceError,
    atomic_path,
    atomic_write_json,
    validate_dataset_name,
)


def make_dataset(ws: Workspace, name="ds") -> Dataset:
    with ws.creating_dataset(name) as ds:
        atomic_write_json(ds.meta_path, {"id": name, "length": 0, "input_fingerprint": "f1"})
    return ws.dataset(name)


def test_creating_dataset_appears_only_on_success(tmp_workspace):
    with pytest.raises(RuntimeError):
        with tmp_workspace.creating_dataset("broken") as ds:
            atomic_write_json(ds.meta_path, {"id": "broken"})
            raise RuntimeError("ingest failed half way")
    assert tmp_workspace.dataset_names() == []
    assert list(tmp_workspace.data_dir.iterdir()) == []
    make_dataset(tmp_workspace)
    assert tmp_workspace.dataset_names() == ["ds"]


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x' OR '1'='1", "a" * 65])
def test_bad_dataset_names_are_refused(name):
    with pytest.raises(WorkspaceError):
        validate_dataset_name(name)


def test_ids_are_sequential_and_never_reused(tmp_workspace):
    ds = make_dataset(tmp_workspace)
    with ds.new_artifact("embedding") as art:
        art.write_sidecar({"model_id": "m"}, params={}, inputs={"input": "f1"})
    assert art.id == "embedding-001"
    with pytest.raises(ValueError):
        with ds.new_artifact("embedding") as art2:
            raise ValueError("crash")
    assert art2.id == "embedding-002"
    assert ds.list_ids("embedding") == ["embedding-001"]
    with ds.new_artifact("embedding") as art3:
        art3.write_sidecar({}, inputs={})
    assert art3.id == "embedding-003"  # 002 was burnt by the failed run


def test_require_names_the_command_that_makes_a_missing_artifact(tmp_workspace):
    ds = make_dataset(tmp_workspace)
    with pytest.raises(WorkspaceError, match="no clusters yet; run `tweetscope cluster` first"):
        ds.require("cluster")
    with ds.new_artifact("umap") as art:
        art.write_sidecar({"purpose": "display"}, inputs={})
    assert ds.require("umap", purpose="display") == art.id
    with pytest.raises(WorkspaceError, match="no cluster UMAP yet; run `tweetscope umap` first"):
        ds.require("umap", purpose="cluster")
    with pytest.raises(WorkspaceError, match=r"no umap-007 \(existing umap artifacts: umap-001\)"):
        ds.require("umap", "umap-007")


def test_concurrent_reservations_get_distinct_ids(tmp_workspace):
    ds = make_dataset(tmp_workspace)
    got = []
    threads = [threading.Thread(target=lambda: got.append(ds.reserve_id("umap"))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 16


def test_failed_artifact_leaves_no_files(tmp_workspace):
    ds = make_dataset(tmp_workspace)
    with pytest.raises(KeyboardInterrupt):
        with ds.new_artifact("umap") as art:
            art.write_parquet(pd.DataFrame({"x": [0.1]}), ".parquet")
            raise KeyboardInterrupt
    assert list(ds.artifact_dir("umap").iterdir()) == []


def test_artifact_files_appear_with_sidecar_last(tmp_workspace):
    ds = make_dataset(tmp_workspace)
    with ds.new_artifact("umap") as art:
        art.write_parquet(pd.DataFrame({"x": [0.5], "y": [0.25]}), ".parquet")
        art.write_sidecar({"purpose": "display"}, params={"n_neighbors": 15},
                          inputs={"embedding_id": "embedding-001"}, rows=1, timings={"fit": 0.1})
    side = ds.sidecar("umap-001")
    assert side["purpose"] == "display" and side["rows"] == 1 and side["params"] == {"n_neighbors": 15}
    assert "numpy" in side["versions"] and side["created_at"].endswith("Z")
    assert pd.read_parquet(ds.artifact_path("umap-001", ".parquet"))["y"].tolist() == [0.25]


def test_sidecar_missing_is_an_incomplete_artifact(tmp_workspace):
    ds = make_dataset(tmp_workspace)
    with pytest.raises(WorkspaceError, match="without writing its sidecar"):
        with ds.new_artifact("cluster") as art:
            art.write_parquet(pd.DataFrame({"cluster": [1]}), ".parquet")
    assert ds.list_ids("cluster") == []
    assert list(ds.artifact_dir("cluster").iterdir()) == []


def test_interrupted_atomic_write_keeps_old_file(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise OSError("disk full")
    assert json.loads(target.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["f.json"]


def test_staleness_follows_newer_inputs_and_reingest(tmp_workspace):
    ds = make_dataset(tmp_workspace)

    def artifact(kind, inputs, **fields):
        with ds.new_artifact(kind) as art:
            art.write_sidecar(fields, inputs=inputs)
        return art.id

    emb = artifact("embedding", {"input": "f1"})
    disp = artifact("umap", {"embedding_id": emb}, purpose="display")
    artifact("umap", {"embedding_id": emb}, purpose="cluster")
    clu = artifact("cluster", {"umap_id": disp})
    assert ds.status("cluster")["status"] == "done"
    # a second cluster-purpose umap does not make the display-based chain stale
    assert ds.status("umap", purpose="display")["status"] == "done"
    artifact("embedding", {"input": "f1"})
    assert ds.status("cluster")["status"] == "stale"
    assert "embedding-002" in ds.status("cluster")["reason"]
    assert ds.status("toponymy")["status"] == "missing"
    atomic_write_json(ds.meta_path, {"id": "ds", "input_fingerprint": "f2"})
    assert "ingested again" in ds.stale_reason("embedding-002")
    assert ds.lineage(clu)["inputs"]["umap_id"]["inputs"]["embedding_id"]["id"] == emb
