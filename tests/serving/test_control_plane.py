"""The ``_meta`` control-plane tables: exact spec schemas, idempotent creation, upserts, safe filters."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from kits.lance_kit import make_scope
from pipeline.serving import (
    control_plane as cp,  # Spec "Hosted-mode: LanceDB control plane tables": column -> Arrow type, in spec order.
)

SPEC = {
    "users": "id:string external_id:string provider:string username:string email:string created_at:ts",
    "datasets": "id:string slug:string owner_id:string length:int32 text_column:string columns:string "
                "column_metadata:string ls_version:string created_at:ts updated_at:ts",
    "scopes": "id:string dataset_id:string slug:string label:string description:string embedding_id:string "
              "umap_id:string cluster_id:string cluster_labels_id:string hierarchical_labels:bool "
              "cluster_labels_lookup:string embedding_meta:string umap_meta:string cluster_meta:string "
              "cluster_labels_meta:string lancedb_table_id:string rows:int32 parquet_size:int64 "
              "ls_version:string created_at:ts",
    "scope_artifacts": "id:string scope_id:string artifact_type:string cdn_path:string byte_size:int64 "
                       "checksum:string created_at:ts",
    "tags": "id:string user_id:string dataset_id:string scope_id:string ls_index:int32 tag:string created_at:ts",
    "jobs": "id:string dataset_id:string user_id:string job_type:string status:string config:string "
            "output_artifact_id:string error:string started_at:ts completed_at:ts",
}
TYPES = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "bool": pa.bool_(),
         "ts": pa.timestamp("us")}


@pytest.fixture
def handmade(tmp_path, monkeypatch):
    monkeypatch.delenv("LANCEDB_URI", raising=False)
    dataset, _, _ = make_scope(tmp_path, n=40, deleted_every=0)
    return dataset


@pytest.fixture
def plane(handmade):
    return cp.open_control_plane(handmade)


def test_schemas_are_the_spec_columns_and_types():
    assert set(cp.SCHEMAS) == set(SPEC)
    for name, spec in SPEC.items():
        want = [(c.split(":")[0], TYPES[c.split(":")[1]]) for c in spec.split()]
        assert [(f.name, f.type) for f in cp.SCHEMAS[name]] == want, name
        assert {c for c, _ in cp.INDICES[name]} <= set(cp.SCHEMAS[name].names)


def test_meta_tables_live_in_the_meta_namespace(handmade, plane):
    import lancedb

    # "_meta/scopes" is not a valid LanceDB table name, hence the namespace
    with pytest.raises(ValueError, match="Invalid table name"):
        lancedb.connect(str(handmade.lancedb_dir)).create_table("_meta/scopes", schema=cp.SCHEMAS["scopes"])
    assert cp.meta_table_location("scopes") == ("scopes", ["_meta"])
    created = plane.ensure()
    conn = lancedb.connect(str(handmade.lancedb_dir))
    assert sorted(conn.list_tables(namespace_path=["_meta"]).tables) == sorted(created) == sorted(SPEC)
    assert "scopes" not in conn.list_tables().tables  # root holds only scope tables


def test_creation_is_idempotent(handmade):
    first = cp.open_control_plane(handmade)
    first.ensure()
    cp.register_dataset(first, handmade)
    for _ in range(2):  # fresh connections, as separate processes would make
        again = cp.open_control_plane(handmade)
        assert again.ensure() == list(SPEC)
        assert [(f.name, f.type) for f in again.table("datasets").schema] == \
               [(f.name, f.type) for f in cp.SCHEMAS["datasets"]]
        assert again.table("datasets").count_rows() == 1


def test_changed_schema_is_refused(handmade):
    import lancedb

    conn = lancedb.connect(str(handmade.lancedb_dir))
    conn.create_namespace(["_meta"], mode="exist_ok")
    conn.create_table("jobs", schema=pa.schema([("id", pa.string())]), namespace_path=["_meta"])
    with pytest.raises(cp.ControlPlaneError, match="_meta/jobs"):
        cp.open_control_plane(handmade).ensure()


def test_register_same_scope_twice_is_one_row(handmade, plane):
    scope = handmade.sidecar("scopes-001")
    first = cp.register_scope(plane, handmade, "scopes-001")
    row1 = cp.find_scope(plane, scope_uid=first)
    handmade.update_sidecar("scopes-001", label="Renamed")
    second = cp.register_scope(plane, handmade, "scopes-001")
    assert first == second == scope["scope_uid"]
    assert plane.table("scopes").count_rows() == 1
    row2 = cp.find_scope(plane, scope_uid=first)
    assert row2["label"] == "Renamed" and row2["created_at"] == row1["created_at"]
    assert row2["lancedb_table_id"] == scope["lancedb_table_id"] and row2["slug"] == "scopes-001"
    assert row2["rows"] == 40 and row2["parquet_size"] > 0
    # the dataset was registered on the way, once, keyed by slug
    assert plane.table("datasets").count_rows() == 1
    ds_row = cp.find_dataset(plane, handmade.name)
    assert row2["dataset_id"] == ds_row["id"] and ds_row["length"] == 40
    assert cp.find_scope(plane, dataset_id=ds_row["id"], slug="scopes-001")["id"] == first


def test_register_dataset_upsert_keeps_id_and_created_at(handmade, plane):
    first = cp.register_dataset(plane, handmade, owner_id="user-1")
    created = cp.find_dataset(plane, handmade.name)["created_at"]
    second = cp.register_dataset(plane, handmade)
    row = cp.find_dataset(plane, handmade.name)
    assert first == second and row["created_at"] == created and row["owner_id"] == "user-1"
    assert row["updated_at"] >= created
    assert plane.table("datasets").count_rows() == 1
    kinds = {tuple(i.columns): i.index_type for i in plane.table("datasets").list_indices()}
    assert kinds == {("id",): "BTree", ("slug",): "BTree", ("owner_id",): "BTree"}


def test_quoted_names_match_nothing_else(handmade, plane):
    """A hostile slug is a value, never SQL: it finds only itself."""
    cp.register_dataset(plane, handmade)
    hostile = "x' OR '1'='1"
    assert cp.find_dataset(plane, hostile) is None
    assert cp.find_scope(plane, scope_uid=hostile) is None
    assert cp.list_scope_artifacts(plane, hostile) == []
    # the same value stored as data is found exactly (quotes survive the round trip)
    now = dt.datetime(2026, 1, 1)
    plane.upsert("datasets", [{"id": cp.new_ulid(), "slug": hostile, "length": 1, "created_at": now,
                               "updated_at": now}])
    assert cp.find_dataset(plane, hostile)["slug"] == hostile
    assert cp.find_dataset(plane, handmade.name)["slug"] == handmade.name
    assert len(cp.list_datasets(plane, owner_id="' OR 1=1 --")) == 0


def test_sql_literal():
    assert cp.sql_literal("it's") == "'it''s'"
    assert cp.sql_literal("a\\b") == "'a\\b'"
    assert cp.sql_literal(True) == "true" and cp.sql_literal(3) == "3" and cp.sql_literal(0.5) == "0.5"
    for bad in ("a\nb", "nul\x00", "tab\t", "\x1b[2J", "line\u2028sep"):
        with pytest.raises(cp.ControlPlaneError, match="control character"):
            cp.sql_literal(bad)
    for bad in (None, float("nan"), object()):
        with pytest.raises(cp.ControlPlaneError):
            cp.sql_literal(bad)
    assert cp.where_equal(slug="a'b", ls_index=3) == "slug = 'a''b' AND ls_index = 3"
    with pytest.raises(cp.ControlPlaneError):
        cp.where_equal(**{"slug = 'x' OR 1": "y"})


def test_ulids_sort_by_time_and_are_unique():
    ids = [cp.new_ulid(1_700_000_000 + i) for i in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(len(i) == 26 for i in ids)
    assert len({cp.new_ulid(1_700_000_000) for _ in range(100)}) == 100


def test_artifacts_jobs_users_tags(handmade, plane):
    scope_uid = cp.register_scope(plane, handmade, "scopes-001")
    rows = cp.scope_artifact_rows(handmade, "scopes-001", prefix="public/")
    assert {r["artifact_type"] for r in rows} == {"scope_input_parquet"}  # the only file made by hand
    assert rows[0]["cdn_path"] == "public/scopes/scopes-001-input.parquet"
    assert rows[0]["checksum"].startswith("sha256:")
    ids = cp.register_artifacts(plane, scope_uid, rows)
    again = cp.register_artifacts(plane, scope_uid, [{**rows[0], "byte_size": 1}])
    assert ids == again
    stored = cp.list_scope_artifacts(plane, scope_uid)
    assert len(stored) == 1 and stored[0]["byte_size"] == 1
    with pytest.raises(cp.ControlPlaneError, match="artifact_type"):
        cp.register_artifacts(plane, scope_uid, [{"artifact_type": "embeddings", "cdn_path": "x"}])

    job = cp.record_job(plane, job_type="lance_export", status="running", config={"uri": "local"})
    assert cp.get_job(plane, job)["started_at"] is not None
    cp.record_job(plane, job_id=job, status="completed", output_artifact_id="scopes-001")
    done = cp.get_job(plane, job)
    assert done["status"] == "completed" and done["job_type"] == "lance_export"
    assert cp.job_config(done) == {"uri": "local"} and done["completed_at"] >= done["started_at"]
    assert plane.table("jobs").count_rows() == 1
    with pytest.raises(cp.ControlPlaneError, match="status"):
        cp.record_job(plane, job_type="embed", status="exploded")

    user = cp.register_user(plane, external_id="github|42", provider="github", username="curator")
    assert cp.register_user(plane, external_id="github|42", provider="github", username="renamed") == user
    tag = cp.upsert_tag(plane, user_id=user, dataset_id="d", scope_id=scope_uid, ls_index=7, tag="thumbs_up")
    assert cp.upsert_tag(plane, user_id=user, dataset_id="d", scope_id=scope_uid, ls_index=7,
                         tag="thumbs_up") == tag
    assert plane.table("tags").count_rows() == 1 and plane.table("users").count_rows() == 1
    kinds = {tuple(i.columns): i.index_type for i in plane.table("tags").list_indices()}
    assert kinds[("tag",)] == "Bitmap" and kinds[("ls_index",)] == "BTree"
