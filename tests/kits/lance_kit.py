"""Helpers for the LanceDB tests (no tests here): a hand-made scope folder and a LanceDB Cloud stub.

The hand-made scope lets the export be tested at sizes the sample cannot reach (IVF_PQ needs
>= 256 rows) with vectors whose nearest neighbours are known.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pyarrow as pa

WORDS = ["garden", "compiler", "violin", "glacier", "harbor", "lantern", "meteor", "orchard"]


def make_scope(tmp_path, *, name="handmade", n=600, dim=64, n_clusters=6, deleted_every=50, seed=0):
    """A dataset folder with one scope (``scopes-001``) and return (dataset, vectors, serving frame).

    Row i belongs to HDBSCAN cluster ``k = i % n_clusters``, serving ``cluster`` ``"0_<k>"`` (its lookup
    id, as the scope stage writes it); vectors are cluster centre + noise, L2-normalised.
    Every ``deleted_every``-th row is a tombstone (blank text, deleted=true). Text i contains
    ``uniqueword{i}`` and the cluster's topic word.
    """
    from pipeline.core.workspace import Dataset, atomic_write_json, write_parquet
    from pipeline.serving.contracts import arrow_schema_for, normalize_serving_types

    rng = np.random.default_rng(seed)
    root = tmp_path / "data" / name
    (root / "scopes").mkdir(parents=True)
    cluster = np.arange(n) % n_clusters
    centres = rng.normal(size=(n_clusters, dim))
    vectors = centres[cluster] + 0.35 * rng.normal(size=(n, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    deleted = np.zeros(n, dtype=bool)
    if deleted_every:
        deleted[::deleted_every] = True
    text = [f"tweet {i} about {WORDS[c % len(WORDS)]} uniqueword{i}" for i, c in enumerate(cluster)]
    df = pd.DataFrame({
        "id": [str(10**18 + i) for i in range(n)],
        "ls_index": np.arange(n, dtype=np.int64),
        "x": rng.uniform(-1, 1, n).astype(np.float32),
        "y": rng.uniform(-1, 1, n).astype(np.float32),
        "cluster": [f"0_{c}" for c in cluster],
        "raw_cluster": [str(c) for c in cluster],
        "label": [f"topic {c}" for c in cluster],
        "deleted": deleted,
        "tile_index_64": np.zeros(n, dtype=np.int64),
        "tile_index_128": np.zeros(n, dtype=np.int64),
        "text": ["" if d else t for d, t in zip(deleted, text)],
        "created_at": ["2024-01-01T00:00:00Z"] * n,
        "username": [None if d else "someone" for d in deleted],
        "display_name": [None if d else "Some One" for d in deleted],
        "tweet_type": ["tweet"] * n,
        "favorites": np.zeros(n, dtype=np.int64),
        "retweets": np.zeros(n, dtype=np.int64),
        "replies": np.zeros(n, dtype=np.int64),
        "is_reply": np.zeros(n, dtype=bool),
        "is_retweet": np.zeros(n, dtype=bool),
        "is_like": np.zeros(n, dtype=bool),
        "urls_json": ["[]"] * n,
        "media_urls_json": ["[]"] * n,
        "archive_source": ["x_archive"] * n,
    })
    df = normalize_serving_types(df)
    write_parquet(pa.Table.from_pandas(df, schema=arrow_schema_for(), preserve_index=False),
                  root / "scopes" / "scopes-001-input.parquet")
    atomic_write_json(root / "meta.json", {"id": name, "length": n, "text_column": "text",
                                           "columns": ["id", "text", "created_at"]})
    write_parquet(pd.DataFrame({"id": df["id"], "text": text}), root / "input.parquet")
    scope_uid = str(uuid.uuid4())
    atomic_write_json(root / "scopes" / "scopes-001.json", {
        "id": "scopes-001", "label": "Hand-made", "description": "test scope",
        "embedding_id": "embedding-001", "umap_id": "umap-001", "cluster_id": "cluster-001",
        "cluster_labels_id": "cluster-001-labels-default", "hierarchical_labels": False,
        "cluster_labels_lookup": [{"cluster": f"0_{c}", "label": f"topic {c}"} for c in range(n_clusters)],
        "scope_uid": scope_uid, "lancedb_table_id": f"{name}__{scope_uid}", "rows": n,
        "created_at": "2026-01-01T00:00:00Z",
    })
    return Dataset(root), vectors, df


def use_vectors(monkeypatch, vectors):
    """Serve ``vectors`` as the scope's embedding (the hand-made folder has no h5)."""
    import pipeline.serving.lance_export as lx

    monkeypatch.setattr(lx, "_load_vectors", lambda dataset, embedding_id: vectors)


# --------------------------------------------------------------------------- LanceDB Cloud stub

def _json_type(t: pa.DataType) -> dict:
    """Arrow type -> the JSON form LanceDB's remote client parses in a describe response."""
    if pa.types.is_fixed_size_list(t):
        return {"type": "fixed_size_list", "length": t.list_size,
                "fields": [{"name": "item", "type": _json_type(t.value_type), "nullable": True}]}
    if pa.types.is_timestamp(t):
        return {"type": f"timestamp:{t.unit}:-"}
    names = {pa.string(): "string", pa.large_string(): "large_string", pa.int64(): "int64",
             pa.int32(): "int32", pa.float32(): "float", pa.float64(): "double", pa.bool_(): "bool"}
    return {"type": names[t]}


class CloudStub:
    """A tiny LanceDB Cloud on 127.0.0.1 that records requests and keeps created tables' rows.

    It answers ``create`` (Arrow IPC body), ``describe``, ``count_rows``, ``insert``/``merge_insert``
    (rows appended; enough for a smoke test), index calls (200), and namespace calls.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.tables: dict[str, pa.Table] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("content-length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self):
                body = self._body()
                status, payload = stub.answer(self.command, self.path, body)
                stub.requests.append({"method": self.command, "path": self.path,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                arrow = data[:6] == b"ARROW1"
                self.send_response(status)
                self.send_header("content-type", "application/vnd.apache.arrow.file" if arrow else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, method: str, path: str, body: bytes):
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "namespace":
            if parts[-1] != "list":
                return 200, {}
            prefix = f"{parts[2]}$"
            return 200, {"namespaces": [], "tables": [t[len(prefix):] for t in self.tables if t.startswith(prefix)]}
        if len(parts) < 4 or parts[1] != "table":
            return 200, {}
        table, op = parts[2], parts[3]
        if op == "create":
            rows = pa.ipc.open_stream(io.BytesIO(body)).read_all() if body else None
            if rows is not None and ("mode=overwrite" in path or table not in self.tables):
                self.tables[table] = rows
            return 200, {"version": 1}
        if op in ("insert", "merge_insert"):
            rows = pa.ipc.open_stream(io.BytesIO(body)).read_all()
            self.tables[table] = pa.concat_tables([self.tables[table], rows.cast(self.tables[table].schema)])
            return 200, {"version": 2, "num_inserted_rows": rows.num_rows, "num_updated_rows": 0,
                         "num_deleted_rows": 0}
        if table not in self.tables:
            return 404, {"message": f"table {table} not found"}
        if op == "describe":
            fields = [{"name": f.name, "type": _json_type(f.type), "nullable": f.nullable}
                      for f in self.tables[table].schema]
            return 200, {"version": 1, "schema": {"fields": fields}}
        if op == "count_rows":
            return 200, str(self.tables[table].num_rows).encode()
        if op == "index":
            return 200, {"indexes": []}
        if op == "query":  # always an empty result (filters are not evaluated) as an Arrow IPC file
            sink = io.BytesIO()
            with pa.ipc.new_file(sink, self.tables[table].schema):
                pass
            return 200, sink.getvalue()
        return 200, {}

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
