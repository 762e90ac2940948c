"""Scope assembly: input + display UMAP + clusters + labels -> the three serving files (spec §7).

``scopes/scopes-NNN.json``     the bootstrap JSON (lineage, copies of the input sidecars,
                                ``cluster_labels_lookup``, ``scope_uid``, ``lancedb_table_id``)
``scopes/scopes-NNN.parquet``  9 plot columns
``scopes/scopes-NNN-input.parquet``  SERVING_COLUMNS, normalised then validated against
                                ``contracts/scope_input.schema.json`` before anything is written

``cluster``/``label`` are layer 0, as the TS API reads them (contract scope-input-v1):
``cluster`` is the row's ``cluster_labels_lookup`` id as a string — ``"0_<k>"`` for toponymy
labels (layer-0 cluster ``"0_<k>"`` is HDBSCAN cluster k of the cluster artifact), ``"<k>"``
for the flat default labels — and ``label`` that entry's label; ``raw_cluster`` is the HDBSCAN
label as a string (``"-1"`` = noise). Hierarchical lookups end with the ``"unknown"``
(Unclustered) entry the front end expects, and the JSON carries ``unknown_count``.
Tombstoned rows stay with ``deleted=true`` and blank personal columns.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Optional

import numpy as np
import pandas as pd
import param
import pyarrow as pa

from pipeline import __version__
from pipeline.core.config import StageConfig
from pipeline.core.errors import LineageError
from pipeline.core.progress import Progress, null_progress
from pipeline.core.tombstones import tombstone_mask
from pipeline.core.workspace import (
    Dataset,
    WorkspaceError,
    atomic_files,
    read_json,
    utc_now_iso,
    write_parquet,
)
from pipeline.serving.contracts import (
    PERSONAL_COLUMNS,
    SCOPE_INPUT_CONTRACT,
    SERVING_COLUMNS,
    SERVING_CONTRACT_VERSION,
    blank_personal,
    normalize_serving_types,
    to_arrow_table,
    validate_scope_input_df,
)
from pipeline.stages.labels.table import COLUMNS as LABEL_COLUMNS
from pipeline.stages.lineage import DEFAULT_LABELS, DEFAULT_LABELS_SUFFIX, resolve_scope_inputs
from pipeline.stages.links import run_links

SCOPE_PARQUET_COLUMNS = ["x", "y", "tile_index_64", "tile_index_128", "cluster", "raw_cluster", "label",
                         "deleted", "ls_index"]
SCOPE_PARQUET_SCHEMA = pa.schema([
    ("x", pa.float32()), ("y", pa.float32()), ("tile_index_64", pa.int32()), ("tile_index_128", pa.int32()),
    ("cluster", pa.string()), ("raw_cluster", pa.string()), ("label", pa.string()), ("deleted", pa.bool_()),
    ("ls_index", pa.int64()),
])
#: input.parquet columns copied into the serving file
INPUT_SERVING_COLUMNS = [c for c in SERVING_COLUMNS if c not in
                         {"ls_index", "x", "y", "cluster", "raw_cluster", "label", "deleted",
                          "tile_index_64", "tile_index_128"}]
LOOKUP_FIELDS = ["cluster", "layer", "label", "description", "hull", "count", "parent_cluster", "children",
                 "centroid_x", "centroid_y", "topic_specificity"]
#: serving ``cluster`` of rows in no layer-0 cluster, and its lookup entry (the front end expects it)
UNKNOWN_CLUSTER = "unknown"
MAX_ROW_GROUP_BYTES = 64 * 1024 * 1024
#: sidecar fields never copied into the published scope JSON (bulky, or tweet text)
_DROP_META_KEYS = {"min_values", "max_values", "exemplars", "exemplar_texts", "sample_texts", "samples",
                   "examples", "indices"}
_MAX_META_LIST = 64


class ScopeConfig(StageConfig):
    """How a scope is presented; the lineage ids are arguments of :func:`run_scope`."""

    label = param.String(default="", doc="Title of the scope (default: the dataset name).")
    description = param.String(default="", doc="One-line description shown with the scope.")


# --------------------------------------------------------------------------- loaders

# The agreed artifact files are read directly (not through the stage modules): scope assembly
# then needs neither umap/numba nor toponymy/litellm imported, which take seconds.

def _read_columns(dataset: Dataset, artifact_id: str, suffix: str, columns: list[str], what: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    path = dataset.artifact_path(artifact_id, suffix)
    if not path.is_file():
        raise WorkspaceError(f"{what} file {path.name} of dataset '{dataset.name}' is missing; run its stage again")
    missing = [c for c in columns if c not in pq.read_schema(path).names]
    if missing:
        raise LineageError(f"{path.name} lacks column(s) {', '.join(missing)}; it was not written by this version "
                         "of the pipeline — run its stage again")
    return pd.read_parquet(path, columns=columns)


def load_display_xy(dataset: Dataset, umap_id: str) -> pd.DataFrame:
    return _read_columns(dataset, umap_id, ".parquet", ["x", "y"], "display UMAP")


def load_cluster_assignments(dataset: Dataset, cluster_id: str) -> pd.DataFrame:
    return _read_columns(dataset, cluster_id, ".parquet", ["cluster", "raw_cluster"], "cluster")


def load_label_rows(dataset: Dataset, lineage: dict) -> tuple[pd.DataFrame, bool]:
    """(label rows, hierarchical?) for the lineage's labels: toponymy rows, or the flat default labels."""
    labels_id = lineage["labels_id"]
    if labels_id != DEFAULT_LABELS:
        wanted = [c for c in LABEL_COLUMNS if c != "indices"]
        return _read_columns(dataset, labels_id, ".parquet", wanted, "labels"), True
    import pyarrow.parquet as pq

    path = dataset.artifact_path(lineage["cluster_id"], DEFAULT_LABELS_SUFFIX + ".parquet")
    extra = [c for c in ("description", "hull") if path.is_file() and c in pq.read_schema(path).names]
    return _read_columns(dataset, lineage["cluster_id"], DEFAULT_LABELS_SUFFIX + ".parquet", ["label", *extra],
                         "default labels"), False


# --------------------------------------------------------------------------- pure assembly

def tile_index(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Cell of an n×n grid over [-1,1]²: floor((x+1)/2·n) + floor((y+1)/2·n)·n, each axis clamped to n-1."""
    col = np.clip(np.floor((np.asarray(x, dtype=np.float64) + 1) / 2 * n), 0, n - 1).astype(np.int32)
    row = np.clip(np.floor((np.asarray(y, dtype=np.float64) + 1) / 2 * n), 0, n - 1).astype(np.int32)
    return (col + row * n).astype(np.int32)


def _listify(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_listify(v) for v in value.tolist()] if value.dtype == object else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _float_or_none(value: Any) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def default_labels_as_layer0(default_df: pd.DataFrame, xy: pd.DataFrame, clusters: np.ndarray) -> pd.DataFrame:
    """Flat ``-labels-default`` rows (row i = cluster i, id ``"<i>"``) in the toponymy shape, layer 0 only."""
    n = len(default_df)
    counts = np.bincount(clusters[clusters >= 0], minlength=n)[:n] if len(clusters) else np.zeros(n, int)
    frame = pd.DataFrame({"x": xy["x"].to_numpy(np.float64), "y": xy["y"].to_numpy(np.float64), "c": clusters})
    centroids = frame.groupby("c")[["x", "y"]].mean()
    return pd.DataFrame({
        "cluster": [str(i) for i in range(n)],
        "layer": 0,
        "label": default_df["label"].astype("str").to_numpy(),
        "description": (default_df["description"].astype("str").to_numpy() if "description" in default_df
                        else [""] * n),
        "hull": default_df["hull"].to_numpy() if "hull" in default_df else [[] for _ in range(n)],
        "count": counts,
        "parent_cluster": None,
        "children": [[] for _ in range(n)],
        "centroid_x": centroids["x"].reindex(range(n)).to_numpy(),
        "centroid_y": centroids["y"].reindex(range(n)).to_numpy(),
        "topic_specificity": None,
    })


def cluster_labels_lookup(labels: pd.DataFrame) -> list[dict]:
    """The denormalised lookup for the scope JSON: every label row without its ``indices``."""
    out = []
    for rec in labels.drop(columns=[c for c in ("indices",) if c in labels.columns]).to_dict("records"):
        parent = rec.get("parent_cluster")
        out.append({
            "cluster": str(rec["cluster"]),
            "layer": int(rec["layer"]),
            "label": "" if rec.get("label") is None else str(rec["label"]),
            "description": "" if rec.get("description") is None else str(rec["description"]),
            "hull": [[float(p[0]), float(p[1])] for p in (_listify(rec.get("hull")) or [])],
            "count": int(rec.get("count") or 0),
            "parent_cluster": None if parent is None or (isinstance(parent, float) and math.isnan(parent)) else str(parent),
            "children": [str(c) for c in (_listify(rec.get("children")) or [])],
            "centroid_x": _float_or_none(rec.get("centroid_x")),
            "centroid_y": _float_or_none(rec.get("centroid_y")),
            "topic_specificity": _float_or_none(rec.get("topic_specificity")),
        })
    return out


def unknown_lookup_entry(count: int) -> dict:
    """The "Unclustered" lookup entry of hierarchical scopes (same fields as the upstream front end reads)."""
    return {"cluster": UNKNOWN_CLUSTER, "layer": 0, "label": "Unclustered",
            "description": "Points not assigned to any cluster", "hull": [], "count": int(count),
            "parent_cluster": None, "children": [], "centroid_x": 0.0, "centroid_y": 0.0,
            "topic_specificity": None}


def layer0_entries(labels: pd.DataFrame) -> dict[int, tuple[str, str]]:
    """HDBSCAN cluster k -> (lookup id, label) of its layer-0 entry: ``"0_<k>"`` (toponymy) or ``"<k>"`` (flat)."""
    layer0 = labels[labels["layer"].astype(int) == 0]
    mapping = {}
    for cid, label in zip(layer0["cluster"].astype("str"), layer0["label"]):
        layer, sep, num = cid.partition("_")
        k = num if sep and layer == "0" else (cid if not sep else "")
        if k.isdigit():
            mapping[int(k)] = (cid, "" if label is None else str(label))
    return mapping


def assemble_scope_frames(
    input_df: pd.DataFrame,
    xy: pd.DataFrame,
    clusters: pd.DataFrame,
    labels: pd.DataFrame,
    deleted: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scope parquet frame, serving frame) for row i = ls_index i; the serving frame is normalised and validated."""
    n = len(input_df)
    for name, frame in (("display UMAP", xy), ("cluster assignments", clusters)):
        if len(frame) != n:
            raise LineageError(f"{name} has {len(frame)} rows but input.parquet has {n}; "
                             "the dataset was re-ingested: run the stages again")
    x = xy["x"].to_numpy(np.float32)
    y = xy["y"].to_numpy(np.float32)
    cluster = clusters["cluster"].to_numpy().astype(np.int64)
    entries = layer0_entries(labels)
    unlabelled = sorted(set(np.unique(cluster).tolist()) - set(entries))
    if unlabelled:
        raise LineageError(f"cluster(s) {unlabelled[:10]} have no layer-0 label ('0_<k>') in the labels; "
                         "the labels were made for another cluster artifact — relabel it")
    # map the few distinct clusters, then broadcast: no per-row Python
    codes, inverse = np.unique(cluster, return_inverse=True)
    ids = np.array([entries[int(k)][0] for k in codes], dtype=object)
    names = np.array([entries[int(k)][1] for k in codes], dtype=object)
    scope = pd.DataFrame({
        "x": x,
        "y": y,
        "tile_index_64": tile_index(x, y, 64),
        "tile_index_128": tile_index(x, y, 128),
        "cluster": ids[inverse.reshape(-1)],
        "raw_cluster": clusters["raw_cluster"].to_numpy().astype(np.int64).astype(str).astype(object),
        "label": names[inverse.reshape(-1)],
        "deleted": deleted.astype(bool),
        "ls_index": np.arange(n, dtype=np.int64),
    })
    serving = input_df[[c for c in INPUT_SERVING_COLUMNS if c in input_df.columns]].reset_index(drop=True)
    for col in SCOPE_PARQUET_COLUMNS:
        serving[col] = scope[col].to_numpy()
    serving = blank_personal(serving[[c for c in SERVING_COLUMNS if c in serving.columns]], deleted)
    serving = normalize_serving_types(serving, SCOPE_INPUT_CONTRACT)
    validate_scope_input_df(serving, SCOPE_INPUT_CONTRACT)
    for col in ("cluster", "raw_cluster", "label"):  # the two files hold the same (normalised) values
        scope[col] = serving[col].to_numpy()
    return scope, serving


def row_group_rows(table) -> int:
    """Rows per parquet row group so that each group stays under 64 MB.

    The Arrow in-memory size is doubled as the estimate: parquet's uncompressed size adds
    levels, page headers and statistics on top of the raw values.
    """
    per_row = 2.0 * max(1.0, table.nbytes / max(1, table.num_rows))
    return max(1, int(MAX_ROW_GROUP_BYTES // per_row))


def write_serving_parquet(serving: pd.DataFrame, path) -> None:
    table = to_arrow_table(serving, SCOPE_INPUT_CONTRACT)
    write_parquet(table, path, row_group_size=row_group_rows(table))


def write_scope_parquet(scope: pd.DataFrame, path) -> None:
    table = pa.Table.from_pandas(scope[SCOPE_PARQUET_COLUMNS], schema=SCOPE_PARQUET_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata({"contract_version": SERVING_CONTRACT_VERSION})
    write_parquet(table, path, row_group_size=row_group_rows(table))


def compact_meta(sidecar: dict) -> dict:
    """A sidecar as copied into the scope JSON: no bulky arrays, no tweet texts."""
    out = {}
    for key, value in sidecar.items():
        if key in _DROP_META_KEYS or "exemplar" in key or "sample" in key:
            continue
        if isinstance(value, list) and len(value) > _MAX_META_LIST:
            continue
        out[key] = value
    return out


# --------------------------------------------------------------------------- stage

def run_scope(
    dataset: Dataset,
    config: Optional[ScopeConfig] = None,
    progress: Optional[Progress] = None,
    embedding_id: Optional[str] = None,
    display_umap_id: Optional[str] = None,
    cluster_id: Optional[str] = None,
    labels_id: Optional[str] = None,
) -> str:
    """Assemble and write a new scope; returns its id ``scopes-NNN``."""
    config = config or ScopeConfig()
    progress = progress or null_progress("scope")
    started = time.perf_counter()
    progress.update(0, 5, "resolving lineage")
    lineage = resolve_scope_inputs(dataset, embedding_id, display_umap_id, cluster_id, labels_id)

    progress.update(1, 5, "reading artifacts")
    available = dataset.input_columns()
    input_df = dataset.read_input([c for c in INPUT_SERVING_COLUMNS if c in available])
    xy = load_display_xy(dataset, lineage["umap_id"])
    clusters = load_cluster_assignments(dataset, lineage["cluster_id"])
    labels, hierarchical = load_label_rows(dataset, lineage)
    if not hierarchical:
        labels = default_labels_as_layer0(labels, xy, clusters["cluster"].to_numpy().astype(np.int64))
    deleted = tombstone_mask(dataset, len(input_df))

    progress.update(2, 5, "assembling")
    scope_df, serving = assemble_scope_frames(input_df, xy, clusters, labels, deleted)
    lookup = cluster_labels_lookup(labels)
    # every row has a layer-0 cluster here (assembly refuses otherwise), so this is 0; the entry
    # and the count stay because the front end reads them
    unknown_count = int((serving["cluster"] == UNKNOWN_CLUSTER).sum())
    if hierarchical:
        lookup.append(unknown_lookup_entry(unknown_count))

    progress.update(3, 5, "writing")
    meta = dataset.meta()
    labels_meta_id = lineage["cluster_labels_id"]
    labels_sidecar_path = dataset.artifact_path(lineage["cluster_id"], DEFAULT_LABELS_SUFFIX + ".json") \
        if not hierarchical else dataset.sidecar_path(labels_meta_id)
    labels_meta = read_json(labels_sidecar_path) if labels_sidecar_path.is_file() else {
        "id": labels_meta_id, "cluster_id": lineage["cluster_id"]}
    scope_uid = str(uuid.uuid4())
    with dataset.new_artifact("scopes") as art:
        write_scope_parquet(scope_df, art.path(".parquet"))
        write_serving_parquet(serving, art.path("-input.parquet"))
        fields = {
            "label": config.label or dataset.name,
            "description": config.description,
            "dataset_id": dataset.name,
            "embedding_id": lineage["embedding_id"],
            "umap_id": lineage["umap_id"],
            "cluster_id": lineage["cluster_id"],
            "cluster_labels_id": labels_meta_id,
            "labels_id": lineage["labels_id"],
            "hierarchical_labels": hierarchical,
            **({"unknown_count": unknown_count} if hierarchical else {}),
            "scope_uid": scope_uid,
            "lancedb_table_id": f"{dataset.name}__{scope_uid}",
            "ls_version": __version__,
            "serving_contract_version": SERVING_CONTRACT_VERSION,
            "columns": list(serving.columns),
            "deleted_count": int(deleted.sum()),
            "dataset": compact_meta(meta),
            "embedding": compact_meta(dataset.sidecar(lineage["embedding_id"])),
            "umap": compact_meta(dataset.sidecar(lineage["umap_id"])),
            "cluster": compact_meta(dataset.sidecar(lineage["cluster_id"])),
            "cluster_labels": compact_meta(labels_meta),
            "cluster_labels_lookup": lookup,
        }
        inputs = {k: lineage[k] for k in ("embedding_id", "umap_id", "cluster_id")}
        if lineage["labels_id"] != DEFAULT_LABELS:
            inputs["labels_id"] = lineage["labels_id"]
        inputs["input"] = dataset.input_fingerprint()
        art.write_sidecar(fields, params=config.to_dict(), inputs=inputs, rows=len(serving),
                          timings={"total_s": round(time.perf_counter() - started, 3)})
        scope_id = art.id
    progress.update(5, 5, f"{scope_id}: {len(serving)} rows")
    return scope_id



def load_scope(dataset: Dataset, scope_id: str) -> dict:
    """The scope JSON."""
    return dataset.sidecar(scope_id)


def load_scope_input(dataset: Dataset, scope_id: str, columns: Optional[list[str]] = None) -> pd.DataFrame:
    return pd.read_parquet(dataset.artifact_path(scope_id, "-input.parquet"), columns=columns)


def rewrite_scope_rows(dataset: Dataset, scope_id: str) -> int:
    """Re-apply the current tombstones to a scope's serving files in place; returns the deleted count.

    Personal columns of rows no longer tombstoned come back from ``input.parquet``. The two
    parquets are written to temp names and renamed in, then the scope JSON (``deleted_count``;
    ``scope_uid`` unchanged) — so readers see either the old or the new scope.
    """
    scope = load_scope(dataset, scope_id)
    recorded = (scope.get("inputs") or {}).get("input")
    current = dataset.input_fingerprint()
    if recorded and current and recorded != current:
        raise LineageError(f"{scope_id} was built from an earlier ingest of '{dataset.name}'; "
                         "create a new scope (`tweetscope scope`) instead of updating it")
    serving = load_scope_input(dataset, scope_id)
    if "cluster" in serving.columns and not pd.api.types.is_string_dtype(serving["cluster"]):
        raise LineageError(f"{scope_id} was written with a numeric 'cluster' column (before the string lookup ids "
                         "of the TS API contract); create a new scope (`tweetscope scope`) instead of updating it")
    n = len(serving)
    available = dataset.input_columns()
    personal = [c for c in PERSONAL_COLUMNS if c in serving.columns and c in available]
    source = dataset.read_input(personal)
    if len(source) != n:
        raise LineageError(f"{scope_id} has {n} rows but input.parquet has {len(source)}; create a new scope")
    order = serving["ls_index"].to_numpy()
    restored = normalize_serving_types(source.iloc[order].reset_index(drop=True), SCOPE_INPUT_CONTRACT)
    for col in personal:
        serving[col] = restored[col].to_numpy()
    deleted = tombstone_mask(dataset, n)[order]
    serving = blank_personal(serving, deleted)
    serving = normalize_serving_types(serving, SCOPE_INPUT_CONTRACT)
    validate_scope_input_df(serving, SCOPE_INPUT_CONTRACT)

    scope_path = dataset.artifact_path(scope_id, ".parquet")
    scope_df = pd.read_parquet(scope_path)
    scope_df["deleted"] = tombstone_mask(dataset, n)[scope_df["ls_index"].to_numpy()]

    with atomic_files(scope_id) as files:
        write_serving_parquet(serving, files.path(dataset.artifact_path(scope_id, "-input.parquet")))
        write_scope_parquet(scope_df, files.path(scope_path))
        scope["deleted_count"] = int(deleted.sum())
        scope["tombstones_applied_at"] = utc_now_iso()
        files.write_json(dataset.sidecar_path(scope_id), scope)  # renamed in last
    return int(deleted.sum())


def apply_tombstones(dataset: Dataset, scope_id: str, progress: Optional[Progress] = None) -> dict:
    """Rewrite an existing scope's serving files for the current tombstones, keeping its scope_uid.

    Rows newly tombstoned are blanked; rows whose tombstone was removed get their text back
    from ``input.parquet``. The scope JSON keeps ``scope_uid``/``lancedb_table_id``, so a
    re-publish updates the same published scope. Links (when built) are rebuilt too.
    Returns ``{"scope_id", "deleted", "links"}``.
    """
    progress = progress or null_progress("tombstones")
    if not dataset.exists(scope_id):
        raise WorkspaceError(f"dataset '{dataset.name}' has no {scope_id}")
    progress.update(0, 3, f"re-applying tombstones to {scope_id}")
    deleted = rewrite_scope_rows(dataset, scope_id)
    progress.update(2, 3, "links")
    links = None
    if dataset.links_meta_path.is_file():
        links = run_links(dataset, progress.for_stage("links"))
    progress.update(3, 3, "done")
    return {"scope_id": scope_id, "deleted": int(deleted), "links": links}


def run(dataset: Dataset, config: ScopeConfig, inputs: dict, progress: Progress) -> str:
    """The stage contract: assemble a scope from the chosen (or lineage-filled) inputs -> ``scopes-NNN``."""
    return run_scope(dataset, config, progress, **inputs)
