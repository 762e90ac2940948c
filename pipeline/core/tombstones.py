"""Tombstones: rows the curator deleted from what gets served.

A tombstoned row keeps its place (``ls_index`` never changes) with ``deleted=true``, and its
text and personal columns are blanked in every serving artifact (scope ``-input.parquet``,
links). The list lives in ``<dataset>/tombstones.json`` — local only, never published —
so an undo before publishing restores the row from ``input.parquet``.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.workspace import (  # noqa: F401  (TOMBSTONES_FILE re-exported)
    TOMBSTONES_FILE,
    Dataset,
    WorkspaceError,
    atomic_write_json,
    read_json,
    utc_now_iso,
)

_STATUS_URL = re.compile(r"/status(?:es)?/(\d+)")


def tombstones_path(dataset: Dataset):
    return dataset.tombstones_path


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
        raise ConfigError(
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


def unapplied_tombstones(dataset: Dataset, deleted_in_scope: np.ndarray) -> tuple[list[int], list[int]]:
    """(tombstoned but not deleted in the scope, deleted in the scope but no longer tombstoned)."""
    wanted = tombstone_mask(dataset, len(deleted_in_scope))
    missing = np.flatnonzero(wanted & ~deleted_in_scope).tolist()
    stale = np.flatnonzero(~wanted & deleted_in_scope).tolist()
    return missing, stale


def tweet_rows(dataset: Dataset) -> dict[str, int]:
    """``{tweet id: ls_index}`` of the dataset (ids are strings everywhere)."""
    ids = dataset.read_input(["id"])["id"].astype(str)
    return dict(zip(ids, range(len(ids))))


def rows_for_references(text: str, rows_by_id: Mapping[str, int]) -> tuple[list[int], list[str]]:
    """ls_index of pasted tweet ids, tweet URLs and ``#<ls_index>`` tokens, and the tokens that name no row.

    The one rule for naming rows to delete, used by ``tweetscope tombstone`` and the studio.
    """
    rows, unknown = set(), []
    for token in (t for t in re.split(r"[\s,;]+", text or "") if t):
        match = _STATUS_URL.search(token)
        tweet_id = match.group(1) if match else token
        if tweet_id in rows_by_id:
            rows.add(rows_by_id[tweet_id])
        elif token.startswith("#") and token[1:].isdigit() and int(token[1:]) < len(rows_by_id):
            rows.add(int(token[1:]))
        else:
            unknown.append(token)
    return sorted(rows), unknown


__all__ = [
    "TOMBSTONES_FILE", "load_tombstones", "tombstone_mask", "add_tombstones", "remove_tombstones",
    "clear_tombstones", "unapplied_tombstones", "tweet_rows", "rows_for_references", "tombstones_path",
]
