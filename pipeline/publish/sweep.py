"""Deletion is global for a dataset: which published scopes still need the current deletions, and a
scan of every object under the dataset's remote prefix (not only this publish's objects).

A publish re-checks every scope the remote manifest lists. A scope that still exists locally is
re-published (its local files redacted first when they predate a deletion); any other remote
object that still carries a deleted row is removed before the manifest is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from pipeline.core.tombstones import unapplied_tombstones
from pipeline.core.workspace import Dataset
from pipeline.publish.privacy import Needles, PrivacyFinding, scan_files
from pipeline.publish.targets import Target


def scope_needs_redaction(dataset: Dataset, scope_id: str) -> bool:
    """True when the scope's local ``-input.parquet`` serves a row tombstoned since it was written."""
    import pyarrow.parquet as pq

    path = dataset.artifact_path(scope_id, "-input.parquet")
    if not path.is_file():
        return False
    table = pq.read_table(path, columns=["ls_index", "deleted"])
    ls_index = table["ls_index"].to_numpy()
    deleted = np.zeros(int(ls_index.max()) + 1 if len(ls_index) else 0, dtype=bool)
    deleted[ls_index] = table["deleted"].fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    missing, _stale = unapplied_tombstones(dataset, deleted)
    return bool(missing)


def remote_scopes(manifest: Optional[dict]) -> dict[str, dict]:
    """The scope entries of a remote manifest (``scope_id -> entry``)."""
    scopes = (manifest or {}).get("scopes")
    return {sid: entry for sid, entry in (scopes or {}).items() if isinstance(entry, dict)}


def scan_remote(target: Target, dataset_name: str, needles: Needles,
                skip: frozenset = frozenset()) -> tuple[dict[str, list[PrivacyFinding]], dict]:
    """Download and scan every object under ``<dataset>/`` (except ``skip``); findings by key and totals.

    Each object goes through a temporary file (parquet is read by column, not as one string).
    """
    findings: dict[str, list[PrivacyFinding]] = {}
    stats = {"objects": 0, "bytes": 0}
    with tempfile.TemporaryDirectory(prefix="tweetscope-sweep-") as tmp:
        for key in target.list_keys(f"{dataset_name}/"):
            if key in skip:
                continue
            data = target.get_bytes(key)
            if data is None:  # deleted between list and get
                continue
            path = Path(tmp, "object" + os.path.splitext(key)[1])
            path.write_bytes(data)
            stats["objects"] += 1
            stats["bytes"] += len(data)
            found = scan_files([(key, path)], needles)
            if found:
                findings[key] = found
    return findings, stats


__all__ = ["scope_needs_redaction", "remote_scopes", "scan_remote"]
