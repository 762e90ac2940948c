"""Merge the rows of a newer archive into a dataset's ``input.parquet`` by tweet id (pure functions).

Existing tweets keep their ``ls_index`` (row number), so tombstones, label ``indices`` and
every per-row artifact keep their meaning; their columns take the newer archive's values
(an edit or a note tweet's full text, fresh counts). Tweets new in the archive are appended
in the archive's order (time, then id). Tweets the newer archive lacks stay and are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.errors import IngestError


@dataclass
class MergeResult:
    table: pa.Table          # the merged input: old rows in place, new rows appended
    n_old: int
    appended: int            # rows added at ls_index n_old ..
    changed: np.ndarray      # ls_index of existing rows whose text changed
    missing: np.ndarray      # ls_index of existing rows the newer archive does not hold

    def summary(self) -> dict:
        return {"rows_before": self.n_old, "rows_after": self.table.num_rows, "new": self.appended,
                "changed": int(len(self.changed)), "missing": int(len(self.missing))}


def _aligned(old: pa.Table, schema: pa.Schema) -> pa.Table:
    """``old`` with the newer table's columns and types (a column it lacks is all null)."""
    columns = []
    for fld in schema:
        if fld.name in old.column_names:
            columns.append(old[fld.name].cast(fld.type))
        else:
            columns.append(pa.nulls(old.num_rows, fld.type))
    return pa.Table.from_arrays(columns, schema=schema)


def merge_inputs(old: pa.Table, new: pa.Table) -> MergeResult:
    """Old rows in place (updated from ``new`` where it holds them), then ``new``'s other rows."""
    old_ids = old["id"].cast(pa.string()).to_pylist()
    new_ids = new["id"].cast(pa.string()).to_pylist()
    if len(set(old_ids)) != len(old_ids):
        raise IngestError("the dataset's input.parquet holds a tweet id twice; ingest it again before updating")
    in_new = {tid: j for j, tid in enumerate(new_ids)}
    n_old = len(old_ids)
    # one take over [old; new]: row i comes from new where the newer archive has it
    source = np.array([n_old + in_new[t] if t in in_new else i for i, t in enumerate(old_ids)], dtype=np.int64)
    known = set(old_ids)
    appended = np.array([n_old + j for j, t in enumerate(new_ids) if t not in known], dtype=np.int64)
    both = pa.concat_tables([_aligned(old, new.schema), new]).combine_chunks()
    table = both.take(pa.array(np.concatenate([source, appended])))
    kept = source < n_old
    missing = np.flatnonzero(kept)
    updated = np.flatnonzero(~kept)
    old_text = old["text"].cast(pa.string()).take(pa.array(updated))
    new_text = table["text"].take(pa.array(updated))
    differs = pc.fill_null(pc.not_equal(old_text, new_text), True).to_numpy(zero_copy_only=False)
    both_null = pc.and_(pc.is_null(old_text), pc.is_null(new_text)).to_numpy(zero_copy_only=False)
    changed = updated[differs & ~both_null]
    return MergeResult(table, n_old, int(len(appended)), changed.astype(np.int64), missing.astype(np.int64))


def check_same_account(old_meta: dict, new_meta: dict, overlap: int, n_old: int) -> None:
    """Refuse an archive of another account (or one sharing no tweet with the dataset)."""
    old_acc, new_acc = old_meta.get("account") or {}, new_meta.get("account") or {}
    # the account id is the identity (a username can be renamed); the username only when an id is missing
    key = "account_id" if old_acc.get("account_id") and new_acc.get("account_id") else "username"
    a, b = old_acc.get(key), new_acc.get(key)
    if a and b and str(a) != str(b):
        raise IngestError(f"this archive belongs to {key} {b!r}, the dataset to {a!r}; an update needs a newer "
                              "archive of the same account (ingest another account as a new dataset)")
    if n_old and not overlap:
        raise IngestError("this archive shares no tweet with the dataset, so it is not a newer download of it; "
                          "ingest it as a new dataset instead")
