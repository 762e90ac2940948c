"""Keep a dataset's LanceDB tables in step with its deletions and publishes.

* :func:`purge_deleted` removes deleted tweets (by tweet id) from every table of the dataset
  (``<dataset>__<scope_uid>``) and, where the backend allows it (a folder or ``s3://``), removes the
  table's old versions so an earlier version cannot serve them again. LanceDB Cloud manages its
  own versions: there the rows are deleted and the result says old versions were not cleaned.
* :func:`superseded_tables` picks the previously published tables no scope of the new manifest
  uses, newest first; the publish keeps ``keep`` of them for a rollback and drops the rest.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Iterable

from pipeline.serving.control_plane import sql_literal
from pipeline.serving.lance_target import LanceTarget

ID_BATCH = 500  # ids per DELETE filter (keeps each SQL statement small)


def dataset_tables(conn, dataset_name: str) -> list[str]:
    """Tables of the dataset in the root namespace (named ``<dataset>__<scope_uid>``)."""
    names: list[str] = []
    token = None
    while True:
        page = conn.list_tables(page_token=token)
        names += [n for n in (page.tables or []) if n.startswith(f"{dataset_name}__")]
        token = page.page_token
        if not token:
            return sorted(names)


def cleanup_versions(table, target: LanceTarget) -> bool:
    """Drop every old version of ``table`` (local and s3 only); True when done."""
    if target.kind not in ("local", "s3"):
        return False
    with warnings.catch_warnings():  # the "concurrent readers" warning: publishes are single-writer
        warnings.simplefilter("ignore", UserWarning)
        table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
    return True


def purge_deleted(conn, target: LanceTarget, dataset_name: str, deleted_ids: Iterable[str]) -> dict:
    """Delete the given tweet ids from every table of the dataset; clean old versions where possible."""
    ids = sorted({str(i) for i in deleted_ids})
    report = {"tables": {}, "versions_cleaned": target.kind in ("local", "s3")}
    options = target.table_options()
    for name in dataset_tables(conn, dataset_name):
        table = conn.open_table(name, **options)
        before = table.count_rows()
        for start in range(0, len(ids), ID_BATCH):
            chunk = ids[start:start + ID_BATCH]
            table.delete("id IN (" + ", ".join(sql_literal(i) for i in chunk) + ")")
        removed = before - table.count_rows()
        cleaned = cleanup_versions(table, target)
        report["tables"][name] = {"rows_deleted": int(removed), "old_versions_cleaned": cleaned}
    return report


def superseded_tables(candidates_newest_first: Iterable[str], live: set[str]) -> list[str]:
    """Pure: previously published tables (newest first, duplicates removed) that no live scope uses."""
    seen, out = set(), []
    for name in candidates_newest_first:
        if name and name not in live and name not in seen:
            seen.add(name)
            out.append(name)
    return out


def drop_tables(conn, names: Iterable[str]) -> list[str]:
    """Drop the tables that exist; returns the dropped names (idempotent)."""
    names = list(names)
    existing = {n for name in names for n in dataset_tables(conn, name.split("__", 1)[0])}
    dropped = []
    for name in names:
        if name not in existing:
            continue
        conn.drop_table(name)
        dropped.append(name)
    return dropped


__all__ = ["dataset_tables", "cleanup_versions", "purge_deleted", "superseded_tables", "drop_tables"]
