"""Hand-made archives for ingest tests: X ZIPs (with raw member-name bytes when needed) and Community JSON."""

from __future__ import annotations

import json
import zipfile

import pytest

from pipeline.stages.ingest import IngestError, ingest_archive

ACCOUNT = ('window.YTD.account.part0 = [ {"account": {"email": "x@example.invalid", "username": "someone", '
           '"accountId": "42", "accountDisplayName": "Some One"}} ]')


def tweet(tid: int, text: str = "hello", created: str = "Fri Mar 06 13:02:05 +0000 2026", **extra) -> dict:
    """A ``{"tweet": {...}}`` record as X writes it."""
    body = {"id_str": str(tid), "id": str(tid), "created_at": created, "full_text": text,
            "entities": {"urls": []}, "favorite_count": "0", "retweet_count": "0", "lang": "en", **extra}
    return {"tweet": body}


def ytd(name: str, records, part: int = 0) -> str:
    """A ``window.YTD.<name>.partN = [...]`` file; ``records`` may be raw JSON text."""
    body = records if isinstance(records, str) else json.dumps(records, ensure_ascii=False)
    return f"window.YTD.{name}.part{part} = {body}"


def make_zip(path, members, *, compression=zipfile.ZIP_DEFLATED):
    """members: {name: bytes|str} or a list of (ZipInfo|name, data)."""
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in items:
            zf.writestr(name, data.encode() if isinstance(data, str) else data)
    return path


def rename_member(path, stand_in: str, raw_name: bytes):
    """Give a member a name zipfile cannot write (a NUL inside): patch the stored name bytes.

    ``stand_in`` must be as long as ``raw_name``; it is replaced in the local header and in
    the central directory (names are not covered by the CRC).
    """
    assert len(stand_in.encode()) == len(raw_name)
    data = path.read_bytes()
    assert data.count(stand_in.encode()) == 2
    path.write_bytes(data.replace(stand_in.encode(), raw_name))
    return path


def community_json(path, tweets, **extra):
    """A Community Archive export with these ``tweets`` records (dicts or raw JSON text)."""
    body = tweets if isinstance(tweets, str) else json.dumps(tweets, ensure_ascii=False)
    doc = json.dumps({"account": [{"account": {"username": "someone", "accountId": "42"}}], **extra})
    path.write_text(doc[:-1] + f', "tweets": {body}}}', encoding="utf-8")
    return path


def assert_refused(workspace, source, *needles, limits=None, **kwargs):
    """The ingest fails with one line holding every needle, and leaves nothing in the data dir."""
    with pytest.raises(IngestError) as info:
        ingest_archive(source, workspace, "bad", limits=limits, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle.lower() in message.lower(), message
    data_dir = workspace.data_dir
    assert not data_dir.exists() or list(data_dir.iterdir()) == []
    return message
