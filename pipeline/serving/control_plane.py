"""The hosted control plane: six ``_meta`` tables in LanceDB (spec "Hosted-mode: LanceDB control
plane tables", §C1) next to the scope tables, on the same connection.

Table names. LanceDB 0.40 refuses ``/`` in a table name ("_meta/scopes" is invalid), but it has
namespaces, on folders, ``s3://`` and Cloud alike. So spec table ``_meta/<name>`` is LanceDB table
``<name>`` inside namespace ``["_meta"]`` — :func:`meta_table_location` is the one place that says
so. On a folder or bucket the namespace is kept in a ``__manifest`` table at the root; on Cloud the
REST id is ``_meta$<name>``.

Writes are upserts with ``merge_insert`` on the spec's keys (datasets by ``slug``, scopes by ``id`` =
``scope_uid``, users by ``external_id``, tags by ``(user_id, scope_id, ls_index, tag)``, artifacts
by ``(scope_id, cdn_path)``, jobs by ``id``); a row's ``id`` and ``created_at`` survive an upsert.
Every ``where`` clause is built with :func:`sql_literal`. Timestamps are UTC, stored tz-naive
(``timestamp[us]`` as the spec says).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from typing import Any, Iterable, Optional

import numpy as np
import pyarrow as pa

from pipeline import __version__
from pipeline.core.errors import ControlPlaneError
from pipeline.core.workspace import LABELS_ID_RE, Dataset, dumps_json
from pipeline.serving.lance_target import resolve_target

META_NAMESPACE = "_meta"
TS = pa.timestamp("us")

#: The spec's columns and Arrow types, in spec order.
SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema([
        ("id", pa.string()), ("external_id", pa.string()), ("provider", pa.string()),
        ("username", pa.string()), ("email", pa.string()), ("created_at", TS),
    ]),
    "datasets": pa.schema([
        ("id", pa.string()), ("slug", pa.string()), ("owner_id", pa.string()), ("length", pa.int32()),
        ("text_column", pa.string()), ("columns", pa.string()), ("column_metadata", pa.string()),
        ("ls_version", pa.string()), ("created_at", TS), ("updated_at", TS),
    ]),
    "scopes": pa.schema([
        ("id", pa.string()), ("dataset_id", pa.string()), ("slug", pa.string()), ("label", pa.string()),
        ("description", pa.string()), ("embedding_id", pa.string()), ("umap_id", pa.string()),
        ("cluster_id", pa.string()), ("cluster_labels_id", pa.string()), ("hierarchical_labels", pa.bool_()),
        ("cluster_labels_lookup", pa.string()), ("embedding_meta", pa.string()), ("umap_meta", pa.string()),
        ("cluster_meta", pa.string()), ("cluster_labels_meta", pa.string()), ("lancedb_table_id", pa.string()),
        ("rows", pa.int32()), ("parquet_size", pa.int64()), ("ls_version", pa.string()), ("created_at", TS),
    ]),
    "scope_artifacts": pa.schema([
        ("id", pa.string()), ("scope_id", pa.string()), ("artifact_type", pa.string()),
        ("cdn_path", pa.string()), ("byte_size", pa.int64()), ("checksum", pa.string()), ("created_at", TS),
    ]),
    "tags": pa.schema([
        ("id", pa.string()), ("user_id", pa.string()), ("dataset_id", pa.string()), ("scope_id", pa.string()),
        ("ls_index", pa.int32()), ("tag", pa.string()), ("created_at", TS),
    ]),
    "jobs": pa.schema([
        ("id", pa.string()), ("dataset_id", pa.string()), ("user_id", pa.string()), ("job_type", pa.string()),
        ("status", pa.string()), ("config", pa.string()), ("output_artifact_id", pa.string()),
        ("error", pa.string()), ("started_at", TS), ("completed_at", TS),
    ]),
}

#: Scalar indices per the spec's "Index" column.
INDICES: dict[str, list[tuple[str, str]]] = {
    "users": [("id", "BTREE"), ("external_id", "BTREE")],
    "datasets": [("id", "BTREE"), ("slug", "BTREE"), ("owner_id", "BTREE")],
    "scopes": [("id", "BTREE"), ("dataset_id", "BTREE"), ("slug", "BTREE"), ("lancedb_table_id", "BTREE")],
    "scope_artifacts": [("id", "BTREE"), ("scope_id", "BTREE"), ("artifact_type", "BITMAP")],
    "tags": [("id", "BTREE"), ("user_id", "BTREE"), ("dataset_id", "BTREE"), ("scope_id", "BTREE"),
             ("ls_index", "BTREE"), ("tag", "BITMAP")],
    "jobs": [("id", "BTREE"), ("dataset_id", "BTREE"), ("user_id", "BTREE"), ("job_type", "BITMAP"),
             ("status", "BITMAP")],
}

#: Upsert keys (spec: "Unique via merge_insert(...)"; artifacts have none in the spec: one row per file).
MERGE_KEYS: dict[str, list[str]] = {
    "users": ["external_id"],
    "datasets": ["slug"],
    "scopes": ["id"],
    "scope_artifacts": ["scope_id", "cdn_path"],
    "tags": ["user_id", "scope_id", "ls_index", "tag"],
    "jobs": ["id"],
}

ARTIFACT_TYPES = ("scope_parquet", "scope_input_parquet", "cluster_labels_parquet", "cluster_labels_json",
                  "edges_parquet", "node_stats_parquet", "links_meta_json")
JOB_TYPES = ("ingest", "embed", "umap", "cluster", "label", "toponymy", "scope", "build_links",
             "lance_export", "publish")
JOB_STATUSES = ("pending", "running", "completed", "failed")
MAX_SCAN_ROWS = 100_000


# --------------------------------------------------------------------------- values

def sql_literal(value: Any) -> str:
    """``value`` as a SQL literal for a LanceDB (DataFusion) filter.

    Strings are single-quoted with quotes doubled (DataFusion treats backslash literally);
    control characters are refused rather than escaped. Booleans, ints and finite floats are
    written as numbers. ``None`` is refused: write ``IS NULL`` explicitly.
    """
    if value is None:
        raise ControlPlaneError("sql_literal(None): compare with IS NULL instead")
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ControlPlaneError(f"sql_literal: {value!r} is not a finite number")
        return repr(float(value))
    if isinstance(value, str):
        bad = [c for c in value if ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029"]
        if bad:
            raise ControlPlaneError(
                f"sql_literal: value {value[:40]!r} contains control character(s) {sorted(set(map(hex, map(ord, bad))))}"
            )
        return "'" + value.replace("'", "''") + "'"
    raise ControlPlaneError(f"sql_literal: cannot use a {type(value).__name__} in a filter")


def where_equal(**values: Any) -> str:
    """``a = 'x' AND b = 2`` from keyword values, every value through :func:`sql_literal`."""
    for column in values:
        if not column.isidentifier():
            raise ControlPlaneError(f"{column!r} is not a column name")
    return " AND ".join(f"{column} = {sql_literal(v)}" for column, v in values.items())


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(timestamp: Optional[float] = None) -> str:
    """A ULID: 48-bit milliseconds + 80 random bits, 26 Crockford base-32 chars (sorts by time)."""
    ms = int((time.time() if timestamp is None else timestamp) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def utc_now() -> _dt.datetime:
    """Now in UTC, tz-naive (the tables store ``timestamp[us]`` without a zone)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def _timestamp(value: Any) -> Optional[_dt.datetime]:
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        ts = value
    else:
        ts = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if ts.tzinfo is not None:
        ts = ts.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return ts


def _json_text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value if isinstance(value, str) else dumps_json(value, indent=None)


# --------------------------------------------------------------------------- tables

def meta_table_location(name: str) -> tuple[str, list[str]]:
    """Spec table ``_meta/<name>`` -> (LanceDB table name, namespace path)."""
    if name not in SCHEMAS:
        raise ControlPlaneError(f"unknown control-plane table {name!r} (known: {', '.join(SCHEMAS)})")
    return name, [META_NAMESPACE]


class ControlPlane:
    """The ``_meta`` tables on one LanceDB connection; tables are created on first use (idempotent)."""

    def __init__(self, conn, target=None):
        self.conn = conn
        self._table_options = target.table_options() if target is not None else {}
        self._tables: dict[str, Any] = {}
        self._namespace_ready = False

    def ensure(self) -> list[str]:
        """Create the namespace and all six tables if missing; check existing ones' schemas."""
        for name in SCHEMAS:
            self.table(name)
        return list(SCHEMAS)

    def _ensure_namespace(self) -> None:
        if self._namespace_ready:
            return
        if META_NAMESPACE not in list(self.conn.list_namespaces().namespaces or []):
            self.conn.create_namespace([META_NAMESPACE], mode="exist_ok")
        self._namespace_ready = True

    def table(self, name: str):
        if name in self._tables:
            return self._tables[name]
        self._ensure_namespace()
        table_name, namespace = meta_table_location(name)
        # Open an existing table explicitly: create_table(exist_ok=True) on an existing namespaced
        # table drops the storage options on S3 in LanceDB 0.40 ("Failed to resolve region").
        if table_name in self._existing_tables(namespace):
            table = self.conn.open_table(table_name, namespace_path=namespace, **self._table_options)
        else:
            table = self.conn.create_table(table_name, schema=SCHEMAS[name], exist_ok=True,
                                           namespace_path=namespace, **self._table_options)
        _check_schema(name, table.schema)
        self._tables[name] = table
        return table

    def _existing_tables(self, namespace: list[str]) -> set[str]:
        names: set[str] = set()
        token = None
        while True:
            page = self.conn.list_tables(namespace_path=namespace, page_token=token)
            names.update(page.tables or [])
            token = page.page_token
            if not token:
                return names

    def rows(self, name: str, where: Optional[str] = None, limit: int = MAX_SCAN_ROWS) -> list[dict]:
        query = self.table(name).search()
        if where:
            query = query.where(where)
        return query.limit(limit).to_list()

    def first(self, name: str, where: str) -> Optional[dict]:
        found = self.rows(name, where, limit=1)
        return found[0] if found else None

    def upsert(self, name: str, records: list[dict]) -> None:
        """``merge_insert`` on the table's key: update matching rows, insert the others."""
        if not records:
            return
        schema = SCHEMAS[name]
        data = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in records], schema=schema)
        table = self.table(name)
        table.merge_insert(MERGE_KEYS[name]).when_matched_update_all().when_not_matched_insert_all().execute(data)
        self.ensure_indices(name)

    def ensure_indices(self, name: str) -> list[str]:
        """Build the spec's scalar indices that are missing, once the table holds rows."""
        from lancedb.index import Bitmap, BTree

        table = self.table(name)
        have = {tuple(i.columns) for i in table.list_indices()}
        missing = [(c, kind) for c, kind in INDICES[name] if (c,) not in have]
        if not missing or table.count_rows() == 0:
            return []
        for column, kind in missing:
            table.create_index(column, config=BTree() if kind == "BTREE" else Bitmap(), replace=True)
        return [c for c, _ in missing]


def _check_schema(name: str, actual: pa.Schema) -> None:
    expected = SCHEMAS[name]
    have = [(f.name, f.type) for f in actual]
    want = [(f.name, f.type) for f in expected]
    if have != want:
        raise ControlPlaneError(
            f"control-plane table _meta/{name} has columns {have}, expected {want}; "
            "it was created by another version — migrate or drop it"
        )


def open_control_plane(dataset: Optional[Dataset] = None, uri: Optional[str] = None, **connection) -> ControlPlane:
    """The control plane at ``uri`` (same resolution as the scope tables: :func:`resolve_target`)."""
    target = resolve_target(dataset, uri, **connection)
    return ControlPlane(target.connect(), target)


# --------------------------------------------------------------------------- registration

def _ls_version() -> str:
    return f"tweetscope-studio {__version__}"


def register_dataset(plane: ControlPlane, dataset: Dataset, *, owner_id: Optional[str] = None) -> str:
    """Upsert ``_meta/datasets`` for ``dataset`` (keyed by slug = dataset name); returns the row id."""
    import pyarrow.parquet as pq

    meta = dataset.meta()
    slug = dataset.name
    existing = plane.first("datasets", where_equal(slug=slug))
    columns = meta.get("columns")
    if not columns and dataset.input_path.is_file():
        columns = pq.read_schema(dataset.input_path).names
    length = meta.get("length")
    if length is None and dataset.input_path.is_file():
        length = pq.read_metadata(dataset.input_path).num_rows
    now = utc_now()
    row = {
        "id": existing["id"] if existing else new_ulid(),
        "slug": slug,
        "owner_id": owner_id if owner_id is not None else (existing or {}).get("owner_id"),
        "length": int(length or 0),
        "text_column": meta.get("text_column", "text"),
        "columns": _json_text(list(columns or [])),
        "column_metadata": _json_text(meta.get("column_metadata", {})),
        "ls_version": _ls_version(),
        "created_at": existing["created_at"] if existing else now,
        "updated_at": now,
    }
    plane.upsert("datasets", [row])
    return row["id"]


def _sidecar_or_empty(dataset: Dataset, artifact_id: Optional[str]) -> dict:
    if not artifact_id:
        return {}
    try:
        return dataset.sidecar(artifact_id)
    except Exception:  # lineage metadata is descriptive; a missing sidecar must not block registration
        return {}


def _pick(d: dict, *keys: str) -> dict:
    return {k: d[k] for k in keys if k in d}


def umap_meta(umap: dict) -> dict:
    """Spec "neighbors, min_dist, min/max values" from a UMAP sidecar (which says ``min_values``/``max_values``)."""
    params = umap.get("params", {})
    meta = {**_pick(umap, "n_neighbors", "min_dist", "n_components"), **_pick(params, "n_neighbors", "min_dist")}
    for spec_key, sidecar_key in (("min", "min_values"), ("max", "max_values")):
        value = umap.get(sidecar_key, umap.get(spec_key))
        if value is not None:
            meta[spec_key] = value
    return meta


def cluster_labels_meta(labels_id: Optional[str], labels: dict, lookup: Any) -> dict:
    """Spec "type, num_layers, num_clusters"; label sidecars say ``n_clusters``, flat labels have one layer."""
    toponymy = bool(labels_id and str(labels_id).startswith("toponymy-"))
    n_clusters = labels.get("n_clusters", labels.get("num_clusters"))
    if n_clusters is None and isinstance(lookup, list):
        n_clusters = len(lookup)
    return {"type": "toponymy" if toponymy else "default",
            "num_layers": labels.get("num_layers", 1 if not toponymy else None),
            "num_clusters": n_clusters}


def register_scope(plane: ControlPlane, dataset: Dataset, scope_id: str, *,
                   dataset_row_id: Optional[str] = None) -> str:
    """Upsert ``_meta/scopes`` for a scope (``id`` = its ``scope_uid``); returns the scope_uid."""
    import pyarrow.parquet as pq

    scope = dataset.sidecar(scope_id)
    scope_uid = scope.get("scope_uid")
    if not scope_uid:
        raise ControlPlaneError(f"{dataset.name}/{scope_id} has no scope_uid; re-create the scope")
    if dataset_row_id is None:
        found = plane.first("datasets", where_equal(slug=dataset.name))
        dataset_row_id = found["id"] if found else register_dataset(plane, dataset)
    existing = plane.first("scopes", where_equal(id=scope_uid))
    input_path = dataset.artifact_path(scope_id, "-input.parquet")
    rows = scope.get("rows")
    if rows is None and input_path.is_file():
        rows = pq.read_metadata(input_path).num_rows
    embedding = _sidecar_or_empty(dataset, scope.get("embedding_id"))
    umap = _sidecar_or_empty(dataset, scope.get("umap_id"))
    cluster = _sidecar_or_empty(dataset, scope.get("cluster_id"))
    labels_id = scope.get("cluster_labels_id") or scope.get("labels_id")
    labels = _sidecar_or_empty(dataset, labels_id if labels_id and LABELS_ID_RE.match(labels_id) else None)
    lookup = scope.get("cluster_labels_lookup")
    row = {
        "id": scope_uid,
        "dataset_id": dataset_row_id,
        "slug": scope_id,
        "label": scope.get("label"),
        "description": scope.get("description"),
        "embedding_id": scope.get("embedding_id"),
        "umap_id": scope.get("umap_id"),
        "cluster_id": scope.get("cluster_id"),
        "cluster_labels_id": labels_id,
        "hierarchical_labels": bool(scope.get("hierarchical_labels", labels_id is not None and str(labels_id).startswith("toponymy-"))),
        "cluster_labels_lookup": _json_text(lookup) if lookup is not None else None,
        "embedding_meta": _json_text(_pick(embedding, "model_id", "dimensions", "prefix", "provider")),
        "umap_meta": _json_text(umap_meta(umap)),
        "cluster_meta": _json_text({**_pick(cluster, "n_clusters", "n_noise"),
                                    **_pick(cluster.get("params", {}), "min_cluster_size", "min_samples")}),
        "cluster_labels_meta": _json_text(cluster_labels_meta(labels_id, labels, lookup)),
        "lancedb_table_id": scope.get("lancedb_table_id"),
        "rows": int(rows or 0),
        "parquet_size": input_path.stat().st_size if input_path.is_file() else None,
        "ls_version": _ls_version(),
        "created_at": (existing or {}).get("created_at") or _timestamp(scope.get("created_at")) or utc_now(),
    }
    plane.upsert("scopes", [row])
    return scope_uid


def register_artifacts(plane: ControlPlane, scope_uid: str, artifacts: Iterable[dict]) -> list[str]:
    """Upsert ``_meta/scope_artifacts`` rows (``artifact_type, cdn_path, byte_size, checksum``) of a scope."""
    artifacts = list(artifacts)
    existing = {r["cdn_path"]: r for r in plane.rows("scope_artifacts", where_equal(scope_id=scope_uid))}
    now = utc_now()
    records = []
    for a in artifacts:
        if a.get("artifact_type") not in ARTIFACT_TYPES:
            raise ControlPlaneError(
                f"artifact_type {a.get('artifact_type')!r} is not one of {', '.join(ARTIFACT_TYPES)}"
            )
        if not a.get("cdn_path"):
            raise ControlPlaneError("every artifact needs a cdn_path")
        old = existing.get(a["cdn_path"])
        records.append({
            "id": old["id"] if old else new_ulid(),
            "scope_id": scope_uid,
            "artifact_type": a["artifact_type"],
            "cdn_path": a["cdn_path"],
            "byte_size": int(a["byte_size"]) if a.get("byte_size") is not None else None,
            "checksum": a.get("checksum"),
            "created_at": old["created_at"] if old else now,
        })
    plane.upsert("scope_artifacts", records)
    return [r["id"] for r in records]


def scope_artifact_rows(dataset: Dataset, scope_id: str, prefix: Optional[str] = None) -> list[dict]:
    """The scope's CDN files (spec D1) that exist locally, as rows for :func:`register_artifacts`.

    ``cdn_path`` is ``<prefix or dataset>/<path in dataset>``; ``checksum`` is ``sha256:<hex>``.
    """
    scope = dataset.sidecar(scope_id)
    labels_id = scope.get("cluster_labels_id")
    candidates = [
        ("scope_parquet", dataset.artifact_path(scope_id, ".parquet")),
        ("scope_input_parquet", dataset.artifact_path(scope_id, "-input.parquet")),
        ("edges_parquet", dataset.links_edges_path),
        ("node_stats_parquet", dataset.links_node_stats_path),
        ("links_meta_json", dataset.links_meta_path),
    ]
    if labels_id and LABELS_ID_RE.match(labels_id):  # toponymy or a cluster's default labels
        candidates += [("cluster_labels_parquet", dataset.label_file(labels_id, ".parquet")),
                       ("cluster_labels_json", dataset.label_file(labels_id, ".json"))]
    root = prefix.strip("/") if prefix else dataset.name
    rows = []
    for kind, path in candidates:
        if not path.is_file():
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        rel = dataset.relpath(path)
        rows.append({"artifact_type": kind, "cdn_path": f"{root}/{rel}", "byte_size": path.stat().st_size,
                     "checksum": f"sha256:{digest.hexdigest()}"})
    return rows


def record_job(
    plane: ControlPlane,
    *,
    job_type: Optional[str] = None,
    status: str,
    job_id: Optional[str] = None,
    dataset_id: Optional[str] = None,
    user_id: Optional[str] = None,
    config: Any = None,
    output_artifact_id: Optional[str] = None,
    error: Optional[str] = None,
    started_at: Any = None,
    completed_at: Any = None,
) -> str:
    """Insert a job (no ``job_id``) or update one; fields not given keep their stored value."""
    if status not in JOB_STATUSES:
        raise ControlPlaneError(f"job status {status!r} is not one of {', '.join(JOB_STATUSES)}")
    existing = plane.first("jobs", where_equal(id=job_id)) if job_id else None
    if job_id and existing is None:
        raise ControlPlaneError(f"no job {job_id!r} in _meta/jobs")
    row = dict(existing or {"id": new_ulid()})
    given = {
        "job_type": job_type, "dataset_id": dataset_id, "user_id": user_id,
        "config": _json_text(config), "output_artifact_id": output_artifact_id, "error": error,
        "started_at": _timestamp(started_at), "completed_at": _timestamp(completed_at),
    }
    row.update({k: v for k, v in given.items() if v is not None})
    row["status"] = status
    if row.get("job_type") not in JOB_TYPES:
        raise ControlPlaneError(f"job_type {row.get('job_type')!r} is not one of {', '.join(JOB_TYPES)}")
    if status == "running" and not row.get("started_at"):
        row["started_at"] = utc_now()
    if status in ("completed", "failed") and not row.get("completed_at"):
        row["completed_at"] = utc_now()
    plane.upsert("jobs", [row])
    return row["id"]


def register_user(plane: ControlPlane, *, external_id: str, provider: str,
                  username: Optional[str] = None, email: Optional[str] = None) -> str:
    """Upsert ``_meta/users`` keyed by ``external_id``; returns the user id."""
    existing = plane.first("users", where_equal(external_id=external_id))
    row = {"id": existing["id"] if existing else new_ulid(), "external_id": external_id, "provider": provider,
           "username": username, "email": email,
           "created_at": existing["created_at"] if existing else utc_now()}
    plane.upsert("users", [row])
    return row["id"]


def upsert_tag(plane: ControlPlane, *, user_id: str, dataset_id: str, scope_id: str,
               ls_index: int, tag: str) -> str:
    """Upsert one ``_meta/tags`` row keyed by (user_id, scope_id, ls_index, tag); returns its id."""
    key = {"user_id": user_id, "scope_id": scope_id, "ls_index": int(ls_index), "tag": tag}
    existing = plane.first("tags", where_equal(**key))
    row = {**key, "id": existing["id"] if existing else new_ulid(), "dataset_id": dataset_id,
           "created_at": existing["created_at"] if existing else utc_now()}
    plane.upsert("tags", [row])
    return row["id"]


# --------------------------------------------------------------------------- queries (spec "Query patterns")

def find_dataset(plane: ControlPlane, slug: str) -> Optional[dict]:
    return plane.first("datasets", where_equal(slug=slug))


def find_scope(plane: ControlPlane, *, scope_uid: Optional[str] = None, dataset_id: Optional[str] = None,
               slug: Optional[str] = None) -> Optional[dict]:
    """A scope by ``scope_uid``, or by (``dataset_id``, ``slug``)."""
    if scope_uid is not None:
        return plane.first("scopes", where_equal(id=scope_uid))
    if dataset_id is None or slug is None:
        raise ControlPlaneError("find_scope needs scope_uid, or dataset_id and slug")
    return plane.first("scopes", where_equal(slug=slug, dataset_id=dataset_id))


def list_datasets(plane: ControlPlane, owner_id: Optional[str] = None) -> list[dict]:
    return plane.rows("datasets", where_equal(owner_id=owner_id) if owner_id is not None else None)


def list_scope_artifacts(plane: ControlPlane, scope_uid: str) -> list[dict]:
    return plane.rows("scope_artifacts", where_equal(scope_id=scope_uid))


def get_job(plane: ControlPlane, job_id: str) -> Optional[dict]:
    return plane.first("jobs", where_equal(id=job_id))


def job_config(row: dict) -> Any:
    return json.loads(row["config"]) if row.get("config") else None
