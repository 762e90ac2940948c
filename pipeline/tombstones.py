"""Tombstones: rows the curator deleted from what gets served.

A tombstoned row keeps its place (``ls_index`` never changes) with ``deleted=true``, and its
text and personal columns are blanked in every serving artifact (scope ``-input.parquet``,
links). The list lives in ``<dataset>/tombstones.json`` — local only, never published —
so an undo before publishing restores the row from ``input.parquet``.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import pandas as pd

from pipeline.progress import Progress, null_progress
from pipeline.workspace import Dataset, WorkspaceError, atomic_write_json, read_json, utc_now_iso

TOMBSTONES_FILE = "tombstones.json"


def tombstones_path(dataset: Dataset):
    return dataset.path / TOMBSTONES_FILE


def load_tombstones(dataset: Dataset) -> set[int]:
    """The ls_index values currently tombstoned (empty when none)."""
    path = tombstones_path(dataset)
    if not path.is_file():
        return set()
    try:
        data = read_json(path)
        return {int(i) for i in data.get("deleted", [])}
    except (ValueError, TypeError, AttributeError) as exc:
        raise WorkspaceError(f"{path} is not a valid tombstones file ({exc}); fix or remove it") from None


def tombstone_mask(dataset: Dataset, n_rows: int) -> np.ndarray:
    """Boolean mask over ls_index 0..n_rows-1: True where the row is tombstoned."""
    mask = np.zeros(n_rows, dtype=bool)
    deleted = [i for i in load_tombstones(dataset) if 0 <= i < n_rows]
    mask[deleted] = True
    return mask


def _row_count(dataset: Dataset) -> int:
    import pyarrow.parquet as pq

    if not dataset.input_path.is_file():
        raise WorkspaceError(f"dataset '{dataset.name}' has no input.parquet; ingest it first")
    return pq.ParquetFile(dataset.input_path).metadata.num_rows


def _checked(dataset: Dataset, indices: Iterable[int]) -> list[int]:
    n = _row_count(dataset)
    values: list[int] = []
    bad: list[str] = []
    for i in indices:
        try:
            v = int(i)
        except (TypeError, ValueError):
            bad.append(repr(i))
            continue
        if 0 <= v < n:
            values.append(v)
        else:
            bad.append(str(v))
    if bad:
        raise ValueError(
            f"ls_index value(s) {', '.join(map(str, bad[:10]))} are not rows of dataset "
            f"'{dataset.name}' (valid: 0..{n - 1}); nothing was changed"
        )
    return values


def _save(dataset: Dataset, deleted: set[int]) -> None:
    atomic_write_json(tombstones_path(dataset), {
        "dataset": dataset.name,
        "deleted": sorted(deleted),
        "updated_at": utc_now_iso(),
    })


def add_tombstones(dataset: Dataset, indices: Iterable[int]) -> set[int]:
    """Mark rows deleted; returns the full tombstone set. Run ``apply_tombstones`` to update a scope."""
    current = load_tombstones(dataset)
    updated = current | set(_checked(dataset, indices))
    _save(dataset, updated)
    return updated


def remove_tombstones(dataset: Dataset, indices: Iterable[int]) -> set[int]:
    """Undo deletions; returns the remaining tombstone set."""
    current = load_tombstones(dataset)
    updated = current - set(_checked(dataset, indices))
    _save(dataset, updated)
    return updated


def clear_tombstones(dataset: Dataset) -> None:
    if tombstones_path(dataset).exists():
        _save(dataset, set())


def blank_personal(df: pd.DataFrame, deleted: np.ndarray) -> pd.DataFrame:
    """``df`` (SERVING_COLUMNS, row i = mask i) with personal columns blanked where ``deleted``."""
    from pipeline.contracts import PERSONAL_COLUMNS, blank_value

    out = df.copy()
    out["deleted"] = deleted.astype(bool)
    if deleted.any():
        for name in PERSONAL_COLUMNS:
            if name in out.columns:
                out.loc[deleted, name] = blank_value(name)
    return out


def apply_tombstones(dataset: Dataset, scope_id: str, progress: Optional[Progress] = None) -> dict:
    """Rewrite an existing scope's serving files for the current tombstones, keeping its scope_uid.

    Rows newly tombstoned are blanked; rows whose tombstone was removed get their text back
    from ``input.parquet``. The scope JSON keeps ``scope_uid``/``lancedb_table_id``, so a
    re-publish updates the same published scope. Links (when built) are rebuilt too.
    Returns ``{"scope_id", "deleted", "links"}``.
    """
    from pipeline import scope as scope_mod

    progress = progress or null_progress("tombstones")
    if not dataset.exists(scope_id):
        raise WorkspaceError(f"dataset '{dataset.name}' has no {scope_id}")
    progress.update(0, 3, f"re-applying tombstones to {scope_id}")
    deleted = scope_mod.rewrite_scope_rows(dataset, scope_id)
    progress.update(2, 3, "links")
    links = None
    if (dataset.links_dir / "meta.json").is_file():
        from pipeline.links import run_links

        links = run_links(dataset, progress.for_stage("links"))
    progress.update(3, 3, "done")
    return {"scope_id": scope_id, "deleted": int(deleted), "links": links}


def unapplied_tombstones(dataset: Dataset, deleted_in_scope: np.ndarray) -> tuple[list[int], list[int]]:
    """(tombstoned but not deleted in the scope, deleted in the scope but no longer tombstoned)."""
    wanted = tombstone_mask(dataset, len(deleted_in_scope))
    missing = np.flatnonzero(wanted & ~deleted_in_scope).tolist()
    stale = np.flatnonzero(~wanted & deleted_in_scope).tolist()
    return missing, stale


__all__ = [
    "TOMBSTONES_FILE", "load_tombstones", "tombstone_mask", "add_tombstones", "remove_tombstones",
    "clear_tombstones", "blank_personal", "apply_tombstones", "unapplied_tombstones", "tombstones_path",
]
