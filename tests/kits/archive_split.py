"""An older download of an archive: the same ZIP with only its oldest tweets (a time split)."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

_TWEETS = re.compile(r"^(?:.*/)?data/tweets(?:-part\d+)?\.js$")


def _created(record: dict) -> datetime:
    return datetime.strptime(record["tweet"]["created_at"], "%a %b %d %H:%M:%S %z %Y")


def older_archive(source: Path, dest: Path, keep: float = 0.8) -> tuple[Path, int, int]:
    """``dest``: ``source`` with only the oldest ``keep`` share of its tweets; returns (dest, kept, total)."""
    with zipfile.ZipFile(source) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    tweets = []
    for info, data in members:
        if _TWEETS.match(info.filename):
            text = data.decode("utf-8")
            tweets += json.loads(text[text.index("=") + 1:])
    cut = sorted(_created(r) for r in tweets)[int(len(tweets) * keep) - 1]
    kept = [r for r in tweets if _created(r) <= cut]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        written = False
        for info, data in members:
            if _TWEETS.match(info.filename):
                if not written:  # every kept tweet in the first tweets file
                    out.writestr(info, b"window.YTD.tweets.part0 = " + json.dumps(kept).encode("utf-8"))
                    written = True
                continue
            out.writestr(info, data)
    return dest, len(kept), len(tweets)
