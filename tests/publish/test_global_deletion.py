"""Publishing you can trust (issue 16): a deletion reaches every published scope and every LanceDB
table of the dataset; unpublish and rollback. moto S3 on 127.0.0.1 as R2 + a local LanceDB folder;
after each scenario the WHOLE bucket is searched for the deleted text (raw bytes and every parquet
column)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kits.lance_kit import use_vectors
from kits.publish_kit import (  # noqa: F401  (fixtures)
    add_scope_copy,
    bucket,
    make_handmade_dataset,
    moto,
    no_gate,
    s3_client,
    whole_bucket_hits,
)
from pipeline.core.tombstones import add_tombstones
from pipeline.publish.execute import execute_publish, plan_publish
from pipeline.publish.rollback import plan_rollback
from pipeline.publish.targets import open_target
from pipeline.publish.unpublish import execute_unpublish, plan_unpublish, remaining
from pipeline.serving import control_plane as cp
from pipeline.stages.scope import rewrite_scope_rows

ROW = 10  # the tweet deleted in the scenarios


@pytest.fixture
def ds(tmp_path, monkeypatch):
    dataset = make_handmade_dataset(tmp_path / "data")
    vectors = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    use_vectors(monkeypatch, vectors)
    return dataset


def _publish(ds, scope_id, bucket, moto, lance, **kw):
    endpoint, env = moto
    plan = plan_publish(ds, scope_id, f"s3://{bucket}", endpoint_url=endpoint, env=env, lancedb=lance,
                        validator=no_gate, **kw)
    return execute_publish(plan)


def _manifest(moto, bucket, name="handmade"):
    return json.loads(s3_client(*moto).get_object(Bucket=bucket, Key=f"{name}/manifest.json")["Body"].read())


def _text(ds, row=ROW):
    return pd.read_parquet(ds.input_path, columns=["text"])["text"].iat[row]


def _tweet_id(ds, row=ROW):
    return pd.read_parquet(ds.input_path, columns=["id"])["id"].iat[row]


def _lance_rows_with(lance, tweet_id) -> dict:
    """Rows holding ``tweet_id`` in every version of every table of the LanceDB folder."""
    import lancedb

    conn = lancedb.connect(str(lance))
    found = {}
    for name in conn.list_tables().tables:
        table = conn.open_table(name)
        for version in table.list_versions():
            table.checkout(version["version"])
            n = table.count_rows(f"id = '{tweet_id}'")
            if n:
                found[f"{name}@{version['version']}"] = n
        table.checkout_latest()
    return found


def test_second_published_scope_with_a_deleted_tweet_is_redacted(ds, moto, bucket, tmp_path):
    lance = tmp_path / "lance"
    _publish(ds, "scopes-001", bucket, moto, str(lance))
    add_scope_copy(ds)
    _publish(ds, "scopes-002", bucket, moto, str(lance))
    text, tweet_id = _text(ds), _tweet_id(ds)
    s3 = s3_client(*moto)
    assert whole_bucket_hits(s3, bucket, [text])  # both scopes serve it before the deletion
    assert len(_lance_rows_with(lance, tweet_id)) >= 2

    add_tombstones(ds, [ROW])
    rewrite_scope_rows(ds, "scopes-002")  # the curator applies it to the scope in front of them only
    endpoint, env = moto
    plan = plan_publish(ds, "scopes-002", f"s3://{bucket}", endpoint_url=endpoint, env=env,
                        lancedb=str(lance), validator=no_gate)
    assert plan.redact_scopes == ["scopes-001"]
    record = execute_publish(plan)
    assert record["redacted_scopes"] == ["scopes-001"]
    assert record["remote_scan"]["objects"] >= 10 and record["remote_scan"]["removed"] == []
    assert set(_manifest(moto, bucket)["scopes"]) == {"scopes-001", "scopes-002"}
    assert whole_bucket_hits(s3, bucket, [text]) == []
    assert _lance_rows_with(lance, tweet_id) == {}  # every table, every remaining version
    sync = record["lancedb_sync"]["tables"]
    assert sum(t["rows_deleted"] for t in sync.values()) >= 1 and all(t["old_versions_cleaned"] for t in sync.values())


def test_remote_only_scope_with_deleted_text_is_removed_before_the_manifest(ds, moto, bucket, tmp_path):
    _publish(ds, "scopes-001", bucket, moto, False)
    add_scope_copy(ds)
    _publish(ds, "scopes-002", bucket, moto, False)
    (ds.path / "scopes" / "scopes-001.json").unlink()  # scopes-001 cannot be rebuilt here any more
    text = _text(ds)
    add_tombstones(ds, [ROW])
    rewrite_scope_rows(ds, "scopes-002")
    record = _publish(ds, "scopes-002", bucket, moto, False)
    assert "handmade/scopes/scopes-001-input.parquet" in record["remote_scan"]["removed"]
    assert record["remote_scan"]["dropped_scopes"] == ["scopes-001"]
    assert set(_manifest(moto, bucket)["scopes"]) == {"scopes-002"}
    assert whole_bucket_hits(s3_client(*moto), bucket, [text]) == []


def test_cdn_only_republish_after_a_delete_keeps_lancedb_in_sync_by_default(ds, moto, bucket, tmp_path):
    lance = tmp_path / "lance"
    endpoint, env = moto
    env = {**env, "LANCEDB_URI": str(lance)}  # a configured LanceDB is part of every publish
    plan = plan_publish(ds, "scopes-001", f"s3://{bucket}", endpoint_url=endpoint, env=env, validator=no_gate)
    assert plan.lancedb_uri == str(lance)
    execute_publish(plan)
    text, tweet_id = _text(ds), _tweet_id(ds)
    add_tombstones(ds, [ROW])
    rewrite_scope_rows(ds, "scopes-001")
    skip = plan_publish(ds, "scopes-001", f"s3://{bucket}", endpoint_url=endpoint, env=env,
                        validator=no_gate, lancedb=False)  # --no-lancedb
    assert skip.lancedb_uri is None
    execute_publish(skip)
    assert whole_bucket_hits(s3_client(*moto), bucket, [text]) == []
    assert _lance_rows_with(lance, tweet_id)  # the skipped table still has it ...
    execute_publish(plan_publish(ds, "scopes-001", f"s3://{bucket}", endpoint_url=endpoint, env=env,
                                 validator=no_gate))
    assert _lance_rows_with(lance, tweet_id) == {}  # ... until the next default publish


class _KilledAfter:
    """A target whose deletes stop (like a killed process) after ``k`` keys."""

    def __init__(self, target, k):
        self._t, self.k = target, k

    def __getattr__(self, name):
        return getattr(self._t, name)

    def delete(self, keys):
        keys = list(keys)
        if self.k < len(keys):
            raise KeyboardInterrupt("killed")
        self.k -= len(keys)
        self._t.delete(keys)


def test_unpublish_killed_after_k_deletions_then_rerun(ds, moto, bucket, tmp_path):
    lance = tmp_path / "lance"
    _publish(ds, "scopes-001", bucket, moto, str(lance))
    add_scope_copy(ds)
    _publish(ds, "scopes-002", bucket, moto, str(lance))
    endpoint, env = moto
    target = open_target(f"s3://{bucket}", endpoint_url=endpoint, env=env)
    uid2 = ds.sidecar("scopes-002")["scope_uid"]
    plan = plan_unpublish("handmade", _KilledAfter(target, 1), "scopes-002", lancedb=str(lance))
    # the scope's own objects only (plus the shareable map when it was built from this scope)
    assert set(plan.keys) - {"handmade/index.html"} == {"handmade/scopes/scopes-002-input.parquet",
                                                        "handmade/scopes/scopes-002.json"}
    with pytest.raises(KeyboardInterrupt):
        execute_unpublish(plan)
    assert remaining(plan_unpublish("handmade", target, "scopes-002")) == [
        *plan.keys[1:], "handmade/manifest.json (still lists scopes-002)"]
    again = plan_unpublish("handmade", target, "scopes-002", lancedb=str(lance))
    result = execute_unpublish(again)
    assert result["left"] == [] and result["tables_dropped"] == [f"handmade__{uid2}"]
    assert set(_manifest(moto, bucket)["scopes"]) == {"scopes-001"}
    plane = cp.open_control_plane(ds, str(lance))
    assert cp.find_scope(plane, scope_uid=uid2) is None
    assert execute_unpublish(plan_unpublish("handmade", target, "scopes-002", lancedb=str(lance)))["deleted"] == []

    whole = plan_unpublish("handmade", target, None, lancedb=str(lance))
    execute_unpublish(whole)
    s3 = s3_client(*moto)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    import lancedb

    assert [t for t in lancedb.connect(str(lance)).list_tables().tables if t.startswith("handmade__")] == []
    assert cp.find_dataset(plane, "handmade") is None


def test_rollback_across_a_delete_keeps_the_tweet_deleted(ds, moto, bucket, tmp_path):
    lance = tmp_path / "lance"
    first = _publish(ds, "scopes-001", bucket, moto, str(lance))
    add_scope_copy(ds)
    text, tweet_id = _text(ds), _tweet_id(ds)
    add_tombstones(ds, [ROW])
    rewrite_scope_rows(ds, "scopes-002")  # scopes-001's local files still hold the text
    second = _publish(ds, "scopes-002", bucket, moto, str(lance))
    endpoint, env = moto
    plan = plan_rollback(ds, f"s3://{bucket}", endpoint_url=endpoint, env=env, lancedb=str(lance),
                         validator=no_gate)
    assert plan.scope_id == "scopes-001" and plan.drop_scope_ids == ["scopes-002"]
    record = execute_publish(plan)
    assert record["rollback_of"] == second["id"] and record["scope_uid"] == first["scope_uid"]
    manifest = _manifest(moto, bucket)
    assert set(manifest["scopes"]) == {"scopes-001"} and manifest["active_scope"] == "scopes-001"
    served = pd.read_parquet(ds.artifact_path("scopes-001", "-input.parquet"))
    assert bool(served.loc[served["ls_index"] == ROW, "deleted"].iat[0])
    assert whole_bucket_hits(s3_client(*moto), bucket, [text]) == []
    assert _lance_rows_with(lance, tweet_id) == {}
    import lancedb

    tables = set(lancedb.connect(str(lance)).list_tables().tables)
    assert {first["lancedb_table_id"], second["lancedb_table_id"]} <= tables  # one previous kept


def test_every_meta_column_of_a_fresh_publish_is_filled(ds, moto, bucket, tmp_path):
    lance = tmp_path / "lance"
    record = _publish(ds, "scopes-001", bucket, moto, str(lance))
    plane = cp.open_control_plane(ds, str(lance))
    scope = cp.find_scope(plane, scope_uid=record["scope_uid"])
    empty = [k for k, v in scope.items() if v is None or v in ("", "{}", "[]")]
    assert empty == []
    assert {"min", "max", "n_neighbors", "min_dist"} <= set(json.loads(scope["umap_meta"]))
    labels_meta = json.loads(scope["cluster_labels_meta"])
    assert labels_meta == {"type": "toponymy", "num_layers": 1, "num_clusters": 5}
    for row in cp.list_scope_artifacts(plane, record["scope_uid"]):
        assert all(v not in (None, "") for v in row.values()), row
    dataset = cp.find_dataset(plane, "handmade")
    assert [k for k, v in dataset.items() if v in (None, "")] == ["owner_id"]  # no users in single-profile mode
    job = plane.rows("jobs")[0]
    assert [k for k, v in job.items() if v in (None, "")] == ["user_id", "error"]


def test_cli_unpublish_dry_run_then_execute_and_rollback_flag(ds, tmp_path, capsys):
    from pipeline.cli.main import main

    target = f"file://{tmp_path}/cdn"
    execute_publish(plan_publish(ds, "scopes-001", target, validator=no_gate, lancedb=False))
    base = ["--data-dir", str(ds.path.parent), "--dataset", "handmade", "--target", target, "--no-lancedb"]
    assert main(["unpublish", *base]) == 0
    assert "dry run" in capsys.readouterr().out and (tmp_path / "cdn" / "handmade" / "manifest.json").is_file()
    assert main(["unpublish", *base, "--execute"]) == 0
    assert "nothing left" in capsys.readouterr().out
    assert not any((tmp_path / "cdn").rglob("*.*"))
    assert main(["publish", *base, "--rollback"]) == 1  # one publish of one scope: nothing to return to
    assert "nothing to roll back to" in capsys.readouterr().err
