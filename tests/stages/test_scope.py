"""Scope assembly on a small synthetic chain: files, columns, lineage rules, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kits.cli import cli
from kits.scope_fakes import make_fake_dataset
from pipeline.core.workspace import write_parquet
from pipeline.serving.contracts import SERVING_COLUMNS, arrow_schema_problems
from pipeline.stages import scope as scope_mod
from pipeline.stages.lineage import resolve_scope_inputs
from pipeline.stages.scope import SCOPE_PARQUET_COLUMNS, ScopeConfig, run_scope, tile_index


@pytest.fixture
def fake(tmp_path):
    return make_fake_dataset(tmp_path)


def _files(ds):
    return sorted(p.name for p in (ds.path / "scopes").iterdir()) if (ds.path / "scopes").exists() else []


def test_scope_writes_three_files_with_contract_columns(fake):
    scope_id = run_scope(fake, ScopeConfig(label="My map", description="all of it"))
    assert scope_id == "scopes-001"
    assert _files(fake) == ["scopes-001-input.parquet", "scopes-001.json", "scopes-001.parquet"]

    serving_path = fake.artifact_path(scope_id, "-input.parquet")
    assert pq.read_schema(serving_path).names == SERVING_COLUMNS
    assert arrow_schema_problems(pq.read_schema(serving_path)) == []
    assert pq.ParquetFile(serving_path).metadata.row_group(0).column(0).compression == "SNAPPY"
    scope_df = pd.read_parquet(fake.artifact_path(scope_id, ".parquet"))
    assert list(scope_df.columns) == SCOPE_PARQUET_COLUMNS
    scope_schema = pq.read_schema(fake.artifact_path(scope_id, ".parquet"))
    assert scope_schema.field("cluster").type == pa.string() and scope_schema.field("raw_cluster").type == pa.string()

    serving = pd.read_parquet(serving_path)
    source = fake.read_input()
    assert serving["id"].tolist() == source["id"].tolist()          # strings, same order
    assert serving["ls_index"].tolist() == list(range(len(source)))
    assert serving["text"].tolist() == source["text"].tolist()
    umap = pd.read_parquet(fake.artifact_path("umap-001", ".parquet"))
    assert np.array_equal(serving["x"].to_numpy(), umap["x"].to_numpy())
    # cluster is the toponymy layer-0 id "0_<k>" of HDBSCAN cluster k; raw_cluster the HDBSCAN label as text
    clusters = pd.read_parquet(fake.artifact_path("cluster-001", ".parquet"))
    assert serving["cluster"].tolist() == [f"0_{c}" for c in clusters["cluster"]]
    assert serving["raw_cluster"].tolist() == [str(c) for c in clusters["raw_cluster"]]
    assert "-1" in set(serving["raw_cluster"])  # the fake has noise points
    labels = pd.read_parquet(fake.artifact_path("toponymy-001", ".parquet"))
    layer0 = dict(zip(labels["cluster"], labels["label"]))
    assert serving["label"].tolist() == [layer0[c] for c in serving["cluster"]]
    assert not serving["deleted"].any()
    # the 9-column scope parquet holds the same values
    for col in ("cluster", "raw_cluster", "label"):
        assert scope_df[col].tolist() == serving[col].tolist(), col


def test_tile_indices_follow_the_formula(fake):
    scope_id = run_scope(fake)
    serving = pd.read_parquet(fake.artifact_path(scope_id, "-input.parquet"))
    for n in (64, 128):
        for x, y, tile in zip(serving["x"], serving["y"], serving[f"tile_index_{n}"]):
            col = min(int(np.floor((float(x) + 1) / 2 * n)), n - 1)
            row = min(int(np.floor((float(y) + 1) / 2 * n)), n - 1)
            assert tile == col + row * n
    assert tile_index(np.array([1.0]), np.array([1.0]), 64)[0] == 64 * 64 - 1
    assert tile_index(np.array([-1.0]), np.array([-1.0]), 128)[0] == 0


def test_scope_json_fields(fake):
    scope_id = run_scope(fake, ScopeConfig(label="My map", description="all of it"))
    scope = json.loads(fake.sidecar_path(scope_id).read_text())
    assert scope["id"] == scope_id and scope["label"] == "My map" and scope["description"] == "all of it"
    assert (scope["embedding_id"], scope["umap_id"], scope["cluster_id"]) == ("embedding-001", "umap-001", "cluster-001")
    assert scope["cluster_labels_id"] == "toponymy-001" and scope["hierarchical_labels"] is True
    assert scope["lancedb_table_id"] == f"{fake.name}__{scope['scope_uid']}"
    assert scope["rows"] == 60 and scope["serving_contract_version"] == "scope-input-v1"
    assert scope["inputs"]["labels_id"] == "toponymy-001" and scope["inputs"]["input"] == "fp-1"
    lookup = scope["cluster_labels_lookup"]
    assert {e["cluster"] for e in lookup} == {"0_0", "0_1", "0_2", "0_3", "1_0", "1_1", "unknown"}
    assert all("indices" not in e for e in lookup)
    # the "unknown" entry the front end expects; every row here is in a layer-0 cluster
    unknown = next(e for e in lookup if e["cluster"] == "unknown")
    assert unknown == scope_mod.unknown_lookup_entry(0)
    assert (unknown["layer"], unknown["label"], unknown["count"]) == (0, "Unclustered", 0)
    assert scope["unknown_count"] == 0
    first = next(e for e in lookup if e["cluster"] == "0_0")
    assert set(first) == set(scope_mod.LOOKUP_FIELDS)
    assert first["topic_specificity"] == pytest.approx(0.5) and first["parent_cluster"] == "1_0"
    assert isinstance(first["hull"][0], list)
    # sidecar copies, without bulky arrays or exemplar texts
    assert "min_values" not in scope["embedding"] and "exemplars" not in scope["cluster_labels"]
    assert scope["umap"]["purpose"] == "display" and scope["cluster"]["clustering_umap_id"] == "umap-002"
    # a second scope gets a new uid
    other = json.loads(fake.sidecar_path(run_scope(fake)).read_text())
    assert other["scope_uid"] != scope["scope_uid"]


def test_default_labels_when_no_toponymy(tmp_path):
    ds = make_fake_dataset(tmp_path, with_toponymy=False)
    scope = ds.sidecar(run_scope(ds))
    assert scope["cluster_labels_id"] == "cluster-001-labels-default"
    assert scope["hierarchical_labels"] is False
    # flat labels: the lookup id and the serving cluster are the cluster index as a string
    assert [e["cluster"] for e in scope["cluster_labels_lookup"]] == ["0", "1", "2", "3"]
    assert sum(e["count"] for e in scope["cluster_labels_lookup"]) == 60
    assert "unknown_count" not in scope
    serving = pd.read_parquet(ds.artifact_path(scope["id"], "-input.parquet"))
    clusters = pd.read_parquet(ds.artifact_path("cluster-001", ".parquet"))
    assert serving["cluster"].tolist() == [str(c) for c in clusters["cluster"]]
    names = {e["cluster"]: e["label"] for e in scope["cluster_labels_lookup"]}
    assert serving["label"].tolist() == [names[c] for c in serving["cluster"]]


def test_missing_ids_follow_lineage_and_mismatches_are_refused(fake):
    # a newer display UMAP from nowhere: the latest cluster still points at umap-001
    with fake.new_artifact("umap") as art:
        write_parquet(pd.DataFrame({"x": np.zeros(60, np.float32), "y": np.zeros(60, np.float32)}), art.path(".parquet"))
        art.write_sidecar({"purpose": "display", "n_components": 2, "embedding_id": "embedding-009"})
    lineage = resolve_scope_inputs(fake)
    assert lineage["umap_id"] == "umap-001" and lineage["labels_id"] == "toponymy-001"
    with pytest.raises(ValueError, match="do not form one lineage") as err:
        run_scope(fake, cluster_id="cluster-001", display_umap_id="umap-003")
    assert "cluster-001 was made on display UMAP umap-001, not umap-003" in str(err.value)
    with pytest.raises(ValueError, match="not the display"):
        run_scope(fake, cluster_id="cluster-001", display_umap_id="umap-002")
    assert _files(fake) == []


def test_labels_of_another_cluster_are_refused(fake):
    with fake.new_artifact("cluster") as art:
        write_parquet(pd.DataFrame({"cluster": np.zeros(60, int), "raw_cluster": np.zeros(60, int)}), art.path(".parquet"))
        art.write_sidecar({"umap_id": "umap-001", "clustering_umap_id": "umap-002", "embedding_id": "embedding-001"})
    with pytest.raises(ValueError, match="toponymy-001 belongs to cluster_id=cluster-001, not cluster-002"):
        run_scope(fake, cluster_id="cluster-002", labels_id="toponymy-001")
    assert _files(fake) == []


def test_invalid_serving_data_writes_nothing(fake):
    path = fake.artifact_path("umap-001", ".parquet")
    xy = pd.read_parquet(path)
    xy.loc[5, "x"] = 3.0  # outside [-1, 1]
    write_parquet(xy, path)
    with pytest.raises(ValueError, match="'x' has values above 1"):
        run_scope(fake)
    assert _files(fake) == []
    assert fake.list_ids("scopes") == []


def test_row_groups_are_bounded(fake, monkeypatch):
    monkeypatch.setattr(scope_mod, "MAX_ROW_GROUP_BYTES", 6000)
    scope_id = run_scope(fake)
    meta = pq.ParquetFile(fake.artifact_path(scope_id, "-input.parquet")).metadata
    assert meta.num_row_groups > 1
    for i in range(meta.num_row_groups):
        assert meta.row_group(i).total_byte_size <= 6000


def test_cli_scope(fake, capsys):
    main = cli
    code = main(["scope", "--data-dir", str(fake.path.parent), "--dataset", fake.name, "--label", "CLI"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("scopes-001: 60 rows") and fake.sidecar("scopes-001")["label"] == "CLI"
    code = main(["scope", "--data-dir", str(fake.path.parent), "--dataset", fake.name,
                 "--display-umap-id", "umap-002"])
    assert code == 1
