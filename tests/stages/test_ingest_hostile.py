"""Bad and hostile input: every case raises IngestError with one clear line and leaves no dataset.

Each bad archive is generated here into tmp_path at test time.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile

import pytest

from kits.archives import ACCOUNT, assert_refused, make_zip, rename_member
from pipeline.stages.ingest import ArchiveLimits, IngestError, ingest_archive

GOOD_TWEETS = (
    'window.YTD.tweets.part0 = [ {"tweet": {"id_str": "1000000000000000001", "id": "1000000000000000001", '
    '"created_at": "Fri Mar 06 13:02:05 +0000 2026", "full_text": "hello &amp; welcome", '
    '"entities": {"urls": []}, "favorite_count": "1", "retweet_count": "0", "lang": "en"}} ]'
)


def test_a_good_minimal_archive_is_accepted(tmp_path, tmp_workspace):
    src = make_zip(tmp_path / "ok.zip", {"data/tweets.js": GOOD_TWEETS, "data/account.js": ACCOUNT})
    ds = ingest_archive(src, tmp_workspace, None)
    assert ds.name == "someone-tweets"
    df = ds.read_input()
    assert list(df["text"]) == ["hello & welcome"]
    assert "x@example.invalid" not in ds.meta_path.read_text()


@pytest.mark.parametrize("name", ["../evil.js", "data/../../evil.js", "data/tweets/../../../x.js"])
def test_zip_slip_names(tmp_path, tmp_workspace, name):
    src = make_zip(tmp_path / "slip.zip", {"data/tweets.js": GOOD_TWEETS, name: "x"})
    assert_refused(tmp_workspace, src, "slip.zip", "zip slip")


@pytest.mark.parametrize("name", ["/etc/passwd", "C:\\Windows\\evil.js", "\\\\server\\share\\x.js"])
def test_absolute_paths(tmp_path, tmp_workspace, name):
    src = make_zip(tmp_path / "abs.zip", {"data/tweets.js": GOOD_TWEETS, name: "x"})
    assert_refused(tmp_workspace, src, "abs.zip", "absolute path")


def test_symlink_member(tmp_path, tmp_workspace):
    link = zipfile.ZipInfo("data/like.js")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    src = make_zip(tmp_path / "link.zip", [("data/tweets.js", GOOD_TWEETS), (link, "/etc/passwd")])
    assert_refused(tmp_workspace, src, "link.zip", "data/like.js", "symbolic link")


def test_zip_bomb_ratio(tmp_path, tmp_workspace):
    bomb = b"window.YTD.tweets.part0 = [" + b" " * (30 << 20) + b"]"
    src = make_zip(tmp_path / "bomb.zip", {"data/tweets.js": bomb})
    assert_refused(tmp_workspace, src, "bomb.zip:data/tweets.js", "zip bomb")


def test_counting_reader_does_not_trust_the_header(tmp_path, monkeypatch):
    """Even if a member's stream produced more than its header says, the caps apply to real bytes."""
    import io

    from pipeline.stages.ingest.safe_zip import ZipArchiveFiles

    src = make_zip(tmp_path / "small.zip", {"data/tweets.js": GOOD_TWEETS})
    files = ZipArchiveFiles(src)
    monkeypatch.setattr(files._zip, "open", lambda info: io.BytesIO(b" " * (8 << 20)))
    with pytest.raises(IngestError, match="already gave .*zip bomb"):
        files.read("data/tweets.js")
    files.close()


def test_member_size_cap(tmp_path, tmp_workspace):
    # incompressible content (no ratio problem), but bigger than the per-file cap
    payload = json.dumps([{"tweet": {"id_str": str(10**17 + i), "created_at": "Fri Mar 06 13:02:05 +0000 2026",
                                     "full_text": os.urandom(40).hex()}} for i in range(2000)])
    src = make_zip(tmp_path / "big.zip", {"data/tweets.js": "window.YTD.tweets.part0 = " + payload})
    limits = ArchiveLimits(max_member_bytes=50_000)
    assert_refused(tmp_workspace, src, "big.zip:data/tweets.js", "larger than", limits=limits)


def test_total_size_cap(tmp_path, tmp_workspace):
    part = lambda n: ("window.YTD.tweets.part%d = " % n) + json.dumps(  # noqa: E731
        [{"tweet": {"id_str": str(10**17 + n * 10_000 + i), "created_at": "Fri Mar 06 13:02:05 +0000 2026",
                    "full_text": os.urandom(30).hex()}} for i in range(500)])
    src = make_zip(tmp_path / "many.zip", {"data/tweets.js": part(0), "data/tweets-part1.js": part(1),
                                           "data/tweets-part2.js": part(2)})
    size = len(part(0))
    limits = ArchiveLimits(max_member_bytes=size * 2, max_total_bytes=int(size * 2.5))
    assert_refused(tmp_workspace, src, "many.zip:data/tweets-part2.js", "total limit", limits=limits)


def test_lying_header_size(tmp_path, tmp_workspace):
    """A central directory that understates the size is caught (never trusted on its own)."""
    src = make_zip(tmp_path / "liar.zip", {"data/tweets.js": GOOD_TWEETS})
    data = bytearray(src.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)  # uncompressed size in the central directory
    lh = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, lh + 22, 10)  # and in the local header
    src.write_bytes(bytes(data))
    assert_refused(tmp_workspace, src, "liar.zip:data/tweets.js")


def test_non_utf8(tmp_path, tmp_workspace):
    src = make_zip(tmp_path / "latin.zip", {"data/tweets.js": GOOD_TWEETS.replace("hello", "h\xe9llo").encode("latin-1")})
    assert_refused(tmp_workspace, src, "latin.zip:data/tweets.js", "not UTF-8", "offset")


@pytest.mark.parametrize("prefix", ["var tweets = ", "window.YTD.like.part0 = ", ""])
def test_wrong_js_prefix(tmp_path, tmp_workspace, prefix):
    body = GOOD_TWEETS.split("=", 1)[1]
    src = make_zip(tmp_path / "prefix.zip", {"data/tweets.js": prefix + body})
    assert_refused(tmp_workspace, src, "prefix.zip:data/tweets.js", "window.YTD.tweets.part0")


def test_truncated_json(tmp_path, tmp_workspace):
    src = make_zip(tmp_path / "cut.zip", {"data/tweets.js": GOOD_TWEETS[:-40]})
    assert_refused(tmp_workspace, src, "cut.zip:data/tweets.js", "truncated", "download")


def test_tweets_file_holding_an_object(tmp_path, tmp_workspace):
    src = make_zip(tmp_path / "obj.zip", {"data/tweets.js": 'window.YTD.tweets.part0 = {"a": 1}'})
    assert_refused(tmp_workspace, src, "obj.zip:data/tweets.js", "not the list")


def test_empty_archive(tmp_path, tmp_workspace):
    src = make_zip(tmp_path / "empty.zip", {})
    assert_refused(tmp_workspace, src, "empty.zip", "empty")


def test_empty_tweets_file(tmp_path, tmp_workspace):
    src = make_zip(tmp_path / "none.zip", {"data/tweets.js": "window.YTD.tweets.part0 = [ ]", "data/account.js": ACCOUNT})
    assert_refused(tmp_workspace, src, "none.zip", "no tweets")


def test_no_tweets_file(tmp_path, tmp_workspace):
    manifest = ('window.__THAR_CONFIG = {"dataTypes": {"tweets": {"files": [{"fileName": "data/tweets.js", '
                '"globalName": "YTD.tweets.part0", "count": "5"}]}}}')
    src = make_zip(tmp_path / "notweets.zip", {"data/account.js": ACCOUNT, "data/manifest.js": manifest})
    assert_refused(tmp_workspace, src, "notweets.zip", "no tweets file", "tweets.js")
    other = make_zip(tmp_path / "photos.zip", {"holiday/img1.jpg": b"\xff\xd8\xff", "readme.txt": "hi"})
    assert_refused(tmp_workspace, other, "photos.zip", "no tweets file")


def test_community_json_without_tweets(tmp_path, tmp_workspace):
    src = tmp_path / "community.json"
    src.write_text(json.dumps({"account": [{"account": {"username": "x"}}], "like": []}))
    assert_refused(tmp_workspace, src, "community.json", "'tweets'")


def test_community_json_truncated(tmp_path, tmp_workspace, sample_json):
    src = tmp_path / "cut.json"
    src.write_bytes(sample_json.read_bytes()[:100_000])
    assert_refused(tmp_workspace, src, "cut.json", "truncated")


def test_file_that_is_neither(tmp_path, tmp_workspace):
    src = tmp_path / "picture.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    assert_refused(tmp_workspace, src, "picture.png", "neither", "binary data")
    text = tmp_path / "notes.txt"
    text.write_text("just some notes")
    assert_refused(tmp_workspace, text, "notes.txt", "neither")
    assert_refused(tmp_workspace, tmp_path / "missing.zip", "missing.zip", "no such file")


def test_broken_zip(tmp_path, tmp_workspace, sample_zip):
    src = tmp_path / "half.zip"
    src.write_bytes(sample_zip.read_bytes()[:300_000])
    assert_refused(tmp_workspace, src, "half.zip", "ZIP")


def test_symlink_in_folder_pointing_outside(tmp_path, tmp_workspace):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    folder = tmp_path / "archive"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "tweets.js").write_text(GOOD_TWEETS)
    (folder / "data" / "like.js").symlink_to(secret)
    assert_refused(tmp_workspace, folder, "data/like.js", "outside")


def test_symlink_in_folder_pointing_inside_is_fine(tmp_path, tmp_workspace):
    folder = tmp_path / "archive"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "real.js").write_text(GOOD_TWEETS)
    (folder / "data" / "tweets.js").symlink_to(folder / "data" / "real.js")
    assert len(ingest_archive(folder, tmp_workspace, "inside").read_input()) == 1


def test_cli_reports_one_line_and_exit_code(tmp_path, monkeypatch, capsys):
    from pipeline.cli import main as cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("pipeline.cli.ingest",))
    src = make_zip(tmp_path / "cut.zip", {"data/tweets.js": GOOD_TWEETS[:-40]})
    code = cli.main(["ingest", str(src), "--data-dir", str(tmp_path / "data"), "--dataset", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith("error: cut.zip:data/tweets.js: is truncated")
    assert "download" in err[0]
    assert not (tmp_path / "data" / "x").exists()


def test_member_name_with_a_nul_is_refused_though_zipfile_hides_it(tmp_path, tmp_workspace):
    """zipfile cuts ``ZipInfo.filename`` at a NUL, so this member would pass for data/tweets.js."""
    raw = b"data/tweets.js\x00/../../x.js"
    stand_in = "data/tweets.jsX/../../x.js"
    src = make_zip(tmp_path / "nul.zip", {stand_in: GOOD_TWEETS})
    rename_member(src, stand_in, raw)
    with zipfile.ZipFile(src) as z:
        assert [i.filename for i in z.infolist()] == ["data/tweets.js"]  # what the name check used to see
    message = assert_refused(tmp_workspace, src, "nul.zip: member name", "contains a NUL byte", "refusing it")
    assert "'data/tweets.js\\x00/../../x.js'" in message


@pytest.mark.parametrize("name", ["data/tweets.js\n", "data/\x1b[2Jtweets.js", "data/like\x7f.js", "data/x\x85.js"])
def test_member_name_with_a_control_character_is_refused(tmp_path, tmp_workspace, name):
    src = make_zip(tmp_path / "ctl.zip", {"data/tweets.js": GOOD_TWEETS, name: "x"})
    message = assert_refused(tmp_workspace, src, "ctl.zip: member name", "control character", "refusing it")
    assert repr(name) in message
