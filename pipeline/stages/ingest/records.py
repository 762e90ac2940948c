"""Tweet, like and note records → rows of ``input.parquet`` (shared by every archive format).

One row per tweet with the spec's 21 columns (spec §2). Decisions:

* Text: ``full_text`` (or legacy ``text``); t.co links replaced by their ``expanded_url``
  from ``entities.urls``; media t.co links removed (their image URLs go to
  ``media_urls_json``); HTML entities X escapes (``&amp; &lt; &gt;`` and numeric ones)
  unescaped. A matching note tweet replaces the truncated text.
* ``tweet_type`` precedence: ``retweet`` > ``quote`` > ``reply`` > ``tweet`` (``like`` for likes).
  A retweet is ``RT @…`` (or a legacy ``retweeted_status``); a quote links to
  ``twitter.com|x.com/<user>/status/<id>`` (not its own id) in ``entities.urls``; a reply
  has ``in_reply_to_status_id``. ``is_reply``/``is_retweet`` keep the raw facts, so a reply
  that quotes is ``tweet_type="quote"`` with ``is_reply=True``.
* ``replies``: archives carry no reply count, so it is 0 (kept for the serving schema).
* Likes: ``id`` = ``liked_tweet_id`` = the liked tweet; ``created_at`` is decoded from the
  tweet id (Snowflake), as likes carry no date; ``created_at_raw`` is null.
* Malformed records (not an object, a wrong wrapper such as ``{"like": …}`` among tweets,
  no id, an unparseable date, a text longer than any post can be) are never dropped
  silently: each becomes a :class:`BadRecord` naming its file and record number, and the
  caller decides whether that stops the ingest. A like without text is not malformed (X
  leaves it out for deleted or protected tweets); it is counted in ``skipped``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Optional

import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = [
    "id", "liked_tweet_id", "text", "created_at", "created_at_raw", "favorites", "retweets",
    "replies", "lang", "source", "username", "display_name", "in_reply_to_status_id",
    "in_reply_to_screen_name", "is_reply", "is_retweet", "is_like", "urls_json",
    "media_urls_json", "tweet_type", "archive_source",
]
TWEET_TYPES = ("tweet", "reply", "retweet", "quote", "like")

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("liked_tweet_id", pa.string()),
    ("text", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("created_at_raw", pa.string()),
    ("favorites", pa.int64()),
    ("retweets", pa.int64()),
    ("replies", pa.int64()),
    ("lang", pa.string()),
    ("source", pa.string()),
    ("username", pa.string()),
    ("display_name", pa.string()),
    ("in_reply_to_status_id", pa.string()),
    ("in_reply_to_screen_name", pa.string()),
    ("is_reply", pa.bool_()),
    ("is_retweet", pa.bool_()),
    ("is_like", pa.bool_()),
    ("urls_json", pa.string()),
    ("media_urls_json", pa.string()),
    ("tweet_type", pa.string()),
    ("archive_source", pa.string()),
])
#: extra column carried until dedupe: lower wins when an id occurs twice (tweets > deleted > likes)
PRIORITY = "_priority"
PRIORITY_TWEET, PRIORITY_DELETED, PRIORITY_LIKE = 0, 1, 2

TCO_RE = re.compile(r"https?://t\.co/[A-Za-z0-9]+")
ENTITY_RE = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
TAG_RE = re.compile(r"<[^>]*>")
SPACE_BEFORE_NEWLINE_RE = re.compile(r"[ \t]+\n")
STATUS_URL_RE = re.compile(
    r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(?:i/web|[A-Za-z0-9_]{1,50})/status(?:es)?/(\d+)",
    re.IGNORECASE,
)
SNOWFLAKE_EPOCH_MS = 1288834974657
#: the longest post X allows (a Premium long post); anything longer is not a real record
MAX_POST_CHARS = 25_000
#: ids below this predate Snowflake (Nov 2010) and encode no time
SNOWFLAKE_MIN_ID = 1 << 40


def unescape_entities(text: str) -> str:
    """Undo X's HTML escaping (only the entities X writes, so a literal '&not' survives)."""
    if "&" not in text:
        return text

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if name[0] != "#":
            return _NAMED[name]
        try:
            code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            return chr(code)
        except (ValueError, OverflowError):
            return m.group(0)

    return ENTITY_RE.sub(repl, text)


@lru_cache(maxsize=4096)
def _source_name(source: str) -> Optional[str]:
    return unescape_entities(TAG_RE.sub("", source)).strip() or None


def source_name(source: Any) -> Optional[str]:
    """``<a href=…>Twitter Web App</a>`` → ``Twitter Web App`` (an archive has a handful, so cached)."""
    if not source or not isinstance(source, str):
        return None
    return _source_name(source)


def quoted_status_id(urls: Iterable[str], own_id: str) -> Optional[str]:
    """The id of the first tweet linked from ``urls`` that is not the tweet itself."""
    for url in urls:
        m = STATUS_URL_RE.match(url)
        if m and m.group(1) != own_id:
            return m.group(1)
    return None


def snowflake_time_us(tweet_id: str) -> Optional[int]:
    try:
        value = int(tweet_id)
    except (TypeError, ValueError):
        return None
    if value < SNOWFLAKE_MIN_ID:
        return None
    return ((value >> 22) + SNOWFLAKE_EPOCH_MS) * 1000


def _id_str(value: Any) -> Optional[str]:
    if value is None or value == "" or isinstance(value, bool):
        return None
    text = str(value).strip()
    # tweet ids are ASCII digits below 2**63 (19 digits); anything else is not an id
    return text if text.isascii() and text.isdigit() and len(text) <= 19 else None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _text_chars(raw: str) -> int:
    """Length of a post as written (entities unescaped); only computed for suspiciously long raw text."""
    return len(raw) if len(raw) <= MAX_POST_CHARS else len(unescape_entities(raw))


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unwrap(record: Any, wrapper: str) -> tuple[Optional[dict], Optional[tuple[str, str]]]:
    """``{wrapper: {...}}`` or a bare object → (object, None); anything else → (None, (code, detail))."""
    if not isinstance(record, dict):
        return None, ("not_an_object", f"is a JSON {type(record).__name__}, not a {wrapper} object")
    inner = record.get(wrapper, record)
    if inner is record and len(record) == 1:
        key, value = next(iter(record.items()))
        if isinstance(value, dict):  # one key holding an object: some other record type
            return None, ("wrong_wrapper", f"is wrapped as {{{key!r}: …}}, not {{{wrapper!r}: …}}")
    if not isinstance(inner, dict):
        return None, ("not_an_object", f"holds a JSON {type(inner).__name__} under {wrapper!r}, not an object")
    return inner, None


def _json_list(values: list) -> str:
    return json.dumps(values, ensure_ascii=False) if values else "[]"


@dataclass
class Account:
    """The archive owner; never holds the e-mail address."""

    username: Optional[str] = None
    display_name: Optional[str] = None
    account_id: Optional[str] = None

    def to_dict(self) -> dict:
        return {"username": self.username, "display_name": self.display_name, "account_id": self.account_id}

    def fill_from(self, other: "Account") -> None:
        self.username = self.username or other.username
        self.display_name = self.display_name or other.display_name
        self.account_id = self.account_id or other.account_id


def account_from_record(record: Any) -> Account:
    """``account.js``'s ``{"account": {...}}`` (or a bare dict); only the three fields we keep."""
    if isinstance(record, list):
        record = record[0] if record else {}
    if isinstance(record, dict) and isinstance(record.get("account"), dict):
        record = record["account"]
    if not isinstance(record, dict):
        return Account()
    return Account(
        username=record.get("username") or record.get("userName") or record.get("screen_name"),
        display_name=record.get("accountDisplayName") or record.get("displayName") or record.get("full_name"),
        account_id=_id_str(record.get("accountId") or record.get("id_str") or record.get("id")),
    )


# --------------------------------------------------------------------------- note tweets

_API_TIME = "%a %b %d %H:%M:%S +0000 %Y"


def _note_prefix(text: str) -> str:
    """Normalised start of a text for matching a truncated tweet to its note."""
    text = TCO_RE.sub("", unescape_entities(text)).replace("…", "")
    return " ".join(text.split())[:60]


class NoteIndex:
    """Note tweets (long posts), matched to their truncated tweets.

    Notes carry no tweet id we can trust, so (as the Community Archive uploader does) a note
    matches a tweet created within a second of it whose text is the start of the note.
    A ``noteTweetId`` equal to the tweet id matches directly.
    """

    def __init__(self, notes: Iterable[Any] = ()):
        self.by_id: dict[str, dict] = {}
        self.by_time: dict[str, list[dict]] = {}
        self.count = 0
        for item in notes:
            note = item.get("noteTweet", item) if isinstance(item, dict) else None
            core = note.get("core") if isinstance(note, dict) else None
            if not isinstance(core, dict) or not isinstance(core.get("text"), str):
                continue
            self.count += 1
            if _id_str(note.get("noteTweetId")):
                self.by_id[str(note["noteTweetId"])] = note
            created = note.get("createdAt")
            try:
                when = _dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            except ValueError:
                continue
            for delta in (-1, 0, 1):
                key = (when + _dt.timedelta(seconds=delta)).strftime(_API_TIME)
                self.by_time.setdefault(key, []).append(note)

    def __bool__(self) -> bool:
        return self.count > 0

    def match(self, tweet_id: str, created_raw: Any, text: str) -> Optional[dict]:
        note = self.by_id.get(tweet_id)
        if note is not None:
            return note
        candidates = self.by_time.get(created_raw) if isinstance(created_raw, str) else None
        if not candidates:
            return None
        prefix = _note_prefix(text)
        if len(prefix) < 10:
            return None
        for note in candidates:
            if _note_prefix(note["core"]["text"]).startswith(prefix[: max(10, len(prefix) - 5)]):
                return note
        return None


def note_text_and_urls(note: dict) -> tuple[str, list[str]]:
    core = note["core"]
    mapping = {}
    urls = []
    for u in core.get("urls") or []:
        if not isinstance(u, dict):
            continue
        short, expanded = u.get("shortUrl") or u.get("url"), u.get("expandedUrl") or u.get("expanded_url")
        if expanded:
            urls.append(expanded)
            if short:
                mapping[short] = expanded
    text = core["text"]
    if mapping:
        text = TCO_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
    return text, urls


# --------------------------------------------------------------------------- row buffer

@dataclass(frozen=True)
class BadRecord:
    """A record that cannot become a row: where it is (file, 1-based record number) and why."""

    file: str
    record: int
    code: str
    detail: str
    id: Optional[str] = None

    def line(self) -> str:
        return f"{self.file}: record {self.record:,} {self.detail}"

    def to_dict(self) -> dict:
        return {"file": self.file, "record": self.record, "reason": self.code, "detail": self.detail,
                "id": self.id}


@dataclass
class RowBuffer:
    """Collects normalised rows column by column; ``to_table`` makes an Arrow table of them.

    Call ``start_file`` before each file's records: records are numbered from 1 within it,
    and malformed ones are appended to ``bad`` (in file and record order) instead of rows.
    """

    account: Account
    archive_source: str
    notes: NoteIndex = field(default_factory=NoteIndex)
    skipped: dict = field(default_factory=dict)
    notes_applied: int = 0
    bad: list = field(default_factory=list)
    where: str = ""
    record_no: int = 0

    def __post_init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.cols: dict[str, list] = {name: [] for name in COLUMNS if name != "created_at"}
        self.cols["_time_us"] = []
        self.cols[PRIORITY] = []
        self.cols["_record"] = []
        self.cols["_where"] = []
        self._batch_bad: list[BadRecord] = []

    def __len__(self) -> int:
        return len(self.cols["id"])

    def start_file(self, where: str) -> None:
        """The records that follow come from ``where`` (numbered from 1 again)."""
        self.where, self.record_no = where, 0

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _bad(self, code: str, detail: str, tweet_id: Optional[str] = None, record: Optional[int] = None,
             where: Optional[str] = None) -> None:
        self._skip(code)
        self._batch_bad.append(BadRecord(where or self.where, record or self.record_no, code, detail, tweet_id))

    def add_tweet(self, record: Any, priority: int = PRIORITY_TWEET) -> None:
        """An X tweet object (``{"tweet": {...}}`` or bare; modern, legacy or API shaped)."""
        self.record_no += 1
        tw, problem = _unwrap(record, "tweet")
        if problem:
            self._bad(*problem)
            return
        tid = _id_str(tw.get("id_str")) or _id_str(tw.get("id"))
        if tid is None:
            given = tw.get("id_str", tw.get("id"))
            self._bad("no_id", "has no tweet id (neither id_str nor id)" if given is None
                      else f"has no valid tweet id ({_shown(given)} is not one)")
            return
        created_raw = tw.get("created_at")
        if not isinstance(created_raw, str) or not created_raw.strip():
            self._bad("bad_date", "has no created_at date", tid)
            return
        text = tw.get("full_text")
        if not isinstance(text, str):
            text = tw.get("text") if isinstance(tw.get("text"), str) else ""
        if len(text) > MAX_POST_CHARS and _text_chars(text) > MAX_POST_CHARS:
            self._bad("too_long", f"has a text of {_text_chars(text):,} characters; no post exceeds "
                      f"{MAX_POST_CHARS:,}", tid)
            return
        retweeted = tw.get("retweeted_status")
        is_retweet = text.startswith("RT @") or isinstance(retweeted, dict)
        if isinstance(retweeted, dict):
            # legacy archives keep the original: rebuild the untruncated "RT @user: text"
            inner_text = retweeted.get("full_text") or retweeted.get("text")
            inner_user = (retweeted.get("user") or {}).get("screen_name")
            if isinstance(inner_text, str) and inner_user:
                text = f"RT @{inner_user}: {inner_text}"
                tw = {**tw, "entities": _merge_entities(tw.get("entities"), retweeted.get("entities"))}

        entities = tw.get("entities") if isinstance(tw.get("entities"), dict) else {}
        urls: list[str] = []
        mapping: dict[str, str] = {}
        for u in entities.get("urls") or []:
            if not isinstance(u, dict):
                continue
            short, expanded = u.get("url"), u.get("expanded_url")
            if isinstance(expanded, str) and expanded:
                if expanded not in urls:
                    urls.append(expanded)
                if isinstance(short, str) and short:
                    mapping[short] = expanded
        extended = tw.get("extended_entities")
        media = (extended.get("media") if isinstance(extended, dict) else None) or entities.get("media") or []
        media_urls: list[str] = []
        removed_media = False
        for m in media:
            if not isinstance(m, dict):
                continue
            short = m.get("url")
            if isinstance(short, str) and short:
                mapping.setdefault(short, "")
                removed_media = True
            murl = m.get("media_url_https") or m.get("media_url")
            if isinstance(murl, str) and murl and murl not in media_urls:
                media_urls.append(murl)

        if self.notes:
            note = self.notes.match(tid, created_raw, text)
            if note is not None and _text_chars(note["core"]["text"]) > MAX_POST_CHARS:
                self._bad("too_long", f"has a note tweet of {_text_chars(note['core']['text']):,} characters; "
                          f"no post exceeds {MAX_POST_CHARS:,}", tid)
                return
            if note is not None:
                text, note_urls = note_text_and_urls(note)
                urls.extend(u for u in note_urls if u not in urls)
                self.notes_applied += 1
        if mapping:
            text = TCO_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
            if removed_media:  # a removed media link can leave "text \n"
                text = SPACE_BEFORE_NEWLINE_RE.sub("\n", text)
        text = unescape_entities(text).strip()

        reply_to = _id_str(tw.get("in_reply_to_status_id_str")) or _id_str(tw.get("in_reply_to_status_id"))
        is_reply = reply_to is not None
        quoted = None if is_retweet else quoted_status_id(urls, tid)
        if is_retweet:
            tweet_type = "retweet"
        elif quoted:
            tweet_type = "quote"
        elif is_reply:
            tweet_type = "reply"
        else:
            tweet_type = "tweet"

        c = self.cols
        c["id"].append(tid)
        c["liked_tweet_id"].append(None)
        c["text"].append(text)
        c["_time_us"].append(None)  # parsed per batch in to_table (vectorised)
        c["created_at_raw"].append(created_raw)
        c["favorites"].append(_int(tw.get("favorite_count")))
        c["retweets"].append(_int(tw.get("retweet_count")))
        c["replies"].append(0)
        c["lang"].append(tw.get("lang") if isinstance(tw.get("lang"), str) else None)
        c["source"].append(source_name(tw.get("source")))
        c["username"].append(self.account.username)
        c["display_name"].append(self.account.display_name)
        c["in_reply_to_status_id"].append(reply_to)
        screen = tw.get("in_reply_to_screen_name")
        c["in_reply_to_screen_name"].append(screen if isinstance(screen, str) and screen else None)
        c["is_reply"].append(is_reply)
        c["is_retweet"].append(is_retweet)
        c["is_like"].append(False)
        c["urls_json"].append(_json_list(urls))
        c["media_urls_json"].append(_json_list(media_urls))
        c["tweet_type"].append(tweet_type)
        c["archive_source"].append(self.archive_source)
        c[PRIORITY].append(priority)
        c["_record"].append(self.record_no)
        c["_where"].append(self.where)

    def add_like(self, record: Any) -> None:
        """A ``like.js`` item; likes without ``fullText`` are skipped and counted."""
        self.record_no += 1
        like, problem = _unwrap(record, "like")
        if problem:
            self._bad(*problem)
            return
        tid = _id_str(like.get("tweetId"))
        text = like.get("fullText")
        if tid is None:
            self._bad("no_id", "has no liked tweet id (tweetId)")
            return
        if not isinstance(text, str) or not text.strip():
            self._skip("like_without_text")
            return
        if len(text) > MAX_POST_CHARS and _text_chars(text) > MAX_POST_CHARS:
            self._bad("too_long", f"has a text of {_text_chars(text):,} characters; no post exceeds "
                      f"{MAX_POST_CHARS:,}", tid)
            return
        url = like.get("expandedUrl")
        author = None
        if isinstance(url, str):
            m = re.match(r"^https?://(?:www\.)?(?:twitter|x)\.com/([A-Za-z0-9_]{1,50})/status/", url)
            if m and m.group(1).lower() != "i":
                author = m.group(1)
        c = self.cols
        c["id"].append(tid)
        c["liked_tweet_id"].append(tid)
        c["text"].append(unescape_entities(text).strip())
        c["_time_us"].append(snowflake_time_us(tid))
        c["created_at_raw"].append(None)
        c["favorites"].append(0)
        c["retweets"].append(0)
        c["replies"].append(0)
        c["lang"].append(None)
        c["source"].append(None)
        c["username"].append(author)
        c["display_name"].append(None)
        c["in_reply_to_status_id"].append(None)
        c["in_reply_to_screen_name"].append(None)
        c["is_reply"].append(False)
        c["is_retweet"].append(text.startswith("RT @"))
        c["is_like"].append(True)
        c["urls_json"].append("[]")
        c["media_urls_json"].append("[]")
        c["tweet_type"].append("like")
        c["archive_source"].append(self.archive_source)
        c[PRIORITY].append(PRIORITY_LIKE)
        c["_record"].append(self.record_no)
        c["_where"].append(self.where)

    def to_table(self) -> pa.Table:
        """The rows collected so far as an Arrow table (spec columns + priority), then empties the buffer.

        Tweets whose date does not parse are left out and join ``bad``.
        """
        c = self.cols
        raw = pa.array(c["created_at_raw"], pa.string())
        parsed = parse_created_at(raw)
        known = pa.array(c["_time_us"], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        created = pc.coalesce(parsed, known)
        arrays = []
        for name, typ in zip(SCHEMA.names, SCHEMA.types):
            arrays.append(created if name == "created_at" else pa.array(c[name], typ))
        arrays.append(pa.array(c[PRIORITY], pa.int8()))
        table = pa.Table.from_arrays(arrays, schema=SCHEMA.append(pa.field(PRIORITY, pa.int8())))
        # likes carry no date (a pre-2010 liked id gives none): only tweets must have one
        undated = pc.and_(pc.is_null(created), pc.not_equal(table[PRIORITY], PRIORITY_LIKE))
        if pc.any(undated).as_py():
            for i in pc.indices_nonzero(undated).to_pylist():
                self._bad("bad_date", f"has created_at {_shown(c['created_at_raw'][i])}, which is not a date",
                          c["id"][i], record=c["_record"][i], where=c["_where"][i])
            table = table.filter(pc.invert(undated))
        rank: dict[str, int] = {}
        for b in self._batch_bad:
            rank.setdefault(b.file, len(rank))
        self.bad.extend(sorted(self._batch_bad, key=lambda b: (rank[b.file], b.record)))
        self._reset()
        return table


def _merge_entities(outer: Any, inner: Any) -> dict:
    merged: dict = {}
    for ent in (outer, inner):
        if isinstance(ent, dict):
            for key in ("urls", "media"):
                merged.setdefault(key, []).extend(ent.get(key) or [])
    return merged


#: created_at spellings: API/modern archive, legacy Grailbird, ISO (community/notes)
TIME_FORMATS = ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%d %H:%M:%S %z")


def parse_created_at(raw: pa.Array) -> pa.Array:
    """Vectorised parse of created_at strings to UTC timestamps (null where unparseable)."""
    out = pa.nulls(len(raw), pa.timestamp("us", tz="UTC"))
    for fmt in TIME_FORMATS:
        parsed = pc.strptime(raw, format=fmt, unit="us", error_is_null=True)
        out = pc.coalesce(out, parsed)
        if out.null_count == raw.null_count:
            return out
    # ISO 8601 (e.g. "2024-01-12T05:37:33.000Z") for whatever is left
    rest = []
    for value, done in zip(raw.to_pylist(), out.is_valid().to_pylist()):
        if done or value is None:
            rest.append(None)
            continue
        try:
            when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=_dt.timezone.utc)
            rest.append(when)
        except ValueError:
            rest.append(None)
    return pc.coalesce(out, pa.array(rest, pa.timestamp("us", tz="UTC")))
