"""What a publish sends: the spec D1 allowlist for one scope, the D2 denylist, and the diff.

Pure-ish helpers with no network of their own: :func:`scope_allowlist` reads the scope JSON to
find the label artifacts it uses, :func:`denied_reason` is checked again on every key
(defence in depth), and :func:`diff_objects` compares local SHA-256 with what the target holds.
"""

from __future__ import annotations

import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pipeline.core.errors import PublishError
from pipeline.core.workspace import Dataset, is_temp_name, read_json
from pipeline.publish.targets import RemoteObject, Target, sha256_file
from pipeline.serving.webmap import WEBMAP_NAME

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "tweetscope-publish-manifest"
MANIFEST_VERSION = 1

# IANA registered application/vnd.apache.parquet in 2024; hyparquet ignores the type, and
# a precise type lets a CDN or browser tell our files apart from arbitrary binaries.
CONTENT_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",  # only <dataset>/index.html, the shareable map
}

_LABELS_RE = re.compile(r"^cluster-\d{3,}-labels-[A-Za-z0-9_-]+$")
_TOPONYMY_RE = re.compile(r"^toponymy-\d{3,}$")
_CLUSTER_RE = re.compile(r"^cluster-\d{3,}$")
_SCOPE_RE = re.compile(r"^scopes-\d{3,}$")


@dataclass
class PlannedObject:
    """One object of the plan: a local file of the dataset and its state on the target."""

    key: str            # object key below the target root: "<dataset>/<rel>"
    rel: str            # path inside the dataset folder
    path: Path
    size: int
    sha256: str
    content_type: str
    cache_control: str
    mtime_ns: int = 0
    status: str = "new"  # new | changed | unchanged
    remote_size: Optional[int] = None
    remote_sha256: Optional[str] = None
    manifest_sha256: Optional[str] = None  # what the current remote manifest says

    @property
    def is_parquet(self) -> bool:
        return self.rel.endswith(".parquet")

    def row(self) -> dict:
        """What the studio's plan table and the CLI show."""
        return {"key": self.key, "size": self.size, "status": self.status,
                "content_type": self.content_type, "sha256": self.sha256}


# --------------------------------------------------------------------------- allow / deny

def denied_reason(rel: str) -> Optional[str]:
    """Why ``rel`` (a path inside the dataset folder) must never be published, or None (spec D2)."""
    parts = rel.split("/")
    name = parts[-1]
    low = rel.lower()
    if not rel or rel.startswith("/") or ".." in parts or "" in parts:
        return "not a plain relative path"
    if rel == "input.parquet":
        return "input.parquet is the raw archive (pipeline only)"
    if parts[0] in ("embeddings", "umaps"):
        return f"{parts[0]}/ is pipeline-only"
    if parts[0] in ("lancedb", "publishes") or any(p.endswith(".lance") for p in parts):
        return f"{parts[0]}/ is local state, never a CDN object"
    if parts[0] == "clusters" and _CLUSTER_RE.match(name.rsplit(".", 1)[0]) and name.endswith(".parquet"):
        return "cluster assignment parquets are folded into the scope parquet"
    if any(p.startswith(".") for p in parts) or is_temp_name(name):
        return "hidden or temporary file"
    if "tombstone" in low:
        return "tombstone records are private"
    if "backup" in low or low.endswith((".bak", "~", ".orig", ".old", ".tmp", ".temp", ".swp")):
        return "backup or temporary file"
    if low.endswith((".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")):
        return "images are dev QA only"
    if low.endswith((".h5", ".hdf5", ".npy", ".npz", ".pkl", ".pickle", ".zip", ".js")):
        return "pipeline data or raw archive file"
    if "tags" in parts or name.startswith("tags"):
        return "tags are not CDN artifacts"
    if low.endswith(".html") and rel != WEBMAP_NAME:
        return f"the only published page is {WEBMAP_NAME} (the shareable map)"
    if os.path.splitext(name)[1] not in CONTENT_TYPES:
        return "only .json and .parquet files are published"
    return None


def _label_files(value: str, cluster_id: Optional[str]) -> list[str]:
    """Files of a label artifact named in the scope JSON (toponymy-NNN, or cluster-NNN-labels-<name>
    such as ``lineage.default_labels_id``), as dataset-relative keys."""
    if _TOPONYMY_RE.match(value) or _LABELS_RE.match(value):
        return [f"clusters/{value}.parquet", f"clusters/{value}.json"]
    if cluster_id and re.match(r"^[A-Za-z0-9_-]+$", value):  # latent-scope style: labels id "default"
        full = f"{cluster_id}-labels-{value}"
        return [f"clusters/{full}.parquet", f"clusters/{full}.json"]
    return []


def scope_allowlist(dataset: Dataset, scope_id: str, webmap: bool = False) -> list[str]:
    """Spec D1 resolved for one scope: the dataset-relative paths that go to the CDN
    (plus ``index.html``, the shareable map, when ``webmap``)."""
    if not _SCOPE_RE.match(scope_id or ""):
        raise PublishError(f"'{scope_id}' is not a scope id (scopes-NNN)")
    scope_json = dataset.sidecar_path(scope_id)
    if not scope_json.is_file():
        have = ", ".join(dataset.list_ids("scopes")) or "none"
        raise PublishError(f"dataset '{dataset.name}' has no {scope_id} (scopes: {have}); "
                           "run `tweetscope scope` first")
    scope = read_json(scope_json)
    cluster_id = scope.get("cluster_id")
    rels = [dataset.relpath(path) for path in
            (dataset.meta_path, scope_json, dataset.artifact_path(scope_id, "-input.parquet"))]
    label_refs = []
    for field_name in ("labels_id", "toponymy_id", "hierarchical_labels_id", "cluster_labels_id", "label_id"):
        value = scope.get(field_name)
        if isinstance(value, str) and value:
            label_refs.append(value)
    label_files = [f for ref in label_refs for f in _label_files(ref, cluster_id)]
    if not label_files:
        raise PublishError(f"{scope_id}.json names no label artifact (labels_id / cluster_labels_id); "
                           "re-run `tweetscope scope`")
    rels += label_files
    if isinstance(cluster_id, str) and _CLUSTER_RE.match(cluster_id):
        rels.append(dataset.relpath(dataset.sidecar_path(cluster_id)))  # listing endpoint
    rels += [dataset.relpath(path) for path in
             (dataset.links_meta_path, dataset.links_edges_path, dataset.links_node_stats_path)]
    if webmap:
        rels.append(WEBMAP_NAME)
    seen, ordered = set(), []
    for rel in rels:
        if rel not in seen:
            seen.add(rel)
            ordered.append(rel)
    return ordered


def checked_local_file(dataset: Dataset, rel: str) -> Path:
    """The file for ``rel`` after the denylist and containment checks (no symlinks, inside the folder)."""
    reason = denied_reason(rel)
    if reason:
        raise PublishError(f"refusing to publish {dataset.name}/{rel}: {reason}")
    root = dataset.path.resolve()
    path = dataset.joinpath(rel)
    # Every component must be a real entry: a symlink could smuggle in any file of the machine.
    probe = dataset.path
    for part in rel.split("/"):
        probe = probe / part
        try:
            mode = os.lstat(probe).st_mode
        except FileNotFoundError:
            raise PublishError(f"{dataset.name}/{rel} is missing; the scope references it — "
                               "re-run the stage that writes it") from None
        if stat.S_ISLNK(mode):
            raise PublishError(f"refusing to publish {dataset.name}/{rel}: it goes through a symlink")
    resolved = path.resolve()
    if root not in resolved.parents:
        raise PublishError(f"refusing to publish {dataset.name}/{rel}: it lies outside the dataset folder")
    if not resolved.is_file():
        raise PublishError(f"{dataset.name}/{rel} is not a regular file")
    return resolved


def cache_control_for(rel: str, config) -> str:
    return config.parquet_cache_control if rel.endswith(".parquet") else config.json_cache_control


def content_type_for(rel: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(rel)[1], "application/octet-stream")


def local_objects(dataset: Dataset, scope_id: str, config, webmap: bool = False) -> list[PlannedObject]:
    """Hash the allowlisted files; parquet first, then the JSON that references it.
    ``webmap`` adds ``index.html`` (only for the scope the page was built from)."""
    objects = []
    for rel in scope_allowlist(dataset, scope_id, webmap=webmap):
        path = checked_local_file(dataset, rel)
        st = path.stat()
        objects.append(PlannedObject(
            key=f"{dataset.name}/{rel}", rel=rel, path=path, size=st.st_size,
            sha256=sha256_file(path), content_type=content_type_for(rel),
            cache_control=cache_control_for(rel, config), mtime_ns=st.st_mtime_ns))
    # Upload order: data before the JSON that points at it; meta.json (dataset entry) last.
    objects.sort(key=lambda o: (0 if o.is_parquet else 2 if o.rel == "meta.json" else 1, o.rel))
    return objects


# --------------------------------------------------------------------------- remote side

def manifest_key(dataset_name: str) -> str:
    return f"{dataset_name}/{MANIFEST_NAME}"


def read_remote_manifest(target: Target, dataset_name: str) -> tuple[Optional[dict], Optional[str]]:
    """The target's manifest for the dataset (or None) and a warning when it is unreadable."""
    data = target.get_bytes(manifest_key(dataset_name))
    if data is None:
        return None, None
    try:
        manifest = json.loads(data)
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("objects"), list):
            raise ValueError("not a tweetscope manifest")
        return manifest, None
    except (ValueError, AttributeError) as exc:
        return None, f"the remote {manifest_key(dataset_name)} is unreadable ({exc}); it will be replaced"


def manifest_index(manifest: Optional[dict]) -> dict[str, dict]:
    return {o["key"]: o for o in (manifest or {}).get("objects", []) if isinstance(o, dict) and "key" in o}


def diff_objects(objects: list[PlannedObject], target: Target, manifest: Optional[dict],
                 max_workers: int = 8) -> None:
    """Set each object's status by SHA-256 against what the target really holds.

    The manifest alone is not trusted: a publish killed after overwriting a fixed path leaves the
    old manifest pointing at a newer file. So every key is HEADed (cheap: ~a dozen small
    requests) and compared by our ``sha256`` metadata and size; an object without that metadata
    counts as changed.
    """
    listed = manifest_index(manifest)

    def head(obj: PlannedObject) -> tuple[PlannedObject, Optional[RemoteObject]]:
        return obj, target.head(obj.key)

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(objects) or 1))) as pool:
        results = list(pool.map(head, objects))
    for obj, remote in results:
        obj.manifest_sha256 = (listed.get(obj.key) or {}).get("sha256")
        if remote is None:
            obj.status = "new"
            continue
        obj.remote_size, obj.remote_sha256 = remote.size, remote.sha256
        same = remote.sha256 == obj.sha256 and remote.size == obj.size
        obj.status = "unchanged" if same else "changed"


def plan_rows(objects: list[PlannedObject]) -> list[dict]:
    return [o.row() for o in objects]


def summarize(objects: list[PlannedObject]) -> dict:
    send = [o for o in objects if o.status != "unchanged"]
    counts = {s: sum(1 for o in objects if o.status == s) for s in ("new", "changed", "unchanged")}
    return {"objects": len(objects), **counts,
            "bytes_total": sum(o.size for o in objects),
            "bytes_to_send": sum(o.size for o in send),
            "objects_to_send": len(send)}


def object_record(obj: PlannedObject) -> dict:
    return {"key": obj.key, "size": obj.size, "sha256": obj.sha256,
            "content_type": obj.content_type, "cache_control": obj.cache_control}


__all__ = [
    "PublishError", "PlannedObject", "denied_reason", "scope_allowlist", "checked_local_file",
    "local_objects", "read_remote_manifest", "manifest_index", "diff_objects", "summarize",
    "plan_rows", "object_record", "manifest_key", "MANIFEST_FORMAT", "MANIFEST_VERSION",
    "CONTENT_TYPES",
]
