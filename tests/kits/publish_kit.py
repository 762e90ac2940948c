"""Shared helpers of the publish tests (and the publish benchmark): a hand-made scoped dataset
laid out like the spec (plus files that must never be published) and a moto S3 server.

No tests live here; test modules import these helpers.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.workspace import Dataset, Workspace, atomic_write_json, write_parquet

WORDS = ("map", "idea", "cluster", "archive", "thread", "reply", "quote", "label", "scope", "tweet",
         "bridge", "garden", "river", "signal", "pattern", "paper", "music", "coffee", "walk", "code")


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """Tweet-like texts: vocabulary words plus a random link token, so they compress like real ones."""
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    lengths = rng.integers(6, 30, size=n)
    tokens = rng.integers(0, 2**48, size=n)
    return [f"tweet {i}: " + " ".join(words[rng.integers(0, len(words), size=k)]) + f" https://t.co/{tokens[i]:012x}"
            for i, k in enumerate(lengths)]


def make_handmade_dataset(data_dir: Path, name: str = "handmade", n_rows: int = 300, seed: int = 0,
                          deleted_rows: tuple[int, ...] = (3, 7)) -> Dataset:
    """A dataset folder with one scope's CDN files and pipeline-only files beside them."""
    rng = np.random.default_rng(seed)
    root = Path(data_dir) / name
    for sub in ("embeddings", "umaps", "clusters", "scopes", "links"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    texts = synthetic_texts(n_rows, seed)
    ids = [str(1_800_000_000_000_000_000 + i) for i in range(n_rows)]
    created = pd.date_range("2024-01-01", periods=n_rows, freq="h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    inp = pd.DataFrame({
        "id": ids, "text": texts, "created_at": list(created), "username": "curator",
        "display_name": "The Curator", "favorites": rng.integers(0, 50, n_rows),
        "retweets": rng.integers(0, 10, n_rows), "replies": rng.integers(0, 5, n_rows),
        "tweet_type": "tweet", "urls_json": "[]", "media_urls_json": "[]", "archive_source": "x_archive",
    })
    write_parquet(inp, root / "input.parquet")
    atomic_write_json(root / "meta.json", {
        "id": name, "length": n_rows, "columns": list(inp.columns), "text_column": "text",
        "input_fingerprint": "sha256:" + "0" * 16, "account": {"username": "curator", "display_name": "The Curator"},
    })
    # pipeline-only artifacts (D2: never published)
    (root / "embeddings" / "embedding-001.h5").write_bytes(rng.bytes(4096))
    atomic_write_json(root / "embeddings" / "embedding-001.json", {
        "id": "embedding-001", "provider": "local", "model_id": "test-model", "dimensions": 16, "prefix": "",
        "inputs": {}})
    xy = rng.uniform(-1, 1, size=(n_rows, 2)).astype("float32")
    write_parquet(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}), root / "umaps" / "umap-001.parquet")
    atomic_write_json(root / "umaps" / "umap-001.json", {
        "id": "umap-001", "purpose": "display", "n_components": 2, "min_dist": 0.1,
        "min_values": xy.min(axis=0).astype(float).tolist(), "max_values": xy.max(axis=0).astype(float).tolist(),
        "params": {"n_neighbors": 15, "min_dist": 0.1}, "inputs": {"embedding_id": "embedding-001"}})
    (root / "umaps" / "umap-001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(64))
    k = 5
    cluster = rng.integers(0, k, n_rows)
    write_parquet(pd.DataFrame({"cluster": cluster, "raw_cluster": cluster}), root / "clusters" / "cluster-001.parquet")
    atomic_write_json(root / "clusters" / "cluster-001.json", {
        "id": "cluster-001", "umap_id": "umap-001", "n_clusters": k, "n_noise": 0,
        "params": {"min_cluster_size": 10, "min_samples": 5},
        "inputs": {"umap_id": "umap-001", "embedding_id": "embedding-001"}})
    labels = pd.DataFrame({
        "cluster": [f"0_{i}" for i in range(k)], "layer": 0, "label": [f"Topic {i}" for i in range(k)],
        "description": [f"about {WORDS[i]}" for i in range(k)],
        "hull": [[[0.0, 0.0], [0.1, 0.2], [0.2, 0.0]]] * k, "count": np.bincount(cluster, minlength=k),
        "parent_cluster": None, "children": [[] for _ in range(k)],
        "centroid_x": 0.0, "centroid_y": 0.0,
        "indices": [np.flatnonzero(cluster == i).tolist() for i in range(k)], "topic_specificity": 0.5,
    })
    write_parquet(labels, root / "clusters" / "toponymy-001.parquet")
    atomic_write_json(root / "clusters" / "toponymy-001.json", {
        "id": "toponymy-001", "cluster_id": "cluster-001", "num_layers": 1, "n_clusters": k,
        "inputs": {"cluster_id": "cluster-001"}})
    (root / "clusters" / "toponymy-001.json.bak").write_text("{}")
    # the scope: serving rows with tombstoned rows blanked
    deleted = np.zeros(n_rows, dtype=bool)
    deleted[list(deleted_rows)] = True
    serving = pd.DataFrame({
        "id": ids, "ls_index": np.arange(n_rows), "x": xy[:, 0], "y": xy[:, 1],
        "cluster": [f"0_{c}" for c in cluster], "raw_cluster": [str(c) for c in cluster],
        "label": [f"Topic {c}" for c in cluster],
        "deleted": deleted, "tile_index_64": 0, "tile_index_128": 0,
        "text": np.where(deleted, "", np.array(texts, dtype=object)),
        "created_at": list(created), "username": np.where(deleted, "", "curator"),
        "display_name": np.where(deleted, "", "The Curator"), "tweet_type": "tweet",
        "favorites": inp["favorites"], "retweets": inp["retweets"], "replies": inp["replies"],
        "is_reply": False, "is_retweet": False, "is_like": False,
        "urls_json": "[]", "media_urls_json": "[]", "archive_source": "x_archive",
    })
    write_parquet(serving, root / "scopes" / "scopes-001-input.parquet", row_group_size=max(1, n_rows // 4))
    write_parquet(serving[["x", "y", "cluster", "raw_cluster", "label", "deleted", "tile_index_64", "tile_index_128", "ls_index"]],
                  root / "scopes" / "scopes-001.parquet")
    scope_uid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    atomic_write_json(root / "scopes" / "scopes-001.json", {
        "id": "scopes-001", "scope_uid": scope_uid, "lancedb_table_id": f"{name}__{scope_uid}",
        "embedding_id": "embedding-001", "umap_id": "umap-001", "cluster_id": "cluster-001",
        "labels_id": "toponymy-001", "hierarchical_labels": True,
        "label": "Hand-made", "description": "a hand-made scope", "created_at": "2026-01-01T00:00:00Z",
        "rows": n_rows,
        "cluster_labels_lookup": [{"cluster": f"0_{i}", "label": f"Topic {i}"} for i in range(k)],
        "inputs": {"embedding_id": "embedding-001", "umap_id": "umap-001", "cluster_id": "cluster-001",
                   "labels_id": "toponymy-001"}})
    atomic_write_json(root / "tombstones.json", {"dataset": name, "deleted": list(deleted_rows)})
    edges = pd.DataFrame({"edge_type": ["reply"], "src_tweet_id": [ids[1]], "dst_tweet_id": [ids[0]],
                          "src_ls_index": [1], "dst_ls_index": [0], "internal_target": [True],
                          "source_url": [None]})
    write_parquet(edges, root / "links" / "edges.parquet")
    write_parquet(pd.DataFrame({"ls_index": [0, 1], "tweet_id": ids[:2], "thread_root_id": [ids[0]] * 2,
                                "thread_depth": [0, 1], "thread_size": [2, 2]}),
                  root / "links" / "node_link_stats.parquet")
    atomic_write_json(root / "links" / "meta.json", {"edges": 1, "schema_version": "1"})
    return Workspace(data_dir).dataset(name)


def no_gate(dataset, scope_id):
    """A validator stand-in for the hand-made dataset (the real validator is tested on the fixture)."""
    return []


@contextlib.contextmanager
def moto_s3(bucket: str | None = "cdn"):
    """A moto S3 server on 127.0.0.1 (ephemeral port); yields (endpoint_url, env)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log in test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing-access", "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
           "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        if bucket:
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
            s3.create_bucket(Bucket=bucket)
        yield endpoint, env
    finally:
        server.stop()


def s3_client(endpoint: str, env: dict):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def read_json_bytes(data: bytes) -> dict:
    return json.loads(data)


# Fixtures shared by the publish test modules (imported there by name).
@pytest.fixture(scope="module")
def moto():
    with moto_s3(bucket=None) as server:
        yield server


@pytest.fixture
def bucket(moto):
    endpoint, env = moto
    name = f"cdn-{uuid.uuid4().hex[:10]}"
    s3_client(endpoint, env).create_bucket(Bucket=name)
    return name


def whole_bucket_hits(s3, bucket: str, needles: list[str]) -> list[str]:
    """Every place in the WHOLE bucket that still holds one of ``needles``: raw bytes of every
    object, and every cell (lists flattened, cast to text) of every parquet column."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    hits = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            hits += [f"{obj['Key']} (raw bytes)" for n in needles if n.encode() in data]
            if not obj["Key"].endswith(".parquet"):
                continue
            table = pq.read_table(io.BytesIO(data))
            for name in table.column_names:
                col = table[name].combine_chunks()
                while pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
                    col = col.flatten()
                try:
                    text = pc.cast(col, pa.string())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    text = pa.array([str(v) for v in col.to_pylist()], pa.string())
                for n in needles:
                    if pc.any(pc.fill_null(pc.match_substring(text, n), False)).as_py():
                        hits.append(f"{obj['Key']} column {name}")
    return hits


def add_scope_copy(dataset: Dataset, source: str = "scopes-001", new: str = "scopes-002") -> str:
    """A second scope of the dataset: the files of ``source`` under a new id and a new scope_uid."""
    import shutil

    root = dataset.path / "scopes"
    for suffix in ("-input.parquet", ".parquet"):
        shutil.copyfile(root / f"{source}{suffix}", root / f"{new}{suffix}")
    side = json.loads((root / f"{source}.json").read_text())
    uid = str(uuid.uuid4())
    side.update(id=new, scope_uid=uid, lancedb_table_id=f"{dataset.name}__{uid}")
    atomic_write_json(root / f"{new}.json", side)
    return new
