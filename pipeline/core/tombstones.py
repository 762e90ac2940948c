"""Tombstones: tweets the curator deleted from what gets served.

A tombstoned row keeps its place with ``deleted=true``, and its text and personal columns
are blanked in every serving artifact (scope ``-input.parquet``, links). The list lives in
``<dataset>/tombstones.json`` — local only, never published — so an undo before publishing
restores the row from ``input.parquet``.

The file names tweets by **id** (``{"tweet_ids": [...]}``): ``ls_index`` is a row number of
one ingest, so a deletion keyed by it would land on another tweet after a re-ingest or an
update. Files of the older ``{"deleted": [ls_index, ...]}`` form are still read, mapped to
ids through the dataset's current ``input.parquet``, and rewritten by id at the next change
(or by ``migrate_tombstones``). Deleted ids that are not rows of the current ingest stay
listed, so the tweet stays deleted if a later archive brings it back.
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
#: version of the tombstones.json layout written here (1 = the ls_index list, read only)
TOMBSTONES_FORMAT = 2


def tombstones_path(dataset: Dataset):
    return dataset.tombstones_path


def _input_ids(dataset: Dataset):
    """The ``id`` column of input.parquet (strings), in ls_index order."""
    import pyarrow.parquet as pq

    if not dataset.input_path.is_file():
        raise WorkspaceError(f"dataset '{dataset.name}' has no input.parquet; ingest it first")
    return pq.read_table(dataset.input_path, columns=["id"])["id"].cast("string")


def _read(dataset: Dataset) -> tuple[set[str], list[int]]:
    """(tweet ids, ls_index values of a format-1 file) as stored; both empty without a file."""
    path = tombstones_path(dataset)
    if not path.is_file():
        return set(), []
    try:
        data = read_json(path)
        if "tweet_ids" in data:
            ids = {str(t) for t in data["tweet_ids"]}
            if not all(t.isascii() and t.isdigit() for t in ids):
                raise ValueError("tweet_ids must be tweet ids (digits)")
            return ids, []
        return set(), [int(i) for i in data.get("deleted", [])]
    except (ValueError, TypeError, AttributeError) as exc:
        raise WorkspaceError(f"{path} is not a valid tombstones file ({exc}); fix or remove it") from None


def deleted_tweet_ids(dataset: Dataset) -> set[str]:
    """Ids of the tweets the curator deleted (empty when none); survives any re-ingest or update."""
    ids, rows = _read(dataset)
    if rows:  # format 1: row numbers of the current ingest
        column = _input_ids(dataset)
        ids |= {column[i].as_py() for i in rows if 0 <= i < len(column)}
    return ids


def _rows_of(dataset: Dataset, ids: set[str]) -> set[int]:
    if not ids:
        return set()
    import pyarrow as pa
    import pyarrow.compute as pc

    hit = pc.is_in(_input_ids(dataset), value_set=pa.array(sorted(ids), pa.string()))
    return set(np.flatnonzero(hit.to_numpy(zero_copy_only=False)).tolist())


def load_tombstones(dataset: Dataset) -> set[int]:
    """The ls_index values of the current ingest whose tweet is deleted (empty when none)."""
    ids, rows = _read(dataset)
    if rows and not ids:
        return set(rows)  # format 1 names rows already (no input.parquet read needed)
    return _rows_of(dataset, deleted_tweet_ids(dataset))


def tombstone_mask(dataset: Dataset, n_rows: int) -> np.ndarray:
    """Boolean mask over ls_index 0..n_rows-1: True where the row is tombstoned."""
    mask = np.zeros(n_rows, dtype=bool)
    deleted = [i for i in load_tombstones(dataset) if 0 <= i < n_rows]
    mask[deleted] = True
    return mask


def _checked(dataset: Dataset, indices: Iterable[int], column) -> list[int]:
    n = len(column)
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


def _id_key(tweet_id: str) -> tuple[int, str]:
    return len(tweet_id), tweet_id  # numeric order of digit strings


def save_deleted_ids(dataset: Dataset, ids: Iterable[str]) -> None:
    """Write ``tombstones.json`` (by tweet id) for exactly ``ids``."""
    atomic_write_json(tombstones_path(dataset), {
        "dataset": dataset.name,
        "format": TOMBSTONES_FORMAT,
        "tweet_ids": sorted({str(t) for t in ids}, key=_id_key),
        "updated_at": utc_now_iso(),
    })


def migrate_tombstones(dataset: Dataset) -> bool:
    """Rewrite a format-1 (ls_index) file by tweet id; True when it did.

    Run it before replacing ``input.parquet`` in place (an update): afterwards the old row
    numbers would name other tweets.
    """
    ids, rows = _read(dataset)
    if not rows:
        return False
    save_deleted_ids(dataset, deleted_tweet_ids(dataset))
    return True


def _change(dataset: Dataset, indices: Iterable[int], add: bool) -> set[int]:
    column = _input_ids(dataset)
    named = {column[i].as_py() for i in _checked(dataset, indices, column)}
    current = deleted_tweet_ids(dataset)
    updated = current | named if add else current - named
    save_deleted_ids(dataset, updated)
    return _rows_of(dataset, updated)


def add_tombstones(dataset: Dataset, indices: Iterable[int]) -> set[int]:
    """Mark rows (by ls_index) deleted; their tweet ids are stored. Returns the tombstoned ls_index set.

    Run ``apply_tombstones`` to update a scope.
    """
    return _change(dataset, indices, add=True)


def remove_tombstones(dataset: Dataset, indices: Iterable[int]) -> set[int]:
    """Undo deletions of rows (by ls_index); returns the remaining tombstoned ls_index set."""
    return _change(dataset, indices, add=False)


def clear_tombstones(dataset: Dataset) -> None:
    if tombstones_path(dataset).exists():
        save_deleted_ids(dataset, ())


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
    "TOMBSTONES_FILE", "TOMBSTONES_FORMAT", "load_tombstones", "tombstone_mask", "add_tombstones",
    "remove_tombstones", "clear_tombstones", "unapplied_tombstones", "tweet_rows", "rows_for_references",
    "tombstones_path", "deleted_tweet_ids", "save_deleted_ids", "migrate_tombstones",
]
