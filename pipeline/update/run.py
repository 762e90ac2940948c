"""``update_dataset``: a newer archive merged into an existing dataset, curation kept, only new work done.

The whole update runs on a hard-linked copy of the dataset folder (``Workspace.creating_dataset``)
that replaces the dataset only when every step succeeded, so a failed or cancelled update leaves
the dataset exactly as it was. Steps: ingest the archive (the ingest's own strict reader) →
merge by tweet id (:mod:`pipeline.update.merge`) → embed, reusing the vector of every unchanged
tweet (:mod:`pipeline.stages.embed.reuse`) → place the new tweets on the existing manifolds and
clusters (:mod:`pipeline.update.placement`), carry the labels over (:mod:`pipeline.update.curation`)
→ a new scope and links. ``refit`` instead runs the normal stages after the embedding.
Tombstones, label edits and statuses and the publish history are files of the copy, so they stay.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import param
import pyarrow.parquet as pq

from pipeline.core.config import StageConfig
from pipeline.core.errors import LineageError
from pipeline.core.progress import Progress, null_progress
from pipeline.core.tombstones import add_tombstones
from pipeline.core.workspace import (
    Dataset,
    Workspace,
    atomic_write_json,
    atomic_write_parquet,
    is_temp_name,
    utc_now_iso,
)
from pipeline.stages import lineage
from pipeline.stages.cluster.geometry import cluster_geometry
from pipeline.stages.cluster.stage import TREE_SUFFIX, load_clusters
from pipeline.stages.embed import reuse
from pipeline.stages.embed.stage import (
    EmbedConfig,
    frame_meaning_texts,
    load_embeddings,
    meaning_texts,
    normalisation,
    run_embed,
    texts_to_embed,
    with_prefix,
)
from pipeline.stages.ingest import ingest_archive
from pipeline.stages.ingest.core import column_metadata, file_sha256
from pipeline.stages.ingest.records import TWEET_TYPES
from pipeline.stages.labels.edits import statuses_of
from pipeline.stages.labels.table import arrow_table, load_labels
from pipeline.stages.links import run_links
from pipeline.stages.registry import STAGE_NAMES
from pipeline.stages.runner import run_pipeline
from pipeline.stages.scope import ScopeConfig, run_scope
from pipeline.stages.umap.artifact import load_umap
from pipeline.update.curation import carry_labels
from pipeline.update.merge import MergeResult, check_same_account, merge_inputs
from pipeline.update.placement import DEFAULT_NEIGHBORS, grown_clusters, nearest_old, place, vote

#: the stages ``refit`` reruns after the embedding (the LanceDB table is left to ``tweetscope run``)
REFIT_STAGES = [s for s in STAGE_NAMES if s not in ("embed", "lancedb")]


class UpdateConfig(StageConfig):
    """How a newer archive is merged into a dataset."""

    remove_missing = param.Boolean(
        default=False, label="Remove missing tweets",
        doc="tweets the newer archive no longer holds are deleted (tombstoned: left out of everything "
            "served and published, kept locally); by default they stay and are only reported")
    refit = param.Boolean(
        default=False, label="Refit everything",
        doc="after the embedding (still reusing unchanged vectors) rerun UMAP, clustering, labels, scope and "
            "links from scratch instead of placing the new tweets; label edits do not carry over")
    neighbors = param.Integer(
        default=DEFAULT_NEIGHBORS, bounds=(1, 100),
        doc="nearest existing tweets (in embedding space) that place a new tweet and vote for its cluster")
    relabel_growth = param.Number(
        default=0.2, bounds=(0.0, 100.0),
        doc="flag a cluster for relabelling when the update grew it by at least this fraction of its size")
    relabel_min_new = param.Integer(
        default=5, bounds=(1, 1_000_000),
        doc="flag only clusters that gained at least this many tweets (small clusters grow fast)")
    skip_bad_records = param.Boolean(
        default=False, label="Skip bad records",
        doc="ingest the archive's other records when some are malformed (listed in the report)")


# --------------------------------------------------------------------------- folder copy

def link_copy(src: Path, dst: Path) -> None:
    """``src``'s files hard-linked into ``dst`` (copied where linking fails); temp files left out.

    Safe because every write in the pipeline renames a new file into place: a file of the copy
    is replaced, never changed in place, so the original folder cannot change through a link.
    """
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not is_temp_name(d)]
        target = dst / Path(root).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if is_temp_name(name):
                continue
            try:
                os.link(Path(root) / name, target / name)
            except OSError:
                shutil.copy2(Path(root) / name, target / name)


# --------------------------------------------------------------------------- steps

def base_lineage(dataset: Dataset) -> Optional[dict]:
    """What the update extends: the latest scope's artifacts, else the latest cluster's; None before any."""
    scope_id = dataset.latest("scopes")
    if scope_id:
        side = dataset.sidecar(scope_id)
        ids = {"embedding_id": side["embedding_id"], "umap_id": side["umap_id"], "cluster_id": side["cluster_id"],
               "labels_id": side.get("labels_id") or lineage.DEFAULT_LABELS, "scope_id": scope_id}
        if all(dataset.exists(ids[k]) for k in ("embedding_id", "umap_id", "cluster_id")):
            # the curator's newest labels of that clustering (an edit made after the scope included)
            edits = [t for t in dataset.list_ids("toponymy")
                     if lineage.ref(dataset.sidecar(t), "cluster_id") == ids["cluster_id"]]
            if edits and not lineage.is_default_labels(ids["labels_id"]):
                ids["labels_id"] = edits[-1]
            return ids
    if not dataset.latest("cluster"):
        return None
    ids = lineage.resolve_scope_inputs(dataset)
    return {k: ids[k] for k in ("embedding_id", "umap_id", "cluster_id", "labels_id")} | {"scope_id": None}


def embed_config_of(dataset: Dataset, embedding_id: Optional[str]) -> EmbedConfig:
    """The settings ``embedding_id`` was made with (so unchanged rows can reuse its vectors)."""
    if not embedding_id:
        return EmbedConfig()
    params = {k: v for k, v in (dataset.sidecar(embedding_id).get("params") or {}).items()
              if k in EmbedConfig.param and k != "name"}
    if "normalise" in EmbedConfig.param and "normalise" not in params:
        params["normalise"] = False  # made before texts were normalised: it embedded the column as it is
    return EmbedConfig.from_dict(params)


def merged_meta(old: dict, incoming: dict, merge: MergeResult, fingerprint: str) -> dict:
    """The dataset's meta.json after the merge: the counts of the merged rows, the old ingest options."""
    table = merge.table
    by_type = {t: 0 for t in TWEET_TYPES}
    for value, count in pd.Series(table["tweet_type"].to_pylist()).value_counts().items():
        by_type[str(value)] = int(count)
    meta = {**old}
    meta.update({
        "length": table.num_rows, "columns": list(table.column_names), "column_metadata": column_metadata(table),
        "input_fingerprint": fingerprint, "account": incoming.get("account") or old.get("account"),
        "counts": {**(old.get("counts") or {}), "rows": table.num_rows, "tweet_types": by_type},
    })
    return meta


def place_rows(dataset: Dataset, base: dict, embedding_id: str, n_old: int, config: UpdateConfig,
               fingerprint: str, progress: Progress) -> dict:
    """New rows (``n_old``..) placed on ``base``'s manifolds and clusters; returns the new artifact ids and facts."""
    timings = {}
    t = time.perf_counter()
    vectors = load_embeddings(dataset, embedding_id)
    n = len(vectors)
    new_rows = np.arange(n_old, n)
    progress.update(1, 5, f"nearest existing tweets of {len(new_rows):,} new ones")
    idx, sim = nearest_old(vectors[:n_old], vectors[n_old:], config.neighbors)
    del vectors
    timings["knn_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    disp_old_id = base["umap_id"]
    disp_side = dataset.sidecar(disp_old_id)
    clus_old_id = disp_side["cluster_umap_id"]
    clus_side = dataset.sidecar(clus_old_id)
    display = load_umap(dataset, disp_old_id)
    manifold = load_umap(dataset, clus_old_id, purpose=lineage.CLUSTER)
    if len(display) != n_old or len(manifold) != n_old:
        raise LineageError(f"{disp_old_id} has {len(display)} rows, the dataset had {n_old}; "
                           "run `tweetscope update --refit` to rebuild the map")
    xy = np.vstack([display[["x", "y"]].to_numpy(np.float32), place(display[["x", "y"]].to_numpy(), idx, sim)])
    dims = manifold.to_numpy(np.float32)
    dims = np.vstack([dims, place(dims, idx, sim)])
    placed = {"method": "similarity-weighted mean of the nearest existing tweets (embedding space)",
              "neighbors": int(idx.shape[1]), "rows": int(len(new_rows)), "first_new_row": int(n_old)}
    progress.update(2, 5, "writing the placed manifolds")
    with dataset.new_artifact("umap") as disp, dataset.new_artifact("umap") as clus:
        disp.write_parquet(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}))
        own = {"id", "inputs", "rows", "timings", "versions", "created_at"}
        disp.write_sidecar(
            {**{k: v for k, v in disp_side.items() if k not in own}, "embedding_id": embedding_id,
             "cluster_umap_id": clus.id, "placed_from": disp_old_id, "placement": placed},
            params=disp_side.get("params"), inputs={"embedding_id": embedding_id}, rows=n, timings=timings)
        clus.write_parquet(pd.DataFrame({c: dims[:, i] for i, c in enumerate(manifold.columns)}))
        clus.write_sidecar(
            {**{k: v for k, v in clus_side.items() if k not in own}, "embedding_id": embedding_id,
             "display_umap_id": disp.id, "placed_from": clus_old_id, "placement": placed,
             "min_values": dims.min(axis=0).astype(float).tolist(),
             "max_values": dims.max(axis=0).astype(float).tolist()},
            params=clus_side.get("params"), inputs={"embedding_id": embedding_id}, rows=n, timings=timings)
    timings["place_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    progress.update(3, 5, "assigning clusters")
    old_cluster_id = base["cluster_id"]
    old = load_clusters(dataset, old_cluster_id)
    if len(old) != n_old:
        raise LineageError(f"{old_cluster_id} has {len(old)} rows, the dataset had {n_old}; run with --refit")
    new_clusters = vote(old["cluster"].to_numpy(), idx)
    cluster = np.concatenate([old["cluster"].to_numpy(), new_clusters]).astype(np.int32)
    raw = np.concatenate([old["raw_cluster"].to_numpy(), np.full(len(new_rows), -1)]).astype(np.int32)
    n_clusters = int(old["cluster"].max()) + 1
    grown = grown_clusters(np.bincount(old["cluster"], minlength=n_clusters),
                           np.bincount(cluster, minlength=n_clusters), config.relabel_growth, config.relabel_min_new)
    cluster_id = write_placed_clusters(dataset, old_cluster_id, cluster, raw, xy, idx, disp.id, clus.id,
                                       embedding_id, placed, grown)
    timings["cluster_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    labels_id, review, unplaced = lineage.DEFAULT_LABELS, {}, 0
    if not lineage.is_default_labels(base["labels_id"]):
        progress.update(4, 5, f"carrying {base['labels_id']} over")
        labels_id, review, unplaced = write_carried_labels(
            dataset, base["labels_id"], new_rows, new_clusters, xy, config, fingerprint,
            {"cluster_id": cluster_id, "embedding_id": embedding_id, "umap_id": disp.id,
             "clustering_umap_id": clus.id})
    timings["labels_s"] = round(time.perf_counter() - t, 3)
    return {"umap_id": disp.id, "clustering_umap_id": clus.id, "cluster_id": cluster_id, "labels_id": labels_id,
            "grown_clusters": {f"0_{c}": v for c, v in grown.items()}, "flagged_labels": review,
            "unplaced": unplaced, "timings": timings}


def write_placed_clusters(dataset: Dataset, old_id: str, cluster: np.ndarray, raw: np.ndarray, xy: np.ndarray,
                          idx: np.ndarray, umap_id: str, clustering_umap_id: str, embedding_id: str,
                          placed: dict, grown: dict) -> str:
    """A cluster artifact: the old assignments, the new rows' votes, placeholder labels and the saved tree.

    The tree stays the old rows' (HDBSCAN is not rerun); the new rows' neighbour lists are
    appended to its kNN, so a re-extraction votes them into clusters like noise points.
    """
    side = dataset.sidecar(old_id)
    geometry = cluster_geometry(xy, cluster)
    n_clusters = int(len(geometry))
    labels = pd.DataFrame({
        "label": [f"Cluster {c}" for c in geometry["cluster"]],
        "description": ["Placeholder name (no labels yet): run the labels stage" for _ in range(n_clusters)],
        "indices": geometry["indices"], "hull": geometry["hull"], "count": geometry["count"].astype(np.int64),
        "centroid_x": geometry["centroid_x"].astype(np.float32),
        "centroid_y": geometry["centroid_y"].astype(np.float32),
    })
    with np.load(dataset.artifact_path(old_id, TREE_SUFFIX)) as saved:
        tree, knn, min_samples = saved["single_linkage_tree"], saved["knn"], saved["min_samples"]
    k = knn.shape[1]
    knn = np.vstack([knn, idx[:, :k].astype(knn.dtype)]) if idx.shape[1] >= k else knn
    own = {"id", "inputs", "rows", "timings", "versions", "created_at", "reclustered_from"}
    with dataset.new_artifact("cluster") as art:
        art.write_parquet(pd.DataFrame({"cluster": cluster, "raw_cluster": raw}))
        art.write_parquet(labels, lineage.DEFAULT_LABELS_SUFFIX + ".parquet")
        art.write_json({
            "id": lineage.default_labels_id(art.id), "cluster_id": art.id, "type": "default", "placeholder": True,
            "umap_id": umap_id, "n_clusters": n_clusters,
            "labels": [{"cluster": int(r.cluster), "label": f"Cluster {r.cluster}", "count": int(r.count),
                        "centroid": [round(r.centroid_x, 6), round(r.centroid_y, 6)]} for r in geometry.itertuples()],
        }, lineage.DEFAULT_LABELS_SUFFIX + ".json")
        with open(art.path(TREE_SUFFIX), "wb") as fh:
            np.savez(fh, single_linkage_tree=tree, knn=knn, min_samples=min_samples)
        art.write_sidecar(
            {**{k: v for k, v in side.items() if k not in own}, "umap_id": umap_id,
             "clustering_umap_id": clustering_umap_id, "embedding_id": embedding_id,
             "n_clusters": n_clusters, "n_noise": int((raw < 0).sum()),
             "cluster_sizes": np.bincount(cluster, minlength=n_clusters).astype(int).tolist(),
             "labels_default": lineage.default_labels_id(art.id), "tree": f"{art.id}{TREE_SUFFIX}",
             "placed_from": old_id, "placement": {**placed, "assignment": "rank-weighted vote of the same neighbours"},
             "grown_clusters": {str(c): v for c, v in grown.items()}},
            params=side.get("params"), inputs={"umap_id": umap_id, "clustering_umap_id": clustering_umap_id},
            rows=len(cluster))
    return art.id


def write_carried_labels(dataset: Dataset, labels_id: str, rows: np.ndarray, clusters: np.ndarray, xy: np.ndarray,
                         config: UpdateConfig, fingerprint: str, ids: dict) -> tuple[str, dict, int]:
    """A new toponymy artifact: ``labels_id``'s labels and statuses with the new rows added; grown ones flagged."""
    parent = dataset.sidecar(labels_id)
    carried = carry_labels(load_labels(dataset, labels_id), statuses_of(dataset, labels_id), rows, clusters, xy,
                           config.relabel_growth, config.relabel_min_new)
    own = {"id", "params", "inputs", "rows", "timings", "versions", "created_at", "edits", "edit_note",
           "edited_from", "statuses", "relabel", "needs_review", "updated_from"}
    with dataset.new_artifact("toponymy") as art:
        art.write_parquet(arrow_table(carried.table))
        art.write_sidecar(
            {**{k: v for k, v in parent.items() if k not in own}, **ids, "edited_from": None,
             "updated_from": labels_id, "statuses": carried.statuses, "edits": carried.edits,
             "edit_note": f"archive update: {len(rows):,} new tweets placed", "needs_review": carried.review},
            params=parent.get("params"), inputs={**ids, "input": fingerprint}, rows=len(carried.table))
    return art.id, carried.review, carried.unplaced


# --------------------------------------------------------------------------- the update

def ingest_incoming(workspace: Workspace, archive, meta: dict, config: UpdateConfig,
                    progress: Progress) -> tuple[pd.DataFrame, dict, Path]:
    """The newer archive read by the ingest into a hidden folder: (its rows as Arrow, its meta, the folder)."""
    folder = Path(tempfile.mkdtemp(prefix=".tmp-update-", dir=workspace.data_dir))
    try:
        options = meta.get("ingest") or {}
        incoming = ingest_archive(archive, Workspace(folder), "incoming",
                                  include_likes=bool(options.get("include_likes")),
                                  include_deleted=bool(options.get("include_deleted")),
                                  skip_bad_records=config.skip_bad_records, progress=progress)
        return pq.read_table(incoming.input_path), incoming.meta(), folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def plan_update(workspace: Workspace, name: str, archive, config: Optional[UpdateConfig] = None,
                progress: Optional[Progress] = None) -> dict:
    """What an update would do, without changing anything: row counts and the embedding work."""
    config = config or UpdateConfig()
    dataset = workspace.dataset(name)
    meta = dataset.meta()
    table, incoming_meta, folder = ingest_incoming(workspace, archive, meta, config,
                                                   progress or null_progress("update"))
    try:
        merge = merge_inputs(pq.read_table(dataset.input_path), table)
        check_same_account(meta, incoming_meta, merge.n_old - len(merge.missing), merge.n_old)
        return {**merge.summary(), **embed_plan(dataset, merge)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def embed_plan(dataset: Dataset, merge: MergeResult) -> dict:
    """Texts the embedder will be sent (new + changed tweets) and their token estimate (what Voyage bills)."""
    base = base_lineage(dataset)
    embedding_id = base["embedding_id"] if base else dataset.latest("embedding")
    config = embed_config_of(dataset, embedding_id)
    column = config.text_column if config.text_column in merge.table.column_names else "text"
    texts = merge.table[column].to_pylist()
    rows = np.concatenate([merge.changed, np.arange(merge.n_old, merge.table.num_rows)])
    if not embedding_id:  # nothing to reuse yet: every row is sent
        rows = np.arange(merge.table.num_rows)
    # the strings the embed stage will send (texts_to_embed's rule): only the rows sent are
    # normalised, unless parent context needs every row to find the parents
    norm = normalisation(config)
    if norm and norm.get("parent_context"):
        every = frame_meaning_texts(merge.table.to_pandas(), column, norm)
        sent = [every[i] for i in rows]
    else:
        sent = meaning_texts([texts[i] for i in rows], norm)
    sent = with_prefix(sent, config)
    side = dataset.sidecar(embedding_id) if embedding_id else {}
    return {"texts_to_embed": len(sent), "tokens_estimate": reuse.estimate_tokens(sent),
            "embedding_provider": side.get("provider", config.provider), "embedding_model": side.get("model_id", "")}


def update_dataset(workspace: Workspace, name: str, archive, config: Optional[UpdateConfig] = None,
                   progress: Optional[Progress] = None) -> dict:
    """Merge the newer ``archive`` into dataset ``name``; returns the update record (also in meta.json ``updates``)."""
    config = config or UpdateConfig()
    progress = progress or null_progress("update")
    started = time.perf_counter()
    dataset = workspace.dataset(name)
    old_meta = dataset.meta()
    timings: dict[str, float] = {}
    table, incoming_meta, folder = ingest_incoming(workspace, archive, old_meta, config,
                                                   progress.for_stage("update: ingest"))
    try:
        timings["ingest_s"] = round(time.perf_counter() - started, 3)
        t = time.perf_counter()
        merge = merge_inputs(pq.read_table(dataset.input_path), table)
        del table
        check_same_account(old_meta, incoming_meta, merge.n_old - len(merge.missing), merge.n_old)
        timings["merge_s"] = round(time.perf_counter() - t, 3)
        with workspace.creating_dataset(name, overwrite=True) as staged:
            t = time.perf_counter()
            link_copy(dataset.path, staged.path)
            timings["copy_s"] = round(time.perf_counter() - t, 3)
            record = _update_in(staged, old_meta, incoming_meta, merge, archive, config, progress, timings)
            record["timings"]["total_s"] = round(time.perf_counter() - started, 3)
            meta = staged.meta()
            meta["updates"] = [*(meta.get("updates") or [])[:-1], record]
            atomic_write_json(staged.meta_path, meta)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return record


def _update_in(staged: Dataset, old_meta: dict, incoming_meta: dict, merge: MergeResult, archive,
               config: UpdateConfig, progress: Progress, timings: dict) -> dict:
    base = base_lineage(staged)
    embed_config = embed_config_of(staged, base["embedding_id"] if base else staged.latest("embedding"))
    plan = embed_plan(staged, merge)
    if base and not reuse.keys_path(staged, base["embedding_id"]).is_file():
        reuse.backfill_keys(staged, base["embedding_id"], texts_to_embed(staged, embed_config))

    t = time.perf_counter()
    atomic_write_parquet(merge.table, staged.input_path)  # renamed in: the hard link to the original is replaced
    fingerprint = file_sha256(staged.input_path)
    meta = merged_meta(old_meta, incoming_meta, merge, fingerprint)
    record = {"at": utc_now_iso(), "archive": Path(str(archive)).name, **merge.summary(),
              "new_rows": [merge.n_old, merge.table.num_rows], "changed_rows": merge.changed.tolist()[:1000],
              "missing_rows": merge.missing.tolist()[:1000], "removed_missing": bool(config.remove_missing and
                                                                                    len(merge.missing)),
              "skipped_records": (incoming_meta.get("ingest") or {}).get("skipped_records", []),
              "refit": config.refit, "params": config.to_dict(), "timings": timings, **plan}
    meta["updates"] = [*(old_meta.get("updates") or []), record]
    atomic_write_json(staged.meta_path, meta)
    if config.remove_missing and len(merge.missing):
        add_tombstones(staged, merge.missing.tolist())
    timings["write_input_s"] = round(time.perf_counter() - t, 3)

    if base is None and not staged.latest("embedding"):
        record["note"] = "the dataset had no embedding yet: run `tweetscope run` to build it"
        return record
    t = time.perf_counter()
    embedding_id = run_embed(staged, embed_config, progress.for_stage("update: embed"))
    side = staged.sidecar(embedding_id)
    record["embedding_id"] = embedding_id
    record["n_embedded"], record["n_reused"] = side.get("n_embedded"), side.get("n_reused")
    timings["embed_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    if config.refit or base is None:
        report = run_pipeline(staged, progress.for_stage("update: refit"), REFIT_STAGES)
        record["artifacts"] = {stage: artifact for stage, artifact, _ in report.ran}
        timings["refit_s"] = round(time.perf_counter() - t, 3)
        return record
    placed = place_rows(staged, base, embedding_id, merge.n_old, config, fingerprint,
                        progress.for_stage("update: place"))
    timings.update({f"place_{k}": v for k, v in placed.pop("timings").items()})
    t = time.perf_counter()
    scope_config = ScopeConfig.from_dict({k: v for k, v in (staged.sidecar(base["scope_id"]).get("params") or {})
                                          .items() if k in ScopeConfig.param}) if base["scope_id"] else ScopeConfig()
    scope_id = run_scope(staged, scope_config, progress.for_stage("update: scope"), embedding_id=embedding_id,
                         display_umap_id=placed["umap_id"], cluster_id=placed["cluster_id"],
                         labels_id=placed["labels_id"])
    run_links(staged, progress.for_stage("update: links"))
    timings["scope_links_s"] = round(time.perf_counter() - t, 3)
    record.update(placed)
    record["artifacts"] = {"embedding": embedding_id, "umap": placed["umap_id"], "cluster": placed["cluster_id"],
                           "labels": placed["labels_id"], "scope": scope_id}
    record["base"] = base
    return record
