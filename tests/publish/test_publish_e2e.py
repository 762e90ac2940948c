"""Publish end to end on scopes built by the real scope/links stages and gated by the real
validator: first on the scope helper's fake upstream artifacts (fast), then on the session
``scoped_dataset`` built from the sample archive, with a real LanceDB table and _meta rows."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest

from kits.publish_kit import moto_s3, s3_client
from pipeline.core.workspace import write_parquet
from pipeline.publish.execute import PublishError, execute_publish, plan_publish, publish_history, verify_remote
from pipeline.publish.plan import denied_reason

pytest.importorskip("pipeline.stages.scope")
pytest.importorskip("pipeline.serving.validate")


@pytest.fixture
def real_scope(tmp_path):
    from kits.scope_fakes import make_fake_dataset
    from pipeline.stages.links import run_links
    from pipeline.stages.scope import run_scope

    ds = make_fake_dataset(tmp_path, n=80)
    scope_id = run_scope(ds)
    run_links(ds)
    return ds, scope_id


def _published_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_real_scope_publish_then_tombstone_republish(real_scope, tmp_path):
    from pipeline.core.tombstones import add_tombstones
    from pipeline.stages.scope import apply_tombstones

    ds, scope_id = real_scope
    target = f"file://{tmp_path}/cdn"
    plan = plan_publish(ds, scope_id, target)  # the real deploy gate
    assert plan.gate_errors == []
    record = execute_publish(plan)
    files = _published_files(tmp_path / "cdn")
    assert f"{ds.name}/manifest.json" in files and f"{ds.name}/scopes/{scope_id}-input.parquet" in files
    for key in files:
        rel = key.split("/", 1)[1]
        assert rel == "manifest.json" or denied_reason(rel) is None, key
    assert not any(k.endswith(("input.parquet",)) and "/scopes/" not in k for k in files)
    assert verify_remote(target, ds) == []
    assert record["bytes_uploaded"] == sum(r["size"] for r in plan.rows)

    # the curator deletes a tweet: the republish sends only what changed, with the text blanked
    text = pd.read_parquet(ds.input_path, columns=["text"])["text"].iat[5]
    add_tombstones(ds, [5])
    apply_tombstones(ds, scope_id)
    again = plan_publish(ds, scope_id, target)
    changed = {r["key"] for r in again.rows if r["status"] != "unchanged"}
    assert f"{ds.name}/scopes/{scope_id}-input.parquet" in changed
    assert f"{ds.name}/meta.json" not in changed
    execute_publish(again)
    served = pd.read_parquet(tmp_path / "cdn" / ds.name / "scopes" / f"{scope_id}-input.parquet")
    row = served[served["ls_index"] == 5].iloc[0]
    assert bool(row["deleted"]) and row["text"] == ""
    for path in (tmp_path / "cdn").rglob("*.json"):
        assert text not in path.read_text()
    assert [h["id"] for h in publish_history(ds)] == ["publish-002", "publish-001"]


def test_real_validator_blocks_a_broken_scope(real_scope, tmp_path):
    ds, scope_id = real_scope
    path = ds.artifact_path(scope_id, "-input.parquet")
    write_parquet(pd.read_parquet(path).drop(columns=["text"]), path)
    plan = plan_publish(ds, scope_id, f"file://{tmp_path}/cdn")
    assert plan.blocked and any("text" in e for e in plan.gate_errors)
    with pytest.raises(PublishError, match="deploy gate"):
        execute_publish(plan)
    assert not (tmp_path / "cdn" / ds.name).exists()


def _missing_stages() -> list[str]:
    import importlib.util

    return [m for m in ("pipeline.stages.embed.stage", "pipeline.stages.umap.stage", "pipeline.stages.cluster.stage", "pipeline.stages.labels",
                        "pipeline.stages.scope", "pipeline.stages.links", "pipeline.serving.lance_export")
            if importlib.util.find_spec(m) is None]


@pytest.mark.slow
@pytest.mark.skipif(bool(_missing_stages()), reason=f"stages not built yet: {_missing_stages()}")
def test_sample_scope_to_moto_and_lancedb(scoped_dataset, tmp_path):
    from pipeline.serving import control_plane as cp
    from pipeline.serving.lance_export import open_scope_table
    from support import copy_dataset

    ds = copy_dataset(scoped_dataset, tmp_path)
    scope_id = ds.latest("scopes")
    lance_dir = tmp_path / "lance"
    with moto_s3(bucket="tweetscope-data") as (endpoint, env):
        plan = plan_publish(ds, scope_id, "s3://tweetscope-data", endpoint_url=endpoint, env=env,
                            lancedb=str(lance_dir))
        assert plan.gate_errors == []
        # the sample is embedded offline: the curator is told semantic search downstream needs Voyage
        assert any("voyage-4-lite" in w and "full-text search" in w for w in plan.warnings)
        record = execute_publish(plan)
        s3 = s3_client(endpoint, env)
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="tweetscope-data")["Contents"])
        assert f"{ds.name}/manifest.json" in keys
        assert all(denied_reason(k.split("/", 1)[1]) is None for k in keys if not k.endswith("manifest.json"))
        assert f"{ds.name}/input.parquet" not in keys
        manifest = json.loads(s3.get_object(Bucket="tweetscope-data", Key=f"{ds.name}/manifest.json")["Body"].read())
        entry = manifest["scopes"][scope_id]
        assert entry["lancedb"]["rows"] > 0 and entry["lancedb_table_id"] == record["lancedb_table_id"]
        assert verify_remote(plan.target, ds, deep=True) == []
        noop = plan_publish(ds, scope_id, "s3://tweetscope-data", endpoint_url=endpoint, env=env)
        assert noop.totals["bytes_to_send"] == 0
    table = open_scope_table(ds, scope_id, uri=str(lance_dir))
    assert table.count_rows() == entry["lancedb"]["rows"]
    plane = cp.open_control_plane(ds, str(lance_dir))
    uid = entry["scope_uid"]
    assert cp.find_scope(plane, scope_uid=uid) is not None
    assert {a["cdn_path"] for a in cp.list_scope_artifacts(plane, uid)} >= {f"{ds.name}/scopes/{scope_id}-input.parquet"}
    assert str(uuid.UUID(uid)) == uid


@pytest.mark.skipif(bool(_missing_stages()), reason=f"stages not built yet: {_missing_stages()}")
def test_search_model_warning_only_for_vectors_outside_the_query_space(scoped_dataset, tmp_path):
    from pipeline.publish.execute import SEARCH_QUERY_MODEL, search_model_warning
    from support import copy_dataset

    ds = copy_dataset(scoped_dataset, tmp_path)
    scope_id = ds.latest("scopes")
    embedding_id = json.loads(ds.artifact_path(scope_id, ".json").read_text())["embedding_id"]
    assert ds.sidecar(embedding_id)["model_id"] in search_model_warning(ds, scope_id)
    ds.update_sidecar(embedding_id, provider="voyage", model_id=SEARCH_QUERY_MODEL, dimensions=1024)
    assert search_model_warning(ds, scope_id) is None
