"""The benchmark generator's replies, hubs and links look like a real archive's once ingested."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipeline.stages.ingest import ingest_archive

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import synth_archive

    return synth_archive


def test_replies_hubs_and_repeated_links(tmp_path, tmp_workspace, synth):
    archive = synth.generate_archive(tmp_path / "a.zip", n_tweets=6000, seed=5)
    own = ingest_archive(archive, tmp_workspace, None).read_input()
    owner = synth.ACCOUNT["username"]
    to_others = own[own["is_reply"] & (own["in_reply_to_screen_name"] != owner)]
    assert len(to_others) > 1000

    # every reply to another account starts with the handle it answers, some with 2-3 handles
    handles = to_others["text"].str.extract(r"^((?:@\w+ )+)")[0]
    assert handles.notna().all()
    assert (to_others["text"].str.split(" ").str[0] == "@" + to_others["in_reply_to_screen_name"]).all()
    n_handles = Counter(handles.str.count("@"))
    assert set(n_handles) == {1, 2, 3} and n_handles[1] > n_handles[2] > n_handles[3] > 20

    # heavy-tailed: a few hubs get a large share, most accounts a reply or two
    per_user = to_others["in_reply_to_screen_name"].value_counts()
    assert per_user.iloc[0] / len(to_others) > 0.08
    assert per_user.iloc[:10].sum() / len(to_others) > 0.3
    assert (per_user <= 2).sum() > 100

    # conversations: the owner also answers their own earlier reply, still addressed to the others
    self_in_conv = own[own["is_reply"] & (own["in_reply_to_screen_name"] == owner) & own["text"].str.startswith("@")]
    assert len(self_in_conv) > 20
    assert self_in_conv["in_reply_to_status_id"].isin(set(to_others["id"]) | set(self_in_conv["id"])).all()

    # the same few pages are linked many times
    links = Counter(url for cell in own["urls_json"] for url in json.loads(cell) if "/status/" not in url)
    (top_url, top_count), = links.most_common(1)
    assert top_url in synth.POPULAR_URLS and top_count > 20
    assert len(links) < sum(links.values()) * 0.7


def test_mention_entities_match_the_reply_prefix(tmp_path, synth):
    """The raw archive's ``user_mentions`` indices point at each handle of the prefix."""
    gen = synth._Gen(3000, seed=2)
    checked = 0
    for _ in range(3000):
        tweet = gen.tweet()["tweet"]
        text = tweet["full_text"]
        if text.startswith("RT @") or not re.match(r"@\w+ ", text):
            continue
        for mention in tweet["entities"]["user_mentions"]:
            start, end = int(mention["indices"][0]), int(mention["indices"][1])
            assert text[start:end] == "@" + mention["screen_name"]
            assert mention["id_str"] == synth.USER_IDS[mention["screen_name"]]
            checked += 1
    assert checked > 500
