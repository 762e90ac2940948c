"""Other archive shapes: split tweet parts + manifest, note tweets, pre-2019 Grailbird, and the
synthetic archive generator the benchmarks use."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline.stages.ingest import ingest_archive

ROOT = Path(__file__).resolve().parents[2]


def ytd(name, part, items):
    return f"window.YTD.{name}.part{part} = " + json.dumps(items, indent=2)


def test_tweets_split_into_parts_with_a_manifest(tmp_path, tmp_workspace, sample_zip, sample_dataset):
    """The fixture re-packed as tweets.js + tweets-part1.js gives exactly the same dataset."""
    with zipfile.ZipFile(sample_zip) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    items = json.loads(files.pop("data/tweets.js").decode().split("=", 1)[1])
    half = len(items) // 2
    manifest = files["data/manifest.js"].decode().replace(
        '"fileName" : "data/tweets.js",\n        "globalName" : "YTD.tweets.part0",\n        "count" : "2045"\n      }',
        '"fileName" : "data/tweets.js",\n        "globalName" : "YTD.tweets.part0",\n        "count" : "1022"\n      }, '
        '{"fileName": "data/tweets-part1.js", "globalName": "YTD.tweets.part1", "count": "1023"}, '
        '{"fileName": "data/tweets-part2.js", "globalName": "YTD.tweets.part2", "count": "0"}',
    )
    assert "tweets-part1.js" in manifest  # part2 is listed but absent: must be skipped
    files["data/manifest.js"] = manifest.encode()
    files["data/tweets.js"] = ytd("tweets", 0, items[:half]).encode()
    files["data/tweets-part1.js"] = ytd("tweets", 1, items[half:]).encode()
    src = tmp_path / "parts.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    ds = ingest_archive(src, tmp_workspace, "parts")
    assert ds.read_input().equals(sample_dataset.read_input())
    assert ds.meta()["ingest"]["files_read"] == ["data/tweets.js", "data/tweets-part1.js"]


def _tweet(tid, created, text, **extra):
    return {"tweet": {"id_str": tid, "id": tid, "created_at": created, "full_text": text,
                      "entities": {"urls": extra.pop("urls", [])}, "favorite_count": "0",
                      "retweet_count": "0", "lang": "en", **extra}}


def test_note_tweet_replaces_the_truncated_text(tmp_path, tmp_workspace):
    long_text = ("A long post about gardening & compost. " * 12).strip() + " see https://t.co/abc123"
    truncated = long_text[:270] + "… https://t.co/self99"
    tweets = [
        _tweet("1700000000000000001", "Tue Sep 05 10:00:00 +0000 2023", truncated.replace("&", "&amp;"),
               urls=[{"url": "https://t.co/self99", "expanded_url": "https://twitter.com/i/web/status/1700000000000000001"}]),
        _tweet("1700000000000000002", "Tue Sep 05 11:00:00 +0000 2023", "a short one"),
    ]
    notes = [{"noteTweet": {"noteTweetId": "1699999999999999999", "createdAt": "2023-09-05T10:00:00.000Z",
                            "core": {"text": long_text, "urls": [{"shortUrl": "https://t.co/abc123",
                                                                  "expandedUrl": "https://example.com/compost"}]}}}]
    src = tmp_path / "notes.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("data/tweets.js", ytd("tweets", 0, tweets))
        zf.writestr("data/note-tweet.js", ytd("note_tweet", 0, notes))
    df = ingest_archive(src, tmp_workspace, "notes").read_input().set_index("id")
    text = df.at["1700000000000000001", "text"]
    assert text == long_text.replace("https://t.co/abc123", "https://example.com/compost")
    assert "https://example.com/compost" in json.loads(df.at["1700000000000000001", "urls_json"])
    # the link to itself is not a quote
    assert df.at["1700000000000000001", "tweet_type"] == "tweet"
    assert df.at["1700000000000000002", "text"] == "a short one"


def test_pre_2019_grailbird_archive(tmp_path, tmp_workspace):
    user = {"name": "Old Timer", "screen_name": "oldtimer", "id_str": "12345", "id": 12345}
    old_shape = [  # 2012-era records: "YYYY-MM-DD" dates, numeric ids, `text`, nested retweets
        {"source": "web", "entities": {"user_mentions": [], "media": [], "hashtags": [],
                                       "urls": [{"indices": [20, 40], "url": "http://t.co/abcd",
                                                 "expanded_url": "http://example.com/page"}]},
         "geo": {}, "id_str": "281051746185162752", "text": "Tom &amp; Jerry link http://t.co/abcd",
         "id": 281051746185162752, "created_at": "2012-12-18 15:20:00 +0000", "user": user},
        {"source": "<a href=\"http://twitter.com\">Twitter for Mac</a>", "entities": {"urls": []},
         "in_reply_to_status_id_str": "281051746185162752", "in_reply_to_status_id": 281051746185162752,
         "in_reply_to_screen_name": "oldtimer", "id_str": "281412394950410240",
         "text": "@oldtimer replying to myself", "id": 281412394950410240,
         "created_at": "2012-12-19 15:13:05 +0000", "user": user},
        {"source": "web", "entities": {"urls": []}, "id_str": "281774020161044481",
         "text": "RT @friend: the original text, cut…", "id": 281774020161044481,
         "created_at": "2012-12-20 15:10:00 +0000", "user": user,
         "retweeted_status": {"text": "the original text, complete and untruncated", "id_str": "281700000000000000",
                              "created_at": "2012-12-20 10:00:00 +0000", "entities": {"urls": []},
                              "user": {"screen_name": "friend", "name": "Friend"}}},
    ]
    api_shape = [  # later Grailbird files: API-style dates and string ids, full_text
        {"source": "web", "entities": {"urls": [{"url": "https://t.co/q1", "expanded_url":
                                                 "https://twitter.com/someone/status/290000000000000000"}]},
         "id_str": "291000000000000000", "full_text": "look at this https://t.co/q1",
         "created_at": "Tue Jan 15 09:00:00 +0000 2013", "favorite_count": 3, "retweet_count": "1",
         "lang": "en", "user": user},
    ]
    src = tmp_path / "legacy.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("tweets.csv", "tweet_id,text\n")
        zf.writestr("data/js/user_details.js",
                    'var user_details =  {\n  "screen_name" : "oldtimer",\n  "full_name" : "Old Timer",\n  "id" : "12345"\n}')
        zf.writestr("data/js/tweets/2012_12.js", "Grailbird.data.tweets_2012_12 = \n" + json.dumps(old_shape, indent=2))
        zf.writestr("data/js/tweets/2013_01.js", "Grailbird.data.tweets_2013_01 = \n" + json.dumps(api_shape, indent=2))
    ds = ingest_archive(src, tmp_workspace, None)
    assert ds.name == "oldtimer-tweets"
    meta = ds.meta()
    assert meta["archive_source"] == "x_archive_legacy"
    assert meta["account"] == {"username": "oldtimer", "display_name": "Old Timer", "account_id": "12345"}
    df = ds.read_input()
    assert list(df["id"]) == ["281051746185162752", "281412394950410240", "281774020161044481", "291000000000000000"]
    assert list(df["tweet_type"]) == ["tweet", "reply", "retweet", "quote"]
    assert df["text"].iloc[0] == "Tom & Jerry link http://example.com/page"
    assert df["text"].iloc[2] == "RT @friend: the original text, complete and untruncated"
    assert df["in_reply_to_status_id"].iloc[1] == "281051746185162752"
    assert str(df["created_at"].iloc[0]) == "2012-12-18 15:20:00+00:00"
    assert str(df["created_at"].iloc[3]) == "2013-01-15 09:00:00+00:00"
    assert list(df["favorites"]) == [0, 0, 0, 3]
    assert df["source"].iloc[1] == "Twitter for Mac"
    assert set(df["archive_source"]) == {"x_archive_legacy"}


def test_grailbird_month_file_with_a_wrong_prefix(tmp_path, tmp_workspace):
    from pipeline.stages.ingest import IngestError

    src = tmp_path / "legacy.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("data/js/tweets/2012_12.js", "var tweets = []")
    with pytest.raises(IngestError, match=r"legacy.zip:data/js/tweets/2012_12.js: does not start with 'Grailbird"):
        ingest_archive(src, tmp_workspace, "x")


@pytest.fixture(scope="module")
def synth():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import synth_archive

    return synth_archive


def test_synthetic_archive_is_deterministic_and_ingests(tmp_path, tmp_workspace, synth, monkeypatch):
    monkeypatch.setattr(synth, "TWEETS_PER_PART", 1000)  # force several part files
    a = synth.generate_archive(tmp_path / "a.zip", n_tweets=2500, seed=3)
    b = synth.generate_archive(tmp_path / "b.zip", n_tweets=2500, seed=3)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        names = set(zf.namelist())
    assert {"data/tweets.js", "data/tweets-part1.js", "data/tweets-part2.js", "data/manifest.js",
            "data/account.js", "data/like.js", "data/note-tweet.js"} <= names
    ds = ingest_archive(a, tmp_workspace, None, include_likes=True)
    assert ds.name == "synthetic_owner-tweets"
    df = ds.read_input()
    own = df[~df["is_like"]]
    assert len(own) == 2500 and own["id"].is_unique
    types = own["tweet_type"].value_counts()
    assert all(types.get(t, 0) > 20 for t in ("tweet", "reply", "retweet", "quote"))
    assert (own["media_urls_json"] != "[]").sum() > 20
    assert not own["text"].str.contains("https://t.co/", regex=False).any()
    assert df["is_like"].sum() > 0 and ds.meta()["counts"]["likes_without_text"] > 0
    # self-threads: replies to the owner's own tweets, no deeper than ~10
    parent = dict(zip(own["id"], own["in_reply_to_status_id"]))
    depths = []
    for tid in own["id"]:
        depth = 0
        while parent.get(tid) in parent:
            tid, depth = parent[tid], depth + 1
        depths.append(depth)
    assert 1 <= max(depths) <= 10
    # long posts: every truncated tweet got its note's full text
    notes = ds.meta()["counts"]["note_tweets_applied"]
    assert notes > 0
    assert (own["text"].str.len() > 400).sum() <= notes
    assert not own.loc[~own["is_retweet"], "text"].str.endswith("…").any()
    assert (own["text"].str.len() > 0).all()

    c = synth.generate_archive(tmp_path / "c.json", n_tweets=2500, seed=3, fmt="community")
    community = ingest_archive(c, tmp_workspace, "community").read_input()
    assert list(community["id"]) == list(own["id"])
    assert list(community["text"]) == list(own["text"])
