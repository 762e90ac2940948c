"""Ingest of the real sample archive (assets/sample): ZIP, Community JSON, flags, text clean-up, meta.

Expected counts are derived from the raw fixture files read here with plain ``json``
(independently of the ingest code); SOURCE.md's documented counts are asserted too.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import zipfile
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.core.workspace import WorkspaceError
from pipeline.stages.ingest import COLUMNS, IngestError, ingest_archive

EMAIL = "owner@example.invalid"
STATUS_RE = re.compile(r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/[^/]+(?:/web)?/status/(\d+)")


def raw_js(zip_path, name):
    with zipfile.ZipFile(zip_path) as zf:
        text = zf.read(f"data/{name}").decode("utf-8")
    return json.loads(text.split("=", 1)[1])


@pytest.fixture(scope="module")
def raw_tweets(sample_zip):
    return [item["tweet"] for item in raw_js(sample_zip, "tweets.js")]


@pytest.fixture(scope="module")
def raw_likes(sample_zip):
    return [item["like"] for item in raw_js(sample_zip, "like.js")]


@pytest.fixture(scope="module")
def raw_deleted(sample_zip):
    return [item["tweet"] for item in raw_js(sample_zip, "deleted-tweets.js")]


@pytest.fixture(scope="module")
def zip_df(sample_dataset):
    return sample_dataset.read_input()


@pytest.fixture(scope="module")
def full_dataset(tmp_path_factory, sample_zip):
    from pipeline.core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("full") / "data")
    return ingest_archive(sample_zip, ws, "full", include_likes=True, include_deleted=True)


@pytest.fixture(scope="module")
def json_dataset(tmp_path_factory, sample_json):
    from pipeline.core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("json") / "data")
    return ingest_archive(sample_json, ws, None, include_likes=True)


def expected_type(t):
    """The documented precedence: retweet > quote > reply > tweet."""
    urls = [u["expanded_url"] for u in t["entities"].get("urls", [])]
    if t["full_text"].startswith("RT @"):
        return "retweet"
    if any((m := STATUS_RE.match(u)) and m.group(1) != t["id_str"] for u in urls):
        return "quote"
    if t.get("in_reply_to_status_id_str"):
        return "reply"
    return "tweet"


def test_zip_rows_and_counts_match_the_fixture(zip_df, raw_tweets, sample_dataset):
    assert list(zip_df.columns) == COLUMNS
    assert len(zip_df) == len(raw_tweets) == 2045  # SOURCE.md
    assert zip_df["id"].is_unique
    assert set(zip_df["id"]) == {t["id_str"] for t in raw_tweets}
    assert zip_df["is_reply"].sum() == sum(bool(t.get("in_reply_to_status_id_str")) for t in raw_tweets) == 1780
    assert zip_df["is_retweet"].sum() == sum(t["full_text"].startswith("RT @") for t in raw_tweets) == 239
    assert not zip_df["is_like"].any() and zip_df["liked_tweet_id"].isna().all()
    assert dict(Counter(zip_df["tweet_type"])) == dict(Counter(expected_type(t) for t in raw_tweets))
    assert (zip_df["tweet_type"] == "quote").sum() == 39  # SOURCE.md: quote tweets
    assert (zip_df["media_urls_json"] != "[]").sum() == sum("extended_entities" in t for t in raw_tweets) == 23
    assert (zip_df["urls_json"] != "[]").sum() == sum(bool(t["entities"]["urls"]) for t in raw_tweets) == 310
    assert set(zip_df["archive_source"]) == {"x_archive"}
    assert set(zip_df["username"]) == {"milahu104"} and set(zip_df["display_name"]) == {"Milan Hauth"}
    # replies keep their parent id; languages as in SOURCE.md
    replies = zip_df[zip_df["is_reply"]]
    assert replies["in_reply_to_status_id"].notna().all()
    assert Counter(zip_df["lang"])["de"] == 1060 and Counter(zip_df["lang"])["en"] == 857


def test_types_and_order(zip_df, sample_dataset):
    table = pq.read_table(sample_dataset.input_path)
    assert str(table.schema.field("id").type) == "string"
    assert str(table.schema.field("in_reply_to_status_id").type) == "string"
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    created = zip_df["created_at"]
    assert created.is_monotonic_increasing
    assert created.iloc[0] == pd.Timestamp("2025-09-06 13:13:48", tz="UTC")  # SOURCE.md date range
    assert created.iloc[-1] == pd.Timestamp("2026-03-06 13:02:05", tz="UTC")
    # ties in time are ordered by numeric id
    keys = list(zip(created, zip_df["id"].astype(int)))
    assert keys == sorted(keys)
    raw = dict(zip(zip_df["id"], zip_df["created_at_raw"]))
    assert raw["2029905358261502168"] == "Fri Mar 06 13:02:05 +0000 2026"


def test_zip_and_community_json_give_the_same_tweets(zip_df, json_dataset):
    js = json_dataset.read_input()
    js_tweets = js[~js["is_like"]]
    assert json_dataset.name == "milahu104-tweets"  # default name from the account
    assert list(js_tweets["id"]) == list(zip_df["id"])
    assert list(js_tweets["text"]) == list(zip_df["text"])
    assert list(js_tweets["tweet_type"]) == list(zip_df["tweet_type"])
    assert set(js["archive_source"]) == {"community_archive"}
    assert json_dataset.meta()["account"]["username"] == "milahu104"


def test_likes_only_with_the_flag(zip_df, full_dataset, json_dataset, raw_likes, raw_tweets):
    with_text = {l["tweetId"] for l in raw_likes if l.get("fullText")}
    without_text = sum(1 for l in raw_likes if not l.get("fullText"))
    assert len(raw_likes) == 6708 and without_text == 36  # SOURCE.md
    own = {t["id_str"] for t in raw_tweets}
    expected_likes = with_text - own  # liking your own tweet does not duplicate it
    for ds in (full_dataset, json_dataset):
        df = ds.read_input()
        likes = df[df["is_like"]]
        assert set(likes["id"]) == expected_likes
        assert (likes["tweet_type"] == "like").all()
        assert (likes["liked_tweet_id"] == likes["id"]).all()
        assert likes["created_at"].notna().all()  # decoded from the Snowflake id
        meta = ds.meta()
        assert meta["counts"]["likes_without_text"] == 36
        assert meta["counts"]["duplicates_removed"] == len(with_text & own)
        assert df["created_at"].is_monotonic_increasing
    assert zip_df["tweet_type"].ne("like").all()


def test_deleted_only_with_the_flag(zip_df, full_dataset, raw_deleted):
    deleted_ids = {t["id_str"] for t in raw_deleted}
    assert len(deleted_ids) == 47  # SOURCE.md
    assert not deleted_ids & set(zip_df["id"])
    full = full_dataset.read_input()
    assert deleted_ids <= set(full["id"])
    assert full_dataset.meta()["counts"]["deleted_tweets_included"] == 47
    rows = full[full["id"].isin(deleted_ids)]
    assert rows["is_reply"].sum() == 43 and rows["is_retweet"].sum() == 4  # SOURCE.md
    assert list(rows["tweet_type"]) == [expected_type(t) for t in sorted(
        raw_deleted, key=lambda t: (pd.Timestamp(t["created_at"]), int(t["id_str"])))]


def test_html_entities_are_unescaped(zip_df, raw_tweets):
    escaped = [t for t in raw_tweets if re.search(r"&(amp|lt|gt);", t["full_text"])]
    assert len(escaped) == 275  # SOURCE.md
    texts = dict(zip(zip_df["id"], zip_df["text"]))
    assert not zip_df["text"].str.contains(r"&(?:amp|lt|gt);").any()
    plain = [t for t in escaped if not t["entities"]["urls"] and "extended_entities" not in t]
    for t in plain:
        assert texts[t["id_str"]] == html.unescape(t["full_text"]).strip()
    assert any("&" in texts[t["id_str"]] for t in escaped)


def test_tco_links_expanded_and_media_moved(zip_df, raw_tweets):
    rows = zip_df.set_index("id")
    checked = 0
    for t in raw_tweets:
        text = rows.at[t["id_str"], "text"]
        for u in t["entities"]["urls"]:
            assert u["url"] not in text
            if u["url"] in t["full_text"]:
                assert u["expanded_url"] in text
                checked += 1
            assert u["expanded_url"] in json.loads(rows.at[t["id_str"], "urls_json"])
        for m in t.get("extended_entities", {}).get("media", []):
            assert m["url"] not in text
            assert m["media_url_https"] in json.loads(rows.at[t["id_str"], "media_urls_json"])
    assert checked > 250


def test_email_is_stored_nowhere(full_dataset, json_dataset):
    for ds in (full_dataset, json_dataset):
        for path in ds.path.rglob("*"):
            if path.is_file():
                assert EMAIL.encode() not in path.read_bytes(), path
        df = ds.read_input()
        for col in df.columns:
            if df[col].dtype != bool:
                assert not df[col].astype(str).str.contains(EMAIL, regex=False).any(), col
        assert "email" not in json.dumps(ds.meta())


def test_meta_json(sample_dataset, zip_df):
    meta = sample_dataset.meta()
    assert meta["id"] == "sample" and meta["length"] == len(zip_df)
    assert meta["columns"] == COLUMNS and meta["text_column"] == "text"
    assert meta["input_fingerprint"] == hashlib.sha256(sample_dataset.input_path.read_bytes()).hexdigest()
    assert sample_dataset.input_fingerprint() == meta["input_fingerprint"]
    assert meta["archive_source"] == "x_archive"
    assert meta["account"] == {"username": "milahu104", "display_name": "Milan Hauth",
                               "account_id": "1964312974236991488"}
    cm = meta["column_metadata"]
    assert set(cm) == set(COLUMNS)
    assert cm["tweet_type"]["type"] == "string"
    assert set(cm["tweet_type"]["categories"]) == set(zip_df["tweet_type"])
    assert cm["tweet_type"]["counts"]["reply"] == (zip_df["tweet_type"] == "reply").sum()
    assert "categories" not in cm["text"] and "categories" not in cm["id"]
    assert cm["favorites"]["type"] == "number" and cm["favorites"]["extent"][1] == zip_df["favorites"].max()
    assert cm["created_at"]["type"] == "date"
    assert cm["created_at"]["extent"] == ["2025-09-06T13:13:48Z", "2026-03-06T13:02:05Z"]
    assert cm["is_reply"] == {"type": "boolean", "counts": {"true": 1780, "false": 265}, "nulls": 0}
    assert meta["tweet_type_precedence"] == ["retweet", "quote", "reply", "tweet"]
    assert sum(meta["counts"]["tweet_types"].values()) == len(zip_df)


def test_extracted_folder_gives_the_same_dataset(tmp_path, sample_zip, zip_df, tmp_workspace):
    folder = tmp_path / "archive"
    with zipfile.ZipFile(sample_zip) as zf:
        zf.extractall(folder)
    ds = ingest_archive(folder, tmp_workspace, "folder")
    pd.testing.assert_frame_equal(ds.read_input(), zip_df)
    # pointing at the data/ folder itself works too
    ds2 = ingest_archive(folder / "data", tmp_workspace, "datafolder")
    assert list(ds2.read_input()["id"]) == list(zip_df["id"])


def test_existing_dataset_needs_overwrite(tmp_workspace, sample_zip):
    ingest_archive(sample_zip, tmp_workspace, "twice")
    with pytest.raises(WorkspaceError, match="already exists"):
        ingest_archive(sample_zip, tmp_workspace, "twice")
    ds = ingest_archive(sample_zip, tmp_workspace, "twice", overwrite=True, include_deleted=True)
    assert ds.meta()["length"] == 2045 + 47
    assert tmp_workspace.dataset_names() == ["twice"]


def test_cli_ingest_prints_a_summary(tmp_path, sample_zip, monkeypatch, capsys):
    from pipeline.cli import main as cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("pipeline.cli.ingest",))
    code = cli.main(["ingest", str(sample_zip), "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert len(out) == 1 and "2,045 rows" in out[0] and "reply" in out[0]
    assert str(tmp_path / "data" / "milahu104-tweets") in out[0]


def test_cancelled_ingest_leaves_nothing(tmp_workspace, sample_zip):
    from pipeline.core.progress import Cancelled, Progress

    progress = Progress(lambda event: None, "ingest")
    progress.cancel()
    with pytest.raises(Cancelled):
        ingest_archive(sample_zip, tmp_workspace, "cancelled", progress=progress)
    assert not tmp_workspace.data_dir.exists() or not any(tmp_workspace.data_dir.iterdir())


def test_ingest_error_is_a_value_error():
    assert issubclass(IngestError, ValueError)
