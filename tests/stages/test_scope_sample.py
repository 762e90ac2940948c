"""End to end on the bundled sample archive: the real stages' artifacts -> scope, links, the gate."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from kits.defects import DEFECTS
from kits.links_check import check_against_reference
from pipeline.core.tombstones import add_tombstones, remove_tombstones
from pipeline.serving.contracts import SERVING_COLUMNS, arrow_schema_problems
from pipeline.serving.validate import validate_scope
from pipeline.stages.scope import apply_tombstones, run_scope
from support import copy_dataset

pytestmark = pytest.mark.slow


def test_scoped_sample_passes_the_gate(scoped_dataset):
    ds = scoped_dataset
    scope_id = ds.latest("scopes")
    assert validate_scope(ds, scope_id) == []
    scope = ds.sidecar(scope_id)
    topo_id = ds.latest("toponymy")
    assert scope["cluster_labels_id"] == topo_id and scope["hierarchical_labels"] is True
    assert scope["cluster_id"] == ds.sidecar(topo_id)["cluster_id"]
    assert scope["umap_id"] == ds.latest("umap", purpose="display")

    serving = pd.read_parquet(ds.artifact_path(scope_id, "-input.parquet"))
    source = ds.read_input(["id", "text"])
    assert list(serving.columns) == SERVING_COLUMNS
    assert arrow_schema_problems(pq.read_schema(ds.artifact_path(scope_id, "-input.parquet"))) == []
    assert serving["id"].tolist() == source["id"].astype(str).tolist()
    assert serving["text"].tolist() == source["text"].tolist()
    assert serving["ls_index"].tolist() == list(range(len(source)))
    assert serving["x"].between(-1, 1).all() and serving["y"].between(-1, 1).all()

    # cluster / label are layer 0 of the labels and agree with the cluster artifact
    # (strings, as the TS API reads them: cluster "0_<k>", raw_cluster the HDBSCAN label "-1"/"<k>")
    clusters = pd.read_parquet(ds.artifact_path(scope["cluster_id"], ".parquet"))
    assert serving["cluster"].tolist() == [f"0_{c}" for c in clusters["cluster"]]
    assert serving["raw_cluster"].tolist() == [str(c) for c in clusters["raw_cluster"]]
    labels = pd.read_parquet(ds.artifact_path(topo_id, ".parquet"))
    layer0 = dict(zip(labels.loc[labels["layer"] == 0, "cluster"], labels.loc[labels["layer"] == 0, "label"]))
    assert serving["label"].tolist() == [layer0[c] for c in serving["cluster"]]
    scope_df = pd.read_parquet(ds.artifact_path(scope_id, ".parquet"))
    for col in ("cluster", "raw_cluster", "label"):
        assert scope_df[col].tolist() == serving[col].tolist(), col
    lookup_ids = {e["cluster"] for e in scope["cluster_labels_lookup"]}
    assert lookup_ids == set(labels["cluster"]) | {"unknown"}
    assert all("indices" not in e for e in scope["cluster_labels_lookup"])
    layer0_indices = set()
    for indices in labels.loc[labels["layer"] == 0, "indices"]:
        layer0_indices.update(int(i) for i in indices)
    unknown = next(e for e in scope["cluster_labels_lookup"] if e["cluster"] == "unknown")
    assert scope["unknown_count"] == unknown["count"] == len(serving) - len(layer0_indices)


def test_sample_links_match_the_input(scoped_dataset, tmp_path):
    ds = copy_dataset(scoped_dataset, tmp_path)
    meta, edges, nodes, threads = check_against_reference(ds)
    assert meta["internal_edges"] == int(edges["internal_target"].sum())


@pytest.mark.parametrize("seed", DEFECTS, ids=[d.__name__ for d in DEFECTS])
def test_gate_catches_seeded_defects_on_the_sample(scoped_dataset, tmp_path, seed):
    ds = copy_dataset(scoped_dataset, tmp_path)
    scope_id = ds.latest("scopes")
    expected = seed(ds, scope_id)
    problems = validate_scope(ds, scope_id)
    assert any(expected in p for p in problems), problems


def test_sample_tombstone_round_trip(scoped_dataset, tmp_path):
    ds = copy_dataset(scoped_dataset, tmp_path)
    scope_id = ds.latest("scopes")
    before = pd.read_parquet(ds.artifact_path(scope_id, "-input.parquet"))
    uid = ds.sidecar(scope_id)["scope_uid"]
    rows = [0, len(before) // 2, len(before) - 1]
    add_tombstones(ds, rows)
    apply_tombstones(ds, scope_id)
    after = pd.read_parquet(ds.artifact_path(scope_id, "-input.parquet"))
    assert after.loc[rows, "deleted"].all() and (after.loc[rows, "text"] == "").all()
    assert int(after["deleted"].sum()) == 3
    assert validate_scope(ds, scope_id) == []
    assert ds.sidecar(scope_id)["scope_uid"] == uid
    remove_tombstones(ds, rows)
    apply_tombstones(ds, scope_id)
    pd.testing.assert_frame_equal(pd.read_parquet(ds.artifact_path(scope_id, "-input.parquet")), before)


def test_a_second_scope_on_the_sample_follows_lineage(scoped_dataset, tmp_path):
    ds = copy_dataset(scoped_dataset, tmp_path)
    first = ds.sidecar(ds.latest("scopes"))
    second = ds.sidecar(run_scope(ds, cluster_id=first["cluster_id"]))
    for key in ("embedding_id", "umap_id", "cluster_id", "cluster_labels_id"):
        assert second[key] == first[key]
    assert second["scope_uid"] != first["scope_uid"]
