"""The same export to ``s3://`` (moto's server on 127.0.0.1) and to ``db://`` (a recording stub)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest

from kits.lance_kit import CloudStub, make_scope, use_vectors
from pipeline.serving import control_plane as cp
from pipeline.serving import lance_export as lx


@pytest.fixture
def handmade(tmp_path, monkeypatch):
    monkeypatch.delenv("LANCEDB_URI", raising=False)
    dataset, vectors, df = make_scope(tmp_path, n=300, deleted_every=30)
    use_vectors(monkeypatch, vectors)
    return dataset, vectors, df


@pytest.fixture
def s3_endpoint():
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds).create_bucket(Bucket="lance-bkt")
    options = {"aws_endpoint": endpoint, "allow_http": "true", "aws_region": "us-east-1", **creds}
    try:
        yield endpoint, options, boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
    finally:
        server.stop()


def test_export_to_s3(handmade, s3_endpoint):
    dataset, vectors, df = handmade
    endpoint, options, s3 = s3_endpoint
    uri = "s3://lance-bkt/tweetscope"
    record = lx.export_lance(dataset, "scopes-001", uri, storage_options=options, vector_index_min_rows=0)

    live = df[~df["deleted"]]
    assert record["uri"] == uri and record["target"] == "s3" and record["rows"] == len(live)
    assert {i["index_type"] for i in record["indices"]} == {"IVF_PQ", "BTREE", "FTS"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lance-bkt")["Contents"]]
    assert any(k.startswith(f"tweetscope/{record['table']}.lance/") for k in keys)
    assert "testing-secret" not in (dataset.lancedb_dir / "exports.json").read_text()

    k = df.loc[31, "cluster"]
    found = lx.search_scope(dataset, "scopes-001", vector=vectors[31], cluster=k, uri=uri, storage_options=options)
    assert found["ls_index"].iloc[0] == 31 and set(found["cluster"]) == {k}
    assert list(lx.search_scope(dataset, "scopes-001", fts="uniqueword77", uri=uri,
                                storage_options=options)["ls_index"]) == [77]

    # the control plane landed in the same bucket, in the _meta namespace
    plane = cp.open_control_plane(dataset, uri, storage_options=options)
    scope = cp.find_scope(plane, scope_uid=dataset.sidecar("scopes-001")["scope_uid"])
    assert scope["lancedb_table_id"] == record["table"] and scope["rows"] == len(df)


def _ipc_rows(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(body)).read_all()


def test_export_to_lancedb_cloud_stub(handmade, monkeypatch):
    dataset, vectors, df = handmade
    monkeypatch.setenv("LANCEDB_API_KEY", "sk-cloud-secret")
    monkeypatch.setenv("LANCEDB_REGION", "us-east-1")
    with CloudStub() as stub:
        record = lx.export_lance(dataset, "scopes-001", "db://tweetscope-test", host_override=stub.url,
                                 vector_index_min_rows=0)
    table = record["table"]
    live = df[~df["deleted"]]
    assert record["target"] == "cloud" and record["uri"] == "db://tweetscope-test"
    assert record["rows"] == len(live)

    creates = [r for r in stub.requests if r["path"].startswith(f"/v1/table/{table}/create/")]
    assert len(creates) == 1 and "mode=overwrite" in creates[0]["path"]
    headers = creates[0]["headers"]
    assert headers["x-api-key"] == "sk-cloud-secret"
    assert headers["x-lancedb-database"] == "tweetscope-test"
    assert headers["content-type"] == "application/vnd.apache.arrow.stream"
    sent = _ipc_rows(creates[0]["body"])
    from pipeline.serving.contracts import SERVING_COLUMNS
    assert sent.schema.names == [*SERVING_COLUMNS, "vector"]
    assert sent.num_rows == len(live) and not any(sent.column("deleted").to_pylist())
    assert sorted(sent.column("ls_index").to_pylist()) == sorted(live["ls_index"].tolist())
    row = sent.column("ls_index").to_pylist().index(41)
    np.testing.assert_allclose(np.asarray(sent.column("vector")[row].as_py(), np.float32), vectors[41])

    index_calls = [r for r in stub.requests if r["path"].startswith(f"/v1/table/{table}/create_index")]
    assert len(index_calls) == 3
    bodies = b" ".join(r["body"] for r in index_calls).decode()
    for column in ("vector", "cluster", "text"):
        assert f'"{column}"' in bodies
    assert any(r["path"].startswith(f"/v1/table/{table}/count_rows") for r in stub.requests)
    # control plane: namespace + _meta$scopes row carrying this table id
    scope_creates = [r for r in stub.requests if r["path"].startswith("/v1/table/_meta$scopes/")]
    assert scope_creates, [r["path"] for r in stub.requests]
    assert table in stub.tables["_meta$scopes"].column("lancedb_table_id").to_pylist()
    # the key travels only in the header, never in a URL or the local record
    assert all("sk-cloud-secret" not in r["path"] for r in stub.requests)
    assert "sk-cloud-secret" not in (dataset.lancedb_dir / "exports.json").read_text()


def test_cloud_row_count_mismatch_is_an_error(handmade, monkeypatch):
    dataset, _, _ = handmade
    monkeypatch.setenv("LANCEDB_API_KEY", "sk-cloud-secret")
    with CloudStub() as stub:
        original = stub.answer

        def short_count(method, path, body):
            if "/count_rows/" in path:
                return 200, b"5"
            return original(method, path, body)

        stub.answer = short_count
        with pytest.raises(lx.LanceExportError, match="holds 5 rows"):
            lx.export_lance(dataset, "scopes-001", "db://tweetscope-test", host_override=stub.url)
    assert lx.read_export_records(dataset) == []
