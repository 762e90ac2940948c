"""Seeders of deploy-gate defects: each breaks one rule of a scope on a private copy."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

# --------------------------------------------------------------------------- defect seeders

def rewrite_serving(ds, scope_id, change):
    path = ds.artifact_path(scope_id, "-input.parquet")
    table = change(pq.read_table(path))
    pq.write_table(table, path)


def with_column(table, name, values, arrow_type):
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, arrow_type))


def id_as_int64(ds, scope_id):
    def change(t):
        return with_column(t, "id", [int(v) for v in t["id"].to_pylist()], pa.int64())
    rewrite_serving(ds, scope_id, change)
    return "'id' must be Arrow string, got int64"


def missing_required_column(ds, scope_id):
    rewrite_serving(ds, scope_id, lambda t: t.drop(["label"]))
    return "missing required column(s): label"


def missing_label_artifact(ds, scope_id):
    labels_id = ds.sidecar(scope_id)["cluster_labels_id"]
    (ds.path / "clusters" / f"{labels_id}.parquet").unlink()
    return f"referenced label artifact clusters/{labels_id}.parquet is missing"


def duplicate_ls_index(ds, scope_id):
    def change(t):
        values = t["ls_index"].to_pylist()
        values[2] = values[1]
        return with_column(t, "ls_index", values, pa.int64())
    rewrite_serving(ds, scope_id, change)
    return "'ls_index' has duplicate values"


def text_on_tombstone(ds, scope_id):
    def change(t):
        deleted = t["deleted"].to_pylist()
        deleted[1] = True
        return with_column(t, "deleted", deleted, pa.bool_())
    rewrite_serving(ds, scope_id, change)
    return "deleted (tombstoned) rows still carry 'text'"


def x_out_of_range(ds, scope_id):
    def change(t):
        xs = t["x"].to_pylist()
        xs[0] = 1.5
        return with_column(t, "x", xs, pa.float32())
    rewrite_serving(ds, scope_id, change)
    return "'x' has values above 1"


def wrong_table_id(ds, scope_id):
    ds.update_sidecar(scope_id, lancedb_table_id=f"{ds.name}__{scope_id}")
    return "lancedb_table_id is"


def display_umap_not_display(ds, scope_id):
    umap_id = ds.sidecar(scope_id)["umap_id"]
    ds.update_sidecar(umap_id, purpose="cluster")
    return "has purpose='cluster'; the map needs the display UMAP"


def cluster_without_10d(ds, scope_id):
    cluster_id = ds.sidecar(scope_id)["cluster_id"]
    sidecar = ds.sidecar(cluster_id)
    sidecar.pop("clustering_umap_id", None)
    sidecar.get("inputs", {}).pop("clustering_umap_id", None)
    ds.sidecar_path(cluster_id).write_text(json.dumps(sidecar))
    return "has no clustering_umap_id"


def cluster_missing_from_lookup(ds, scope_id):
    scope = ds.sidecar(scope_id)
    lookup = [e for e in scope["cluster_labels_lookup"] if e["cluster"] != "0_1"]
    for e in lookup:
        e["children"] = [c for c in e["children"] if c != "0_1"]
    ds.update_sidecar(scope_id, cluster_labels_lookup=lookup)
    return "cluster value(s) ['0_1'] are not layer-0 ids of cluster_labels_lookup"


def cluster_as_int(ds, scope_id):
    """The pre-contract-alignment shape: the TS API reads cluster as the lookup id string."""
    def change(t):
        ks = [int(c.split("_")[1]) for c in t["cluster"].to_pylist()]
        return with_column(t, "cluster", ks, pa.int32())
    rewrite_serving(ds, scope_id, change)
    return "'cluster' must be Arrow string, got int32"


def lookup_without_unknown(ds, scope_id):
    scope = ds.sidecar(scope_id)
    lookup = [e for e in scope["cluster_labels_lookup"] if e["cluster"] != "unknown"]
    ds.update_sidecar(scope_id, cluster_labels_lookup=lookup)
    return "lacks the 'unknown' (Unclustered) entry"


def unknown_count_disagrees(ds, scope_id):
    ds.update_sidecar(scope_id, unknown_count=3)
    return "unknown_count is 3 but the 'unknown' lookup entry counts 0"


def scope_parquet_cluster_disagrees(ds, scope_id):
    path = ds.artifact_path(scope_id, ".parquet")
    t = pq.read_table(path)
    ks = t["cluster"].to_pylist()
    ks[4] = "0_0" if ks[4] != "0_0" else "0_1"
    pq.write_table(with_column(t, "cluster", ks, pa.string()), path)
    return "column 'cluster' disagrees with the -input.parquet"


def links_int_ids(ds, scope_id):
    path = ds.links_dir / "edges.parquet"
    t = pq.read_table(path)
    t = with_column(t, "src_tweet_id", [int(v) for v in t["src_tweet_id"].to_pylist()], pa.int64())
    pq.write_table(t, path)
    return "links/edges.parquet: column 'src_tweet_id' must be Arrow string, got int64"


DEFECTS = [id_as_int64, missing_required_column, missing_label_artifact, duplicate_ls_index, text_on_tombstone,
           x_out_of_range, wrong_table_id, display_umap_not_display, cluster_without_10d,
           cluster_missing_from_lookup, cluster_as_int, lookup_without_unknown, unknown_count_disagrees,
           scope_parquet_cluster_disagrees, links_int_ids]
