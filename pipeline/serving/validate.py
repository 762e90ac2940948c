"""The deploy gate: every check a scope must pass before it is published (spec §E3, §F1–F5).

:func:`validate_scope` returns a list of problems (empty = pass), one self-contained line
each, naming the file, the column or field and what to do. Checks:

* scope JSON: the fields the TS API reads, ``scope_uid`` a UUID4, ``lancedb_table_id`` =
  ``<dataset>__<scope_uid>``, the serving contract version;
* lineage: embedding -> display UMAP (purpose display, 2-D) -> cluster (clustering UMAP
  purpose cluster, 10-D) -> toponymy labels with ``topic_specificity`` -> scope, all present
  and agreeing; the referenced label files exist;
* ``-input.parquet``: required columns with the contract's Arrow types (``id`` string), no
  foreign columns, ``ls_index`` = 0..N-1 unique, x/y in [-1, 1], every ``cluster`` value (a
  string) a layer-0 id of the lookup with the same label, tombstoned rows blank, tombstones.json
  applied; the scope parquet agrees (cluster, raw_cluster, label, deleted);
* hierarchical cluster ids are ``"<layer>_<n>"`` strings with consistent parents/children, plus
  the ``"unknown"`` entry the front end reads and a matching ``unknown_count``; flat ids ``"<k>"``;
* links parquets (when present): the links contract with string tweet ids.
"""

from __future__ import annotations

import re
import uuid
from typing import Optional

import numpy as np
import pandas as pd

from pipeline.core.tombstones import unapplied_tombstones
from pipeline.core.workspace import LABELS_ID_RE, Dataset, read_json
from pipeline.serving.contracts import (
    LINKS_CONTRACT,
    SCOPE_INPUT_CONTRACT,
    SERVING_CONTRACT_VERSION,
    arrow_schema_problems,
    links_problems,
    read_contract_parquet,
    scope_input_problems,
)
from pipeline.stages.labels.table import COLUMNS as LABEL_COLUMNS
from pipeline.stages.lineage import is_default_labels, scope_chain_problems
from pipeline.stages.scope import SCOPE_PARQUET_COLUMNS, UNKNOWN_CLUSTER

SCOPE_ID_RE = re.compile(r"^scopes-\d{3,}$")
CLUSTER_ID_RE = re.compile(r"^\d+_\d+$")
FLAT_CLUSTER_ID_RE = re.compile(r"^\d+$")
REQUIRED_SCOPE_FIELDS = ("id", "embedding_id", "umap_id", "cluster_id", "cluster_labels_id", "scope_uid",
                         "lancedb_table_id", "cluster_labels_lookup", "rows", "hierarchical_labels")


def label_artifact_problems(dataset: Dataset, scope: dict) -> list[str]:
    """The label artifact the scope references: present (parquet + JSON), toponymy, for the scope's cluster."""
    problems: list[str] = []
    labels_id = scope.get("cluster_labels_id")
    if not isinstance(labels_id, str) or not labels_id:
        return ["scope JSON: cluster_labels_id is missing"]
    if not LABELS_ID_RE.match(labels_id):
        return [f"scope JSON: cluster_labels_id {labels_id!r} is not a label artifact id"]
    if is_default_labels(labels_id):
        for suffix in (".parquet", ".json"):
            if not dataset.label_file(labels_id, suffix).is_file():
                problems.append(f"labels: referenced label artifact clusters/{labels_id}{suffix} is missing")
        problems.append(f"labels: the scope uses {labels_id} (no toponymy labels, no topic_specificity); "
                        "run `tweetscope label` and make a new scope")
        return problems
    parquet = dataset.label_file(labels_id, ".parquet")
    sidecar = dataset.label_file(labels_id, ".json")
    if not sidecar.is_file():
        problems.append(f"labels: referenced label artifact clusters/{labels_id}.json is missing")
    if not parquet.is_file():
        problems.append(f"labels: referenced label artifact clusters/{labels_id}.parquet is missing")
        return problems
    import pyarrow.parquet as pq

    names = pq.read_schema(parquet).names
    missing = [c for c in LABEL_COLUMNS if c not in names]
    if missing:
        problems.append(f"labels: clusters/{labels_id}.parquet lacks column(s) {', '.join(missing)}")
    if "topic_specificity" in names:
        spec = pd.read_parquet(parquet, columns=["topic_specificity"])["topic_specificity"]
        if spec.isna().all():
            problems.append(f"labels: clusters/{labels_id}.parquet has no topic_specificity values; relabel")
    return problems


def scope_json_problems(dataset: Dataset, scope_id: str, scope: dict) -> list[str]:
    problems = [f"scope JSON: field '{f}' is missing" for f in REQUIRED_SCOPE_FIELDS if f not in scope]
    if scope.get("id") not in (None, scope_id):
        problems.append(f"scope JSON: id is {scope.get('id')!r}, the file is {scope_id}.json")
    uid = scope.get("scope_uid")
    if uid is not None:
        try:
            if uuid.UUID(str(uid)).version != 4 or str(uuid.UUID(str(uid))) != str(uid):
                raise ValueError
        except ValueError:
            problems.append(f"scope JSON: scope_uid {uid!r} is not a UUID4")
    table_id = scope.get("lancedb_table_id")
    if "lancedb_table_id" in scope and table_id != f"{dataset.name}__{uid}":
        problems.append(f"scope JSON: lancedb_table_id is {table_id!r}, expected '{dataset.name}__{uid}'")
    version = scope.get("serving_contract_version")
    if version != SERVING_CONTRACT_VERSION:
        problems.append(f"scope JSON: serving_contract_version is {version!r}, expected {SERVING_CONTRACT_VERSION!r}; "
                        "make a new scope")
    lookup = scope.get("cluster_labels_lookup")
    if "cluster_labels_lookup" in scope and (not isinstance(lookup, list) or not lookup):
        problems.append("scope JSON: cluster_labels_lookup must be a non-empty list")
    elif isinstance(lookup, list):
        hierarchical = scope.get("hierarchical_labels") is not False
        problems += lookup_problems(lookup, hierarchical)
        if hierarchical:
            problems += unknown_entry_problems(lookup, scope)
    return problems


def unknown_entry_problems(lookup: list, scope: dict) -> list[str]:
    """Hierarchical scopes carry the "unknown" (Unclustered) layer-0 entry and ``unknown_count`` = its count."""
    unknown = [e for e in lookup if isinstance(e, dict) and e.get("cluster") == UNKNOWN_CLUSTER]
    if not unknown:
        return ["scope JSON: cluster_labels_lookup lacks the 'unknown' (Unclustered) entry the front end reads; "
                "make the scope again"]
    problems = []
    entry = unknown[0]
    if entry.get("layer") != 0 or entry.get("parent_cluster") is not None or entry.get("children"):
        problems.append("scope JSON: the 'unknown' lookup entry must be layer 0 with no parent and no children")
    count = scope.get("unknown_count")
    if not isinstance(count, int) or isinstance(count, bool):
        problems.append(f"scope JSON: unknown_count must be an integer, got {count!r}; make the scope again")
    elif entry.get("count") != count:
        problems.append(f"scope JSON: unknown_count is {count} but the 'unknown' lookup entry counts {entry.get('count')!r}")
    return problems


def lookup_problems(lookup: list, hierarchical: bool = True) -> list[str]:
    """Ids are strings — '<layer>_<n>' (plus 'unknown') when hierarchical, '<k>' when flat; parents and children exist."""
    problems = []
    ids = [e.get("cluster") if isinstance(e, dict) else None for e in lookup]
    if hierarchical:
        ok = lambda i: isinstance(i, str) and (CLUSTER_ID_RE.match(i) or i == UNKNOWN_CLUSTER)  # noqa: E731
        shape = "'<layer>_<n>'"
    else:
        ok = lambda i: isinstance(i, str) and FLAT_CLUSTER_ID_RE.match(i)  # noqa: E731
        shape = "'<k>' (flat labels)"
    bad = [repr(i) for i in ids if not ok(i)]
    if bad:
        problems.append(f"scope JSON: cluster_labels_lookup ids must be {shape} strings: {', '.join(bad[:5])}")
    known = {i for i in ids if isinstance(i, str)}
    dupes = sorted({i for i in known if ids.count(i) > 1})
    if dupes:
        problems.append(f"scope JSON: cluster_labels_lookup repeats ids {', '.join(dupes[:5])}")
    dangling = set()
    for e in lookup:
        if not isinstance(e, dict):
            continue
        if "indices" in e:
            problems.append("scope JSON: cluster_labels_lookup entries must not carry 'indices'")
            break
        parent = e.get("parent_cluster")
        if parent is not None and parent not in known:
            dangling.add(str(parent))
        for child in e.get("children") or []:
            if child not in known:
                dangling.add(str(child))
    if dangling:
        problems.append(f"scope JSON: cluster_labels_lookup refers to unknown cluster ids {', '.join(sorted(dangling)[:5])}")
    return problems


def serving_problems(dataset: Dataset, scope_id: str, scope: dict) -> list[str]:
    """``-input.parquet`` and ``.parquet`` against the contract, the lookup and the tombstones."""
    import pyarrow.parquet as pq

    problems: list[str] = []
    path = dataset.artifact_path(scope_id, "-input.parquet")
    name = dataset.relpath(path)
    if not path.is_file():
        return [f"{name} is missing; make the scope again"]
    problems += arrow_schema_problems(pq.read_schema(path), SCOPE_INPUT_CONTRACT, what=name)
    df = pd.read_parquet(path)
    n = len(df)
    problems += [p.replace("scope input", name, 1) for p in scope_input_problems(df, SCOPE_INPUT_CONTRACT)]
    if isinstance(scope.get("rows"), int) and scope["rows"] != n:
        problems.append(f"{name} has {n} rows, the scope JSON says {scope['rows']}")
    if dataset.input_path.is_file():
        n_input = pq.ParquetFile(dataset.input_path).metadata.num_rows
        if n_input != n:
            problems.append(f"{name} has {n} rows but input.parquet has {n_input}: the dataset was re-ingested; "
                            "make a new scope")
    if "ls_index" in df.columns and pd.api.types.is_integer_dtype(df["ls_index"]):
        ls = df["ls_index"].to_numpy()
        if not np.array_equal(np.sort(ls), np.arange(n)):
            out = int(((ls < 0) | (ls >= n)).sum())
            problems.append(f"{name}: ls_index must be each of 0..{n - 1} exactly once "
                            f"({n - len(np.unique(ls))} duplicate(s), {out} out of range)")
        elif not np.array_equal(ls, np.arange(n)):
            problems.append(f"{name}: rows are not in ls_index order")
    lookup = scope.get("cluster_labels_lookup") if isinstance(scope.get("cluster_labels_lookup"), list) else []
    labels0 = {e.get("cluster"): e.get("label") for e in lookup if isinstance(e, dict) and e.get("layer") == 0}
    if lookup and "cluster" in df.columns and pd.api.types.is_string_dtype(df["cluster"]) \
            and not pd.api.types.is_numeric_dtype(df["cluster"]):
        clusters = pd.unique(df["cluster"].dropna().astype(object))
        absent = sorted(str(c) for c in clusters if c not in labels0)
        if absent:
            problems.append(f"{name}: cluster value(s) {absent[:10]} are not layer-0 ids of cluster_labels_lookup; "
                            "make the scope again")
        elif "label" in df.columns:
            expected = df["cluster"].astype(object).map(labels0)
            differ = (expected.astype(object) != df["label"].astype(object)).to_numpy()
            if differ.any():
                problems.append(f"{name}: label disagrees with cluster_labels_lookup in {int(differ.sum())} row(s)")
    if "deleted" in df.columns and pd.api.types.is_bool_dtype(df["deleted"]) and "ls_index" in df.columns \
            and not problems_about_ls_index(problems):
        deleted = np.zeros(n, dtype=bool)
        deleted[df["ls_index"].to_numpy()] = df["deleted"].to_numpy()
        missing, stale = unapplied_tombstones(dataset, deleted)
        if missing:
            problems.append(f"{name}: {len(missing)} tombstoned row(s) (e.g. ls_index {missing[:5]}) are not deleted "
                            f"in the scope; run `tweetscope tombstone apply --scope {scope_id}`")
        if stale:
            problems.append(f"{name}: {len(stale)} row(s) (e.g. ls_index {stale[:5]}) are deleted but no longer "
                            f"tombstoned; run `tweetscope tombstone apply --scope {scope_id}`")
        problems += scope_parquet_problems(dataset, scope_id, n, deleted, df)
    return problems


def problems_about_ls_index(problems: list[str]) -> bool:
    return any("ls_index" in p for p in problems)


def scope_parquet_problems(dataset: Dataset, scope_id: str, n: int, deleted: np.ndarray,
                           serving: Optional[pd.DataFrame] = None) -> list[str]:
    """The 9-column scope parquet: all rows, and the same deleted/cluster/raw_cluster/label as the -input.parquet."""
    path = dataset.artifact_path(scope_id, ".parquet")
    name = dataset.relpath(path)
    if not path.is_file():
        return [f"{name} is missing; make the scope again"]
    df = pd.read_parquet(path)
    problems = []
    missing = [c for c in SCOPE_PARQUET_COLUMNS if c not in df.columns]
    if missing:
        problems.append(f"{name} lacks column(s) {', '.join(missing)}")
        return problems
    if len(df) != n:
        problems.append(f"{name} has {len(df)} rows, the -input.parquet has {n}")
        return problems
    ls = df["ls_index"].to_numpy()
    if not np.array_equal(np.sort(ls), np.arange(n)):
        problems.append(f"{name}: ls_index must be each of 0..{n - 1} exactly once")
    elif not np.array_equal(df["deleted"].to_numpy(dtype=bool), deleted[ls]):
        problems.append(f"{name}: deleted disagrees with the -input.parquet; run `tweetscope tombstone apply`")
    elif serving is not None and "ls_index" in serving.columns:
        by_ls = serving.set_index("ls_index")
        for col in ("cluster", "raw_cluster", "label"):
            if col not in by_ls.columns:
                continue
            mine = df[col].astype(object).to_numpy()
            theirs = by_ls[col].reindex(ls).astype(object).to_numpy()
            if not np.array_equal(mine, theirs):  # object arrays: 3 != "3", so a numeric column differs too
                problems.append(f"{name}: column '{col}' disagrees with the -input.parquet; make the scope again")
    return problems


def links_file_problems(dataset: Dataset) -> list[str]:
    """Links parquets and meta against the links contract (only when the links were built)."""
    import pyarrow.parquet as pq

    edges_path, nodes_path, meta_path = dataset.links_paths
    name = {path: dataset.relpath(path) for path in dataset.links_paths}  # "links/edges.parquet", ...
    present = [path for path in dataset.links_paths if path.is_file()]
    if not present:
        return []
    problems = [f"{name[path]} is missing (the other links files exist); run `tweetscope links`"
                for path in dataset.links_paths if path not in present]
    edges = nodes = meta = None
    n_rows = pq.ParquetFile(dataset.input_path).metadata.num_rows if dataset.input_path.is_file() else None
    if edges_path in present:
        schema_problems = arrow_schema_problems(pq.read_schema(edges_path), LINKS_CONTRACT, "edges",
                                                what=name[edges_path])
        problems += schema_problems
        if not schema_problems:
            edges = read_contract_parquet(edges_path)
    if nodes_path in present:
        schema_problems = arrow_schema_problems(pq.read_schema(nodes_path), LINKS_CONTRACT,
                                                "node_stats", what=name[nodes_path])
        problems += schema_problems
        if not schema_problems:
            nodes = read_contract_parquet(nodes_path)
    if meta_path in present:
        try:
            meta = read_json(meta_path)
        except ValueError as exc:
            problems.append(f"{name[meta_path]} is not valid JSON ({exc})")
    problems += [f"links: {p}" for p in links_problems(edges, nodes, meta, LINKS_CONTRACT, n_rows)]
    return problems


def validate_scope(dataset: Dataset, scope_id: str) -> list[str]:
    """Every reason ``scope_id`` must not be published (empty list = pass)."""
    if not SCOPE_ID_RE.match(scope_id or ""):
        return [f"'{scope_id}' is not a scope id (scopes-NNN)"]
    path = dataset.sidecar_path(scope_id)
    name = dataset.relpath(path)
    if not path.is_file():
        have = ", ".join(dataset.list_ids("scopes")) or "none"
        return [f"scope JSON {name} does not exist (scopes: {have}); run `tweetscope scope`"]
    try:
        scope = read_json(path)
    except ValueError as exc:
        return [f"scope JSON {name} is not valid JSON ({exc})"]
    if not isinstance(scope, dict):
        return [f"scope JSON {name} is not an object"]
    problems = scope_json_problems(dataset, scope_id, scope)
    problems += scope_chain_problems(dataset, scope)
    problems += label_artifact_problems(dataset, scope)
    problems += serving_problems(dataset, scope_id, scope)
    problems += links_file_problems(dataset)
    return problems
