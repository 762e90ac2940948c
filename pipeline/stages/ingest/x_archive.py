"""X archives: the modern "Download your data" layout and the pre-2019 (Grailbird) one.

Modern: ``data/tweets.js`` (or ``tweet.js``) and ``data/tweets-partN.js``, each
``window.YTD.tweets.partN = [...]``; ``note-tweet.js``, ``like.js``, ``deleted-tweets.js``,
``account.js``; ``manifest.js`` says which files exist — but it also lists many files a
trimmed archive lacks, so listed-but-absent files are skipped, never required.

Legacy (before 2019): ``data/js/tweets/YYYY_MM.js`` files of
``Grailbird.data.tweets_YYYY_MM = [...]`` and ``data/js/user_details.js``.

Both read one data file at a time: parse it, turn it into an Arrow table, drop the JSON.
"""

from __future__ import annotations

import posixpath
import re
from typing import Callable, Iterator, Optional

import pyarrow as pa

from pipeline.core.errors import IngestError
from pipeline.stages.ingest.jsdata import (
    GRAILBIRD_PREFIX_RE,
    MANIFEST_PREFIX_RE,
    USER_DETAILS_PREFIX_RE,
    parse_prefixed,
    parse_ytd,
)
from pipeline.stages.ingest.records import (
    PRIORITY_DELETED,
    PRIORITY_TWEET,
    Account,
    NoteIndex,
    RowBuffer,
    account_from_record,
)
from pipeline.stages.ingest.safe_zip import ArchiveFiles

#: basename pattern of each modern data type; ``part`` is absent for part 0
MODERN_FILES = {
    "tweets": re.compile(r"^tweets?(?:-part(?P<part>\d+))?\.js$"),
    "like": re.compile(r"^like(?:-part(?P<part>\d+))?\.js$"),
    "deleted": re.compile(r"^deleted-tweets?(?:-part(?P<part>\d+))?\.js$"),
    "note": re.compile(r"^note-tweet(?:-part(?P<part>\d+))?\.js$"),
}
#: the ``window.YTD.<name>`` each data type may use
YTD_NAMES = {
    "tweets": ("tweets", "tweet"),
    "like": ("like",),
    "deleted": ("deleted_tweets", "deleted_tweet"),
    "note": ("note_tweet",),
    "account": ("account",),
}
#: manifest ``dataTypes`` keys of each data type
MANIFEST_KEYS = {
    "tweets": ("tweets", "tweet"),
    "like": ("like",),
    "deleted": ("deletedTweets",),
    "note": ("noteTweet",),
}
LEGACY_MONTH_RE = re.compile(r"^(?:(?P<dir>.*)/)?js/tweets/(?P<year>\d{4})_(?P<month>\d{2})\.js$")
MODERN_MARKERS = ("manifest.js", "account.js")

ProgressFn = Callable[[int, str], None]


def _part(match: re.Match) -> int:
    return int(match.group("part") or 0)


class ArchiveSource:
    """What ingest needs from any archive format."""

    archive_source = "unknown"
    label = ""

    def __init__(self) -> None:
        self.account = Account()
        self.stats: dict = {}
        #: malformed records met so far (``records.BadRecord``), in file and record order;
        #: grows while ``tables`` runs, so a caller can stop at the first file that has one
        self.bad_records: list = []

    def total_bytes(self, include_likes: bool, include_deleted: bool) -> int:
        raise NotImplementedError

    def tables(self, include_likes: bool, include_deleted: bool,
               advance: ProgressFn) -> Iterator[pa.Table]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ModernXArchive(ArchiveSource):
    """A modern X archive (ZIP or extracted folder)."""

    archive_source = "x_archive"

    def __init__(self, files: ArchiveFiles, data_dir: str):
        super().__init__()
        self.files = files
        self.label = files.label
        self.data_dir = data_dir
        names = set(files.names())
        self.present = {n for n in names if posixpath.dirname(n) == data_dir}
        self.manifest = self._read_manifest()
        self.plan = {kind: self._files_of(kind) for kind in MODERN_FILES}
        if not self.plan["tweets"]:
            where = f"{files.label}:{self._path('tweets.js')}"
            raise IngestError(
                f"{where}: no tweets file in the archive (looked for tweets.js, tweet.js, tweets-partN.js); "
                "this archive holds no tweets — request a full archive from X (Settings → Download an archive)"
            )
        self.account = self._read_account()

    def _path(self, base: str) -> str:
        return f"{self.data_dir}/{base}" if self.data_dir else base

    def _read_manifest(self) -> dict:
        name = self._path("manifest.js")
        if name not in self.present:
            return {}
        return parse_prefixed(self.files.read(name), self.files.where(name), MANIFEST_PREFIX_RE,
                              "window.__THAR_CONFIG = {", dict)

    def _files_of(self, kind: str) -> list[str]:
        """Data files of one kind in part order: manifest-listed ones that exist, plus any by name."""
        pattern = MODERN_FILES[kind]
        found: dict[str, int] = {}
        types = self.manifest.get("dataTypes") if isinstance(self.manifest.get("dataTypes"), dict) else {}
        for key in MANIFEST_KEYS[kind]:
            entry = types.get(key) if isinstance(types.get(key), dict) else {}
            for item in entry.get("files") or []:
                base = posixpath.basename(str(item.get("fileName", ""))) if isinstance(item, dict) else ""
                m = pattern.match(base)
                if m and self._path(base) in self.present:  # listed but absent: skip, never require
                    found[self._path(base)] = _part(m)
        for name in self.present:
            m = pattern.match(posixpath.basename(name))
            if m:
                found.setdefault(name, _part(m))
        return sorted(found, key=lambda n: (found[n], n))

    def _read_account(self) -> Account:
        account = Account()
        name = self._path("account.js")
        if name in self.present:
            records = parse_ytd(self.files.read(name), self.files.where(name), YTD_NAMES["account"])
            account = account_from_record(records)
        info = self.manifest.get("userInfo")
        if isinstance(info, dict):
            account.fill_from(account_from_record(info))
        return account

    def _read_notes(self, advance: ProgressFn) -> NoteIndex:
        notes: list = []
        for name in self.plan["note"]:
            notes.extend(parse_ytd(self.files.read(name), self.files.where(name), YTD_NAMES["note"]))
            advance(self.files.size(name), name)
        return NoteIndex(notes)

    def _reading_plan(self, include_likes: bool, include_deleted: bool) -> list[tuple[str, str]]:
        plan = [("tweets", n) for n in self.plan["tweets"]]
        if include_deleted:
            plan += [("deleted", n) for n in self.plan["deleted"]]
        if include_likes:
            plan += [("like", n) for n in self.plan["like"]]
        return plan

    def total_bytes(self, include_likes: bool, include_deleted: bool) -> int:
        names = [n for _, n in self._reading_plan(include_likes, include_deleted)] + self.plan["note"]
        return sum(self.files.size(n) for n in names)

    def tables(self, include_likes: bool, include_deleted: bool, advance: ProgressFn) -> Iterator[pa.Table]:
        buffer = RowBuffer(self.account, self.archive_source, notes=self._read_notes(advance),
                           bad=self.bad_records)
        counts = {"tweets": 0, "deleted": 0, "like": 0}
        files_read = []
        for kind, name in self._reading_plan(include_likes, include_deleted):
            records = parse_ytd(self.files.read(name), self.files.where(name), YTD_NAMES[kind])
            counts[kind] += len(records)
            buffer.start_file(self.files.where(name))
            for record in records:
                if kind == "like":
                    buffer.add_like(record)
                else:
                    buffer.add_tweet(record, PRIORITY_DELETED if kind == "deleted" else PRIORITY_TWEET)
            del records  # hold one part file at a time
            files_read.append(name)
            advance(self.files.size(name), name)
            yield buffer.to_table()
        self.stats = {
            "files_read": files_read,
            "records": {"tweets": counts["tweets"], "deleted_tweets": counts["deleted"], "likes": counts["like"]},
            "note_tweets": buffer.notes.count,
            "note_tweets_applied": buffer.notes_applied,
            "skipped": dict(buffer.skipped),
        }

    def close(self) -> None:
        self.files.close()


class LegacyXArchive(ArchiveSource):
    """A pre-2019 archive: ``data/js/tweets/YYYY_MM.js`` month files (Grailbird)."""

    archive_source = "x_archive_legacy"

    def __init__(self, files: ArchiveFiles, months: list[str], js_dir: str):
        super().__init__()
        self.files = files
        self.label = files.label
        self.months = months
        details = f"{js_dir}/user_details.js" if js_dir else "user_details.js"
        if details in set(files.names()):
            record = parse_prefixed(files.read(details), files.where(details), USER_DETAILS_PREFIX_RE,
                                    "var user_details = {", dict)
            self.account = account_from_record(record)

    def total_bytes(self, include_likes: bool, include_deleted: bool) -> int:
        return sum(self.files.size(n) for n in self.months)

    def tables(self, include_likes: bool, include_deleted: bool, advance: ProgressFn) -> Iterator[pa.Table]:
        buffer = RowBuffer(self.account, self.archive_source, bad=self.bad_records)
        total = 0
        for name in self.months:
            records = parse_prefixed(self.files.read(name), self.files.where(name), GRAILBIRD_PREFIX_RE,
                                     "Grailbird.data.tweets_YYYY_MM = [", list)
            buffer.start_file(self.files.where(name))
            if not self.account.username:  # no user_details.js: the tweets name their author
                for record in records[:1]:
                    user = record.get("user") if isinstance(record, dict) else None
                    if isinstance(user, dict):
                        self.account.fill_from(Account(user.get("screen_name"), user.get("name"),
                                                       str(user.get("id_str") or user.get("id") or "") or None))
            total += len(records)
            for record in records:
                buffer.add_tweet(record)
            del records
            advance(self.files.size(name), name)
            yield buffer.to_table()
        self.stats = {"files_read": list(self.months), "records": {"tweets": total},
                      "skipped": dict(buffer.skipped)}

    def close(self) -> None:
        self.files.close()


def detect_x_archive(files: ArchiveFiles) -> ArchiveSource:
    """The modern or legacy reader for these files, or an :class:`IngestError` saying what is missing."""
    names = files.names()
    if not names:
        raise IngestError(f"{files.label}: the archive is empty (no files); "
                          "download your archive from X again (Settings → Download an archive)")
    tweet_dirs: dict[str, int] = {}
    marker_dirs: set[str] = set()
    months: dict[str, list[str]] = {}
    for name in names:
        base = posixpath.basename(name)
        folder = posixpath.dirname(name)
        if MODERN_FILES["tweets"].match(base):
            tweet_dirs[folder] = tweet_dirs.get(folder, 0) + 1
        elif base in MODERN_MARKERS:
            marker_dirs.add(folder)
        m = LEGACY_MONTH_RE.match(name)
        if m:
            months.setdefault(m.group("dir") or "", []).append(name)

    def shallowest(dirs) -> str:
        # X's own folder is called "data"; prefer it over look-alikes elsewhere in a folder
        return min(dirs, key=lambda d: (posixpath.basename(d) != "data", d.count("/") if d else -1, d))

    if tweet_dirs:
        return ModernXArchive(files, shallowest(tweet_dirs))
    if months:
        root = shallowest(months)
        js_dir = f"{root}/js" if root else "js"
        return LegacyXArchive(files, sorted(months[root]), js_dir)
    if marker_dirs:
        return ModernXArchive(files, shallowest(marker_dirs))  # raises "no tweets file"
    raise IngestError(
        f"{files.label}: no tweets file found (expected data/tweets.js, data/tweet.js, data/tweets-part1.js … "
        "or data/js/tweets/YYYY_MM.js); point at the archive ZIP X sent you or its extracted folder"
    )


def open_x_archive(files: ArchiveFiles) -> Optional[ArchiveSource]:
    try:
        return detect_x_archive(files)
    except BaseException:
        files.close()
        raise
