"""What may feed what: every rule about which artifact can be the input of which, in one place.

The chain is ``input -> embedding -> umap (display 2-D + its cluster-manifold sibling) ->
cluster -> toponymy labels -> scope``. The stages call these functions to fill in and check
their inputs, the deploy gate (``pipeline.serving.validate``) calls them to check a scope,
and the studio and CLI read the same constants. Each ``*_problems`` function returns one
self-contained line per broken rule (empty = fine); ``resolve_*`` functions fill in missing
ids from the lineage (else the latest artifact) and raise :class:`LineageError` on a mismatch.
"""

from __future__ import annotations

from typing import Optional

from pipeline.core.errors import LineageError
from pipeline.core.workspace import DEFAULT_LABELS_SUFFIX, Dataset, WorkspaceError  # noqa: F401  (re-exported)

#: sidecar ``purpose`` of the two UMAP manifolds
DISPLAY = "display"
CLUSTER = "cluster"
#: the display manifold is the map: 2-D, x/y scaled to [-1, 1]
DISPLAY_DIMENSIONS = 2
#: HDBSCAN's manifold: 10-D by default; UMAP's config may choose any size in this range
CLUSTER_DIMENSIONS = 10
CLUSTER_DIMENSIONS_RANGE = (3, 50)
#: a scope without toponymy labels uses the cluster artifact's placeholder labels
DEFAULT_LABELS = "default"
#: their id is ``cluster-NNN`` + DEFAULT_LABELS_SUFFIX, defined in core/workspace.py (the bottom layer needs it too)


def default_labels_id(cluster_id: str) -> str:
    """Id of the placeholder labels the cluster stage writes beside ``cluster_id``."""
    return f"{cluster_id}{DEFAULT_LABELS_SUFFIX}"


def is_default_labels(labels_id: Optional[str]) -> bool:
    return labels_id == DEFAULT_LABELS or bool(labels_id and labels_id.endswith(DEFAULT_LABELS_SUFFIX))


def ref(sidecar: dict, key: str) -> Optional[str]:
    """An input id a sidecar names, as a field or under ``inputs``."""
    value = sidecar.get(key)
    return value if value is not None else (sidecar.get("inputs") or {}).get(key)


# --------------------------------------------------------------------------- the two manifolds

def display_manifold_problems(umap_id: str, sidecar: dict) -> list[str]:
    problems = []
    if sidecar.get("purpose") != DISPLAY:
        problems.append(f"{umap_id} has purpose={sidecar.get('purpose')!r}; the map needs the display UMAP")
    if sidecar.get("n_components") != DISPLAY_DIMENSIONS:
        problems.append(f"{umap_id} has n_components={sidecar.get('n_components')!r}; "
                        f"the display UMAP is {DISPLAY_DIMENSIONS}-D")
    return problems


def cluster_manifold_problems(umap_id: str, sidecar: dict) -> list[str]:
    low, high = CLUSTER_DIMENSIONS_RANGE
    problems = []
    dims = sidecar.get("n_components")
    if sidecar.get("purpose") != CLUSTER:
        problems.append(f"{umap_id} is the {dims}-D {sidecar.get('purpose')} manifold; HDBSCAN runs on the "
                        f"{CLUSTER} manifold, never on 2-D display coordinates")
    if not isinstance(dims, int) or not low <= dims <= high:
        problems.append(f"{umap_id} has n_components={dims!r}; a cluster manifold has {low}..{high} dimensions")
    return problems


def sibling_problems(display_id: str, display: dict, cluster_id: str, cluster: dict) -> list[str]:
    """The display and cluster manifolds of one map come from the same embedding and rows."""
    if ref(display, "embedding_id") != ref(cluster, "embedding_id") or display.get("rows") != cluster.get("rows"):
        return [f"{display_id} (from {ref(display, 'embedding_id')}) and {cluster_id} "
                f"(from {ref(cluster, 'embedding_id')}) do not come from the same embedding; pick siblings"]
    return []


def resolve_manifolds(dataset: Dataset, display_umap_id: Optional[str] = None,
                      clustering_umap_id: Optional[str] = None) -> tuple[str, str]:
    """(display, cluster manifold) ids for a clustering: a given one brings its sibling, else the latest."""
    if clustering_umap_id is None and display_umap_id is not None:
        clustering_umap_id = dataset.sidecar(display_umap_id).get("cluster_umap_id")
    clustering_umap_id = dataset.require("umap", clustering_umap_id, purpose=CLUSTER)
    clus = dataset.sidecar(clustering_umap_id)
    problems = cluster_manifold_problems(clustering_umap_id, clus)
    if problems:
        sibling = clus.get("cluster_umap_id")
        raise LineageError(problems[0] + (f" (its sibling is {sibling})" if sibling else ""))
    if display_umap_id is None:
        display_umap_id = clus.get("display_umap_id")
    display_umap_id = dataset.require("umap", display_umap_id, purpose=DISPLAY)
    disp = dataset.sidecar(display_umap_id)
    problems = display_manifold_problems(display_umap_id, disp)
    problems += sibling_problems(display_umap_id, disp, clustering_umap_id, clus)
    if problems:
        raise LineageError("; ".join(problems))
    return display_umap_id, clustering_umap_id


def cluster_inputs(dataset: Dataset, cluster_id: Optional[str] = None) -> dict:
    """What a cluster artifact (default: the latest) was made from: what its labels need."""
    cluster_id = dataset.require("cluster", cluster_id)
    side = dataset.sidecar(cluster_id)
    missing = [k for k in ("embedding_id", "umap_id", "clustering_umap_id") if not side.get(k)]
    if missing:
        raise LineageError(f"{cluster_id}'s sidecar lacks {', '.join(missing)}; re-run `tweetscope cluster`")
    return {"cluster_id": cluster_id, "embedding_id": side["embedding_id"], "umap_id": side["umap_id"],
            "clustering_umap_id": side["clustering_umap_id"]}


# --------------------------------------------------------------------------- scope

def _need(dataset: Dataset, artifact_id: str, what: str) -> dict:
    if not dataset.exists(artifact_id):
        kind = artifact_id.split("-")[0]
        have = ", ".join(dataset.list_ids(kind)) if kind in ("embedding", "umap", "cluster", "toponymy") else ""
        raise WorkspaceError(f"dataset '{dataset.name}' has no {what} {artifact_id} (existing: {have or 'none'})")
    return dataset.sidecar(artifact_id)


def resolve_scope_inputs(
    dataset: Dataset,
    embedding_id: Optional[str] = None,
    display_umap_id: Optional[str] = None,
    cluster_id: Optional[str] = None,
    labels_id: Optional[str] = None,
) -> dict:
    """A scope's input ids, missing ones filled in, checked to form one lineage chain.

    A missing id is taken from the artifact downstream of it (labels -> cluster -> display
    UMAP / embedding); the cluster, when nothing downstream names it, is the latest one. Labels default
    to the latest toponymy artifact of the chosen cluster, else ``"default"`` (the cluster's
    placeholder labels). Any disagreement raises :class:`LineageError` naming both sides.
    """
    if labels_id and labels_id != DEFAULT_LABELS and not cluster_id:
        cluster_id = ref(_need(dataset, labels_id, "labels artifact"), "cluster_id")
    if not cluster_id:
        match = {}
        if display_umap_id:
            match["umap_id"] = display_umap_id
        candidates = [c for c in dataset.list_ids("cluster")
                      if all(ref(dataset.sidecar(c), k) == v for k, v in match.items())]
        if embedding_id:
            candidates = [c for c in candidates if ref(dataset.sidecar(c), "embedding_id") in (None, embedding_id)]
        if not candidates:
            raise WorkspaceError(
                f"dataset '{dataset.name}' has no cluster artifact"
                + (f" for {display_umap_id}" if display_umap_id else "") + "; run `tweetscope cluster` first"
            )
        cluster_id = candidates[-1]
    cluster = _need(dataset, cluster_id, "cluster artifact")
    display_umap_id = display_umap_id or ref(cluster, "umap_id")
    if not display_umap_id:
        raise LineageError(f"{cluster_id} does not record its display umap_id; run `tweetscope cluster` again")
    umap = _need(dataset, display_umap_id, "display UMAP")
    embedding_id = embedding_id or ref(cluster, "embedding_id") or ref(umap, "embedding_id") \
        or dataset.latest("embedding")
    if not embedding_id:
        raise WorkspaceError(f"dataset '{dataset.name}' has no embedding; run `tweetscope embed` first")
    _need(dataset, embedding_id, "embedding")
    if not labels_id:
        topo = [t for t in dataset.list_ids("toponymy") if ref(dataset.sidecar(t), "cluster_id") == cluster_id]
        labels_id = topo[-1] if topo else DEFAULT_LABELS

    problems = []
    if umap.get("purpose") not in (None, DISPLAY):
        problems.append(f"{display_umap_id} is a '{umap.get('purpose')}' UMAP, not the display (2-D) one")
    if umap.get("n_components") not in (None, DISPLAY_DIMENSIONS):
        problems.append(f"{display_umap_id} has {umap.get('n_components')} components; the display UMAP is 2-D")
    if ref(umap, "embedding_id") not in (None, embedding_id):
        problems.append(f"{display_umap_id} was made from {ref(umap, 'embedding_id')}, not {embedding_id}")
    if ref(cluster, "umap_id") != display_umap_id:
        problems.append(f"{cluster_id} was made on display UMAP {ref(cluster, 'umap_id')}, not {display_umap_id}")
    if ref(cluster, "embedding_id") not in (None, embedding_id):
        problems.append(f"{cluster_id} was made from {ref(cluster, 'embedding_id')}, not {embedding_id}")
    if labels_id == DEFAULT_LABELS:
        if not dataset.artifact_path(cluster_id, DEFAULT_LABELS_SUFFIX + ".parquet").is_file():
            problems.append(f"{cluster_id} has no default labels and no toponymy labels; run `tweetscope label` first")
    else:
        labels = _need(dataset, labels_id, "labels artifact")
        for key, want in (("cluster_id", cluster_id), ("umap_id", display_umap_id), ("embedding_id", embedding_id)):
            have = ref(labels, key)
            if have is not None and have != want:
                problems.append(f"{labels_id} belongs to {key}={have}, not {want}")
    if problems:
        raise LineageError("the chosen artifacts do not form one lineage: " + "; ".join(problems)
                           + ". Pick matching ids, or leave some out to have them filled in.")
    return {"embedding_id": embedding_id, "umap_id": display_umap_id, "cluster_id": cluster_id,
            "labels_id": labels_id,
            "cluster_labels_id": default_labels_id(cluster_id) if labels_id == DEFAULT_LABELS else labels_id}


def _sidecar_or_problem(dataset: Dataset, artifact_id, what: str, problems: list[str]) -> Optional[dict]:
    if not isinstance(artifact_id, str) or not artifact_id:
        problems.append(f"lineage: the scope names no {what}")
        return None
    if not dataset.exists(artifact_id):
        problems.append(f"lineage: {what} {artifact_id} does not exist in dataset '{dataset.name}'")
        return None
    return dataset.sidecar(artifact_id)


def scope_chain_problems(dataset: Dataset, scope: dict) -> list[str]:
    """A written scope's embedding -> display UMAP -> cluster (on its cluster manifold) -> labels chain."""
    problems: list[str] = []
    emb_id, umap_id, cluster_id = scope.get("embedding_id"), scope.get("umap_id"), scope.get("cluster_id")
    _sidecar_or_problem(dataset, emb_id, "embedding", problems)
    umap = _sidecar_or_problem(dataset, umap_id, "display UMAP", problems)
    if umap is not None:
        problems += [f"lineage: {p}" for p in display_manifold_problems(umap_id, umap)]
        if ref(umap, "embedding_id") != emb_id:
            problems.append(f"lineage: {umap_id} was made from {ref(umap, 'embedding_id')}, the scope says {emb_id}")
    cluster = _sidecar_or_problem(dataset, cluster_id, "cluster", problems)
    if cluster is not None:
        if ref(cluster, "umap_id") != umap_id:
            problems.append(f"lineage: {cluster_id} was made on {ref(cluster, 'umap_id')}, the scope says {umap_id}")
        if ref(cluster, "embedding_id") not in (None, emb_id):
            problems.append(f"lineage: {cluster_id} was made from {ref(cluster, 'embedding_id')}, "
                            f"the scope says {emb_id}")
        cu_id = ref(cluster, "clustering_umap_id")
        if not cu_id:
            problems.append(f"lineage: {cluster_id} has no clustering_umap_id "
                            "(HDBSCAN must run on the cluster manifold)")
        else:
            cu = _sidecar_or_problem(dataset, cu_id, "clustering UMAP", problems)
            if cu is not None:
                problems += [f"lineage: clustering UMAP {p}" for p in cluster_manifold_problems(cu_id, cu)]
                if ref(cu, "embedding_id") not in (None, emb_id):
                    problems.append(f"lineage: clustering UMAP {cu_id} was made from {ref(cu, 'embedding_id')}, "
                                    f"the scope says {emb_id}")
    labels_id = scope.get("cluster_labels_id")
    if isinstance(labels_id, str) and labels_id and not is_default_labels(labels_id) and dataset.exists(labels_id):
        labels_cluster = ref(dataset.sidecar(labels_id), "cluster_id")
        if labels_cluster != cluster_id:
            problems.append(f"lineage: {labels_id} labels {labels_cluster}, the scope says {cluster_id}")
    return problems
