"""Strict ingest: every record is ingested or named.

A malformed record (not an object, a wrong wrapper, no id, an unparseable date, a text no
post can have) stops the ingest with one line naming the file and the record number, and
nothing is written; ``skip_bad_records`` ingests the rest and lists each skipped record in
meta.json and the CLI output. Lone UTF-16 surrogate escapes become U+FFFD. Archives are
made by hand here (X ZIP and Community Archive JSON).
"""

from __future__ import annotations

import json
import zipfile

import pytest

from kits.archives import ACCOUNT, assert_refused, community_json, make_zip, tweet, ytd
from pipeline.stages.ingest import IngestError, ingest_archive
from pipeline.stages.ingest.records import MAX_POST_CHARS

LIKE = {"like": {"tweetId": "1500000000000000009", "fullText": "liked text",
                 "expandedUrl": "https://twitter.com/i/web/status/1500000000000000009"}}
NO_ID = {"tweet": {"created_at": "Fri Mar 06 13:02:05 +0000 2026", "full_text": "who am I"}}
SKIP = "--skip-bad-records"


def x_zip(tmp_path, records, name="a.zip", **members):
    return make_zip(tmp_path / name, {"data/tweets.js": ytd("tweets", records), "data/account.js": ACCOUNT,
                                      **members})


BAD_CASES = {
    # record 2 of three; (record, what the message says, reason code)
    "wrong_wrapper": (LIKE, "is wrapped as {'like': …}, not {'tweet': …}", "wrong_wrapper"),
    "no_id": (NO_ID, "has no tweet id (neither id_str nor id)", "no_id"),
    "bad_id": (tweet(1)["tweet"] | {"id_str": "12ab", "id": "12ab"}, "has no valid tweet id ('12ab' is not one)",
               "no_id"),
    "bad_date": (tweet(1500000000000000002, created="last Tuesday around noon"),
                 "has created_at 'last Tuesday around noon', which is not a date", "bad_date"),
    "no_date": (tweet(1500000000000000002, created=""), "has no created_at date", "bad_date"),
    "too_long": (tweet(1500000000000000002, text="x" * (MAX_POST_CHARS + 1)),
                 f"has a text of {MAX_POST_CHARS + 1:,} characters; no post exceeds 25,000", "too_long"),
    "not_an_object": ("just a string", "is a JSON str, not a tweet object", "not_an_object"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_a_bad_record_stops_the_ingest_then_skip_ingests_the_rest(tmp_path, tmp_workspace, case):
    bad, detail, code = BAD_CASES[case]
    records = [tweet(1500000000000000001, "first"), bad, tweet(1500000000000000003, "third")]
    src = x_zip(tmp_path, records)
    message = assert_refused(tmp_workspace, src, f"a.zip:data/tweets.js: record 2 {detail}", SKIP)
    assert "more bad record" not in message

    ds = ingest_archive(src, tmp_workspace, "rest", skip_bad_records=True)
    assert ds.read_input()["text"].tolist() == ["first", "third"]
    meta = ds.meta()
    [skipped] = meta["ingest"]["skipped_records"]
    assert skipped["file"] == "a.zip:data/tweets.js" and skipped["record"] == 2
    assert skipped["reason"] == code and skipped["detail"] == detail
    assert meta["ingest"]["skip_bad_records"] is True and meta["ingest"]["skipped"] == {code: 1}
    assert meta["ingest"]["records"]["tweets"] == 3 and meta["length"] == 2


def test_a_50_million_character_text_is_refused(tmp_path, tmp_workspace):
    """The issue's case: stored uncompressed, as deflate would make it look like a zip bomb."""
    records = [tweet(1500000000000000001, "x" * 50_000_000), tweet(1500000000000000002, "ok")]
    src = make_zip(tmp_path / "big.zip", {"data/tweets.js": ytd("tweets", records)}, compression=zipfile.ZIP_STORED)
    assert_refused(tmp_workspace, src, "big.zip:data/tweets.js: record 1 has a text of 50,000,000 characters")
    ds = ingest_archive(src, tmp_workspace, "rest", skip_bad_records=True)
    assert ds.read_input()["text"].tolist() == ["ok"]
    assert ds.input_path.stat().st_size < 100_000


def test_the_size_limit_counts_characters_as_posted(tmp_path, tmp_workspace):
    """A 25,000-character post is real, even when X's HTML escaping makes the raw text 5x longer."""
    longest = "&amp;" * MAX_POST_CHARS
    src = x_zip(tmp_path, [tweet(1500000000000000001, longest), tweet(1500000000000000002, "y" * MAX_POST_CHARS)])
    texts = ingest_archive(src, tmp_workspace, "long").read_input()["text"].tolist()
    assert [len(t) for t in texts] == [MAX_POST_CHARS, MAX_POST_CHARS] and texts[0][:2] == "&&"


def test_every_bad_record_is_listed_in_file_and_record_order(tmp_path, tmp_workspace):
    records = [tweet(1500000000000000001, created="soon"), tweet(1500000000000000002, "kept"), NO_ID, LIKE]
    deleted = [tweet(1400000000000000001, "gone"), {"tweet": {}}]
    src = x_zip(tmp_path, records, **{"data/deleted-tweets.js": ytd("deleted_tweets", deleted)})
    message = assert_refused(tmp_workspace, src, "a.zip:data/tweets.js: record 1 has created_at 'soon'",
                             "(and 2 more bad record(s) in that file)", include_deleted=True)
    assert "deleted-tweets" not in message
    ds = ingest_archive(src, tmp_workspace, "rest", skip_bad_records=True, include_deleted=True)
    assert sorted(ds.read_input()["text"]) == ["gone", "kept"]
    listed = [(r["file"].split(":")[1], r["record"], r["reason"]) for r in ds.meta()["ingest"]["skipped_records"]]
    assert listed == [("data/tweets.js", 1, "bad_date"), ("data/tweets.js", 3, "no_id"),
                      ("data/tweets.js", 4, "wrong_wrapper"), ("data/deleted-tweets.js", 2, "no_id")]
    assert ds.meta()["ingest"]["skipped_records"][0]["id"] == "1500000000000000001"


def test_likes_are_checked_too_but_a_like_without_text_is_not_malformed(tmp_path, tmp_workspace):
    likes = [LIKE, {"like": {"tweetId": "1500000000000000010"}}, tweet(1500000000000000011)]
    src = x_zip(tmp_path, [tweet(1500000000000000001)], **{"data/like.js": ytd("like", likes)})
    assert len(ingest_archive(src, tmp_workspace, "nolikes").read_input()) == 1  # likes not read: not checked
    with pytest.raises(IngestError, match=r"a\.zip:data/like\.js: record 3 is wrapped as \{'tweet': …\}, "
                                          r"not \{'like': …\}"):
        ingest_archive(src, tmp_workspace, "likes", include_likes=True)
    assert tmp_workspace.dataset_names() == ["nolikes"]
    ds = ingest_archive(src, tmp_workspace, "likes", include_likes=True, skip_bad_records=True)
    assert sorted(ds.read_input()["tweet_type"]) == ["like", "tweet"]
    assert ds.meta()["ingest"]["skipped"] == {"like_without_text": 1, "wrong_wrapper": 1}
    assert [r["record"] for r in ds.meta()["ingest"]["skipped_records"]] == [3]


def test_community_archive_records_are_named_by_list_and_number(tmp_path, tmp_workspace):
    records = [tweet(1500000000000000001, "first"), tweet(1500000000000000002, created="yesterday"), LIKE]
    src = community_json(tmp_path / "community.json", records)
    assert_refused(tmp_workspace, src, "community.json 'tweets' list: record 2 has created_at 'yesterday'",
                   "(and 1 more bad record(s) in that file)", SKIP)
    ds = ingest_archive(src, tmp_workspace, "rest", skip_bad_records=True)
    assert ds.read_input()["text"].tolist() == ["first"]
    assert [(r["record"], r["reason"]) for r in ds.meta()["ingest"]["skipped_records"]] == [
        (2, "bad_date"), (3, "wrong_wrapper")]


def test_only_bad_records_is_an_error_even_when_skipping(tmp_path, tmp_workspace):
    src = x_zip(tmp_path, [NO_ID, LIKE])
    assert_refused(tmp_workspace, src, "a.zip: holds no tweets", "2 malformed record(s) skipped",
                   skip_bad_records=True)


LONE = '"\\ud83d broken'  # a valid JSON escape of half an emoji, as X writes a cut pair
PAIR = "\\ud83d\\ude00"


def _raw_tweets(texts):
    return "[" + ", ".join(json.dumps(tweet(1500000000000000001 + i, "T"))
                           .replace('"T"', f'"{t}"') for i, t in enumerate(texts)) + "]"


def test_a_lone_surrogate_becomes_a_replacement_character_in_a_zip(tmp_path, tmp_workspace):
    raw = _raw_tweets([LONE[1:], f"a pair {PAIR} stays", "an escaped backslash \\\\ud83d stays text"])
    src = x_zip(tmp_path, raw)
    texts = ingest_archive(src, tmp_workspace, "s").read_input()["text"].tolist()
    assert texts == ["\ufffd broken", "a pair \U0001F600 stays", "an escaped backslash \\ud83d stays text"]


def test_a_lone_surrogate_becomes_a_replacement_character_in_community_json(tmp_path, tmp_workspace):
    src = community_json(tmp_path / "c.json", _raw_tweets([f"cut {PAIR[:6]}", f"low {PAIR[6:]} alone"]))
    texts = ingest_archive(src, tmp_workspace, "s").read_input()["text"].tolist()
    assert texts == ["cut \ufffd", "low \ufffd alone"]


def _cli(argv):
    from pipeline.cli import main as cli

    original = cli.COMMAND_MODULES
    cli.COMMAND_MODULES = ("pipeline.cli.ingest",)
    try:
        return cli.main(argv)
    finally:
        cli.COMMAND_MODULES = original


def test_cli_names_the_record_then_lists_the_skipped_ones(tmp_path, capsys):
    src = x_zip(tmp_path, [tweet(1500000000000000001, "first"), NO_ID, tweet(1500000000000000003, created="?")])
    base = ["ingest", str(src), "--data-dir", str(tmp_path / "data"), "--dataset", "x"]
    assert _cli(base) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: a.zip:data/tweets.js: record 2 has no tweet id")
    assert SKIP in err[0] and not (tmp_path / "data" / "x").exists()

    assert _cli([*base, SKIP]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ingested 1 rows (1 tweet)")
    assert out[1:] == [
        "skipped 2 malformed record(s) (listed in meta.json under ingest.skipped_records):",
        "  a.zip:data/tweets.js: record 2 has no tweet id (neither id_str nor id)",
        "  a.zip:data/tweets.js: record 3 has created_at '?', which is not a date",
    ]
