"""The Community Archive JSON: one object with ``tweets: [{"tweet": {...}}]``, ``like``,
``note-tweet``, ``account``, ``profile`` (the shape TheExGenesis/community-archive uploads).

The whole file is one JSON document, so it is parsed at once; rows are then converted in
chunks and the parsed records released as they go, which keeps the peak near one copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa

from pipeline.core.errors import IngestError
from pipeline.stages.ingest.jsdata import check_utf8, loads_json
from pipeline.stages.ingest.records import PRIORITY_DELETED, NoteIndex, RowBuffer, account_from_record
from pipeline.stages.ingest.safe_zip import ArchiveLimits, SingleFile
from pipeline.stages.ingest.x_archive import ArchiveSource, ProgressFn

CHUNK_ROWS = 50_000
FIX = "export it again from the Community Archive (a JSON object with a 'tweets' list)"


class CommunityArchive(ArchiveSource):
    archive_source = "community_archive"

    def __init__(self, path: Path, limits: ArchiveLimits):
        super().__init__()
        self.label = path.name
        reader = SingleFile(path, limits)
        data = reader.read(path.name)
        self.size = len(data)
        check_utf8(data, path.name)
        start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        doc = loads_json(memoryview(data)[start:], path.name)
        del data
        if not isinstance(doc, dict):
            raise IngestError(f"{path.name}: holds a JSON {type(doc).__name__}, not a Community Archive object; {FIX}")
        tweets = doc.get("tweets")
        if not isinstance(tweets, list):
            raise IngestError(f"{path.name}: has no 'tweets' list, so it is not a Community Archive export; {FIX}")
        if not tweets:
            raise IngestError(f"{path.name}: its 'tweets' list is empty; nothing to ingest — {FIX}")
        self.doc = doc
        self.account = account_from_record(doc.get("account"))

    def total_bytes(self, include_likes: bool, include_deleted: bool) -> int:
        return self.size

    def _drain(self, items: list, add, buffer: RowBuffer, on_chunk) -> Iterator[pa.Table]:
        # consume in chunks and release each chunk's records once converted
        for start in range(0, len(items), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(items))
            for i in range(start, stop):
                add(items[i])
                items[i] = None
            on_chunk(stop - start)
            yield buffer.to_table()

    def tables(self, include_likes: bool, include_deleted: bool, advance: ProgressFn) -> Iterator[pa.Table]:
        doc = self.doc
        notes = doc.get("note-tweet") or doc.get("noteTweet") or []
        buffer = RowBuffer(self.account, self.archive_source, notes=NoteIndex(notes if isinstance(notes, list) else []),
                           bad=self.bad_records)
        tweets = doc.pop("tweets")
        parts = [("tweets", "tweets", tweets, buffer.add_tweet)]
        deleted_key = "deleted-tweets" if "deleted-tweets" in doc else "deletedTweets"
        deleted = doc.get(deleted_key)
        if include_deleted and isinstance(deleted, list):
            parts.append(("deleted", deleted_key, deleted, lambda r: buffer.add_tweet(r, PRIORITY_DELETED)))
        likes = doc.get("like")
        if include_likes and isinstance(likes, list):
            parts.append(("like", "like", likes, buffer.add_like))
        counts = {kind: len(items) for kind, _, items, _ in parts}
        bytes_per_item = self.size / (sum(counts.values()) or 1)
        for kind, key, items, add in parts:
            buffer.start_file(f"{self.label} '{key}' list")
            yield from self._drain(items, add, buffer,
                                   lambda n, kind=kind: advance(int(n * bytes_per_item), kind))
        self.doc = {}
        self.stats = {
            "files_read": [self.label],
            "records": {"tweets": counts.get("tweets", 0), "deleted_tweets": counts.get("deleted", 0),
                        "likes": counts.get("like", 0)},
            "note_tweets": buffer.notes.count,
            "note_tweets_applied": buffer.notes_applied,
            "skipped": dict(buffer.skipped),
        }
