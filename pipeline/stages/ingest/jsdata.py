"""Decode the data files of an archive: ``window.YTD.<name>.partN = [...]`` JS and plain JSON.

Errors name the file and what is wrong (not UTF-8 at byte N, wrong prefix, truncated JSON).
The JSON body is parsed straight from the file's bytes (no text copy of a big part file is
kept alive); ``orjson`` is used when installed (about 3x faster), else the stdlib.

X cuts long texts inside an emoji's UTF-16 pair and writes the half as a valid JSON escape
(``"\\ud83d broken"``). orjson refuses such a string and the stdlib returns one Arrow cannot
store, so a lone surrogate escape becomes ``\\ufffd`` (U+FFFD) and the tweet is kept.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Union

from pipeline.core.errors import IngestError

try:  # optional speed-up
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

UTF8_BOM = b"\xef\xbb\xbf"
YTD_PREFIX_RE = re.compile(r"\s*window\.YTD\.([A-Za-z0-9_]+)\.part(\d+)\s*=\s*")
MANIFEST_PREFIX_RE = re.compile(r"\s*window\.__THAR_CONFIG\s*=\s*")
GRAILBIRD_PREFIX_RE = re.compile(r"\s*Grailbird\.data\.tweets_(\d{4})_(\d{2})\s*=\s*")
USER_DETAILS_PREFIX_RE = re.compile(r"\s*var\s+user_details\s*=\s*")
HEAD_BYTES = 256
REDOWNLOAD = "the download or extraction was probably interrupted — extract or download the archive again"
#: a \uD800-\uDFFF escape (not itself escaped), with the low half that may follow a high one
_SURROGATE_ESCAPE_RE = re.compile(
    rb"(?<!\\)((?:\\\\)*)\\u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|(?<!\\)((?:\\\\)*)\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_ANY_SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
UNMODIFIED = "use the unmodified file from the archive"


def check_utf8(data: bytes, where: str) -> int:
    """Raise unless ``data`` is UTF-8; returns the offset after a BOM (0 or 3)."""
    try:
        data.decode("utf-8")  # validation only; the decoded copy is dropped at once
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{where}: is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start:,}); "
            f"the file was altered or is not from an X archive — {UNMODIFIED}"
        ) from None
    return 3 if data.startswith(UTF8_BOM) else 0


def replace_lone_surrogates(body: Union[bytes, memoryview]) -> tuple[bytes, int]:
    """``body`` with every lone UTF-16 surrogate escape made ``\\ufffd``; valid pairs are kept."""
    count = 0

    def repl(m: re.Match) -> bytes:
        nonlocal count
        if m.group(3):  # a high half followed by its low half: a real character
            return m.group(0)
        count += 1
        return (m.group(1) if m.group(2) else m.group(4)) + b"\\ufffd"

    return _SURROGATE_ESCAPE_RE.sub(repl, body), count


def _loads(body: Union[bytes, memoryview, str]) -> Any:
    if _orjson is not None:
        return _orjson.loads(body)
    return json.loads(bytes(body) if isinstance(body, memoryview) else body)


def loads_json(body: Union[bytes, memoryview, str], where: str) -> Any:
    """Parse JSON; a truncated or malformed file raises with the reason."""
    try:
        if _orjson is None and not isinstance(body, str) and _ANY_SURROGATE_ESCAPE_RE.search(body):
            body = replace_lone_surrogates(body)[0]  # the stdlib would accept them, Arrow would not
        try:
            return _loads(body)
        except ValueError:
            # the rare file with a lone surrogate escape: repair and parse once more (a copy,
            # only on this path, so good files cost nothing)
            if isinstance(body, str) or not _ANY_SURROGATE_ESCAPE_RE.search(body):
                raise
            repaired, count = replace_lone_surrogates(body)
            if not count:
                raise
            return _loads(repaired)
    except ValueError as exc:
        tail = bytes(body[-64:]) if not isinstance(body, str) else body[-64:].encode()
        tail = tail.rstrip()
        truncated = not tail or tail[-1:] not in (b"]", b"}")
        what = "is truncated (the JSON ends early)" if truncated else f"is not valid JSON ({exc})"
        raise IngestError(f"{where}: {what}; {REDOWNLOAD}") from None


def _describe_start(head: str) -> str:
    head = head.lstrip()[:40].replace("\n", " ")
    return repr(head) if head else "an empty file"


def _split(data: bytes, where: str, prefix_re: re.Pattern, want: str) -> tuple[re.Match, memoryview]:
    start = check_utf8(data, where)
    head = data[start:start + HEAD_BYTES].decode("utf-8", errors="ignore")
    match = prefix_re.match(head)
    if not match:
        raise IngestError(f"{where}: does not start with '{want}' as an X archive file does "
                          f"(found {_describe_start(head)}); {UNMODIFIED}")
    offset = start + len(head[:match.end()].encode("utf-8"))
    body = memoryview(data)[offset:]
    # tolerate a trailing ';' (seen in hand-made and legacy files)
    end = len(body)
    while end and body[end - 1] in b" \t\r\n;":
        end -= 1
    return match, body[:end]


def parse_ytd(data: bytes, where: str, expected: Iterable[str]) -> list:
    """A ``window.YTD.<name>.partN = [...]`` file as a list; ``name`` must be one of ``expected``."""
    expected = tuple(expected)
    want = f"window.YTD.{expected[0]}.part0 = ["
    match, body = _split(data, where, YTD_PREFIX_RE, want)
    if match.group(1) not in expected:
        raise IngestError(f"{where}: starts with 'window.YTD.{match.group(1)}', expected '{want}' — "
                          f"the file holds other data; {UNMODIFIED}")
    value = loads_json(body, where)
    if not isinstance(value, list):
        raise IngestError(f"{where}: holds a {type(value).__name__}, not the list of records an X archive has; "
                          f"{UNMODIFIED}")
    return value


def parse_prefixed(data: bytes, where: str, prefix_re: re.Pattern, want: str, kind: type) -> Any:
    """A JS file ``<prefix> = <json>`` (manifest.js, Grailbird month files, user_details.js)."""
    _, body = _split(data, where, prefix_re, want)
    value = loads_json(body, where)
    if not isinstance(value, kind):
        raise IngestError(f"{where}: holds a {type(value).__name__}, expected a {kind.__name__}; {UNMODIFIED}")
    return value
