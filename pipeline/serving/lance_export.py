"""A scope's serving rows + embedding vectors -> one LanceDB table, with its indices (DESIGN §5 step 6).

One function, three targets, chosen by the URI:

* a local folder (the default: ``<dataset>/lancedb``),
* ``s3://bucket/prefix`` (R2 or any S3 endpoint; ``storage_options`` as Lance expects them),
* ``db://<database>`` — LanceDB Cloud (``api_key``/``region``/``host_override``).

Connection details default from the environment (``LANCEDB_URI``, ``LANCEDB_API_KEY``,
``LANCEDB_REGION``, ``LANCEDB_HOST_OVERRIDE``); the API key is never logged nor written.

The table is named by the scope JSON's ``lancedb_table_id`` (``<dataset>__<scope_uid>``) and holds
the scope's ``-input.parquet`` columns (``SERVING_COLUMNS``) plus ``vector`` (float32, fixed size).
**Tombstoned rows are not exported**: they hold no text and no meaningful vector, so leaving them
out means no vector, text or filter query can ever return one, whatever filter a reader forgets.
Their ``ls_index`` is simply absent from the table; the CDN parquet keeps the tombstone row.

Indices: IVF_PQ (cosine, ``sqrt(N)`` partitions) on ``vector``, BTREE on ``cluster``, FTS on
``text``. Below ``vector_index_min_rows`` rows (default: :func:`auto_vector_index_min_rows`,
100K rows of 256-d vectors, 25K of 1024-d) the vector index is skipped and searches are exact
scans — fast at that size, exact, and the export does not spend half a minute training PQ; never
below :data:`MIN_ROWS_FOR_PQ` (LanceDB would build an index holding zero rows). The result says
whether it was built (``vector_index``), from how many rows, and why not.

Each export is recorded locally in ``<dataset>/lancedb/exports.json`` (never in the scope JSON,
which is a published artifact).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator, Optional

import numpy as np
import pyarrow as pa

from pipeline.core.progress import Progress, null_progress
from pipeline.core.workspace import Dataset, atomic_write_json, read_json, utc_now_iso
from pipeline.serving import control_plane
from pipeline.serving.contracts import SERVING_COLUMNS, arrow_schema_for
from pipeline.serving.control_plane import sql_literal
from pipeline.serving.lance_target import LanceExportError, LanceTarget, redact_uri, resolve_target  # noqa: F401
from pipeline.stages.embed.stage import embedder_for, load_embeddings

VECTOR_COLUMN = "vector"
#: PQ trains 2**num_bits = 256 centroids per sub-vector; with fewer rows LanceDB 0.40 creates the
#: index but indexes none of the rows (``num_indexed_rows == 0``), so we skip it and say so.
MIN_ROWS_FOR_PQ = 256
#: Vector values (rows x dimensions) below which search is a flat scan: 100K rows of 256-d.
#: Flat top-10 on 2 shared cores (benchmarks/bench_lance.py --no-ivf, results/lance.json):
#: 256-d 23 ms at 50K, 36 ms at 100K, 91 ms at 212K; 1024-d 192 ms at 50K, 398 ms at 100K.
#: IVF_PQ answers in ~10 ms but took 33 s to build at 100K x 256.
FLAT_SEARCH_MAX_VALUES = 100_000 * 256
#: k-means training of the IVF partitions: LanceDB's defaults are 50 iterations on 256 rows per
#: partition. At 212K x 256 (realistic synthetic tweets) 10 iterations on 64 rows per partition
#: built in 13.1 s instead of 32.6 s with the same recall (top-10 at default query settings:
#: 0.57 vs 0.56 of results as similar as the exact 10th), measured in benchmarks/bench_lance.py.
IVF_MAX_ITERATIONS = 10
IVF_SAMPLE_RATE = 64
#: Rows per Arrow batch streamed into LanceDB (bounded memory, progress and cancel per batch).
WRITE_BATCH_ROWS = 8192
EXPORT_HISTORY = 200
TABLE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


# --------------------------------------------------------------------------- the table

def scope_table_name(dataset: Dataset, scope_id: str) -> str:
    """The scope's LanceDB table name (``lancedb_table_id`` of its JSON, fixed at scope creation)."""
    scope = dataset.sidecar(scope_id)
    name = scope.get("lancedb_table_id")
    if not name:
        raise LanceExportError(
            f"{dataset.name}/{scope_id} has no lancedb_table_id; re-create the scope with `tweetscope scope`"
        )
    if not TABLE_NAME_RE.match(name):
        raise LanceExportError(
            f"{dataset.name}/{scope_id}: lancedb_table_id {name!r} is not a valid LanceDB table name "
            "(letters, digits, '_', '-', '.')"
        )
    return name


def serving_schema(dim: int, columns: Optional[list[str]] = None) -> pa.Schema:
    """The table schema: the contract's types for ``columns`` (default SERVING_COLUMNS) + ``vector``."""
    contract = arrow_schema_for()
    if columns is not None:
        contract = pa.schema([contract.field(c) for c in columns])
    return pa.schema(
        [*contract, pa.field(VECTOR_COLUMN, pa.list_(pa.float32(), dim), nullable=False)],
        metadata={b"tweetscope": b"scope-table-v1"},
    )


def scope_rows(serving: pa.Table, embeddings: np.ndarray) -> tuple[pa.Table, dict]:
    """Pure: the rows to export — non-deleted serving rows with their vector (``embeddings[ls_index]``).

    Returns the table (contract types + ``vector``) and counts (rows, deleted, dimensions).
    """
    missing = [c for c in ("id", "ls_index", "cluster", "deleted", "text") if c not in serving.column_names]
    if missing:
        raise LanceExportError(f"scope input is missing column(s) {', '.join(missing)}; re-create the scope")
    columns = [c for c in SERVING_COLUMNS if c in serving.column_names]
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[1] == 0:
        raise LanceExportError(f"embeddings must be a 2-D array, got shape {embeddings.shape}")
    deleted = serving.column("deleted").to_numpy(zero_copy_only=False).astype(bool)
    kept = serving.select(columns).filter(pa.array(~deleted))
    ls_index = kept.column("ls_index").to_numpy(zero_copy_only=False).astype(np.int64)
    if len(ls_index) and (ls_index.min() < 0 or ls_index.max() >= len(embeddings)):
        raise LanceExportError(
            f"scope rows reference ls_index up to {int(ls_index.max())} but the embedding has "
            f"{len(embeddings)} rows; the scope and embedding do not belong together"
        )
    vectors = np.ascontiguousarray(embeddings[ls_index], dtype=np.float32)
    if not np.isfinite(vectors).all():
        bad = int((~np.isfinite(vectors).all(axis=1)).sum())
        raise LanceExportError(f"{bad} exported row(s) have non-finite embedding values; re-run embed")
    dim = int(embeddings.shape[1])
    schema = serving_schema(dim, columns)
    kept = kept.cast(pa.schema([schema.field(c) for c in columns]))
    vector_array = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim)
    table = kept.append_column(schema.field(VECTOR_COLUMN), vector_array).replace_schema_metadata(schema.metadata)
    counts = {"rows": table.num_rows, "deleted_skipped": int(deleted.sum()), "dimensions": dim}
    return table, counts


def _load_vectors(dataset: Dataset, embedding_id: str) -> np.ndarray:
    return load_embeddings(dataset, embedding_id)


def load_scope_rows(dataset: Dataset, scope_id: str) -> tuple[pa.Table, dict]:
    """Read the scope's ``-input.parquet`` and its embedding; return :func:`scope_rows` of them."""
    import pyarrow.parquet as pq

    scope = dataset.sidecar(scope_id)
    path = dataset.artifact_path(scope_id, "-input.parquet")
    if not path.is_file():
        raise LanceExportError(f"{dataset.name}/{scope_id} has no -input.parquet; re-create the scope")
    embedding_id = scope.get("embedding_id")
    if not embedding_id:
        raise LanceExportError(f"{dataset.name}/{scope_id} names no embedding_id; re-create the scope")
    table, counts = scope_rows(pq.read_table(path), _load_vectors(dataset, embedding_id))
    counts["embedding_id"] = embedding_id
    return table, counts


def _batches(table: pa.Table, progress: Progress) -> Iterator[pa.RecordBatch]:
    total = table.num_rows
    for start in range(0, total, WRITE_BATCH_ROWS):
        progress.update(start, total, "writing rows")
        for batch in table.slice(start, WRITE_BATCH_ROWS).to_batches():
            yield batch
    progress.update(total, total, "rows written")


# --------------------------------------------------------------------------- indices

@dataclass
class IndexPlan:
    column: str
    index_type: str
    config: Any
    params: dict


def auto_vector_index_min_rows(dimensions: int) -> int:
    """Rows from which the IVF_PQ index pays for itself: flat scans stay under ~0.1 s below it."""
    return max(MIN_ROWS_FOR_PQ, FLAT_SEARCH_MAX_VALUES // max(1, int(dimensions)))


def index_plan(n_rows: int, vector_index_min_rows: int) -> tuple[list[IndexPlan], list[dict]]:
    """Pure: the indices to build for ``n_rows`` rows, and the ones skipped (with why)."""
    from lancedb.index import FTS, BTree, IvfPq

    plans: list[IndexPlan] = []
    skipped: list[dict] = []
    if n_rows >= max(MIN_ROWS_FOR_PQ, vector_index_min_rows):
        partitions = max(1, int(math.sqrt(n_rows)))
        # Lance trains at most one partition per 256 rows (it warns and trains fewer), so at
        # 50K rows sqrt(N)=222 is requested but 195 are trained; recorded for honesty.
        trained = min(partitions, n_rows // MIN_ROWS_FOR_PQ)
        training = {"max_iterations": IVF_MAX_ITERATIONS, "sample_rate": IVF_SAMPLE_RATE}
        plans.append(IndexPlan(VECTOR_COLUMN, "IVF_PQ",
                               IvfPq(distance_type="cosine", num_partitions=partitions, **training),
                               {"distance_type": "cosine", "num_partitions": partitions,
                                "partitions_trained": trained, **training}))
    elif n_rows < MIN_ROWS_FOR_PQ:
        skipped.append({
            "column": VECTOR_COLUMN, "index_type": "IVF_PQ",
            "reason": f"{n_rows} rows < {MIN_ROWS_FOR_PQ} needed to train PQ; vector search is an exact scan",
        })
    else:
        skipped.append({
            "column": VECTOR_COLUMN, "index_type": "IVF_PQ",
            "reason": f"{n_rows} rows < vector_index_min_rows={vector_index_min_rows}; "
                      "vector search is an exact scan (fast at this size)",
        })
    if n_rows > 0:
        plans.append(IndexPlan("cluster", "BTREE", BTree(), {}))
        plans.append(IndexPlan("text", "FTS", FTS(), {"base_tokenizer": "simple", "stem": True}))
    return plans, skipped


def build_indices(table, plans: list[IndexPlan], progress: Progress) -> list[dict]:
    """Create each planned index (replacing any older one); returns what was built and how long it took."""
    built = []
    for i, plan in enumerate(plans):
        progress.update(i, len(plans), f"index {plan.index_type} on {plan.column}")
        t0 = time.perf_counter()
        table.create_index(plan.column, config=plan.config, replace=True)
        built.append({"column": plan.column, "index_type": plan.index_type, "params": plan.params,
                      "seconds": round(time.perf_counter() - t0, 3)})
    progress.update(len(plans), len(plans), "indices built")
    return built


# --------------------------------------------------------------------------- export

def export_lance(
    dataset: Dataset,
    scope_id: str,
    uri: Optional[str] = None,
    progress: Optional[Progress] = None,
    *,
    api_key: Optional[str] = None,
    region: Optional[str] = None,
    host_override: Optional[str] = None,
    storage_options: Optional[dict] = None,
    register: bool = True,
    vector_index_min_rows: Optional[int] = None,
) -> dict:
    """Create/replace the scope's LanceDB table with its indices, verify it, return what was done.

    ``register`` also upserts the dataset and scope rows of the ``_meta`` control plane on the
    same connection (:mod:`pipeline.serving.control_plane`). The returned dict is also appended to
    ``<dataset>/lancedb/exports.json``. Raises :class:`LanceExportError` on a row-count mismatch.
    The vector index is built only from ``vector_index_min_rows`` rows (None: by the vectors'
    dimensions, :func:`auto_vector_index_min_rows`); ``vector_index`` in the result says if it was.
    """
    progress = progress or null_progress("lance")
    target = resolve_target(dataset, uri, api_key=api_key, region=region,
                            host_override=host_override, storage_options=storage_options)
    name = scope_table_name(dataset, scope_id)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    progress.update(0, None, "reading scope rows and vectors")
    t0 = time.perf_counter()
    rows, counts = load_scope_rows(dataset, scope_id)
    timings["read_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    conn = target.connect()
    timings["connect_s"] = time.perf_counter() - t0  # includes importing lancedb on first use

    t0 = time.perf_counter()
    reader = pa.RecordBatchReader.from_batches(rows.schema, _batches(rows, progress.for_stage("lance: write")))
    # mode="overwrite" commits a new table version atomically: readers see the old table or the new one.
    try:
        table = conn.create_table(name, data=reader, schema=rows.schema, mode="overwrite",
                                  **target.table_options())
    except Exception:
        progress.check()  # a cancel inside the batch stream surfaces as Cancelled, not an Arrow error
        raise
    timings["write_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stored = table.count_rows()
    timings["verify_s"] = time.perf_counter() - t0
    if stored != rows.num_rows:
        raise LanceExportError(
            f"LanceDB table {name} at {target.display_uri} holds {stored} rows, expected {rows.num_rows}; "
            "the export did not complete — run it again"
        )

    if vector_index_min_rows is None:
        vector_index_min_rows = auto_vector_index_min_rows(counts["dimensions"])
    plans, skipped = index_plan(rows.num_rows, vector_index_min_rows)
    t0 = time.perf_counter()
    built = build_indices(table, plans, progress.for_stage("lance: index"))
    timings["index_s"] = time.perf_counter() - t0

    if target.kind == "local":
        # Each overwrite keeps the previous versions' files; a local export needs only the latest.
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # the "concurrent readers" warning: a local export has none
            warnings.simplefilter("ignore", UserWarning)
            table.optimize(cleanup_older_than=timedelta(0))
        timings["cleanup_s"] = time.perf_counter() - t0

    record: dict[str, Any] = {
        "scope_id": scope_id,
        "table": name,
        "uri": target.display_uri,
        "target": target.kind,
        "rows": rows.num_rows,
        "deleted_skipped": counts["deleted_skipped"],
        "dimensions": counts["dimensions"],
        "embedding_id": counts["embedding_id"],
        "indices": built,
        "skipped_indices": skipped,
        "vector_index": any(i["column"] == VECTOR_COLUMN for i in built),
        "vector_index_min_rows": int(vector_index_min_rows),
        "exported_at": utc_now_iso(),
    }
    if target.kind == "cloud":
        record["note"] = "LanceDB Cloud builds indices asynchronously after the request returns"

    if register:
        t0 = time.perf_counter()
        plane = control_plane.ControlPlane(conn, target)
        dataset_row = control_plane.register_dataset(plane, dataset)
        scope_row = control_plane.register_scope(plane, dataset, scope_id, dataset_row_id=dataset_row)
        record["control_plane"] = {"dataset_id": dataset_row, "scope_id": scope_row}
        timings["register_s"] = time.perf_counter() - t0

    timings["total_s"] = time.perf_counter() - started
    record["timings"] = {k: round(v, 3) for k, v in timings.items()}
    record_export(dataset, record)
    progress.update(1, 1, f"exported {rows.num_rows} rows to {name}")
    return record


def record_export(dataset: Dataset, record: dict) -> None:
    """Append ``record`` to ``<dataset>/lancedb/exports.json`` (atomic; keeps the last exports)."""
    records = read_export_records(dataset)
    records.append(record)
    atomic_write_json(dataset.lance_exports_path, {"exports": records[-EXPORT_HISTORY:]})


def read_export_records(dataset: Dataset) -> list[dict]:
    path = dataset.lance_exports_path
    if not path.is_file():
        return []
    return list(read_json(path).get("exports", []))


# --------------------------------------------------------------------------- search

def open_scope_table(dataset: Dataset, scope_id: str, uri: Optional[str] = None, **connection):
    target = resolve_target(dataset, uri, **connection)
    name = scope_table_name(dataset, scope_id)
    conn = target.connect()
    try:
        return conn.open_table(name, **target.table_options())
    except (ValueError, FileNotFoundError) as exc:
        raise LanceExportError(
            f"no LanceDB table {name} at {target.display_uri}; run `tweetscope lance` first ({exc})"
        ) from exc


def search_scope(
    dataset: Dataset,
    scope_id: str,
    *,
    query: Optional[str] = None,
    vector: Optional[np.ndarray] = None,
    fts: Optional[str] = None,
    cluster: Optional[str] = None,
    limit: int = 10,
    columns: Optional[list[str]] = None,
    uri: Optional[str] = None,
    **connection,
):
    """A quick query of an exported scope table -> DataFrame (best first).

    ``query`` is embedded with the scope's own embedder (same space as the vectors); ``vector``
    is used as is; ``fts`` is a full-text query on ``text``. ``cluster`` filters by the
    scope's ``cluster`` column: a lookup id string such as ``"0_3"`` (toponymy) or ``"3"`` (flat).
    """
    if sum(x is not None for x in (query, vector, fts)) != 1:
        raise LanceExportError("give exactly one of query (text to embed), vector, or fts")
    if cluster is not None and not isinstance(cluster, str):
        raise LanceExportError(f"cluster must be a cluster id string as in the scope's cluster column "
                               f"(e.g. '0_{cluster}' for toponymy labels), got {cluster!r}")
    table = open_scope_table(dataset, scope_id, uri, **connection)
    filters = ["deleted = false"]  # defence in depth: tombstones are not exported at all
    if cluster is not None:
        filters.append(f"cluster = {sql_literal(cluster)}")
    where = " AND ".join(filters)
    if fts is not None:
        builder = table.search(fts, query_type="fts", fts_columns="text")
    else:
        if query is not None:
            embedding_id = dataset.sidecar(scope_id)["embedding_id"]
            side = dataset.sidecar(embedding_id)
            prefix = side.get("prefix") or side.get("params", {}).get("prefix") or ""
            vector = embedder_for(dataset, embedding_id).embed([prefix + query])[0]
        builder = table.search(np.asarray(vector, dtype=np.float32), vector_column_name=VECTOR_COLUMN) \
            .distance_type("cosine").refine_factor(10)
    builder = builder.where(where, prefilter=True).limit(int(limit))
    if columns:
        builder = builder.select(list(columns))
    return builder.to_pandas()
