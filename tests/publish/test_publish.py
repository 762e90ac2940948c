"""Publish: allowlist/denylist, plan and diff, file:// and s3:// (moto) targets, incremental
republish, prune, multi-scope manifests, LanceDB + _meta, CLI and configured targets."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from kits.publish_kit import bucket, make_handmade_dataset, moto, moto_s3, no_gate, s3_client  # noqa: F401 (fixtures)
from pipeline.core.workspace import atomic_write_json, read_json, write_parquet
from pipeline.publish.execute import (
    PublishConfig,
    PublishError,
    configured_targets,
    execute_publish,
    format_plan,
    plan_publish,
    publish_history,
    verify_remote,
)
from pipeline.publish.plan import denied_reason, scope_allowlist
from pipeline.publish.targets import open_target

EXPECTED_RELS = {
    "meta.json", "scopes/scopes-001.json", "scopes/scopes-001-input.parquet",
    "clusters/toponymy-001.parquet", "clusters/toponymy-001.json", "clusters/cluster-001.json",
    "links/meta.json", "links/edges.parquet", "links/node_link_stats.parquet",
}
#: what a publish sends: the allowlist plus the shareable map page (PublishConfig.webmap)
PUBLISHED_RELS = EXPECTED_RELS | {"index.html"}


@pytest.fixture
def handmade(tmp_path):
    return make_handmade_dataset(tmp_path / "data")


def _s3_plan(ds, moto, bucket, prefix="site", **kw):
    endpoint, env = moto
    kw.setdefault("validator", no_gate)
    return plan_publish(ds, "scopes-001", f"s3://{bucket}/{prefix}", endpoint_url=endpoint, env=env, **kw)


def _listing(moto, bucket):
    endpoint, env = moto
    resp = s3_client(endpoint, env).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in resp.get("Contents", []))


# --------------------------------------------------------------------------- allow / deny

@pytest.mark.parametrize("rel", [
    "input.parquet", "embeddings/embedding-001.h5", "embeddings/embedding-001.json",
    "umaps/umap-001.parquet", "umaps/umap-001.json", "umaps/umap-001.png",
    "clusters/cluster-001.parquet", "clusters/cluster-001.png", "lancedb/t.lance/data/0.lance",
    "publishes/publish-001.json", "tombstones.json", "clusters/toponymy-001.json.bak",
    "scopes/.tmp-abc-scopes-001.json", "scopes/backup-scopes-001.json", ".ids/scopes-001",
    "../other/meta.json", "scopes/scopes-001.json~", "tags.json",
])
def test_denylist_blocks_pipeline_only_files(rel):
    assert denied_reason(rel)


@pytest.mark.parametrize("rel", sorted(EXPECTED_RELS | {"clusters/cluster-001-labels-default.parquet"}))
def test_denylist_allows_cdn_files(rel):
    assert denied_reason(rel) is None


def test_allowlist_resolves_scope_labels(handmade):
    assert set(scope_allowlist(handmade, "scopes-001")) == EXPECTED_RELS


def test_allowlist_default_labels(handmade):
    scope_path = handmade.path / "scopes" / "scopes-001.json"
    scope = read_json(scope_path)
    scope.pop("labels_id")
    scope["cluster_labels_id"] = "cluster-001-labels-default"
    atomic_write_json(scope_path, scope)
    rels = scope_allowlist(handmade, "scopes-001")
    assert "clusters/cluster-001-labels-default.parquet" in rels
    assert "clusters/toponymy-001.parquet" not in rels
    with pytest.raises(PublishError, match="missing"):  # the label files were never written
        plan_publish(handmade, "scopes-001", "file:///nonexistent-never-used", validator=no_gate)


def test_symlinked_file_is_refused(handmade, tmp_path):
    edges = handmade.path / "links" / "edges.parquet"
    edges.unlink()
    edges.symlink_to(handmade.path / "input.parquet")
    with pytest.raises(PublishError, match="symlink"):
        plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate)
    assert not (tmp_path / "cdn" / "handmade").exists()


def test_symlinked_folder_outside_dataset_is_refused(handmade, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.move(str(handmade.path / "links"), outside)
    (handmade.path / "links").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PublishError, match="symlink"):
        plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate)


def test_unknown_scope_and_bad_target(handmade, tmp_path):
    with pytest.raises(PublishError, match="scopes-009"):
        plan_publish(handmade, "scopes-009", f"file://{tmp_path}/cdn", validator=no_gate)
    with pytest.raises(PublishError, match="unsupported publish target"):
        plan_publish(handmade, "scopes-001", "ftp://host/x", validator=no_gate)


# --------------------------------------------------------------------------- file:// target

def test_file_target_publish_and_noop_republish(handmade, tmp_path):
    target = f"file://{tmp_path}/cdn"
    plan = plan_publish(handmade, "scopes-001", target, validator=no_gate)
    assert {r["status"] for r in plan.rows} == {"new"}
    assert plan.totals["bytes_to_send"] == plan.totals["bytes_total"] > 0
    from pipeline.core.progress import Progress

    events = []
    record = execute_publish(plan, Progress(events.append, "studio"))
    assert record["id"] == "publish-001"
    byte_events = [e for e in events if e.total == plan.totals["bytes_to_send"]]
    assert byte_events and byte_events[-1].done == plan.totals["bytes_to_send"]  # a bar in bytes
    published = sorted(p.relative_to(tmp_path / "cdn").as_posix()
                       for p in (tmp_path / "cdn").rglob("*") if p.is_file())
    assert published == sorted({f"handmade/{r}" for r in PUBLISHED_RELS} | {"handmade/manifest.json"})
    for rel in PUBLISHED_RELS:  # byte-identical copies
        assert (tmp_path / "cdn" / "handmade" / rel).read_bytes() == (handmade.path / rel).read_bytes()
    manifest = read_json(tmp_path / "cdn" / "handmade" / "manifest.json")
    assert manifest["dataset"] == "handmade" and manifest["tool"]["version"]
    assert set(manifest["scopes"]) == {"scopes-001"}
    scope_entry = manifest["scopes"]["scopes-001"]
    assert scope_entry["scope_uid"] == read_json(handmade.path / "scopes" / "scopes-001.json")["scope_uid"]
    assert scope_entry["lineage"]["id"] == "scopes-001"
    assert {o["key"] for o in manifest["objects"]} == {f"handmade/{r}" for r in PUBLISHED_RELS}
    for o in manifest["objects"]:
        assert o["content_type"] in ("application/json", "application/vnd.apache.parquet", "text/html; charset=utf-8")
    assert verify_remote(target, handmade) == []

    again = plan_publish(handmade, "scopes-001", target, validator=no_gate)
    assert again.totals["bytes_to_send"] == 0 and again.totals["unchanged"] == len(PUBLISHED_RELS)
    second = execute_publish(again)
    assert second["bytes_uploaded"] == 0 and second["uploaded"] == []
    history = publish_history(handmade)
    assert [h["id"] for h in history] == ["publish-002", "publish-001"]
    assert history[0]["inputs"] == {"scope_id": "scopes-001"}


# --------------------------------------------------------------------------- s3:// target (moto)

def test_s3_publish_headers_metadata_and_noop(handmade, moto, bucket):
    endpoint, env = moto
    plan = _s3_plan(handmade, moto, bucket)
    record = execute_publish(plan)
    assert record["bytes_uploaded"] == plan.totals["bytes_total"]
    keys = _listing(moto, bucket)
    assert keys == sorted({f"site/handmade/{r}" for r in PUBLISHED_RELS} | {"site/handmade/manifest.json"})
    s3 = s3_client(endpoint, env)
    head = s3.head_object(Bucket=bucket, Key="site/handmade/scopes/scopes-001-input.parquet")
    assert head["ContentType"] == "application/vnd.apache.parquet"
    assert head["CacheControl"] == PublishConfig().parquet_cache_control
    local = next(o for o in plan.objects if o.rel == "scopes/scopes-001-input.parquet")
    assert head["Metadata"]["sha256"] == local.sha256
    head = s3.head_object(Bucket=bucket, Key="site/handmade/scopes/scopes-001.json")
    assert head["ContentType"] == "application/json" and "max-age=60" in head["CacheControl"]
    mhead = s3.head_object(Bucket=bucket, Key="site/handmade/manifest.json")
    assert mhead["CacheControl"] == "no-cache"

    # a republish with no change sends zero bytes: count the PUTs on the wire
    again = _s3_plan(handmade, moto, bucket)
    puts = []
    again.target.client.meta.events.register("before-send.s3.PutObject", lambda request, **kw: puts.append(request.url))
    record = execute_publish(again)
    assert record["bytes_uploaded"] == 0 and record["uploaded"] == []
    assert puts == []  # not even the manifest: nothing changed
    assert record["manifest_written"] is False
    assert verify_remote(again.target, handmade, deep=True) == []


def test_s3_multipart_upload_verified_by_sha256_not_etag(moto, bucket, tmp_path):
    import os

    endpoint, env = moto
    from pipeline.publish.targets import S3Settings, sha256_file

    big = tmp_path / "big.parquet"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    target = open_target(f"s3://{bucket}", endpoint_url=endpoint, env=env,
                         settings=S3Settings(multipart_threshold=5 * 1024 * 1024,
                                             multipart_chunksize=5 * 1024 * 1024))
    target.preflight()
    seen = []
    target.put_file("d/big.parquet", big, size=big.stat().st_size, sha256=sha256_file(big),
                    content_type="application/vnd.apache.parquet", cache_control="public",
                    callback=seen.append)
    remote = target.head("d/big.parquet")
    assert remote.size == big.stat().st_size and remote.sha256 == sha256_file(big)
    assert remote.etag and remote.etag.endswith("-3")  # multipart: 3 parts, the ETag is no MD5
    assert sum(seen) == big.stat().st_size


def test_incremental_change_uploads_only_changed(handmade, moto, bucket):
    import pandas as pd

    execute_publish(_s3_plan(handmade, moto, bucket))
    labels_path = handmade.path / "clusters" / "toponymy-001.parquet"
    labels = pd.read_parquet(labels_path)
    labels.loc[0, "label"] = "A better label"
    write_parquet(labels, labels_path)
    plan = _s3_plan(handmade, moto, bucket)
    status = {r["key"].split("/", 1)[1]: r["status"] for r in plan.rows}
    assert status.pop("clusters/toponymy-001.parquet") == "changed"
    assert status.pop("index.html") == "changed"  # the map shows the new label
    assert set(status.values()) == {"unchanged"}
    record = execute_publish(plan)
    assert record["uploaded"] == ["handmade/clusters/toponymy-001.parquet", "handmade/index.html"]
    assert record["bytes_uploaded"] == labels_path.stat().st_size + (handmade.path / "index.html").stat().st_size
    assert verify_remote(plan.target, handmade) == []


def test_prune_removes_objects_no_longer_listed(handmade, moto, bucket):
    execute_publish(_s3_plan(handmade, moto, bucket))
    clusters = handmade.path / "clusters"
    shutil.copy(clusters / "toponymy-001.parquet", clusters / "toponymy-002.parquet")
    atomic_write_json(clusters / "toponymy-002.json", {**read_json(clusters / "toponymy-001.json"), "id": "toponymy-002"})
    scope_path = handmade.path / "scopes" / "scopes-001.json"
    atomic_write_json(scope_path, {**read_json(scope_path), "labels_id": "toponymy-002"})

    without = _s3_plan(handmade, moto, bucket)
    assert without.prune_keys == []
    execute_publish(without)
    assert "site/handmade/clusters/toponymy-001.parquet" in _listing(moto, bucket)  # kept: prune is off

    plan = _s3_plan(handmade, moto, bucket, prune=True)
    assert sorted(plan.prune_keys) == ["handmade/clusters/toponymy-001.json", "handmade/clusters/toponymy-001.parquet"]
    assert "delete" in format_plan(plan)
    record = execute_publish(plan)
    assert sorted(record["deleted"]) == sorted(plan.prune_keys)
    listing = _listing(moto, bucket)
    assert "site/handmade/clusters/toponymy-001.parquet" not in listing
    assert "site/handmade/clusters/toponymy-002.parquet" in listing
    assert verify_remote(plan.target, handmade) == []


def test_manifest_merges_scopes_and_prune_keeps_other_scope(handmade, moto, bucket):
    scopes = handmade.path / "scopes"
    shutil.copy(scopes / "scopes-001-input.parquet", scopes / "scopes-002-input.parquet")
    scope2 = {**read_json(scopes / "scopes-001.json"), "id": "scopes-002", "scope_uid": str(uuid.uuid4())}
    atomic_write_json(scopes / "scopes-002.json", scope2)
    endpoint, env = moto
    execute_publish(_s3_plan(handmade, moto, bucket))
    plan2 = plan_publish(handmade, "scopes-002", f"s3://{bucket}/site", endpoint_url=endpoint, env=env,
                         validator=no_gate, prune=True)
    assert plan2.prune_keys == []  # scopes-001's files are still listed by the merged manifest
    execute_publish(plan2)
    manifest = json.loads(plan2.target.get_bytes("handmade/manifest.json"))
    assert set(manifest["scopes"]) == {"scopes-001", "scopes-002"}
    keys = {o["key"] for o in manifest["objects"]}
    assert "handmade/scopes/scopes-001-input.parquet" in keys and "handmade/scopes/scopes-002.json" in keys
    assert "site/handmade/scopes/scopes-001.json" in _listing(moto, bucket)
    assert verify_remote(plan2.target, handmade) == []


# --------------------------------------------------------------------------- gate, LanceDB

def test_gate_errors_block_execute(handmade, tmp_path):
    plan = plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn",
                        validator=lambda ds, s: ["id is int64, expected string"])
    assert plan.blocked
    with pytest.raises(PublishError, match="deploy gate"):
        execute_publish(plan)
    assert not (tmp_path / "cdn" / "handmade").exists()


def test_lancedb_table_and_meta_registration(handmade, tmp_path, monkeypatch):
    lance_export = pytest.importorskip("pipeline.serving.lance_export")
    calls = []

    def fake_export(dataset, scope_id, uri=None, progress=None, **kw):
        # the real export needs embeddings; this dataset has none (covered on the fixture e2e test)
        calls.append((scope_id, uri, kw))
        return {"table": read_json(dataset.path / "scopes" / f"{scope_id}.json")["lancedb_table_id"],
                "rows": 298, "uri": uri}

    monkeypatch.setattr(lance_export, "export_lance", fake_export)
    lance_dir = tmp_path / "lance"
    plan = plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate, lancedb=str(lance_dir))
    record = execute_publish(plan)
    assert calls == [("scopes-001", str(lance_dir), {"register": False})]
    manifest = read_json(tmp_path / "cdn" / "handmade" / "manifest.json")
    assert manifest["scopes"]["scopes-001"]["lancedb"]["rows"] == 298
    assert record["control_plane"]["artifacts"] == 6 and record["control_plane"]["job_id"]
    from pipeline.serving import control_plane as cp
    plane = cp.open_control_plane(handmade, str(lance_dir))
    uid = read_json(handmade.path / "scopes" / "scopes-001.json")["scope_uid"]
    artifacts = cp.list_scope_artifacts(plane, uid)
    assert {a["cdn_path"] for a in artifacts} >= {"handmade/scopes/scopes-001-input.parquet", "handmade/links/edges.parquet"}


def test_lancedb_failure_stops_before_manifest(handmade, tmp_path, monkeypatch):
    lance_export = pytest.importorskip("pipeline.serving.lance_export")

    def broken(*a, **kw):
        raise RuntimeError("table create failed")

    monkeypatch.setattr(lance_export, "export_lance", broken)
    plan = plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate,
                        lancedb=str(tmp_path / "lance"))
    with pytest.raises(PublishError, match="manifest was not changed") as err:
        execute_publish(plan)
    assert err.value.report["step"] == "lancedb"
    assert len(err.value.report["uploaded"]) == len(PUBLISHED_RELS)
    assert not (tmp_path / "cdn" / "handmade" / "manifest.json").exists()
    assert publish_history(handmade) == []


# --------------------------------------------------------------------------- CLI, targets

@pytest.fixture
def publish_cli(monkeypatch):
    """``tweetscope`` main() with only the publish commands (other families import heavy stacks)."""
    from pipeline.cli import main as cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("pipeline.cli.publish",))
    return cli.main


def test_cli_dry_run_then_execute_never_prints_secrets(handmade, moto, bucket, capsys, monkeypatch, publish_cli):
    from pipeline.publish import execute as publish_mod
    main = publish_cli

    endpoint, env = moto
    secret = "r2-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("R2_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", secret)
    monkeypatch.setattr(publish_mod, "_default_validator", lambda: no_gate)
    args = ["publish", "--data-dir", str(handmade.path.parent), "--dataset", "handmade",
            "--scope", "scopes-001", "--target", f"s3://{bucket}/cli", "--endpoint-url", endpoint]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "dry run" in out.out and "new" in out.out and "bytes" in out.out
    assert _listing(moto, bucket) == []
    assert main(args + ["--execute", "--max-concurrency", "2"]) == 0
    out2 = capsys.readouterr()
    assert "published publish-001" in out2.out
    assert "cli/handmade/manifest.json" in _listing(moto, bucket)
    assert main(args) == 0
    out3 = capsys.readouterr()
    assert "0 B to send" in out3.out
    for text in (out.out, out.err, out2.out, out2.err, out3.out, out3.err):
        assert secret not in text
    assert secret not in (handmade.path / "publishes" / "publish-001.json").read_text()
    assert main(args + ["--verify"]) == 0


def test_cli_gate_failure_exits_1(handmade, tmp_path, capsys, monkeypatch, publish_cli):
    from pipeline.publish import execute as publish_mod
    main = publish_cli

    monkeypatch.setattr(publish_mod, "_default_validator", lambda: (lambda ds, s: ["text column missing"]))
    code = main(["publish", "--data-dir", str(handmade.path.parent), "--dataset", "handmade",
                 "--target", f"file://{tmp_path}/cdn", "--execute"])
    assert code == 1
    assert "deploy gate" in capsys.readouterr().err
    assert not (tmp_path / "cdn" / "handmade").exists()


def test_configured_targets_names_only(tmp_path):
    env = {"R2_BUCKET": "tweetscope-data", "R2_ACCOUNT_ID": "abc123", "R2_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "R2_SECRET_ACCESS_KEY": "supersecretvalue123", "LANCEDB_URI": "db://tweetscope",
           "LANCEDB_API_KEY": "sk-lance-secret-999"}
    targets = configured_targets(env, data_dir=tmp_path)
    kinds = {t["kind"]: t for t in targets}
    assert kinds["file"]["uri"] == f"file://{tmp_path.resolve()}/_cdn"
    assert kinds["s3"]["uri"] == "s3://tweetscope-data"
    assert kinds["s3"]["endpoint"] == "https://abc123.r2.cloudflarestorage.com" and kinds["s3"]["ready"]
    assert kinds["lancedb"]["ready"]
    dump = json.dumps(targets)
    for secret in ("supersecretvalue123", "sk-lance-secret-999", "AKIDEXAMPLE"):
        assert secret not in dump
    missing = configured_targets({"R2_BUCKET": "b"}, data_dir=tmp_path)
    assert next(t for t in missing if t["kind"] == "s3")["ready"] is False


def test_real_lancedb_export_and_registration(handmade, tmp_path, monkeypatch):
    """The real export_lance (local folder) and _meta rows; vectors stand in for the h5."""
    import numpy as np

    lx = pytest.importorskip("pipeline.serving.lance_export")
    from pipeline.serving import control_plane as cp
    n = 300  # rows of the hand-made dataset
    vectors = np.random.default_rng(0).normal(size=(n, 16)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    monkeypatch.setattr(lx, "_load_vectors", lambda dataset, embedding_id: vectors)
    lance_dir = tmp_path / "lance"
    plan = plan_publish(handmade, "scopes-001", f"file://{tmp_path}/cdn", validator=no_gate, lancedb=str(lance_dir))
    record = execute_publish(plan)
    table_id = read_json(handmade.path / "scopes" / "scopes-001.json")["lancedb_table_id"]
    assert record["lancedb"]["table"] == table_id
    assert record["lancedb"]["rows"] == n - 2  # the two tombstoned rows are not exported
    manifest = read_json(tmp_path / "cdn" / "handmade" / "manifest.json")
    public = manifest["scopes"]["scopes-001"]["lancedb"]
    assert public["rows"] == n - 2 and "uri" not in public  # no local path in a public file
    table = lx.open_scope_table(handmade, "scopes-001", uri=str(lance_dir))
    assert table.count_rows() == n - 2
    plane = cp.open_control_plane(handmade, str(lance_dir))
    uid = read_json(handmade.path / "scopes" / "scopes-001.json")["scope_uid"]
    assert cp.find_scope(plane, scope_uid=uid)["lancedb_table_id"] == table_id
    assert len(cp.list_scope_artifacts(plane, uid)) == 6


def test_r2_endpoint_from_account_and_checksum_mode():
    env = {"R2_ACCOUNT_ID": "acct42", "R2_ACCESS_KEY_ID": "id", "R2_SECRET_ACCESS_KEY": "secret-secret"}
    target = open_target("s3://tweetscope-data/prefix", env=env)
    assert target.endpoint_url == "https://acct42.r2.cloudflarestorage.com"
    assert target.bucket == "tweetscope-data" and target.prefix == "prefix"
    config = target.client.meta.config  # built offline; no request is sent
    assert config.request_checksum_calculation == "when_required"
    assert config.retries["mode"] == "standard" and target.client.meta.region_name == "auto"
    assert "secret-secret" not in repr(target) + json.dumps(target.describe())
    explicit = open_target("s3://b", endpoint_url="https://user:pw@minio.local:9000", env=env)
    assert explicit.describe()["endpoint"] == "https://minio.local:9000"


@pytest.mark.slow
def test_lancedb_on_the_same_s3_account(handmade, moto, bucket, monkeypatch):
    """--lancedb s3://... reuses the CDN's endpoint and credentials (real export to moto)."""
    import numpy as np

    lx = pytest.importorskip("pipeline.serving.lance_export")
    vectors = np.random.default_rng(1).normal(size=(300, 8)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    monkeypatch.setattr(lx, "_load_vectors", lambda dataset, embedding_id: vectors)
    plan = _s3_plan(handmade, moto, bucket, lancedb=f"s3://{bucket}/lance")
    assert "secret" not in json.dumps(plan.to_dict())
    record = execute_publish(plan)
    assert record["lancedb"]["rows"] == 298 and record["lancedb"]["target"] == "s3"
    assert any(k.startswith("lance/") for k in _listing(moto, bucket))
    assert record["control_plane"]["artifacts"] == 6
    assert "testing-secret-value" not in (handmade.path / "publishes" / "publish-001.json").read_text()
