"""``ingest_archive``: an archive (X ZIP / folder / Community JSON) → a dataset folder.

Writes ``input.parquet`` (the spec's 21 columns, one row per tweet, ``id`` a string, rows
ordered by time then id, so ``ls_index`` is the row number) and ``meta.json`` (spec §1 plus
``input_fingerprint``, ``archive_source``, ``account``, counts). The dataset is built in a
temp folder by ``Workspace.creating_dataset``: a failed ingest leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.errors import IngestError
from pipeline.core.gc_pause import gc_paused
from pipeline.core.progress import Progress, null_progress
from pipeline.core.tombstones import deleted_tweet_ids, save_deleted_ids
from pipeline.core.workspace import Dataset, Workspace, atomic_write_json, utc_now_iso, write_parquet
from pipeline.stages.ingest.community_archive import CommunityArchive
from pipeline.stages.ingest.records import COLUMNS, PRIORITY, PRIORITY_DELETED, SCHEMA, TWEET_TYPES, Account
from pipeline.stages.ingest.safe_zip import DEFAULT_LIMITS, ArchiveLimits, FolderArchiveFiles, ZipArchiveFiles
from pipeline.stages.ingest.x_archive import ArchiveSource, open_x_archive

TWEET_TYPE_PRECEDENCE = ["retweet", "quote", "reply", "tweet"]
#: string columns never summarised as categories (ids, free text, raw values, JSON)
NOT_CATEGORICAL = {"id", "liked_tweet_id", "text", "created_at_raw", "in_reply_to_status_id",
                   "urls_json", "media_urls_json"}
JSON_COLUMNS = {"urls_json", "media_urls_json"}
MAX_CATEGORIES = 50


def open_source(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> ArchiveSource:
    """Pick the reader for ``path``: a folder or ZIP is an X archive, a JSON object a Community Archive."""
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder; give the path of your X archive ZIP, "
                          "its extracted folder, or a Community Archive JSON file")
    if path.is_dir():
        return open_x_archive(FolderArchiveFiles(path, limits))
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"PK") or zipfile.is_zipfile(path):
        return open_x_archive(ZipArchiveFiles(path, limits))
    stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"{"):
        return CommunityArchive(path, limits)
    shown = stripped[:24].decode("utf-8", errors="replace")
    if not stripped:
        shown = "it is empty"
    elif shown.isprintable():
        shown = f"it starts with {shown!r}"
    else:
        shown = "it holds binary data"
    raise IngestError(
        f"{path.name}: is neither an X archive (a ZIP or its extracted folder) nor a Community Archive "
        f"JSON file ({shown}); give the archive ZIP X sent you"
    )


def default_dataset_name(account: Account, path: Path) -> str:
    """``<username>-tweets`` (e.g. ``milahu104-tweets``), else derived from the file name."""
    base = f"{account.username}-tweets" if account.username else path.stem or "tweets"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:64] or "tweets"
    return name if name[0].isalnum() else f"d{name}"[:64]


def dedupe_and_sort(tables: list[pa.Table]) -> tuple[pa.Table, int, int]:
    """One row per id (tweets win over deleted tweets over likes), ordered by time then id.

    Returns the table (spec columns only), the number of duplicates removed and the number
    of rows that came from deleted-tweets files.
    """
    table = pa.concat_tables(tables) if tables else SCHEMA.append(pa.field(PRIORITY, pa.int8())).empty_table()
    n = table.num_rows
    ids = table["id"].cast(pa.uint64()).to_numpy()
    priority = table[PRIORITY].to_numpy()
    order = np.lexsort((np.arange(n), priority, ids))
    first = np.ones(n, dtype=bool)
    first[1:] = ids[order][1:] != ids[order][:-1]
    keep = order[first]
    times = pc.fill_null(table["created_at"].cast(pa.int64()), np.iinfo(np.int64).max).to_numpy()
    final = keep[np.lexsort((ids[keep], times[keep]))]
    deleted_rows = int((priority[final] == PRIORITY_DELETED).sum())
    result = table.take(pa.array(final)).drop_columns([PRIORITY]).combine_chunks()
    return result, n - len(keep), deleted_rows


def _iso(value) -> Optional[str]:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def column_metadata(table: pa.Table) -> dict:
    """Per column: type, and categories+counts for low-cardinality strings, extent for numbers/dates."""
    meta: dict[str, dict] = {}
    for name in table.column_names:
        col = table[name]
        typ = col.type
        if pa.types.is_boolean(typ):
            true = int(pc.sum(col).as_py() or 0)
            meta[name] = {"type": "boolean", "counts": {"true": true, "false": len(col) - col.null_count - true}}
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
            mm = pc.min_max(col).as_py()
            meta[name] = {"type": "number", "extent": [mm["min"], mm["max"]]}
        elif pa.types.is_timestamp(typ):
            mm = pc.min_max(col).as_py()
            meta[name] = {"type": "date", "extent": [_iso(mm["min"]), _iso(mm["max"])]}
        else:
            entry: dict = {"type": "string"}
            if name in JSON_COLUMNS:
                entry["format"] = "json-array"
            elif name not in NOT_CATEGORICAL:
                counts = pc.value_counts(col.drop_null()).to_pylist() if len(col) > col.null_count else []
                if len(counts) <= MAX_CATEGORIES:
                    counts.sort(key=lambda c: (-c["counts"], c["values"]))
                    entry["categories"] = [c["values"] for c in counts]
                    entry["counts"] = {c["values"]: c["counts"] for c in counts}
            meta[name] = entry
        meta[name]["nulls"] = int(col.null_count)
    return meta


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SKIP_HINT = ("to ingest the other records and list the skipped ones in meta.json, rerun with "
             "--skip-bad-records (studio: tick 'Skip bad records'), or export the archive again")


def bad_records_error(bad: list) -> IngestError:
    """One line naming the first malformed record (file, record number, what is wrong) and what to do."""
    first = bad[0]
    more = [b for b in bad[1:] if b.file == first.file]
    others = f" (and {len(more):,} more bad record(s) in that file)" if more else ""
    return IngestError(f"{first.line()}{others}; {SKIP_HINT}")


def skipped_records_lines(meta: dict, limit: int = 200) -> list[str]:
    """A heading and one line per skipped record of a dataset's meta (at most ``limit``); [] when none."""
    skipped = meta.get("ingest", {}).get("skipped_records") or []
    if not skipped:
        return []
    lines = [f"skipped {len(skipped):,} malformed record(s) (listed in meta.json under ingest.skipped_records):"]
    lines += [f"  {r['file']}: record {r['record']:,} {r['detail']}" for r in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  … and {len(skipped) - limit:,} more (see meta.json)")
    return lines


def read_tables(archive: ArchiveSource, include_likes: bool, include_deleted: bool, advance,
                skip_bad_records: bool = False) -> list[pa.Table]:
    """The archive's rows, one table per file read; stops at the first file with a malformed record
    unless ``skip_bad_records`` (then they are left out and listed in ``archive.bad_records``)."""
    tables = []
    for table in archive.tables(include_likes, include_deleted, advance):
        if archive.bad_records and not skip_bad_records:
            raise bad_records_error(archive.bad_records)
        tables.append(table)
    return tables


def keep_tombstones(workspace: Workspace, name: str, new: Dataset) -> int:
    """Copy the deleted tweet ids of the dataset ``new`` replaces into it; returns how many.

    Deletions are keyed by tweet id, so they hold for the new rows too: replacing a dataset
    must not put deleted tweets back online at the next publish.
    """
    if not workspace.has_dataset(name):
        return 0
    ids = deleted_tweet_ids(workspace.dataset(name))
    if ids:
        save_deleted_ids(new, ids)
    return len(ids)


def ingest_archive(
    source,
    workspace: Workspace,
    name: Optional[str] = None,
    *,
    include_likes: bool = False,
    include_deleted: bool = False,
    overwrite: bool = False,
    progress: Optional[Progress] = None,
    limits: Optional[ArchiveLimits] = None,
    skip_bad_records: bool = False,
) -> Dataset:
    """Ingest an X archive (ZIP or folder, modern or pre-2019) or a Community Archive JSON.

    ``name`` defaults to ``<username>-tweets``. Likes and deleted tweets are rows only when
    asked for. A malformed record stops the ingest unless ``skip_bad_records``; skipped
    records are listed in ``meta.json`` (``ingest.skipped_records``). With ``overwrite`` the
    replaced dataset's deletions (tweet ids) are kept. Raises
    :class:`IngestError` for input that cannot be ingested (and writes nothing).
    """
    progress = progress or null_progress("ingest")
    path = Path(source).expanduser()
    archive = open_source(path, limits or DEFAULT_LIMITS)
    try:
        name = name or default_dataset_name(archive.account, path)
        reading = archive.total_bytes(include_likes, include_deleted)
        total = reading + max(reading // 20, 1)  # the last 5%: sort, write, fingerprint
        done = 0

        def advance(nbytes: int, what: str) -> None:
            nonlocal done
            done = min(done + nbytes, reading)
            progress.update(done, total, f"read {Path(what).name}")

        progress.update(0, total, f"reading {archive.label}")
        with workspace.creating_dataset(name, overwrite=overwrite) as ds:
            with gc_paused():
                tables = read_tables(archive, include_likes, include_deleted, advance, skip_bad_records)
                table, duplicates, deleted_rows = dedupe_and_sort(tables)
                del tables
            if table.num_rows == 0:
                bad = f" ({len(archive.bad_records):,} malformed record(s) skipped)" if archive.bad_records else ""
                raise IngestError(f"{archive.label}: holds no tweets with an id and a date{bad}; nothing to "
                                  "ingest — check that this is the right archive")
            progress.update(done, total, "writing input.parquet")
            write_parquet(table, ds.input_path)
            meta = build_meta(ds.name, table, archive, path,
                              fingerprint=file_sha256(ds.input_path), duplicates=duplicates,
                              deleted_rows=deleted_rows, include_likes=include_likes,
                              include_deleted=include_deleted, skip_bad_records=skip_bad_records)
            meta["ingest"]["tombstones_kept"] = keep_tombstones(workspace, name, ds) if overwrite else 0
            atomic_write_json(ds.meta_path, meta)
            progress.update(total, total, f"{table.num_rows:,} rows")
    finally:
        archive.close()
    return workspace.dataset(name)


def build_meta(name: str, table: pa.Table, archive: ArchiveSource, path: Path, *, fingerprint: str,
               duplicates: int, deleted_rows: int, include_likes: bool, include_deleted: bool,
               skip_bad_records: bool = False) -> dict:
    types = pc.value_counts(table["tweet_type"]).to_pylist()
    by_type = {t: 0 for t in TWEET_TYPES}
    by_type.update({c["values"]: int(c["counts"]) for c in types})
    stats = dict(archive.stats)
    skipped = stats.get("skipped", {})
    return {
        "id": name,
        "length": table.num_rows,
        "columns": list(COLUMNS),
        "text_column": "text",
        "column_metadata": column_metadata(table),
        "input_fingerprint": fingerprint,
        "archive_source": archive.archive_source,
        "account": archive.account.to_dict(),
        "source_file": path.name,
        "tweet_type_precedence": TWEET_TYPE_PRECEDENCE,
        "counts": {
            "rows": table.num_rows,
            "tweet_types": by_type,
            "deleted_tweets_included": deleted_rows,
            "likes_without_text": int(skipped.get("like_without_text", 0)),
            "duplicates_removed": duplicates,
            "note_tweets_applied": int(stats.get("note_tweets_applied", 0)),
        },
        "ingest": {
            "include_likes": include_likes,
            "include_deleted": include_deleted,
            "skip_bad_records": skip_bad_records,
            "records": stats.get("records", {}),
            "skipped": skipped,
            "skipped_records": [b.to_dict() for b in archive.bad_records],
            "files_read": stats.get("files_read", []),
        },
        "created_at": utc_now_iso(),
    }
